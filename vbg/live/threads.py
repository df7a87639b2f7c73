"""Threads for the per-frame image work (numba kernels, OpenCV): as few as keep up."""

from __future__ import annotations

from collections import deque

import numpy as np

from vbg.errors import ConfigError


def most() -> int:
    """Threads numba can use here (one per core unless NUMBA_NUM_THREADS says otherwise)."""
    import numba

    return int(numba.config.NUMBA_NUM_THREADS)


def set_frame_threads(n: int) -> int:
    """n threads for numba's parallel kernels (on the calling thread) and for OpenCV."""
    import cv2
    import numba

    n = max(1, min(n, most()))
    numba.set_num_threads(n)
    cv2.setNumThreads(n)
    return n


class FrameThreads:
    """`setting` 0 (auto): one thread while 90% of frames take under 45% of the frame period
    (the least CPU: a second thread cost ~1 ms more per 1080p frame in wake-ups), every core
    once they take longer (latency first: capture to camera within ~20 ms at 30 fps), one
    again below 25%, or when more threads did not make frames 15% faster (a busy machine:
    they only cost CPU; then no new try for 10 windows). N > 0: always N. Call update() with
    each processed frame's ms on the thread that runs the kernels."""

    WINDOW = 30  # frames per decision

    def __init__(self, setting: int, fps: float) -> None:
        if isinstance(setting, bool) or not isinstance(setting, int) or setting < 0:
            raise ConfigError(f"frame_threads = {setting!r}: use 0 (automatic) or a number of "
                              "threads")
        self.setting = setting
        self.period_ms = 1000.0 / max(fps, 1e-3)
        self._recent: deque[float] = deque(maxlen=self.WINDOW)
        self._before = 0.0  # 90th percentile on one thread, when more were tried
        self._hold = 0  # windows to wait before trying more threads again
        self.count = set_frame_threads(setting if setting else 1)

    def update(self, frame_ms: float) -> None:
        if self.setting:
            return
        self._recent.append(frame_ms)
        if len(self._recent) < self.WINDOW:
            return
        slow = float(np.percentile(self._recent, 90))
        self._recent.clear()  # judge each setting on its own frames
        if self.count == 1:
            self._hold = max(0, self._hold - 1)
            if slow > 0.45 * self.period_ms and most() > 1 and not self._hold:
                self._before = slow
                self.count = set_frame_threads(most())
        elif slow < 0.25 * self.period_ms or slow > 0.85 * self._before:
            if slow > 0.85 * self._before:
                self._hold = 10
            self.count = set_frame_threads(1)
