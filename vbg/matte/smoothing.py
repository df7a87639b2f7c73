"""Temporal alpha smoothing: blends in the previous matte only where the model is unsure
and the picture did not move, with weights keyed to frame timestamps (same at 15 or 60 fps)."""

from __future__ import annotations

import math

import cv2
import numpy as np
from numba import njit

from vbg.pixels import LUMA_B, LUMA_G, LUMA_R


# The matte is small (e.g. 256x144): serial kernels beat a parallel launch (waking the OpenMP
# workers cost more CPU than the work itself, measured).
@njit(fastmath=True, cache=True)
def _blend(alpha: np.ndarray, prev: np.ndarray, grey: np.ndarray, prev_grey: np.ndarray,
           keep: float, motion_gain: float, out: np.ndarray) -> None:
    """out = w*prev + (1-w)*alpha, w = keep * uncertainty * stillness, per pixel."""
    h, w = alpha.shape
    for y in range(h):
        for x in range(w):
            a = alpha[y, x]
            conf = abs(2.0 * a - 1.0)
            unsure = 1.0 - conf * conf
            motion = abs(grey[y, x] - prev_grey[y, x]) * motion_gain
            still = 1.0 - motion if motion < 1.0 else 0.0
            wgt = keep * unsure * still
            out[y, x] = wgt * prev[y, x] + (1.0 - wgt) * a


@njit(fastmath=True, cache=True)
def _grey_change(small: np.ndarray, prev_grey: np.ndarray, grey: np.ndarray) -> float:
    """grey = BT.601 luma of `small` (BGR uint8) in 0..1; returns mean |grey - prev_grey|."""
    h, w = grey.shape
    total = 0.0
    for y in range(h):
        row = 0.0
        for x in range(w):
            value = (np.float32(LUMA_B / 255) * np.float32(small[y, x, 0])
                     + np.float32(LUMA_G / 255) * np.float32(small[y, x, 1])
                     + np.float32(LUMA_R / 255) * np.float32(small[y, x, 2]))
            grey[y, x] = value
            row += abs(value - prev_grey[y, x])
        total += row
    return total / (h * w)


@njit(fastmath=True, cache=True)
def _grey_change_u8(small: np.ndarray, prev_grey: np.ndarray, grey: np.ndarray) -> float:
    """grey = `small` (grey uint8) in 0..1; returns mean |grey - prev_grey|."""
    h, w = grey.shape
    total = 0.0
    for y in range(h):
        row = np.float32(0.0)
        for x in range(w):
            value = np.float32(1 / 255) * np.float32(small[y, x])
            grey[y, x] = value
            row += abs(value - prev_grey[y, x])
        total += row
    return total / (h * w)


class TemporalSmoother:
    """Adaptive smoothing of low-res alpha; `reset()` on scene cuts and model resets."""

    def __init__(self, tau: float = 0.25, motion_gain: float = 6.0,
                 scene_cut: float = 0.25, enabled: bool = True) -> None:
        self.tau = tau
        self.motion_gain = motion_gain
        self.scene_cut = scene_cut  # mean grey change (0-1) that counts as a new scene
        self.enabled = enabled
        self.cuts = 0
        self._shape: tuple[int, int] | None = None
        self._last_t: float | None = None

    def reset(self) -> None:
        self._last_t = None

    def _alloc(self, shape: tuple[int, int]) -> None:
        # Pre-allocated low-res buffers (hot path), remade only when the matte size changes;
        # the smoothed matte and the grey thumbnail ping-pong between two buffers each.
        self._shape = shape
        self._outs = (np.zeros(shape, np.float32), np.zeros(shape, np.float32))
        self._greys = (np.zeros(shape, np.float32), np.zeros(shape, np.float32))
        self._small = np.zeros((*shape, 3), np.uint8)
        self._small_grey = np.zeros(shape, np.uint8)
        self._turn = 0
        self._last_t = None

    def __call__(self, alpha: np.ndarray, frame: np.ndarray, timestamp: float) -> np.ndarray:
        """Smoothed alpha (a reused buffer, valid until the call after next) for `alpha`
        computed on `frame` (BGR, or already grey: e.g. the refiner's guide) at `timestamp` s."""
        if not self.enabled:
            return alpha
        if alpha.shape != self._shape:
            self._alloc(alpha.shape)
        h, w = alpha.shape
        prev, out = self._outs[self._turn], self._outs[1 - self._turn]
        prev_grey, grey = self._greys[self._turn], self._greys[1 - self._turn]
        if frame.ndim == 2:  # grey: used as it is at matte size (the live pipeline's guide)
            small = frame
            if frame.shape != (h, w):
                cv2.resize(frame, (w, h), dst=self._small_grey, interpolation=cv2.INTER_LINEAR)
                small = self._small_grey
            change = _grey_change_u8(small, prev_grey, grey)
        else:
            # Grey thumbnail at matte size: one sparse linear resize straight from the frame
            # (~0.08 ms at 1080p; INTER_AREA from full size cost ~2 ms).
            cv2.resize(frame, (w, h), dst=self._small, interpolation=cv2.INTER_LINEAR)
            change = _grey_change(self._small, prev_grey, grey)
        first = self._last_t is None
        if not first and change > self.scene_cut:
            self.cuts += 1
            first = True
        if first:
            np.copyto(out, alpha)
        else:
            dt = max(1e-3, timestamp - self._last_t)
            keep = math.exp(-dt / self.tau) if self.tau > 0 else 0.0
            _blend(np.ascontiguousarray(alpha, np.float32), prev, grey, prev_grey, keep,
                   self.motion_gain, out)
        self._last_t = timestamp
        self._turn = 1 - self._turn
        return out

    def warm_up(self) -> None:
        a = np.zeros((4, 4), np.float32)
        _blend(a, a, a, a, 0.5, 1.0, np.empty_like(a))
        _grey_change(np.zeros((4, 4, 3), np.uint8), a, np.empty_like(a))
        _grey_change_u8(np.zeros((4, 4), np.uint8), a, np.empty_like(a))
