"""Pixel arithmetic the kernel modules share: numba array types, BT.601 luma, bilinear taps."""

from __future__ import annotations

import numpy as np
from numba import types

# numba signatures: C-contiguous uint8 images (H x W x 3) and planes (H x W); inputs may be
# read-only (a frame handed over by a reader thread).
IMAGE_IN = types.Array(types.uint8, 3, "C", readonly=True)
IMAGE_OUT = types.Array(types.uint8, 3, "C")
PLANE_IN = types.Array(types.uint8, 2, "C", readonly=True)
PLANE_OUT = types.Array(types.uint8, 2, "C")

# BT.601 luma weights of blue, green and red, the ones cv2.COLOR_BGR2GRAY uses.
LUMA_B, LUMA_G, LUMA_R = 0.114, 0.587, 0.299


def _positions(dst: int, src: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source positions of `dst` samples over `src` (half-pixel centres, as cv2 INTER_LINEAR):
    lower and upper index and the float64 position."""
    pos = np.clip((np.arange(dst, dtype=np.float64) + 0.5) * (src / dst) - 0.5, 0.0, src - 1)
    lo = np.floor(pos).astype(np.int32)
    return lo, np.minimum(lo + 1, src - 1).astype(np.int32), pos


def linear_taps(dst: int, src: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear source indices and float32 weights of the upper one."""
    lo, hi, pos = _positions(dst, src)
    return lo, hi, (pos - lo).astype(np.float32)


def linear_taps_256(dst: int, src: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear source indices and weights of the upper one in 1/256 (uint16, 0..256)."""
    lo, hi, pos = _positions(dst, src)
    return lo, hi, np.round((pos - lo) * 256).astype(np.uint16)
