"""The frame shrunken once per frame for every stage that only needs a small picture."""

from __future__ import annotations

import cv2
import numpy as np
from numba import njit

# Twice the refiner's guide width: the guide is then an exact 2x2 mean of the thumbnail.
WIDTH = 640


@njit(cache=True, fastmath=True)
def _decimate(frame: np.ndarray, ratio: int, out: np.ndarray) -> None:
    """out[y, x] = frame[ratio*y + ratio//2, ratio*x + ratio//2], as INTER_NEAREST_EXACT (at an
    odd ratio also the pixels INTER_LINEAR gives). Two rows at a time, so two streams of frame
    memory are in flight (cold 1080p frames: 0.33 vs 0.43 ms a row at a time, 0.62 for cv2)."""
    half = ratio // 2
    height = out.shape[0]
    for y in range(0, height, 2):
        y1 = min(y + 1, height - 1)  # an odd last row is simply done twice
        src0, src1 = frame[ratio * y + half], frame[ratio * y1 + half]
        dst0, dst1 = out[y], out[y1]
        for x in range(out.shape[1]):
            k = ratio * x + half
            dst0[x, 0] = src0[k, 0]
            dst0[x, 1] = src0[k, 1]
            dst0[x, 2] = src0[k, 2]
            dst1[x, 0] = src1[k, 0]
            dst1[x, 1] = src1[k, 1]
            dst1[x, 2] = src1[k, 2]


class Thumbnailer:
    """Callable: BGR frame -> the frame at about WIDTH px wide (a reused buffer, aspect kept),
    or the frame itself when it is not larger. One sparse pass at a whole ratio (1080p: 3, 720p:
    2): every ratio-th pixel (INTER_NEAREST_EXACT), reading 1/ratio of the frame's rows; other
    ratios: INTER_LINEAR (why picking: docs/decisions.md, "Thumbnails")."""

    def __init__(self, width: int = WIDTH) -> None:
        self.width = width
        self._key: tuple[int, int] | None = None
        self._out = np.empty((0, 0, 3), np.uint8)
        self._interpolation = cv2.INTER_LINEAR
        self.exact = False  # the last thumbnail holds frame pixels as they are (decimation)

    def size_for(self, width: int, height: int) -> tuple[int, int]:
        """Thumbnail (w, h) of a width x height frame."""
        if width <= self.width:
            return width, height
        return self.width, max(1, round(height * self.width / width))

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        height, width = frame.shape[:2]
        tw, th = self.size_for(width, height)
        if (tw, th) == (width, height):
            self.exact = True
            return frame
        if self._key != (width, height):
            self._out = np.empty((th, tw, 3), np.uint8)  # once per frame size (hot path)
            ratio = width / tw
            whole = ratio == height / th and ratio.is_integer()
            self._interpolation = cv2.INTER_NEAREST_EXACT if whole else cv2.INTER_LINEAR
            self._key = (width, height)
        self.exact = self._interpolation == cv2.INTER_NEAREST_EXACT
        if self.exact and frame.flags.c_contiguous:
            _decimate(frame, round(width / tw), self._out)
        else:
            cv2.resize(frame, (tw, th), dst=self._out, interpolation=self._interpolation)
        return self._out


def warm_up() -> None:
    """Compile (or load from cache) the decimation kernel."""
    Thumbnailer(3)(np.zeros((9, 9, 3), np.uint8))
