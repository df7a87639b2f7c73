"""Can the chosen model keep the frame rate here? Measured on the first seconds, said once."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

MEASURE_FRAMES = 8  # frames timed before judging (after the first, which allocates)
ENOUGH = 0.9  # below this share of the frame rate the pipeline is too slow
# The faster choice for each model, as the user would type it.
FASTER = {
    "rvm": "--model selfie-landscape (the fast tier, what --model auto picks on a CPU)",
    "selfie": "--model selfie-landscape (the fast tier)",
}
FASTEST = "a smaller --size, a lower --fps, or --no-zoom"


class KeepUp:
    """Collects per-frame processing times and logs one line if they cannot hold `fps`."""

    def __init__(self, fps: float, model: str, log: Callable[[str], None]) -> None:
        self.fps = float(fps)
        self.model = model
        self.log = log
        self._times: list[float] = []
        self.verdict: bool | None = None  # None: still measuring; True: keeps up

    def add(self, ms: float) -> None:
        """One frame's processing time (capture to sink, the stages the model drives)."""
        if self.verdict is not None or self.fps <= 0:
            return
        self._times.append(ms)
        if len(self._times) < MEASURE_FRAMES + 1:
            return
        median = float(np.median(self._times[1:]))
        reachable = 1000.0 / median if median > 0 else float("inf")
        self.verdict = reachable >= ENOUGH * self.fps
        if not self.verdict:
            self.log(f"vbg: {self.model} reaches only {reachable:.1f} fps on this machine "
                     f"({median:.0f} ms per frame; the output runs at {self.fps:g}): frames will "
                     f"be dropped; for the full frame rate use "
                     f"{FASTER.get(self.model, FASTEST)}")
