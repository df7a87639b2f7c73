"""The one-pass blend written only as I420 planes, for outputs that take I420 (v4l2loopback):
no BGR frame is stored. Same matte and blend as `onepass.render`; within 1 level of
cv2.COLOR_BGR2YUV_I420 applied to its BGR output.

Sure person runs convert the frame's pixels; sure background runs interpolate the
background's rows already in Y, U, V (fixed point, made once per background, `yuv_rows`);
only edge runs blend B, G, R (into a row in cache) and convert that.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from vbg.matte.i420 import _C0, _UB, _UG, _UR, _VB, _VG, _VR, _Y0, _YB, _YG, _YR, pixels_to_i420
from vbg.matte.onepass import (
    _F32,
    _U64,
    EDGE,
    SURE_BG,
    SURE_PERSON,
    MatteFields,
    _blend_run,
    _reflect,
    _sharp_at,
    band_scratch,
    chunks,
    edge_alpha,
    i420_planes,
    prime_sharp,
)

# Background rows in Y, U, V are kept as value * 64 in uint16 (at most 240 * 64 < 2**16):
# interpolated between two rows in float32 (exact: whole numbers below 2**24), rounded once.
FIXED = 64
_ROUND_F = np.float32(FIXED * 256 // 2)
_INV_SCALE = np.float32(1.0 / (FIXED * 256))


@njit(cache=True, fastmath=True)
def _yuv_rows_kernel(rows, y_rows, u_rows, v_rows):  # pragma: no cover - compiled
    """Every background row (flat B,G,R) in Y and, at its even pixels, U and V, times FIXED."""
    f = _F32(FIXED)
    for j in range(rows.shape[0]):
        px, yr = rows[j], y_rows[j]
        for x in range(_U64(yr.shape[0])):
            yr[x] = np.uint16(np.int32(f * (_YR * _F32(px[3 * x + 2]) + _YG * _F32(px[3 * x + 1])
                                            + _YB * _F32(px[3 * x]) + _Y0 - _F32(0.5))
                                       + _F32(0.5)))
        ur, vr = u_rows[j], v_rows[j]
        for x in range(_U64(ur.shape[0])):
            b, g, r = _F32(px[6 * x]), _F32(px[6 * x + 1]), _F32(px[6 * x + 2])
            ur[x] = np.uint16(np.int32(f * (_UR * r + _UG * g + _UB * b + _C0 - _F32(0.5))
                                       + _F32(0.5)))
            vr[x] = np.uint16(np.int32(f * (_VR * r + _VG * g + _VB * b + _C0 - _F32(0.5))
                                       + _F32(0.5)))


def yuv_rows(rows: np.ndarray, out: tuple | None = None) -> tuple:
    """(Y, U, V) uint16 rows (x FIXED) of background rows (R x W x 3, even W), into `out`."""
    count, width = rows.shape[0], rows.shape[1]
    if out is None or out[0].shape != (count, width):
        out = (np.empty((count, width), np.uint16), np.empty((count, width // 2), np.uint16),
               np.empty((count, width // 2), np.uint16))
    _yuv_rows_kernel(np.ascontiguousarray(rows).reshape(count, width * 3), *out)
    return out


@njit(cache=True, fastmath=True, inline="always")
def _mix_rows(top, bottom, w0, w1, dst):  # pragma: no cover - compiled
    """dst = two fixed-point background rows blended by w0, w1 (of 256), rounded (float32:
    every product is a whole number below 2**24, so exact)."""
    f0, f1 = _F32(w0), _F32(w1)
    for x in range(_U64(dst.shape[0])):
        dst[x] = np.uint8(np.int32((f0 * _F32(top[x]) + f1 * _F32(bottom[x]) + _ROUND_F)
                                   * _INV_SCALE))


@njit(cache=True, fastmath=True, inline="always")
def _sure_runs(y, pixels, row_runs, count, w0, w1, by0, by1, bgy, bgu, bgv, luma, u, v, mrow,
               keep_matte, keep_bg):  # pragma: no cover - compiled
    """Row y's sure runs into the planes (the frame converted, or the background's Y, U, V
    rows blended along y; not with `keep_bg`: the planes hold it), 255 / 0 into the matte."""
    even = y % 2 == 0
    t, b = by0[y], by1[y]
    for r in range(count):
        xs, xe, kind = row_runs[r, 0], row_runs[r, 1], row_runs[r, 2]
        if kind == SURE_PERSON:
            pixels_to_i420(pixels[y], xs, xe, even, luma, u, v)
            if keep_matte:
                m = mrow[xs:xe]
                for x in range(_U64(xe - xs)):
                    m[x] = 255
        elif kind == SURE_BG:
            if not keep_bg:
                _mix_rows(bgy[t, xs:xe], bgy[b, xs:xe], w0, w1, luma[xs:xe])
                if even:
                    c0, c1 = (xs + 1) // 2, (xe + 1) // 2
                    _mix_rows(bgu[t, c0:c1], bgu[b, c0:c1], w0, w1, u[c0:c1])
                    _mix_rows(bgv[t, c0:c1], bgv[b, c0:c1], w0, w1, v[c0:c1])
            if keep_matte:
                m = mrow[xs:xe]
                for x in range(_U64(xe - xs)):
                    m[x] = 0


@njit(cache=True, fastmath=True, inline="always")
def _sure_row(y, pixels, runs, counts, y0, bwy, by0, by1, bgy, bgu, bgv, yplane, uplane, vplane,
              matte, keep_matte, no_matte, keep_bg):  # pragma: no cover - compiled
    """_sure_runs of row y, with its views."""
    w1 = np.int32(bwy[y])
    half = y // 2
    _sure_runs(y, pixels, runs[y0[y]], counts[y0[y]], np.int32(256) - w1, w1, by0, by1, bgy,
               bgu, bgv, yplane[y], uplane[half], vplane[half],
               matte[y] if keep_matte else no_matte, keep_matte, keep_bg)


@njit(cache=True, parallel=True, fastmath=True)
def render_i420(frame, a, b, runs, counts, need_runs, need_counts, taps, guided, feather, bg,
                by0, by1, bwy, bgy, bgu, bgv, matte, edges, reuse, keep_bg, chunks, yplane,
                uplane, vplane):  # pragma: no cover - compiled
    """As onepass.render with an output: every row's sure runs, then its edge runs (the matte
    from the fields, or from `edges` with `reuse`, blended over `bg`'s B,G,R rows), written
    into the Y, U, V planes only."""
    height, width = frame.shape[0], frame.shape[1]
    pixels = frame.reshape(height, width * 3)
    bg_rows = bg.reshape(bg.shape[0], bg.shape[1] * 3)
    keep_matte = matte.shape[0] == height
    keep_edges = edges.shape[0] == height
    reuse = reuse and keep_edges
    compute = not reuse
    y0 = taps[1]
    chunks = max(1, min(height, chunks))
    for chunk in prange(chunks):
        start, stop = chunk * height // chunks, (chunk + 1) * height // chunks
        sharp, fields_x, expanded, alpha, column, spread = band_scratch(width)
        blended = np.empty(3 * width, np.uint8)  # the edge runs' B,G,R, converted at once
        no_matte = np.empty(width, np.uint8)
        _sure_row(start, pixels, runs, counts, y0, bwy, by0, by1, bgy, bgu, bgv, yplane, uplane,
                  vplane, matte, keep_matte, no_matte, keep_bg)
        if feather and compute:
            prime_sharp(start, height, pixels, a, b, need_runs, need_counts, taps, guided,
                        fields_x, expanded, sharp)
        above, here, below = 0, 1, 2
        for y in range(start, stop):
            if y + 1 < stop:  # its pixels are then in cache for its sharp matte (onepass)
                _sure_row(y + 1, pixels, runs, counts, y0, bwy, by0, by1, bgy, bgu, bgv, yplane,
                          uplane, vplane, matte, keep_matte, no_matte, keep_bg)
            if feather and compute:
                _sharp_at(_reflect(y + 1, height), pixels, a, b, need_runs, need_counts, taps,
                          guided, fields_x, expanded, sharp[below])
            elif compute:
                _sharp_at(y, pixels, a, b, need_runs, need_counts, taps, guided, fields_x,
                          expanded, sharp[here])
            row_runs, count = runs[y0[y]], counts[y0[y]]
            w1 = np.int32(bwy[y])
            w0 = np.int32(256) - w1
            luma, half = yplane[y], y // 2
            u, v = uplane[half], vplane[half]
            mrow = matte[y] if keep_matte else no_matte
            erow = edges[y] if keep_edges else no_matte
            src, top, bottom = pixels[y], bg_rows[by0[y]], bg_rows[by1[y]]
            for r in range(count):
                xs, xe, kind = row_runs[r, 0], row_runs[r, 1], row_runs[r, 2]
                if kind != EDGE:
                    continue
                al = edge_alpha(xs, xe, width, reuse, feather, keep_edges, keep_matte, erow,
                                mrow, sharp[above], sharp[here], sharp[below], column, alpha)
                _blend_run(al, src[3 * xs:3 * xe], top[3 * xs:3 * xe], bottom[3 * xs:3 * xe],
                           w0, w1, spread, blended[3 * xs:3 * xe])
                pixels_to_i420(blended, xs, xe, y % 2 == 0, luma, u, v)
            if feather and compute:
                above, here, below = here, below, above


_NO_MATTE = np.zeros((0, 0), np.uint8)


def draw_i420(fields: MatteFields, frame: np.ndarray, background: tuple, yuv: tuple,
              i420: np.ndarray, matte: np.ndarray | None = None,
              edges: np.ndarray | None = None, reuse_edges: bool = False,
              keep_background: bool = False) -> np.ndarray:
    """onepass.draw's blend over `background` = (rows, y0, y1, wy), whose rows are `yuv`
    (yuv_rows) in Y, U, V, written into `i420` ((H*3/2) x W) only; returns `i420`.
    `keep_background`: the planes already hold this background in the sure background runs."""
    height, width = frame.shape[:2]
    if fields.size != (width, height):
        raise ValueError(f"matte fields for {fields.size}, frame {frame.shape[1::-1]}")
    rows, y0, y1, wy = background
    if yuv[0].shape != rows.shape[:2]:
        raise ValueError(f"Y rows {yuv[0].shape} for background rows {rows.shape[:2]}")
    planes = i420_planes(i420, frame)
    render_i420(frame, fields.a, fields.b, *fields.plan, fields.taps, fields.guided,
                fields.feather, rows, y0, y1, wy, *yuv,
                _NO_MATTE if matte is None else matte, _NO_MATTE if edges is None else edges,
                reuse_edges, keep_background, chunks(), *planes)
    return i420
