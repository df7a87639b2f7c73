"""The blur background: the frame itself, blurred with the person masked out."""

from __future__ import annotations

import itertools
import math

import cv2
import numpy as np
from numba import njit, types

from vbg.backgrounds.base import frame_size
from vbg.backgrounds.enlarge import Enlarger
from vbg.errors import BackgroundError
from vbg.pixels import IMAGE_IN, IMAGE_OUT, LUMA_B, LUMA_G, LUMA_R, PLANE_IN

DEFAULT_BLUR = 15
MAX_BLUR = 100

# Blur background: normalized convolution B = blur(F*w) / blur(w), w = 1 - alpha, computed
# on a shrunken frame. w is taken as (16321 - 64*alpha) / 16320, i.e. 1 - alpha plus a floor
# of 1/16320, so blur(w) never reaches 0: deep inside the person B falls back smoothly to the
# plain blurred frame, elsewhere the person's own pixels count ~1/16000 as much as the scene's.
# One compiled version per kernel (C-contiguous, inputs may be read-only), loaded at import.
_FRAME_IN, _MATTE_IN, _IMAGE_OUT = IMAGE_IN, PLANE_IN, IMAGE_OUT
_WEIGHTED = types.Array(types.float32, 3, "C")


@njit(_WEIGHTED(_FRAME_IN, _MATTE_IN, _WEIGHTED), fastmath=True, cache=True)
def _weigh(small, alpha, out):  # pragma: no cover - compiled
    """out (h, w, 4) float32 = (F*w, w), w = 16321 - 64*alpha, on the shrunken frame."""
    for y in range(out.shape[0]):
        for x in range(out.shape[1]):
            weight = np.float32(16321 - 64 * np.int32(alpha[y, x]))
            for c in range(3):
                out[y, x, c] = np.float32(small[y, x, c]) * weight
            out[y, x, 3] = weight
    return out


@njit(_IMAGE_OUT(_WEIGHTED, _IMAGE_OUT), fastmath=True, cache=True)
def _unweight(weighted, out):  # pragma: no cover - compiled
    """out (uint8 BGR) = round(F*w / w); w >= floor > 0 after any blur."""
    height, width = out.shape[:2]
    for y in range(height):
        for x in range(width):
            scale = np.float32(1.0) / weighted[y, x, 3]
            for c in range(3):
                value = weighted[y, x, c] * scale + np.float32(0.5)
                out[y, x, c] = np.uint8(min(max(value, np.float32(0.0)), np.float32(255.0)))
    return out

def _halved(size: tuple[int, int]) -> tuple[int, int]:
    return max(1, size[0] // 2), max(1, size[1] // 2)


@njit(fastmath=True, cache=True)
def _room_change(small, person, ref, ref_person, block):  # pragma: no cover - compiled
    """Largest |mean grey change| over blocks of the room: every other pixel where `person`
    (the matte widened) is below 8 in both pictures. Block means cancel sensor noise
    (docs/decisions.md); 0 if no block shows enough room."""
    height, width = person.shape
    worst = np.float32(0.0)
    for by in range(0, height, block):
        for bx in range(0, width, block):
            total, count = np.float32(0.0), 0
            for y in range(by, min(by + block, height), 2):
                for x in range(bx, min(bx + block, width), 2):
                    if person[y, x] < 8 and ref_person[y, x] < 8:
                        total += (np.float32(LUMA_B) * (np.float32(small[y, x, 0])
                                                        - np.float32(ref[y, x, 0]))
                                  + np.float32(LUMA_G) * (np.float32(small[y, x, 1])
                                                          - np.float32(ref[y, x, 1]))
                                  + np.float32(LUMA_R) * (np.float32(small[y, x, 2])
                                                          - np.float32(ref[y, x, 2])))
                        count += 1
            if 16 * count >= block * block:  # a quarter of the samples at least
                worst = max(worst, abs(total / count))
    return worst


@njit(fastmath=True, cache=True)
def _update_plate(small, person, plate, unseen):  # pragma: no cover - compiled
    """The room as last seen: plate = small where the (widened) person is absent."""
    for y in range(person.shape[0]):
        for x in range(person.shape[1]):
            if person[y, x] < 8:
                plate[y, x, 0] = small[y, x, 0]
                plate[y, x, 1] = small[y, x, 1]
                plate[y, x, 2] = small[y, x, 2]
                unseen[y, x] = 0


_WIDEN = np.ones((5, 5), np.uint8)


class BlurBackground:
    """The frame itself, blurred with the person masked out (no halo around them).

    `refresh` > 1 (live mode): the room is kept as last seen (a plate at the blur's base size,
    updated wherever the person is not), so the blur shows the room behind the person rather
    than a smudge, and it is re-blurred only every `refresh` frames or at once when the visible
    room changes (block means beyond `change_level` grey levels, above the noise: see
    docs/decisions.md; the person moving in front does not count). A changed room also forgets
    what was behind the person (a moving camera then gets the plain masked blur)."""

    kind = "blur"

    def __init__(self, strength: int = DEFAULT_BLUR, refresh: int = 1,
                 change_level: float = 3.0) -> None:
        if isinstance(strength, bool) or not isinstance(strength, int | np.integer):
            raise BackgroundError(f"invalid blur strength {strength!r}: use an integer 1-100")
        if not 0 < strength <= MAX_BLUR:
            raise BackgroundError(
                f"invalid blur strength {strength}: use an integer from 1 to {MAX_BLUR}"
            )
        self.strength = int(strength)
        # Gaussian sigma in full-res pixels (blur radius ~ 2 sigma = strength). The frame is
        # shrunk by a power of two (4..32) that leaves 0.9-1.8 px of sigma on the small image
        # (less below strength 8), so the cost stays flat whatever the strength. Against an
        # exact full-res blur (1080p, strength 15, shrink 8): mean |diff| 0.5, p99 2.9 levels;
        # 1.5-3 px (shrink 4) gave 0.34 / 1.2 for twice the cost (1.6 vs 0.8 ms).
        self.sigma = self.strength / 2
        self.shrink = 4
        while self.shrink < 32 and self.shrink * 2 <= self.sigma / 0.9:
            self.shrink *= 2
        self._size: tuple[int, int] | None = None
        self._base: tuple[int, int] | None = None
        self.refresh = refresh
        self.change_level = change_level
        self.reused = False  # the last prepare() gave the previous blur back unchanged
        self._age = 0
        self._have_ref = False

    def _allocate(self, size: tuple[int, int], base: tuple[int, int]) -> None:
        # Hot path: every buffer is allocated once per frame size and base size.
        width = size[0]
        self._small_frame = np.empty((base[1], base[0], 3), np.uint8)
        self._small_alpha = np.empty((base[1], base[0]), np.uint8)
        self._levels = [np.empty((base[1], base[0], 4), np.float32)]
        small = base
        while width / small[0] * 2 <= self.shrink * 1.01 and min(small) > 1:
            small = _halved(small)
            self._levels.append(np.empty((small[1], small[0], 4), np.float32))
        self._blurred = np.empty_like(self._levels[-1])
        self._small_out = np.empty((small[1], small[0], 3), np.uint8)
        self._plate = np.zeros((base[1], base[0], 3), np.uint8)  # the room as last seen
        self._unseen = np.full((base[1], base[0]), 255, np.uint8)  # 255: never seen yet
        self._ref = np.empty((base[1], base[0], 3), np.uint8)  # the plate last blurred
        self._ref_unseen = np.empty((base[1], base[0]), np.uint8)
        self._person = np.empty((base[1], base[0]), np.uint8)
        self._have_ref = False
        small_sigma = self.sigma * small[0] / width
        self._ksize = 2 * math.ceil(3 * small_sigma) + 1
        self._small_sigma = small_sigma
        self._size, self._base = size, base

    def prepare(self, frame: np.ndarray, alpha: np.ndarray,
                thumb: np.ndarray | None = None) -> np.ndarray:
        """B = blur(F*(1-a)) / blur(1-a) on a shrunken frame, left small (reused buffer): the
        compositor enlarges it while blending; `full()` gives it at frame size. `alpha`: the
        matte (uint8, 255 = person) at any size, e.g. the refiner's low-res one; `thumb`: the
        frame already shrunken (BGR), used when it is not coarser than the blur needs."""
        size = frame_size(frame)
        if min(size) < 4:  # too small to blur
            return np.ascontiguousarray(frame)
        use_thumb = (thumb is not None and thumb.shape[1] >= 2 and thumb.shape[0] >= 2
                     and 2 <= size[0] / thumb.shape[1] <= self.shrink * 1.01)
        base = (thumb.shape[1], thumb.shape[0]) if use_thumb else (size[0] // 4, size[1] // 4)
        if size != self._size or base != self._base:
            self._allocate(size, base)
        levels = self._levels
        if use_thumb:
            small = np.ascontiguousarray(thumb)
        else:
            # At 1/4 INTER_LINEAR averages the middle 2x2 pixels of each 4x4 block: a quarter
            # of the frame is read (0.35 vs 2.2 ms for INTER_AREA at 1080p); the blur hides it.
            small = self._small_frame
            cv2.resize(frame, base, dst=small, interpolation=cv2.INTER_LINEAR)
        if alpha.shape[:2] == (base[1], base[0]):
            small_alpha = np.ascontiguousarray(alpha)
        else:
            small_alpha = self._small_alpha
            cv2.resize(alpha, base, dst=small_alpha, interpolation=cv2.INTER_LINEAR)
        self.reused = False
        if self.refresh > 1:
            # The person widened by 2 px (12 at 1080p): the low-res matte's edge is no room.
            cv2.dilate(small_alpha, _WIDEN, dst=self._person)
            change = (_room_change(small, self._person, self._ref, self._ref_unseen, 8)
                      if self._have_ref else np.inf)
            if change >= self.change_level:
                self._unseen.fill(255)  # the room changed: what is behind the person is unknown
            _update_plate(small, self._person, self._plate, self._unseen)
            if self._have_ref and self._age + 1 < self.refresh and change < self.change_level:
                self._age += 1
                self.reused = True
                return self._small_out
            np.copyto(self._ref, self._plate)
            np.copyto(self._ref_unseen, self._unseen)
            self._have_ref, self._age = True, 0
            small, small_alpha = self._plate, self._unseen
        _weigh(small, small_alpha, levels[0])
        for larger, smaller in itertools.pairwise(levels):
            # INTER_LINEAR at exactly 1/2 is the 2x2 block mean (an area resize).
            size_wh = (smaller.shape[1], smaller.shape[0])
            cv2.resize(larger, size_wh, dst=smaller, interpolation=cv2.INTER_LINEAR)
        cv2.GaussianBlur(
            levels[-1],
            (self._ksize, self._ksize),
            self._small_sigma,
            dst=self._blurred,
            borderType=cv2.BORDER_REFLECT,
        )
        return _unweight(self._blurred, self._small_out)

    def full(self, frame: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """The blurred background at frame size (a new array; the compositor never needs it)."""
        background = self.prepare(frame, alpha)
        if background.shape[:2] == frame.shape[:2]:
            return background.copy()
        return Enlarger()(background, frame_size(frame))

    def close(self) -> None:
        """Drop the buffers."""
        self._size = None


def warm_up() -> None:
    """Compile (or load from cache) and run the blur kernels once."""
    BlurBackground(15).full(np.zeros((16, 16, 3), np.uint8), np.zeros((16, 16), np.uint8))
