"""MJPEG over HTTP: multipart/x-mixed-replace streams and single-JPEG snapshot URLs."""

from __future__ import annotations

import base64
import contextlib
import http.client
import re
import select
import socket
import ssl
import threading
import time
from urllib.parse import urljoin, urlsplit

import cv2
import numpy as np

from vbg.capture.sources import Source, SourceInfo, as_bgr, redact
from vbg.errors import CameraError

SOI, EOI = b"\xff\xd8", b"\xff\xd9"
MAX_BUFFER = 32 * 1024 * 1024  # no frame in this many bytes: not an MJPEG stream
MAX_BAD_FRAMES = 10  # consecutive undecodable JPEGs before the stream counts as failed
SNAPSHOT_FPS = 15.0  # poll rate for snapshot URLs when no fps was asked for
NOMINAL_FPS = 30.0  # MJPEG streams do not announce their rate
_CONTENT_LENGTH = re.compile(rb"content-length\s*:\s*(\d+)", re.IGNORECASE)
_BOUNDARY = re.compile(r'boundary\s*=\s*"?([^";]+)"?', re.IGNORECASE)


class NotMjpegError(Exception):
    """The URL answered with something other than MJPEG or JPEG (let FFmpeg try)."""


def jpeg_end(buf: bytes | bytearray, soi: int) -> int:
    """Index just past the EOI of the JPEG starting at soi; -1 if not all there yet.

    Walks the marker segments (so thumbnails inside EXIF cannot end the frame early) and
    scans entropy-coded data for the first marker that is not stuffing or a restart.
    """
    n, i = len(buf), soi + 2
    while i + 2 <= n:
        if buf[i] != 0xFF:
            return _naive_end(buf, soi)  # not a well-formed marker: fall back to scanning
        marker = buf[i + 1]
        if marker == 0xFF:
            i += 1
        elif marker == 0xD9:
            return i + 2
        elif 0xD0 <= marker <= 0xD7 or marker == 0x01:
            i += 2
        elif i + 4 > n:
            return -1
        else:
            i += 2 + ((buf[i + 2] << 8) | buf[i + 3])
            if marker == 0xDA:
                i = _entropy_end(buf, i)
                if i < 0:
                    return -1
    return -1


def _entropy_end(buf: bytes | bytearray, i: int) -> int:
    """Position of the first real marker after entropy-coded data at i; -1 if not there yet."""
    n = len(buf)
    while True:
        j = buf.find(b"\xff", i)
        if j < 0 or j + 1 >= n:
            return -1
        nxt = buf[j + 1]
        if nxt == 0x00 or 0xD0 <= nxt <= 0xD7:
            i = j + 2
        elif nxt == 0xFF:
            i = j + 1
        else:
            return j


def _naive_end(buf: bytes | bytearray, soi: int) -> int:
    end = buf.find(EOI, soi + 2)
    return end + 2 if end >= 0 else -1


class JpegStreamParser:
    """Splits a byte stream of multipart parts (or bare concatenated JPEGs) into JPEGs."""

    def __init__(self, boundary: bytes | None = None) -> None:
        self._buf = bytearray()
        self._boundary = b"--" + boundary if boundary else None

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        self._buf += data
        if len(self._buf) > MAX_BUFFER:
            raise CameraError("no JPEG frame found in the stream data (is it really MJPEG?)")

    def next_jpeg(self) -> bytes | None:
        """The next complete JPEG (removed from the buffer), or None if none is complete yet."""
        buf = self._buf
        soi = buf.find(b"\xff\xd8\xff")
        if soi < 0:
            return None
        length, header_end = self._part_header(bytes(buf[:soi]))
        if length is not None:
            end = header_end + length
            if len(buf) < end:
                return None
            jpeg = bytes(buf[soi:end]).rstrip(b"\r\n")
            if jpeg.endswith(EOI):
                del buf[:end]
                return jpeg
        if buf.find(EOI, soi + 2) < 0:
            return None  # cheap check before walking the markers
        end = jpeg_end(buf, soi)
        if end < 0:
            return None
        jpeg = bytes(buf[soi:end])
        del buf[:end]
        return jpeg

    def _part_header(self, prefix: bytes) -> tuple[int | None, int]:
        """(Content-Length, header end) of the part whose body starts after prefix."""
        if self._boundary:
            at = prefix.rfind(self._boundary)
            if at >= 0:
                prefix_start = at
                prefix = prefix[at:]
            else:
                prefix_start = 0
        else:
            prefix_start = 0
        header_end = prefix.find(b"\r\n\r\n")
        matches = _CONTENT_LENGTH.findall(prefix)
        if header_end < 0 or not matches:
            return None, 0
        return int(matches[-1]), prefix_start + header_end + 4


class _Http:
    """One HTTP(S) GET with bounded timeouts; keeps the raw socket to interrupt reads."""

    def __init__(self, url: str, open_timeout: float, read_timeout: float) -> None:
        self.url, self.name = url, redact(url)
        self.open_timeout, self.read_timeout = open_timeout, read_timeout
        self.conn: http.client.HTTPConnection | None = None
        self.sock: socket.socket | None = None
        self.response: http.client.HTTPResponse | None = None

    def get(self, reuse: bool = False) -> http.client.HTTPResponse:
        """GET the URL (following redirects); raises CameraError on failure."""
        url = self.url
        for _ in range(4):
            response = self._request(url, reuse)
            location = response.getheader("Location")
            if response.status in (301, 302, 303, 307, 308) and location:
                response.read()
                url, reuse = urljoin(url, location), False
                continue
            return self._check(response)
        raise CameraError(f"MJPEG source {self.name}: too many redirects")

    def _request(self, url: str, reuse: bool) -> http.client.HTTPResponse:
        parts = urlsplit(url)
        headers = {"User-Agent": "vbg", "Accept": "multipart/x-mixed-replace, image/jpeg, */*"}
        if parts.username is not None:
            token = f"{parts.username}:{parts.password or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(token).decode()
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            if not (reuse and self.conn is not None and self.conn.sock is not None):
                self.close()
                self.conn = _connection(parts, self.open_timeout)
                self.conn.connect()
                self.sock = self.conn.sock
            self.conn.request("GET", path, headers=headers)
            return self.conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            self.close()
            raise CameraError(
                f"MJPEG source {self.name} could not be opened: {_reason(e)}. Check the URL "
                f"and network, and that the camera or server is running."
            ) from e

    def _check(self, response: http.client.HTTPResponse) -> http.client.HTTPResponse:
        if response.status == 200:
            self.response = response
            return response
        self.close()
        hint = " (wrong or missing user:password in the URL?)" if response.status in (401, 403) \
            else ""
        raise CameraError(
            f"MJPEG source {self.name} answered HTTP {response.status} {response.reason}{hint}"
        )

    def set_timeout(self, seconds: float) -> None:
        """Socket timeout for the reads that follow."""
        if self.sock is not None:
            self.sock.settimeout(seconds)

    def readable_now(self) -> bool:
        """True if bytes are waiting on the socket (a read would not block)."""
        if self.sock is None or self.sock.fileno() < 0:
            return False
        return bool(select.select([self.sock], [], [], 0)[0])

    def interrupt(self) -> None:
        """Wake a blocked read from another thread."""
        sock = self.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Close the response and connection."""
        response, conn, sock = self.response, self.conn, self.sock
        self.response = self.conn = self.sock = None
        for item in (response, conn, sock):
            if item is not None:
                with contextlib.suppress(OSError):
                    item.close()


def _connection(parts, timeout: float) -> http.client.HTTPConnection:
    host, port = parts.hostname or "", parts.port
    if parts.scheme.lower() == "https":
        return http.client.HTTPSConnection(host, port, timeout=timeout,
                                           context=ssl.create_default_context())
    return http.client.HTTPConnection(host, port, timeout=timeout)


def _reason(e: BaseException) -> str:
    if isinstance(e, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    return str(e) or type(e).__name__


def _decode(jpeg: bytes) -> np.ndarray | None:
    return as_bgr(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR))


class MjpegStreamSource(Source):
    """A multipart/x-mixed-replace MJPEG stream; always returns the newest complete frame."""

    def __init__(self, http: _Http, boundary: bytes | None, fps: float | None) -> None:
        self._http = http
        self._parser = JpegStreamParser(boundary)
        self._bad = 0
        self.skipped = 0  # stale frames passed over to keep latency low
        http.set_timeout(http.open_timeout)
        first = self._next_frame()
        http.set_timeout(http.read_timeout)
        self._pending: np.ndarray | None = first
        self.info = SourceInfo(http.name, first.shape[1], first.shape[0], fps or NOMINAL_FPS,
                               "MJPG")

    def read(self) -> np.ndarray:
        """Newest frame of the stream; raises CameraError if it ends, stalls or breaks."""
        if self._pending is not None:
            frame, self._pending = self._pending, None
            return frame
        return self._next_frame()

    def _next_frame(self) -> np.ndarray:
        while True:
            frame = _decode(self._newest_jpeg())
            if frame is not None:
                self._bad = 0
                return frame
            self._bad += 1
            if self._bad >= MAX_BAD_FRAMES:
                raise CameraError(f"MJPEG source {self._http.name} sends undecodable JPEGs")

    def _newest_jpeg(self) -> bytes:
        jpeg = None
        while True:
            while (found := self._parser.next_jpeg()) is not None:
                self.skipped += jpeg is not None
                jpeg = found
            chunked = self._http.response is not None and self._http.response.chunked
            if jpeg is not None and (chunked or not self._http.readable_now()):
                return jpeg
            self._parser.feed(self._receive())

    def _receive(self) -> bytes:
        response = self._http.response
        if response is None:
            raise CameraError(f"MJPEG source {self._http.name} is closed")
        try:
            data = response.read1(65536)
        except (OSError, ValueError, http.client.HTTPException) as e:
            raise CameraError(f"MJPEG source {self._http.name} failed: {_reason(e)}") from e
        if not data:
            raise CameraError(f"MJPEG source {self._http.name} closed the stream")
        return data

    def interrupt(self) -> None:
        """Unblock a pending read (thread-safe)."""
        self._http.interrupt()

    def close(self) -> None:
        """Close the connection."""
        self._pending = None
        self._http.close()


class JpegSnapshotSource(Source):
    """A URL that returns one JPEG per request, polled at a fixed rate."""

    def __init__(self, http: _Http, fps: float | None) -> None:
        self._http = http
        self._period = 1.0 / (fps or SNAPSHOT_FPS)
        self._due = time.monotonic()
        self._wake = threading.Event()
        first = self._body_frame(http.response)
        self._pending: np.ndarray | None = first
        self.info = SourceInfo(http.name, first.shape[1], first.shape[0], fps or SNAPSHOT_FPS,
                               "JPEG")

    def read(self) -> np.ndarray:
        """Poll the next snapshot (paced to the source fps)."""
        if self._pending is not None:
            frame, self._pending = self._pending, None
            return frame
        self._due = max(self._due + self._period, time.monotonic() - self._period)
        delay = self._due - time.monotonic()
        if delay > 0 and self._wake.wait(delay):
            raise CameraError(f"MJPEG source {self._http.name} was interrupted")
        try:
            response = self._http.get(reuse=True)
        except CameraError:
            response = self._http.get(reuse=False)  # the server may have dropped keep-alive
        return self._body_frame(response)

    def _body_frame(self, response: http.client.HTTPResponse | None) -> np.ndarray:
        if response is None:
            raise CameraError(f"MJPEG source {self._http.name} is closed")
        try:
            self._http.set_timeout(self._http.read_timeout)
            body = response.read()
        except (OSError, http.client.HTTPException) as e:
            raise CameraError(f"MJPEG source {self._http.name} failed: {_reason(e)}") from e
        frame = _decode(body)
        if frame is None:
            raise CameraError(f"MJPEG source {self._http.name} returned an undecodable JPEG")
        return frame

    def interrupt(self) -> None:
        """Unblock a pending read (thread-safe)."""
        self._wake.set()
        self._http.interrupt()

    def close(self) -> None:
        """Close the connection."""
        self._pending = None
        self._http.close()


def open_mjpeg(url: str, fps: float | None, open_timeout: float,
               read_timeout: float) -> Source:
    """Open an http(s) MJPEG stream or JPEG snapshot URL; NotMjpegError for other content."""
    http = _Http(url, open_timeout, read_timeout)
    response = http.get()
    ctype = (response.getheader("Content-Type") or "").strip()
    kind = ctype.split(";")[0].strip().lower()
    try:
        if kind.startswith("multipart/"):
            match = _BOUNDARY.search(ctype)
            boundary = match.group(1).strip().removeprefix("--").encode() if match else None
            return MjpegStreamSource(http, boundary, fps)
        if kind in ("image/jpeg", "image/jpg", "image/pjpeg"):
            return JpegSnapshotSource(http, fps)
    except BaseException:
        http.close()
        raise
    http.close()
    raise NotMjpegError(ctype)
