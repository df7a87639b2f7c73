"""Fine photo matting (`vbg still --matting fine`): the network matte refined with learning-free
matting (pymatting) on a trimap made from it, in tiles that hold the edge band only.

Band widths, method and time per photo: docs/decisions.md, "Fine matting".
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import cv2
import numpy as np

METHODS = ("cf", "knn", "lkm")


@dataclass(frozen=True)
class FineParams:
    """Trimap band (fractions of the image diagonal) and the matting method."""

    inner: float = 0.012  # the band reaches this far inside the network's person
    outer: float = 0.02  # and this far outside it (fly-away hair lies where the network says 0)
    sure: int = 128  # network matte level splitting inside / outside
    method: str = "cf"  # cf: closed-form (Levin et al.), knn, lkm (large kernel)
    tile: int = 320  # tile side (px), each solved on its own with a margin
    margin: int = 24  # px of context around each tile
    max_pixels: int = 2_000_000  # larger photos are solved shrunken to this, then enlarged


def trimap(matte: np.ndarray, params: FineParams) -> np.ndarray:
    """float64 trimap (0 background, 1 person, 0.5 unknown) from the uint8 network matte."""
    diag = float(np.hypot(*matte.shape[:2]))
    inside = (matte >= params.sure).astype(np.uint8)
    grow = max(1, round(params.outer * diag))
    shrink = max(1, round(params.inner * diag))
    k_out = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    k_in = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * shrink + 1, 2 * shrink + 1))
    out = np.full(matte.shape, 0.5)
    out[cv2.erode(inside, k_in) > 0] = 1.0
    out[cv2.dilate(inside, k_out) == 0] = 0.0
    return out


def _solve(image: np.ndarray, tri: np.ndarray, method: str) -> np.ndarray | None:
    """Alpha of one tile (float64 RGB/BGR 0..1, trimap) by the chosen pymatting method, or
    None when its solver fails."""
    import pymatting  # here, not at the top: importing it takes ~3 s (numba)

    solver = {"cf": pymatting.estimate_alpha_cf, "knn": pymatting.estimate_alpha_knn,
              "lkm": pymatting.estimate_alpha_lkm}[method]
    with contextlib.redirect_stdout(io.StringIO()):  # its solver prints retries to stdout
        try:
            return solver(image, tri)
        except (ValueError, ArithmeticError):  # no decomposition: the caller keeps its alpha
            return None


def _context(tri: np.ndarray, y: int, x: int, step: int,
             margin: int) -> tuple[int, int, int, int] | None:
    """The tile at (y, x) with a margin (grown up to 4x) holding both known person and
    background, or None."""
    h, w = tri.shape
    for grow in (1, 2, 4):
        m = margin * grow
        y0, y1, x0, x1 = max(0, y - m), min(h, y + step + m), max(0, x - m), min(w, x + step + m)
        t = tri[y0:y1, x0:x1]
        if (t == 1.0).any() and (t == 0.0).any():
            return y0, y1, x0, x1
    return None


def refine(bgr: np.ndarray, matte: np.ndarray, params: FineParams = FineParams()) -> np.ndarray:
    """uint8 matte: the network `matte` with its edge band re-solved by matting on `bgr`
    (photos above `max_pixels` solved at that size, the band's alpha enlarged bilinearly)."""
    if params.method not in METHODS:
        raise ValueError(f"fine matting method {params.method!r}: use one of {METHODS}")
    h, w = matte.shape
    if h * w <= params.max_pixels:
        return _refine_tiles(bgr, matte, params)
    scale = (params.max_pixels / (h * w)) ** 0.5
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = _refine_tiles(cv2.resize(bgr, size, interpolation=cv2.INTER_AREA),
                          cv2.resize(matte, size, interpolation=cv2.INTER_AREA), params)
    tri = trimap(matte, params)
    out = matte.copy()
    out[tri == 1.0] = 255
    out[tri == 0.0] = 0
    unknown = tri == 0.5
    out[unknown] = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)[unknown]
    return out


def _refine_tiles(bgr: np.ndarray, matte: np.ndarray, params: FineParams) -> np.ndarray:
    """refine() at the photo's own size: the band solved tile by tile."""
    tri = trimap(matte, params)
    unknown = tri == 0.5
    out = matte.copy()
    out[tri == 1.0] = 255
    out[tri == 0.0] = 0
    h, w = matte.shape
    step, m = params.tile, params.margin
    for y in range(0, h, step):
        for x in range(0, w, step):
            if not unknown[y:y + step, x:x + step].any():
                continue
            box = _context(tri, y, x, step, m)
            if box is None:
                continue  # no person and background both known near: the network's alpha
            y0, y1, x0, x1 = box
            t = tri[y0:y1, x0:x1]
            alpha = _solve(bgr[y0:y1, x0:x1].astype(np.float64) / 255.0, t, params.method)
            if alpha is None:
                continue
            ys = slice(y - y0, y - y0 + min(step, h - y))
            xs = slice(x - x0, x - x0 + min(step, w - x))
            core = np.clip(alpha[ys, xs] * 255.0 + 0.5, 0, 255).astype(np.uint8)
            band = unknown[y:y + step, x:x + step]
            out[y:y + step, x:x + step][band] = core[band]
    return out


def erode_feather(matte: np.ndarray, erode: int, feather: int) -> np.ndarray:
    """The refiner's last knobs on a finished matte, with the same meaning (refine.py): erode
    px with a round kernel (negative grows), then a Gaussian feather of 2 * feather + 1 px."""
    out = matte
    if erode:
        n = abs(int(erode))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * n + 1, 2 * n + 1))
        out = (cv2.erode if erode > 0 else cv2.dilate)(out, kernel)
    if feather:
        size = 2 * int(feather) + 1
        out = cv2.GaussianBlur(out, (size, size), 0)
    return out
