"""Bilinear enlargement of a small picture (the blurred background) in two passes."""

from __future__ import annotations

import cv2
import numpy as np
from numba import njit, prange, types

from vbg.pixels import IMAGE_IN, IMAGE_OUT, linear_taps_256

_IMAGE_OUT, _WIDE_IN = IMAGE_OUT, IMAGE_IN
_ROWS = types.Array(types.int32, 1, "C", readonly=True)
_ROW_WEIGHTS = types.Array(types.uint16, 1, "C", readonly=True)


@njit(_IMAGE_OUT(_WIDE_IN, _ROWS, _ROWS, _ROW_WEIGHTS, _IMAGE_OUT), parallel=True, fastmath=True,
      cache=True)
def _enlarge_rows(wide, y0, y1, wy, out):  # pragma: no cover - compiled
    """out row y = round(wide[y0] * (256 - wy) + wide[y1] * wy) / 256 (the vertical pass)."""
    height, width = out.shape[:2]
    wide_rows = wide.reshape(wide.shape[0], width * 3)
    out_rows = out.reshape(height, width * 3)
    for y in prange(height):
        w1 = np.uint16(wy[y])
        w0 = np.uint16(256) - w1
        top, bottom = wide_rows[y0[y]], wide_rows[y1[y]]
        for i in range(width * 3):
            value = w0 * np.uint16(top[i]) + w1 * np.uint16(bottom[i]) + np.uint16(128)
            out_rows[y, i] = np.uint8(value >> np.uint16(8))
    return out


class Enlarger:
    """Bilinear enlargement of a small BGR image in two passes: cv2 along x into a buffer
    with the small image's rows, then along y one output row at a time (`_enlarge_rows`, or
    fused into the compositor's blend so the full-size background is never written)."""

    def __init__(self) -> None:
        self._key: tuple[int, int, int, int] | None = None
        self._last: np.ndarray | None = None

    def rows(self, small: np.ndarray, size: tuple[int, int], same: bool = False):
        """(wide, y0, y1, wy): `small` enlarged along x to width size[0], and the row taps;
        `same`: `small` is the picture of the last call, unchanged (its rows are reused)."""
        width, height = size
        key = (small.shape[1], small.shape[0], width, height)
        if same and key == self._key and small is self._last:
            return self._wide, self._y0, self._y1, self._wy
        self._last = small
        if key != self._key:
            # Hot path: the buffer and tables are made once per (small, frame) size.
            self._wide = np.empty((small.shape[0], width, 3), np.uint8)
            self._y0, self._y1, self._wy = linear_taps_256(height, small.shape[0])
            self._key = key
        cv2.resize(small, (width, small.shape[0]), dst=self._wide,
                   interpolation=cv2.INTER_LINEAR)
        return self._wide, self._y0, self._y1, self._wy

    def __call__(self, small: np.ndarray, size: tuple[int, int],
                 out: np.ndarray | None = None) -> np.ndarray:
        """`small` enlarged to size (w, h), into `out` if given."""
        if out is None:
            out = np.empty((size[1], size[0], 3), np.uint8)
        return _enlarge_rows(*self.rows(np.ascontiguousarray(small), size), out)
