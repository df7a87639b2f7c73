"""Load benchmark for `vbg web`: N cut-out requests with K in flight on real photos.

Starts `vbg web` on a free loopback port (its own process, so its RSS is measured alone),
warms it up with one pass over the photos, then sends the requests and reports throughput,
p50/p95 latency, status counts and the server's RSS after warm-up, at its peak and after the
run. Goal (issue 21): no error other than 503, RSS growth under 50 MB.

    .venv/bin/python tools/web_load.py                      # 200 requests, 8 in flight
    .venv/bin/python tools/web_load.py --queue 2 --json out.json   # a small queue: 503s
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PHOTOS = ROOT.parent / "shared" / "data" / "coco_person" / "images"
MB = 1024 * 1024


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_bytes(pid: int) -> int:
    """Resident memory of a process (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def multipart(name: str, data: bytes, fields: dict[str, str]) -> tuple[bytes, str]:
    """A multipart/form-data body with one image and text fields."""
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
             .encode() for k, v in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; '
                 f'filename="{name}"\r\nContent-Type: image/jpeg\r\n\r\n'.encode() + data
                 + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def send(port: int, body: bytes, content_type: str, path: str) -> tuple[int, float]:
    """POST one request: (status, seconds); status 0 when the connection failed."""
    started = time.perf_counter()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        conn.request("POST", path, body, {"Content-Type": content_type})
        reply = conn.getresponse()
        reply.read()
        conn.close()
        return reply.status, time.perf_counter() - started
    except OSError:
        return 0, time.perf_counter() - started


def wait_ready(port: int, server: subprocess.Popen, timeout: float = 120) -> None:
    """Until the server answers /api/about."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"web_load: vbg web exited with {server.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/about")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    sys.exit("web_load: vbg web did not start")


def run_load(port: int, pid: int, bodies: list[tuple[bytes, str]], total: int, in_flight: int,
             path: str) -> dict:
    """Send `total` requests, `in_flight` at a time; sample RSS meanwhile."""
    peak, stop = [rss_bytes(pid)], threading.Event()

    def sample() -> None:
        while not stop.wait(0.1):
            peak.append(rss_bytes(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    with ThreadPoolExecutor(in_flight) as pool:
        results = list(pool.map(lambda i: send(port, *bodies[i % len(bodies)], path),
                                range(total)))
    wall = time.perf_counter() - started
    stop.set()
    sampler.join()
    ok = sorted(t for status, t in results if status == 200)
    q = statistics.quantiles(ok, n=20) if len(ok) >= 2 else [float("nan")] * 19
    return {"requests": total, "in_flight": in_flight, "seconds": round(wall, 2),
            "status": dict(Counter(status for status, _ in results)),
            "ok_per_s": round(len(ok) / wall, 3),
            "p50_s": round(statistics.median(ok), 3) if ok else None,
            "p95_s": round(q[18], 3) if ok else None, "peak_rss_mb": round(max(peak) / MB, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS, help="folder of JPEG photos")
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--in-flight", type=int, default=8)
    p.add_argument("--workers", type=int, help="vbg web --workers (default: its own)")
    p.add_argument("--queue", type=int, help="vbg web --queue (default: its own)")
    p.add_argument("--background", default="", help="form field background (default: none)")
    p.add_argument("--path", default="/api/cutout")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args(argv)
    photos = sorted(args.photos.glob("*.jpg"))
    if not photos:
        sys.exit(f"web_load: no .jpg photos in {args.photos}")
    fields = {"background": args.background} if args.background else {}
    bodies = [multipart(f.name, f.read_bytes(), fields) for f in photos]
    port = free_port()
    command = [str(ROOT / ".venv" / "bin" / "vbg"), "web", "--port", str(port),
               "--output", str(Path(os.environ.get("TMPDIR", "/tmp")) / "vbg-web-load")]
    command += ["--workers", str(args.workers)] if args.workers else []
    command += ["--queue", str(args.queue)] if args.queue is not None else []
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    try:
        wait_ready(port, server)
        start_rss = rss_bytes(server.pid)
        warm = run_load(port, server.pid, bodies, len(bodies), args.in_flight, args.path)
        time.sleep(1.0)
        warm_rss = rss_bytes(server.pid)
        load = run_load(port, server.pid, bodies, args.requests, args.in_flight, args.path)
        time.sleep(1.0)
        end_rss = rss_bytes(server.pid)
        figures = {"photos": len(photos), "photo_dir": str(args.photos), "warm_up": warm,
                   "load": load, "rss_start_mb": round(start_rss / MB, 1),
                   "rss_after_warm_up_mb": round(warm_rss / MB, 1),
                   "rss_after_run_mb": round(end_rss / MB, 1),
                   "rss_growth_mb": round((end_rss - warm_rss) / MB, 1),
                   "errors_other_than_503": sum(n for s, n in load["status"].items()
                                                if s not in (200, 503)),
                   "server_alive": server.poll() is None}
    finally:
        server.terminate()
        server.wait(10)
    print(json.dumps(figures, indent=1))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    ok = figures["errors_other_than_503"] == 0 and figures["rss_growth_mb"] < 50
    print(f"web_load: {load['ok_per_s']} ok/s, p50 {load['p50_s']} s, p95 {load['p95_s']} s, "
          f"status {load['status']}, RSS {figures['rss_after_warm_up_mb']} -> "
          f"{figures['rss_after_run_mb']} MB (growth {figures['rss_growth_mb']} MB): "
          f"{'goal met' if ok else 'GOAL MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
