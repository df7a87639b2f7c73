"""Output frame rate and process CPU per frame over the last few seconds, for the live state."""

from __future__ import annotations

import time
from collections import deque

WINDOW_S = 5.0  # the rate is measured over about this long
SAMPLE_EVERY_S = 0.25


class RateMeter:
    """Call sample(frames_out) whenever the state is read; returns (fps, CPU ms per frame)
    over the last WINDOW_S seconds (since start until then)."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, int, float]] = deque()
        self.restart(0)

    def restart(self, frames_out: int) -> None:
        """Forget the past: measure from now (the run starts)."""
        self._samples.clear()
        self._samples.append((time.monotonic(), frames_out, time.process_time()))

    def sample(self, frames_out: int) -> tuple[float | None, float | None]:
        now, cpu = time.monotonic(), time.process_time()
        if now - self._samples[-1][0] >= SAMPLE_EVERY_S:
            self._samples.append((now, frames_out, cpu))
        while len(self._samples) > 2 and now - self._samples[1][0] >= WINDOW_S:
            self._samples.popleft()  # keep one sample at least WINDOW_S old
        t0, f0, c0 = self._samples[0]
        frames, wall = frames_out - f0, now - t0
        if wall < 0.2 or frames <= 0:
            return (0.0 if wall >= 1.0 else None), None
        return frames / wall, (cpu - c0) * 1e3 / frames
