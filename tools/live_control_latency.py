"""How fast live control acts: PATCH /api/live colour changes, pause and resume on the real
pipeline (a clip as the camera, a recording virtual camera), from the request to the first
frame that shows it, and the longest wait between output frames meanwhile.

    .venv/bin/python tools/live_control_latency.py [--clip ../shared/data/davis_parkour/clip.mp4]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from vbg.live.pause import paused_card
from vbg.live.session import build_live
from vbg.live.settings import LiveSettings
from vbg.sinks.recording import register_recording_backend
from vbg.web.livemode import start_live_web

CLIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "davis_parkour" / "clip.mp4"
COLOURS = {"#00ff00": (0, 255, 0), "#0000ff": (255, 0, 0)}  # -> BGR


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", type=Path, default=CLIP)
    ap.add_argument("--changes", type=int, default=10)
    ap.add_argument("--fps", type=float, default=24.0)
    args = ap.parse_args()
    recorder = register_recording_backend("latency")
    s = LiveSettings.from_mapping({"camera": str(args.clip), "fps": args.fps, "provider": "cpu",
                                   "virtual_camera": True, "on_demand": False,
                                   "color": "#0000ff"})
    live = build_live(s, loop=True, vcam_backend="latency", log=lambda _m: None)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    web = start_live_web(live, port, print)
    runner = threading.Thread(target=live.run, daemon=True)
    runner.start()
    time.sleep(2.0)
    frames = lambda t: [f for f in recorder.last.frames if f.sent_at > t]  # noqa: E731
    shows = lambda f, bgr: np.abs(f.data[:24, :24].reshape(-1, 3).mean(0) - bgr).max() < 40  # noqa: E731
    reply_ms, shown_ms, gaps, baseline = [], [], [], []
    for _ in range(args.changes):  # the same windows with no change: what the load alone does
        t0 = time.perf_counter()
        time.sleep(0.6)
        sent = [f.sent_at for f in recorder.last.frames if f.sent_at > t0 - 0.2]
        baseline.append(float(np.diff(sent).max()) * 1e3)
    with httpx.Client(base_url=web.url, timeout=30) as client:
        for k in range(args.changes):
            colour = list(COLOURS)[k % 2 == 0]
            t0 = time.perf_counter()
            client.patch("api/live", json={"color": colour}).raise_for_status()
            reply_ms.append((time.perf_counter() - t0) * 1e3)
            time.sleep(0.6)
            first = next(f for f in frames(t0) if shows(f, COLOURS[colour]))
            shown_ms.append((first.sent_at - t0) * 1e3)
            sent = [f.sent_at for f in recorder.last.frames if f.sent_at > t0 - 0.2]
            gaps.append(float(np.diff(sent).max()) * 1e3)
        card = paused_card(854, 480)
        t0 = time.perf_counter()
        client.post("api/live/pause").raise_for_status()
        time.sleep(1.0)
        pause_ms = (next(f for f in frames(t0) if np.array_equal(f.data, card)).sent_at
                    - t0) * 1e3
        t1 = time.perf_counter()
        client.post("api/live/resume").raise_for_status()
        time.sleep(1.0)
        resume_ms = (next(f for f in frames(t1) if not np.array_equal(f.data, card)).sent_at
                     - t1) * 1e3
        sent = [f.sent_at for f in recorder.last.frames if f.sent_at > t0 - 0.2]
        pause_gap = float(np.diff(sent).max()) * 1e3
    live.stop()
    runner.join(5)
    web.close(wait=True)
    print(f"{args.changes} colour changes at {args.fps:g} fps: reply median "
          f"{statistics.median(reply_ms):.0f} ms; first frame with the new colour median "
          f"{statistics.median(shown_ms):.0f} ms, max {max(shown_ms):.0f} ms; longest gap "
          f"between output frames median {statistics.median(gaps):.0f} ms, max {max(gaps):.0f} "
          f"ms; without changes median {statistics.median(baseline):.0f} ms, max "
          f"{max(baseline):.0f} ms (frame period {1e3 / args.fps:.0f} ms)")
    print(f"pause: card after {pause_ms:.0f} ms; resume: camera picture after {resume_ms:.0f} "
          f"ms; longest gap across pause+resume {pause_gap:.0f} ms")


if __name__ == "__main__":
    main()
