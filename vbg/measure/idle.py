"""`vbg bench --no-reader`: what the live pipeline costs while nobody reads the virtual camera
(on-demand), with a stand-in file as the device and the recording pyvirtualcam backend.

- idle_cpu_cores: time.process_time() of the whole process over --seconds of idling, divided by
  the wall time (a fraction of one core).
- camera_open_while_idle: whether the source (the bench clip, opened as a camera is) was open
  at any moment of that window.
- resume_ms: a reader opens the stand-in -> the first processed frame written to the sink
  (median of RESUMES tries; each resume also counts: the camera is opened again).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from vbg.capture import CaptureThread, Source
from vbg.errors import VbgError
from vbg.live.pipeline import Pipeline
from vbg.sinks.camera import VirtualCameraSink
from vbg.sinks.ondemand import IDLE_STATE, OnDemand
from vbg.sinks.recording import register_recording_backend

RESUMES = 3  # reader open -> frames, tried this many times after the idle window
BACKEND = "vbg-bench-idle"


class CountedSource(Source):
    """Wraps the bench source: how many are open now, and how many opens there were."""

    def __init__(self, inner: Source, counter: OpenCounter) -> None:
        self._inner, self._counter = inner, counter
        self.info, self.is_file, self.is_live = inner.info, inner.is_file, inner.is_live

    def read(self) -> np.ndarray | None:
        return self._inner.read()

    def close(self) -> None:
        if self._inner is not None:
            self._counter.closed()
            self._inner.close()
            self._inner = None  # type: ignore[assignment]

    def interrupt(self) -> None:
        if self._inner is not None:
            self._inner.interrupt()


class OpenCounter:
    """Opens and closes of the bench's camera, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.open_now = 0
        self.opens = 0

    def opened(self) -> None:
        with self._lock:
            self.open_now += 1
            self.opens += 1

    def closed(self) -> None:
        with self._lock:
            self.open_now -= 1


class StampingSink(VirtualCameraSink):
    """The virtual camera (recording backend) noting when processed frames are written (the
    idle frames come without a capture timestamp)."""

    def __init__(self, stand_in: str, recorder) -> None:
        super().__init__(backend=BACKEND, stand_in=stand_in)
        self._recorder = recorder
        self.processed_at: deque[float] = deque(maxlen=4)
        self.idle_frames = 0

    def write(self, frame: np.ndarray, alpha: np.ndarray | None = None,
              timestamp: float | None = None) -> None:
        super().write(frame, alpha, timestamp)
        self._recorder.last.frames.clear()  # the backend copies each frame: keep none
        if timestamp is None:
            self.idle_frames += 1
        else:
            self.processed_at.append(time.perf_counter())


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise VbgError(f"vbg bench --no-reader: {what} within {timeout:g} s")
        time.sleep(0.01)


def measure(stages, open_camera, seconds: float, fps: float = 30.0,
            log=print) -> dict[str, Any]:
    """Run the pipeline with on-demand on a stand-in device: the idle figures."""
    recorder = register_recording_backend(BACKEND)
    counter = OpenCounter()

    def opener() -> Source:
        source = CountedSource(open_camera(), counter)
        counter.opened()
        return source

    def reopen() -> CaptureThread:
        return CaptureThread(opener, realtime=True, wait_for_camera=True).start()

    with tempfile.TemporaryDirectory(prefix="vbg-bench-") as tmp:
        stand_in = Path(tmp) / "video-stand-in"
        stand_in.touch()
        sink = StampingSink(str(stand_in), recorder)
        on_demand = OnDemand(reopen, log=log)
        pipeline = Pipeline(CaptureThread(opener, realtime=True).start(), stages, [sink],
                            fps=fps, realtime=True, log=log, on_demand=on_demand)
        runner = threading.Thread(target=pipeline.run, name="vbg-bench-pipeline", daemon=True)
        runner.start()
        try:
            _wait(lambda: pipeline.state == IDLE_STATE, 15.0, "no idle state")
            time.sleep(0.5)  # thread pools go to sleep
            opens0, open0 = counter.opens, counter.open_now
            cpu0, wall0 = time.process_time(), time.monotonic()
            time.sleep(seconds)
            idle_cpu = (time.process_time() - cpu0) / (time.monotonic() - wall0)
            camera_open = open0 > 0 or counter.opens > opens0 or counter.open_now > 0
            resumes = []
            for _ in range(RESUMES):
                t0 = time.perf_counter()
                fd = os.open(stand_in, os.O_RDONLY)  # an application opens the camera
                try:
                    _wait(lambda t0=t0: sink.processed_at and sink.processed_at[-1] > t0, 5.0,
                          "no processed frame after a reader opened the device")
                    resumes.append((min(t for t in sink.processed_at if t > t0) - t0) * 1e3)
                    time.sleep(0.5)
                finally:
                    os.close(fd)
                _wait(lambda: pipeline.state == IDLE_STATE, 15.0, "no idle state after the reader")
        finally:
            pipeline.stop()
            runner.join(5.0)
    return {"seconds": seconds, "idle_cpu_cores": idle_cpu,
            "camera_open_while_idle": camera_open,
            "resume_ms": statistics.median(resumes), "resume_ms_max": max(resumes),
            "idle_frames": sink.idle_frames, "camera_opens": counter.opens}


def run(args: argparse.Namespace, stages, open_camera) -> dict[str, Any]:
    """The --no-reader figures for `vbg bench` (its stages and its camera stand-in)."""
    seconds = float(getattr(args, "seconds", None) or 10.0)
    if seconds <= 0:
        raise VbgError(f"--seconds {seconds:g}: give a positive number")
    return measure(stages, open_camera, seconds, fps=args.fps or 30.0,
                   log=lambda msg: print(msg, file=sys.stderr, flush=True))


def report(figures: dict[str, Any]) -> str:
    """The --no-reader figures as text."""
    return (f"on-demand, {figures['size']} {figures['model']}, {figures['seconds']:g} s idle:\n"
            f"  idle CPU {figures['idle_cpu_cores']:.4f} of a core, camera open while idle: "
            f"{figures['camera_open_while_idle']}, idle frames {figures['idle_frames']}\n"
            f"  reader opens -> first processed frame: {figures['resume_ms']:.0f} ms median, "
            f"{figures['resume_ms_max']:.0f} ms max ({RESUMES} tries)")
