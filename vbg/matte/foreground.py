"""Foreground colour estimation (decontamination): the person's colour F where the matte is soft,
so composites blend F and not the old background; photos: pymatting's multilevel estimate, live:
blur fusion (Forte and Pitie 2021) on the low-res grid, applied in the edge runs only.

Choices and figures: docs/decisions.md, "Foreground colour".
"""

from __future__ import annotations

import cv2
import numpy as np
from numba import njit, prange, types

from vbg.matte.i420 import _C0, _UB, _UG, _UR, _VB, _VG, _VR, _Y0, _YB, _YG, _YR

# Photos: F is estimated on the matte's soft pixels and this many px around them (in tiles).
PHOTO_MARGIN = 24
TILE = 512  # side of the tiles pymatting runs on (the soft band only)
LIVE_RADIUS = 12  # live: box radius of the blur fusion, in cells of the 320-px guide grid
LIVE_SHRINK = 2  # live: blurred F and B are made on the guide grid shrunken this many times


def _soft_boxes(matte: np.ndarray, margin: int, tile: int) -> list[tuple[int, int, int, int]]:
    """(y0, y1, x0, x1) of the tiles holding soft matte pixels, each grown by `margin`."""
    soft = ((matte > 0) & (matte < 255)).astype(np.uint8)
    h, w = matte.shape
    boxes = []
    for y in range(0, h, tile):
        for x in range(0, w, tile):
            if soft[y:y + tile, x:x + tile].any():
                boxes.append((max(0, y - margin), min(h, y + tile + margin),
                              max(0, x - margin), min(w, x + tile + margin)))
    return boxes


def ml_foreground(bgr: np.ndarray, matte: np.ndarray) -> np.ndarray:
    """pymatting's estimate_foreground_ml of a BGR uint8 image with a uint8 matte, as BGR
    uint8 (every pixel, the matte's 0 and 255 included)."""
    from pymatting import estimate_foreground_ml  # here: importing pymatting takes ~3 s (numba)

    fg = estimate_foreground_ml(bgr.astype(np.float64) / 255.0,
                                matte.astype(np.float64) / 255.0)
    return np.clip(fg * 255.0 + 0.5, 0, 255).astype(np.uint8)


def estimate_photo(bgr: np.ndarray, matte: np.ndarray) -> np.ndarray:
    """BGR uint8 F of a photo with uint8 `matte`: pymatting's estimate_foreground_ml in tiles
    around the soft pixels; elsewhere the photo's own pixels."""
    out = bgr.copy()
    for y0, y1, x0, x1 in _soft_boxes(matte, PHOTO_MARGIN, TILE):
        fg = ml_foreground(bgr[y0:y1, x0:x1], matte[y0:y1, x0:x1])
        iy0, ix0 = (0 if y0 == 0 else PHOTO_MARGIN), (0 if x0 == 0 else PHOTO_MARGIN)
        iy1 = (y1 - y0) - (0 if y1 == bgr.shape[0] else PHOTO_MARGIN)
        ix1 = (x1 - x0) - (0 if x1 == bgr.shape[1] else PHOTO_MARGIN)
        a = matte[y0 + iy0:y0 + iy1, x0 + ix0:x0 + ix1]
        tile = fg[iy0:iy1, ix0:ix1]
        soft = (a > 0) & (a < 255)
        out[y0 + iy0:y0 + iy1, x0 + ix0:x0 + ix1][soft] = tile[soft]
    return out


def blur_fusion(bgr: np.ndarray, alpha: np.ndarray, radius: int,
                fg: np.ndarray | None = None, bg: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One blur-fusion step (float32 BGR 0..1, alpha 0..1): (F, blurred F, blurred B)."""
    image = bgr.astype(np.float32) / 255.0 if bgr.dtype == np.uint8 else bgr
    fg = image if fg is None else fg
    bg = image if bg is None else bg
    a = alpha[..., None].astype(np.float32)
    size = (2 * radius + 1, 2 * radius + 1)
    blur_a = cv2.blur(a[..., 0], size)[..., None]
    blur_f = cv2.blur(fg * a, size) / (blur_a + 1e-5)
    blur_b = cv2.blur(bg * (1.0 - a), size) / ((1.0 - blur_a) + 1e-5)
    f = blur_f + a * (image - a * blur_f - (1.0 - a) * blur_b)
    return np.clip(f, 0.0, 1.0), blur_f, blur_b


def estimate_blur_fusion(bgr: np.ndarray, matte: np.ndarray, radius: int = 45) -> np.ndarray:
    """BGR uint8 F by two-step blur fusion at full size (radius, then radius // 8)."""
    alpha = matte.astype(np.float32) / 255.0
    f, _, blur_b = blur_fusion(bgr, alpha, radius)
    f, _, _ = blur_fusion(bgr, alpha, max(1, radius // 8), fg=f, bg=blur_b)
    return (f * 255.0 + 0.5).astype(np.uint8)


# --- live: low-res fields, then a correction of the edge runs of the composite ---------------


_IN3 = types.Array(types.uint8, 3, "C", readonly=True)
_OUT3 = types.Array(types.uint8, 3, "C")
_IN2 = types.Array(types.uint8, 2, "C", readonly=True)
_PLANE = types.Array(types.uint8, 2, "A")
_I32_3 = types.Array(types.int32, 3, "C", readonly=True)
_I32 = types.Array(types.int32, 1, "C", readonly=True)
_U16 = types.Array(types.uint16, 1, "C", readonly=True)
_F32_3 = types.Array(types.float32, 3, "C", readonly=True)
_F = np.float32


@njit(cache=True, fastmath=True, inline="always")
def _fix_row(y, frame, out, matte, row_runs, count, row, top, bottom, wy1, bx0, bx1, bwx, i420,
             yplane, uplane, vplane):  # pragma: no cover - compiled
    """Row y of decontaminate_runs; `row` gets the grid's Fb, Bb interpolated at y (weight wy1
    between grid rows top and bottom) in the cells its edge runs use."""
    for r in range(count):
        if row_runs[r, 2] != 1:
            continue
        for i in range(bx0[row_runs[r, 0]], bx1[row_runs[r, 1] - 1] + 1):
            for c in range(6):
                row[i, c] = top[i, c] + wy1 * (bottom[i, c] - top[i, c])
        for x in range(row_runs[r, 0], row_runs[r, 1]):
            m = matte[y, x]
            if m == 0 or m == 255:
                continue
            a = _F(m) * _F(1.0 / 255.0)
            wx1 = _F(bwx[x]) * _F(1.0 / 256.0)
            left, right = row[bx0[x]], row[bx1[x]]
            for c in range(3):
                f_b = left[c] + wx1 * (right[c] - left[c])
                b_b = left[c + 3] + wx1 * (right[c + 3] - left[c + 3])
                i = _F(frame[y, x, c])
                f = f_b + a * (i - a * f_b - (_F(1.0) - a) * b_b)
                f = min(max(f, _F(0.0)), _F(255.0))
                v = _F(out[y, x, c]) + a * (f - i) + _F(0.5)
                out[y, x, c] = np.uint8(np.int32(min(max(v, _F(0.0)), _F(255.0))))
            if i420:
                b, g, rr = _F(out[y, x, 0]), _F(out[y, x, 1]), _F(out[y, x, 2])
                yplane[y, x] = np.uint8(np.int32(_YR * rr + _YG * g + _YB * b + _Y0))
                if y % 2 == 0 and x % 2 == 0:
                    uplane[y // 2, x // 2] = np.uint8(np.int32(_UR * rr + _UG * g + _UB * b
                                                               + _C0))
                    vplane[y // 2, x // 2] = np.uint8(np.int32(_VR * rr + _VG * g + _VB * b
                                                               + _C0))


@njit(types.void(_IN3, _OUT3, _IN2, _I32_3, _I32, _I32, _F32_3, _I32, _I32, _U16, _I32, _I32,
                 _U16, _PLANE, _PLANE, _PLANE), cache=True, parallel=True, fastmath=True)
def decontaminate_runs(frame, out, matte, runs, counts, y0, fb, by0, by1, bwy, bx0, bx1, bwx,
                       yplane, uplane, vplane):  # pragma: no cover - compiled
    """out += a (F - I), F = Fb + a (I - a Fb - (1 - a) Bb), at the soft pixels of the edge runs;
    Fb, Bb bilinear from the grid `fb` (taps by*, bx*, of 256); I420 planes too (0x0 = none)."""
    height, cells = frame.shape[0], fb.shape[1]
    i420 = yplane.shape[0] == height
    bands = min(height, 32)
    for band in prange(bands):
        row = np.empty((cells, 6), np.float32)  # the grid interpolated at row y (per band)
        for y in range(band * height // bands, (band + 1) * height // bands):
            row_runs, count = runs[y0[y]], counts[y0[y]]
            if count == 1 and row_runs[0, 2] != 1:
                continue  # a row of one sure run
            top, bottom = fb[by0[y]], fb[by1[y]]
            wy1 = _F(bwy[y]) * _F(1.0 / 256.0)
            _fix_row(y, frame, out, matte, row_runs, count, row, top, bottom, wy1, bx0, bx1,
                     bwx, i420, yplane, uplane, vplane)


_NO_PLANE = np.zeros((0, 0), np.uint8)
NO_PLANES = (_NO_PLANE, _NO_PLANE, _NO_PLANE)  # apply() without I420 output


def _taps(dst: int, src: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear source indices and weights (of 256) from `dst` pixels onto `src` cells."""
    pos = np.clip((np.arange(dst) + 0.5) * (src / dst) - 0.5, 0.0, src - 1)
    lo = np.floor(pos).astype(np.int32)
    return lo, np.minimum(lo + 1, src - 1).astype(np.int32), np.minimum(
        np.round((pos - lo) * 256), 256).astype(np.uint16)


class LiveDecontaminator:
    """Live blur-fusion F: `prepare` blurs F and B on the low-res grid (buffers made once per
    size), `apply` corrects the composite's edge runs in place."""

    def __init__(self, radius: int = LIVE_RADIUS) -> None:
        self.radius = radius
        self._key: tuple | None = None

    def _alloc(self, frame_size: tuple[int, int], grid: tuple[int, int]) -> None:
        h, w = frame_size
        self._key = (frame_size, grid)
        self._grid = grid
        gh, gw = max(1, grid[0] // LIVE_SHRINK), max(1, grid[1] // LIVE_SHRINK)
        self._half_matte = np.empty((gh, gw), np.uint8)
        self._fb = np.empty((gh, gw, 6), np.float32)
        self._small = np.empty((gh, gw, 3), np.uint8)
        self._image = np.empty((gh, gw, 3), np.float32)
        self._alpha = np.empty((gh, gw), np.float32)
        self._rest = np.empty((gh, gw), np.float32)
        self._blur_a = np.empty((gh, gw), np.float32)
        self._blur_r = np.empty((gh, gw), np.float32)
        self._weighted = np.empty((gh, gw, 3), np.float32)
        self._ytaps = _taps(h, gh)
        self._xtaps = _taps(w, gw)

    def prepare(self, frame: np.ndarray, small_matte: np.ndarray,
                small_bgr: np.ndarray | None = None) -> None:
        """Blurred F and B (0..255) on the matte's grid, from the frame shrunken to it
        (`small_bgr`, else resized here) and the grid's uint8 matte."""
        grid, size = small_matte.shape, frame.shape[:2]
        if self._key != (size, grid):
            self._alloc(size, grid)
        gh, gw = self._half_matte.shape
        source = frame if small_bgr is None or small_bgr.shape[:2] != grid else small_bgr
        cv2.resize(source, (gw, gh), dst=self._small,
                   interpolation=cv2.INTER_LINEAR if source is frame else cv2.INTER_AREA)
        cv2.resize(small_matte, (gw, gh), dst=self._half_matte, interpolation=cv2.INTER_AREA)
        radius = max(1, round(self.radius / LIVE_SHRINK))
        box = (2 * radius + 1, 2 * radius + 1)
        np.multiply(self._half_matte, np.float32(1.0 / 255.0), out=self._alpha,
                    dtype=np.float32)
        np.subtract(np.float32(1.0), self._alpha, out=self._rest)
        np.copyto(self._image, self._small)
        cv2.blur(self._alpha, box, dst=self._blur_a)
        np.subtract(np.float32(1.0 + 1e-5), self._blur_a, out=self._blur_r)
        self._blur_a += np.float32(1e-5)
        for part, weight, norm in ((slice(0, 3), self._alpha, self._blur_a),
                                   (slice(3, 6), self._rest, self._blur_r)):
            np.multiply(self._image, weight[..., None], out=self._weighted)
            cv2.blur(self._weighted, box, dst=self._weighted)
            np.divide(self._weighted, norm[..., None], out=self._fb[..., part])

    def apply(self, frame: np.ndarray, out: np.ndarray, matte: np.ndarray, runs: np.ndarray,
              counts: np.ndarray, y0: np.ndarray,
              planes: tuple[np.ndarray, np.ndarray, np.ndarray] = NO_PLANES) -> None:
        """out (the composite, BGR) += a * (F - I) where the matte is soft in the edge runs
        (and the I420 `planes` of out, if given, at those pixels)."""
        decontaminate_runs(frame, out, matte, runs, counts, y0, self._fb, *self._ytaps,
                           *self._xtaps, *planes)


def warm_up() -> None:
    """Compile (or load from cache) the live kernel and run it once, with and without I420."""
    frame = np.full((4, 6, 3), 100, np.uint8)
    matte = np.full((4, 6), 128, np.uint8)
    runs = np.zeros((2, 3, 3), np.int32)
    runs[:, 0] = (0, 6, 1)
    counts = np.ones(2, np.int32)
    y0 = np.array([0, 0, 1, 1], np.int32)
    live = LiveDecontaminator(1)
    live.prepare(frame, matte[:2, :3])
    i420 = np.zeros((6, 6), np.uint8)
    flat = i420.reshape(-1)
    planes = (flat[:24].reshape(4, 6), flat[24:30].reshape(2, 3), flat[30:].reshape(2, 3))
    for extra in ((), (planes,)):
        live.apply(frame, frame.copy(), matte, runs, counts, y0, *extra)
