"""What `vbg bench` measures with: CPU windows, RSS, a measuring sink, stage timers."""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from vbg.sinks import NullSink


def rss_mb() -> float:
    """Current resident set size of this process, MB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource  # no /proc: the peak is the best there is

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict[str, Any]:
    """CPU count and model, load, and the thread settings that change the figures."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")),
                         model)
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    try:
        import numba

        layer = numba.threading_layer()  # known once a parallel kernel has run
    except (ImportError, ValueError):
        layer = None
    return {"cpus": os.cpu_count(), "cpus_usable": usable, "cpu_model": model,
            "loadavg_1min": load, "numba_threading_layer": layer,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}


class Window:
    """CPU, wall clock and RSS between the end of warm-up and the last measured frame, and
    how far `count()` (e.g. network runs so far) went meanwhile (`counted`)."""

    def __init__(self, count: Callable[[], int] | None = None) -> None:
        self.cpu0 = self.cpu1 = self.wall0 = self.wall1 = 0.0
        self.rss0 = self.rss1 = 0.0
        self._count = count
        self.counted = 0

    def start(self) -> None:
        self.rss0 = rss_mb()
        self.counted = -self._count() if self._count else 0
        self.cpu0, self.wall0 = time.process_time(), time.monotonic()

    def stop(self) -> None:
        self.cpu1, self.wall1 = time.process_time(), time.monotonic()
        self.counted += self._count() if self._count else 0
        self.rss1 = rss_mb()

    def figures(self, frames: int) -> dict[str, float]:
        wall = max(self.wall1 - self.wall0, 1e-9)
        return {"cpu_ms_per_frame": (self.cpu1 - self.cpu0) * 1e3 / frames,
                "wall_fps": frames / wall, "rss_mb": self.rss1,
                "rss_growth_mb": self.rss1 - self.rss0}


class MeasuringSink:
    """The NullSink (I420 conversion) that also marks the measured window by frame count."""

    needs_matte = False  # as the virtual camera: the composited frame only

    def __init__(self, warmup: int, frames: int, window: Window, on_warm) -> None:
        self.inner = NullSink()
        self.name = "null (measuring)"
        self.warmup, self.end = warmup, warmup + frames
        self.window, self.on_warm = window, on_warm
        self.written = 0

    def open(self, width: int, height: int, fps: float, channels: int = 3) -> None:
        self.inner.open(width, height, fps, channels)

    # As the v4l2loopback camera: the final pass hands over I420 planes (its conversion is then
    # in `composite`); BGR frames (fillers) are converted in write().
    takes_i420 = True

    def write(self, frame: np.ndarray, alpha: np.ndarray | None = None,
              timestamp: float | None = None) -> None:
        self._counted(lambda: self.inner.write(frame, alpha, timestamp))

    def write_i420(self, planes: np.ndarray, timestamp: float | None = None) -> None:
        self._counted(lambda: self.inner.write_i420(planes, timestamp))

    def _counted(self, write: Callable[[], None]) -> None:
        if self.written == self.warmup and self.warmup:
            self.on_warm()  # drops the warm-up figures (and this frame's stage times: one frame)
        write()
        self.written += 1
        if self.written == self.warmup:
            self.window.start()
        elif self.written == self.end:
            self.window.stop()

    def close(self) -> None:
        self.inner.close()


def median(values) -> float | None:
    return float(np.median(values)) if len(values) else None


def latency(values) -> tuple[float, float]:
    p50, p95 = np.percentile(np.asarray(values, dtype=np.float64), [50, 95]) if values else (0, 0)
    return float(p50), float(p95)


class NetworkClock:
    """The network time of the frame being segmented, summed over its runs (a zoomed frame
    runs the network up to three times: whole frame, crop, mirrored crop)."""

    def __init__(self) -> None:
        self.ms = 0.0  # this frame's, reset by SegmenterTimer
        self.total_runs = 0


class SessionTimer:
    """Stands in for a segmenter's onnxruntime session: adds each run() to the clock."""

    def __init__(self, session, clock: NetworkClock) -> None:
        self._session, self.clock = session, clock

    def run(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return self._session.run(*args, **kwargs)
        finally:
            self.clock.ms += (time.perf_counter() - t0) * 1e3
            self.clock.total_runs += 1

    def __getattr__(self, name: str):
        return getattr(self._session, name)


class SegmenterTimer:
    """Stands in for the segmenter: one entry per segmented frame of its network time, so
    each frame's preprocessing is its segmenter time less its own network runs."""

    def __init__(self, segmenter, clock: NetworkClock, network_ms: deque) -> None:
        self._segmenter, self.clock, self.network_ms = segmenter, clock, network_ms

    def __call__(self, *args, **kwargs):
        self.clock.ms = 0.0
        try:
            return self._segmenter(*args, **kwargs)
        finally:
            self.network_ms.append(self.clock.ms)

    def __getattr__(self, name: str):
        return getattr(self._segmenter, name)


class BackgroundTimer:
    """Stands in for the compositor's background to time prepare() (e.g. the blur)."""

    def __init__(self, background, prepare_ms: deque) -> None:
        self._background, self.prepare_ms = background, prepare_ms

    def prepare(self, frame: np.ndarray, alpha: np.ndarray, **kwargs):
        t0 = time.perf_counter()
        try:
            return self._background.prepare(frame, alpha, **kwargs)
        finally:
            self.prepare_ms.append((time.perf_counter() - t0) * 1e3)

    def __getattr__(self, name: str):
        return getattr(self._background, name)
