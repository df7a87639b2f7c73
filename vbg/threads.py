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
    again below 25%. N > 0: always N. Call update() with each processed frame's ms on the
    thread that runs the kernels."""

    WINDOW = 30  # frames per decision

    def __init__(self, setting: int, fps: float) -> None:
        if isinstance(setting, bool) or not isinstance(setting, int) or setting < 0:
            raise ConfigError(f"frame_threads = {setting!r}: use 0 (automatic) or a number of "
                              "threads")
        self.setting = setting
        self.period_ms = 1000.0 / max(fps, 1e-3)
        self._recent: deque[float] = deque(maxlen=self.WINDOW)
        self.count = set_frame_threads(setting if setting else 1)

    def update(self, frame_ms: float) -> None:
        if self.setting:
            return
        self._recent.append(frame_ms)
        if len(self._recent) < self.WINDOW:
            return
        slow = float(np.percentile(self._recent, 90))
        if self.count == 1 and slow > 0.45 * self.period_ms and most() > 1:
            self.count = set_frame_threads(most())
        elif self.count > 1 and slow < 0.25 * self.period_ms:
            self.count = set_frame_threads(1)
        else:
            return
        self._recent.clear()  # judge the new setting on its own frames
