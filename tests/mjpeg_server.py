"""A real MJPEG-over-HTTP camera on 127.0.0.1 for tests and manual checks.

Paths: /stream (multipart/x-mixed-replace), /stream-nolength (parts without Content-Length),
/snapshot.jpg (one JPEG per request), /page (text/html, not a camera).

    python tests/mjpeg_server.py FILE --port 8080 --fps 30 --outage 5:2
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

BOUNDARY = "vbgframe"


def generated_frames(count: int = 30, size: tuple[int, int] = (320, 240)) -> list[np.ndarray]:
    """Moving-gradient test frames; the top-left 32x32 block's grey level is the frame number."""
    w, h = size
    x = np.arange(w, dtype=np.uint16)[None, :]
    y = np.arange(h, dtype=np.uint16)[:, None]
    frames = []
    for i in range(count):
        image = np.empty((h, w, 3), np.uint8)
        image[..., 0] = ((x + 4 * i) % 256).astype(np.uint8)
        image[..., 1] = ((y + 2 * i) % 256).astype(np.uint8)
        image[..., 2] = 128
        image[:32, :32] = (i * 8) % 256
        frames.append(image)
    return frames


def video_frames(path: str, limit: int = 300) -> list[np.ndarray]:
    """Up to limit frames of a video file."""
    cap = cv2.VideoCapture(path)
    frames: list[np.ndarray] = []
    while len(frames) < limit:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(image)
    cap.release()
    if not frames:
        raise SystemExit(f"mjpeg_server: cannot read frames from {path}")
    return frames


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""

    def setup(self) -> None:
        super().setup()
        self.server.connections.add(self.connection)

    def finish(self) -> None:
        self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def do_GET(self) -> None:
        """Serve a stream, a snapshot or a page that is not a camera."""
        owner = self.server.owner
        path = self.path.split("?")[0]
        if path in ("/stream", "/stream-nolength", "/"):
            self._stream(owner, with_length=path != "/stream-nolength")
        elif path == "/snapshot.jpg":
            self._send(200, "image/jpeg", owner.jpegs[owner.next_index()])
        elif path == "/page":
            self._send(200, "text/html", b"<html><body>not a camera</body></html>")
        else:
            self._send(404, "text/plain", b"not found")

    def _send(self, status: int, ctype: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, owner: MjpegServer, with_length: bool) -> None:
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        period, due = 1.0 / owner.fps, time.monotonic()
        try:
            while owner.running.is_set():
                jpeg = owner.jpegs[owner.next_index()]
                head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                if with_length:
                    head += f"Content-Length: {len(jpeg)}\r\n"
                self.wfile.write(head.encode() + b"\r\n" + jpeg + b"\r\n")
                self.wfile.flush()
                due += period
                time.sleep(max(0.0, due - time.monotonic()))
        except OSError:
            pass  # the client went away or stop() cut the connection


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: MjpegServer
    connections: set[socket.socket]


class MjpegServer:
    """Serves frames as MJPEG at a given fps; stop() makes the camera vanish, restart() returns."""

    def __init__(self, frames: list[np.ndarray] | None = None, fps: float = 30.0,
                 port: int = 0, quality: int = 80) -> None:
        frames = frames if frames is not None else generated_frames()
        params = [cv2.IMWRITE_JPEG_QUALITY, quality]
        self.jpegs = [cv2.imencode(".jpg", f, params)[1].tobytes() for f in frames]
        self.size = (frames[0].shape[1], frames[0].shape[0])
        self.fps = fps
        self.port = port
        self.running = threading.Event()
        self._index = 0
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The multipart stream URL."""
        return f"http://127.0.0.1:{self.port}/stream"

    def url_for(self, path: str) -> str:
        """URL of another path on this server."""
        return f"http://127.0.0.1:{self.port}{path}"

    def next_index(self) -> int:
        """Frame number to send next (shared by all clients, wraps around)."""
        with self._lock:
            i = self._index
            self._index = (i + 1) % len(self.jpegs)
            return i

    def start(self) -> MjpegServer:
        """Listen (on a random free port the first time) and serve."""
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.owner, server.connections = self, set()
        self.port = server.server_address[1]
        self._server = server
        self.running.set()
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="mjpeg-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listening socket and every open connection: the camera disappears."""
        server, self._server = self._server, None
        self.running.clear()
        if server is None:
            return
        server.shutdown()
        server.server_close()
        for conn in list(server.connections):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(2)

    def restart(self) -> MjpegServer:
        """Come back on the same port."""
        self.stop()
        return self.start()

    def __enter__(self) -> MjpegServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    """Serve a video file (or generated frames) for manual checks, with optional outages."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", help="video file (default: generated frames)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--outage", action="append", default=[], metavar="START:DURATION",
                        help="stop serving START s after launch for DURATION s (repeatable)")
    args = parser.parse_args()
    frames = video_frames(args.file) if args.file else generated_frames()
    server = MjpegServer(frames, fps=args.fps, port=args.port).start()
    print(f"serving {server.url} (also /stream-nolength, /snapshot.jpg); Ctrl+C to quit")
    outages = sorted(tuple(float(v) for v in o.split(":")) for o in args.outage)
    t0 = time.monotonic()
    try:
        for start, duration in outages:
            time.sleep(max(0.0, t0 + start - time.monotonic()))
            server.stop()
            print(f"outage: camera gone for {duration:g} s", flush=True)
            time.sleep(duration)
            server.start()
            print("camera back", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
