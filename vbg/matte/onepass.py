"""One pass per frame: the full-res matte from low-res affine fields, feathered, and (optionally)
blended over the background, writing only the output image and, if asked, the matte.

alpha(x, y) = clip(a * grey(x, y) + b), with a and b interpolated bilinearly from the guide grid
(a = 0 without a guide), then the 3x3 feather. Guide cells whose neighbourhood is surely
background (class 0) or surely person (class 2) skip all that: the output is the background or
the frame itself, byte for byte what the full computation gives there. Only edge cells
(class 1) pay for the matte and the blend (on the 1080p bench clip, ~9% of the pixels).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numba
import numpy as np
from numba import njit, prange

from vbg.matte.i420 import pixels_to_i420
from vbg.pixels import LUMA_B, LUMA_G, LUMA_R

_WB, _WG, _WR = np.float32(LUMA_B), np.float32(LUMA_G), np.float32(LUMA_R)
_F32 = np.float32
_INV256 = np.float32(1.0 / 256.0)
SURE_BG, EDGE, SURE_PERSON = 0, 1, 2


# Pixel loops run from 0 over slices of the rows (`row[xs:xe]`), with unsigned ranges: a loop
# from a run's start index did not vectorise its stride-3 loads (3.4 against 0.7 ns per pixel for
# the matte), and numba's negative-index handling of signed indices stops LLVM as well.
_U64 = np.uint64


@njit(cache=True, fastmath=True, inline="always")
def mix255(a, fg, bg):  # pragma: no cover - compiled
    """round((a*fg + (255-a)*bg) / 255) for whole numbers 0..255 in float32, exactly (every
    intermediate is a whole number below 2**24; t/255 is never half-way; see composite.py)."""
    t = a * fg + (_F32(255.0) - a) * bg + _F32(128.0)
    return np.uint8(np.int32((t + np.floor(t * _INV256)) * _INV256))


@njit(cache=True, fastmath=True, inline="always")
def _expand(grid_row, need_runs, count, starts, wx, dst):  # pragma: no cover - compiled
    """dst[x] = one grid row interpolated along x, at the pixels of the cells in `need_runs`."""
    cells = grid_row.shape[0]
    for r in range(count):
        for i in range(need_runs[r, 0], need_runs[r, 1]):
            k = min(i + 1, cells - 1)  # every pixel of cell i lies between grid columns i, k
            left = grid_row[i]
            step = grid_row[k] - left
            xs, xe = starts[i], starts[i + 1]
            d, w = dst[xs:xe], wx[xs:xe]
            for x in range(_U64(xe - xs)):
                d[x] = left + step * w[x]


@njit(cache=True, fastmath=True, inline="always")
def _sharp_row(row, fields_x, fy, need_runs, count, starts, guided,
               dst):  # pragma: no cover - compiled
    """dst[x] = unfeathered matte (0..255, float32) of frame `row` (flat BGR) in the cells of
    `need_runs`, from the two grid rows around it already expanded along x (`fields_x`: a of
    the upper and lower grid row, then b of both) and blended here by fy."""
    for r in range(count):
        xs, xe = starts[need_runs[r, 0]], starts[need_runs[r, 1]]
        n = _U64(xe - xs)
        d, b0, b1 = dst[xs:xe], fields_x[2, xs:xe], fields_x[3, xs:xe]
        if guided:
            px, a0, a1 = row[3 * xs:3 * xe], fields_x[0, xs:xe], fields_x[1, xs:xe]
            for x in range(n):
                grey = (_WB * _F32(px[3 * x]) + _WG * _F32(px[3 * x + 1])
                        + _WR * _F32(px[3 * x + 2]))
                value = b0[x] + (b1[x] - b0[x]) * fy + (a0[x] + (a1[x] - a0[x]) * fy) * grey
                d[x] = _F32(np.int32(min(max(value, _F32(0.0)), _F32(255.0)) + _F32(0.5)))
        else:
            for x in range(n):
                value = b0[x] + (b1[x] - b0[x]) * fy
                d[x] = _F32(np.int32(min(max(value, _F32(0.0)), _F32(255.0)) + _F32(0.5)))


@njit(cache=True, fastmath=True, inline="always")
def _sharp_at(yy, pixels, a, b, need_runs, need_counts, taps, guided, fields_x, expanded,
              dst):  # pragma: no cover - compiled
    """The sharp matte of frame row yy into dst; the grid rows around it are expanded along x
    once per grid row (`expanded[0]`: which grid row fields_x holds), not once per frame row."""
    wx, y0, y1, wy, starts = taps
    ya = y0[yy]
    runs, count = need_runs[ya], need_counts[ya]
    if expanded[0] != ya:
        _expand(b[ya], runs, count, starts, wx, fields_x[2])
        _expand(b[y1[yy]], runs, count, starts, wx, fields_x[3])
        if guided:
            _expand(a[ya], runs, count, starts, wx, fields_x[0])
            _expand(a[y1[yy]], runs, count, starts, wx, fields_x[1])
        expanded[0] = ya
    _sharp_row(pixels[yy], fields_x, wy[yy], runs, count, starts, guided, dst)


@njit(cache=True)
def plan_runs(classes, need, starts, runs, counts, need_runs,
              need_counts):  # pragma: no cover - compiled
    """Per grid row: runs of one class as (first px, end px, class) and runs of cells whose
    sharp matte is needed as (first cell, end cell), so frame rows skip the scanning."""
    height, cells = classes.shape
    for j in range(height):
        r, i = 0, 0
        while i < cells:
            kind, k = classes[j, i], i + 1
            while k < cells and classes[j, k] == kind:
                k += 1
            if starts[k] > starts[i]:
                runs[j, r, 0], runs[j, r, 1], runs[j, r, 2] = starts[i], starts[k], kind
                r += 1
            i = k
        counts[j] = r
        r, i = 0, 0
        while i < cells:
            if need[j, i] == 0:
                i += 1
                continue
            k = i + 1
            while k < cells and need[j, k] != 0:
                k += 1
            need_runs[j, r, 0], need_runs[j, r, 1] = i, k
            r += 1
            i = k
        need_counts[j] = r



@njit(cache=True, fastmath=True, inline="always")
def _row_views(y, pixels, runs, counts, y0, bg_rows, by0, by1, bwy, out_rows, matte, compose,
               keep_matte, no_out, no_matte):  # pragma: no cover - compiled
    """Row y's runs and their count, background row weights (w0, w1 of 256), and its frame,
    background (top, bottom), output and matte rows (stand-ins when not wanted)."""
    w1 = np.int32(bwy[y])
    return (runs[y0[y]], counts[y0[y]], np.int32(256) - w1, w1, pixels[y], bg_rows[by0[y]],
            bg_rows[by1[y]], out_rows[y] if compose else no_out,
            matte[y] if keep_matte else no_matte)


@njit(cache=True, fastmath=True, inline="always")
def _sure_row(y, pixels, runs, counts, y0, bg_rows, by0, by1, bwy, out_rows, matte, compose,
              keep_matte, no_out, no_matte, keep_bg):  # pragma: no cover - compiled
    """Row y's sure runs: the frame (person) or the background (bg rows blended along y by
    bwy/256, in int32: faster than float32 here; not with `keep_bg`: the output holds it
    already) into the output, 255 / 0 into the matte."""
    row_runs, count, w0, w1, src, top, bottom, dst, mrow = _row_views(
        y, pixels, runs, counts, y0, bg_rows, by0, by1, bwy, out_rows, matte, compose,
        keep_matte, no_out, no_matte)
    for r in range(count):
        xs, xe, kind = row_runs[r, 0], row_runs[r, 1], row_runs[r, 2]
        n = _U64(xe - xs)
        if kind == SURE_PERSON:
            if compose:
                s, d = src[3 * xs:3 * xe], dst[3 * xs:3 * xe]
                for k in range(3 * n):
                    d[k] = s[k]
            if keep_matte:
                m = mrow[xs:xe]
                for x in range(n):
                    m[x] = 255
        elif kind == SURE_BG:
            if compose and not keep_bg:
                t0, d = top[3 * xs:3 * xe], dst[3 * xs:3 * xe]
                if w1 == 0:
                    for k in range(3 * n):
                        d[k] = t0[k]
                else:
                    t1 = bottom[3 * xs:3 * xe]
                    for k in range(3 * n):
                        d[k] = np.uint8((w0 * np.int32(t0[k]) + w1 * np.int32(t1[k])
                                         + np.int32(128)) >> 8)
            if keep_matte:
                m = mrow[xs:xe]
                for x in range(n):
                    m[x] = 0


@njit(cache=True, fastmath=True, inline="always")
def _feather_run(xs, xe, width, r0, r1, r2, column, alpha):  # pragma: no cover - compiled
    """alpha[xs:xe] = the [1 2 1]^2 / 16 feather of sharp rows r0, r1, r2 (floored)."""
    n = _U64(xe - xs)
    left, right = _reflect(xs - 1, width), _reflect(xe, width)
    column[xs] = r0[left] + _F32(2.0) * r1[left] + r2[left] + _F32(2.0)
    column[xe + 1] = r0[right] + _F32(2.0) * r1[right] + r2[right] + _F32(2.0)
    c, s0, s1, s2 = column[xs + 1:xe + 1], r0[xs:xe], r1[xs:xe], r2[xs:xe]
    for x in range(n):
        c[x] = s0[x] + _F32(2.0) * s1[x] + s2[x] + _F32(2.0)
    c0, c1, c2, al = column[xs:xe], column[xs + 1:xe + 1], column[xs + 2:xe + 2], alpha[xs:xe]
    for x in range(n):
        al[x] = _F32(np.int32((c0[x] + _F32(2.0) * c1[x] + c2[x]) * _F32(1.0 / 16.0)))


@njit(cache=True, fastmath=True, inline="always")
def _blend_run(al, src, top, bottom, w0, w1, spread, dst):  # pragma: no cover - compiled
    """dst = al over the background (top, bottom blended by w1/256), all flat B,G,R slices;
    the matte is first spread to one value per channel so the blend loop vectorises."""
    n = _U64(al.shape[0])
    sp = spread[:3 * n]
    for x in range(n):
        value = al[x]
        sp[3 * x] = value
        sp[3 * x + 1] = value
        sp[3 * x + 2] = value
    f0, f1 = _F32(w0), _F32(w1)
    for k in range(3 * n):
        back = np.floor((f0 * _F32(top[k]) + f1 * _F32(bottom[k]) + _F32(128.0)) * _INV256)
        dst[k] = mix255(sp[k], _F32(src[k]), back)


@njit(cache=True, inline="always")
def band_scratch(width):  # pragma: no cover - compiled
    """Scratch rows of one band of a render, allocated once per band: the sharp rows y-1, y,
    y+1 (rotating), a and b of two grid rows expanded along x, which grid row that is, the
    edge runs' matte, the vertical [1 2 1] sums (x at x + 1) and the matte once per channel."""
    return (np.zeros((3, width), np.float32), np.empty((4, width), np.float32),
            np.full(1, -1, np.int64), np.empty(width, np.float32),
            np.empty(width + 2, np.float32), np.empty(3 * width, np.float32))


@njit(cache=True, fastmath=True, inline="always")
def prime_sharp(start, height, pixels, a, b, need_runs, need_counts, taps, guided, fields_x,
                expanded, sharp):  # pragma: no cover - compiled
    """The sharp rows above a band's first row and of it (the feather reads one row up)."""
    for n in range(2):
        _sharp_at(_reflect(start - 1 + n, height), pixels, a, b, need_runs, need_counts, taps,
                  guided, fields_x, expanded, sharp[n])


@njit(cache=True, fastmath=True, inline="always")
def edge_alpha(xs, xe, width, reuse, feather, keep_edges, keep_matte, erow, mrow, r0, r1, r2,
               column, alpha):  # pragma: no cover - compiled
    """The matte of edge run xs..xe in alpha[xs:xe] (returned): from `erow` with `reuse`,
    else the sharp rows r0, r1, r2 (feathered or r1 as is), kept in `erow` / `mrow` if asked."""
    n = _U64(xe - xs)
    al = alpha[xs:xe]
    if reuse:
        er = erow[xs:xe]
        for x in range(n):
            al[x] = _F32(er[x])
    elif feather:
        _feather_run(xs, xe, width, r0, r1, r2, column, alpha)
    else:
        s1 = r1[xs:xe]
        for x in range(n):
            al[x] = s1[x]
    if keep_edges and not reuse:
        er = erow[xs:xe]
        for x in range(n):
            er[x] = np.uint8(al[x])
    if keep_matte:
        mr = mrow[xs:xe]
        for x in range(n):
            mr[x] = np.uint8(al[x])
    return al


@njit(cache=True, fastmath=True, inline="always")
def _i420_row(row, y, yplane, uplane, vplane):  # pragma: no cover - compiled
    """Output row y (flat B,G,R, just written, so in cache) into the I420 planes."""
    pixels_to_i420(row, 0, yplane.shape[1], y % 2 == 0, yplane[y], uplane[y // 2],
                   vplane[y // 2])


@njit(cache=True, fastmath=True, inline="always")
def _reflect(i, n):  # pragma: no cover - compiled
    """Index i in [-1, n] mirrored into [0, n) (reflect-101, as cv2's default border)."""
    if i < 0:
        return 1 if n > 1 else 0
    if i >= n:
        return n - 2 if n > 1 else n - 1
    return i


@njit(cache=True, inline="always")
def _rows(frame, out, bg, matte):  # pragma: no cover - compiled
    """Flat B,G,R rows of the frame, output and background; whether out / matte are wanted."""
    height = frame.shape[0]
    return (frame.reshape(height, frame.shape[1] * 3), out.reshape(out.shape[0], out.shape[1] * 3),
            bg.reshape(bg.shape[0], bg.shape[1] * 3), out.shape[0] == height,
            matte.shape[0] == height)


@njit(cache=True, parallel=True, fastmath=True)
def render(frame, a, b, runs, counts, need_runs, need_counts, taps, guided, feather, bg, by0,
           by1, bwy, out, matte, edges, reuse, keep_bg, chunks, yplane, uplane,
           vplane):  # pragma: no cover - compiled
    """Every row: its sure runs (the frame or the background), then its edge runs with the
    matte pixel by pixel (sharp rows from the fields where `need_runs` say, [1 2 1]^2 / 16
    feathered) blended into `out` (HxWx3; (0, 0, 3) = don't) and/or written into `matte` (HxW;
    (0, 0) = don't). `edges` (HxW, or (0, 0)): the edge runs' matte is kept there, or with
    `reuse` taken from there instead of computed (the scene did not move); `keep_bg`: `out`
    holds this background in the sure background runs already (still scene); `yplane` (HxW,
    or (0, 0) = don't) with `uplane`, `vplane`: each output row is also written there in I420
    while it is in cache (no second pass over the frame for the sink). Row y+1's sure runs
    are written before its sharp matte is computed: its pixels are then in cache (a cold 1080p
    frame: 2.7 against 3.8 ms for sure runs and edge runs in two passes)."""
    height, width = frame.shape[0], frame.shape[1]
    pixels, out_rows, bg_rows, compose, keep_matte = _rows(frame, out, bg, matte)
    y0 = taps[1]
    keep_edges = edges.shape[0] == height
    to_i420 = compose and yplane.shape[0] == height
    reuse = reuse and keep_edges
    compute = not reuse
    chunks = max(1, min(height, chunks))
    for chunk in prange(chunks):
        start, stop = chunk * height // chunks, (chunk + 1) * height // chunks
        sharp, fields_x, expanded, alpha, column, spread = band_scratch(width)
        no_out = np.empty(3 * width, np.uint8)  # stands in for the output row when not blending
        no_matte = np.empty(width, np.uint8)  # and for the matte row when not drawing it
        _sure_row(start, pixels, runs, counts, y0, bg_rows, by0, by1, bwy, out_rows, matte,
                  compose, keep_matte, no_out, no_matte, keep_bg)
        if feather and compute:
            prime_sharp(start, height, pixels, a, b, need_runs, need_counts, taps, guided,
                        fields_x, expanded, sharp)
        above, here, below = 0, 1, 2
        for y in range(start, stop):
            if y + 1 < stop:
                _sure_row(y + 1, pixels, runs, counts, y0, bg_rows, by0, by1, bwy, out_rows,
                          matte, compose, keep_matte, no_out, no_matte, keep_bg)
            if feather and compute:
                _sharp_at(_reflect(y + 1, height), pixels, a, b, need_runs, need_counts, taps,
                          guided, fields_x, expanded, sharp[below])
            elif compute:
                _sharp_at(y, pixels, a, b, need_runs, need_counts, taps, guided, fields_x,
                          expanded, sharp[here])
            erow = edges[y] if keep_edges else no_matte
            row_runs, count, w0, w1, src, top, bottom, dst, mrow = _row_views(
                y, pixels, runs, counts, y0, bg_rows, by0, by1, bwy, out_rows, matte, compose,
                keep_matte, no_out, no_matte)
            for r in range(count):
                xs, xe, kind = row_runs[r, 0], row_runs[r, 1], row_runs[r, 2]
                if kind != EDGE:
                    continue
                al = edge_alpha(xs, xe, width, reuse, feather, keep_edges, keep_matte, erow,
                                mrow, sharp[above], sharp[here], sharp[below], column, alpha)
                if compose:
                    _blend_run(al, src[3 * xs:3 * xe], top[3 * xs:3 * xe], bottom[3 * xs:3 * xe],
                               w0, w1, spread, dst[3 * xs:3 * xe])
            if to_i420:
                _i420_row(dst, y, yplane, uplane, vplane)
            if feather and compute:
                above, here, below = here, below, above


def chunks() -> int:
    """Row bands per frame: a few per numba thread (load balance), one when single-threaded."""
    threads = numba.get_num_threads()
    return 1 if threads == 1 else 4 * threads


@dataclass
class MatteFields:
    """A frame's matte before it is drawn: alpha = clip(a * grey + b) with a, b bilinear on a
    low-res grid, then the feather (0 or 1). The arrays are the refiner's reused buffers."""

    a: np.ndarray  # float32 grid, for grey 0..255 and alpha 0..255 (unused if not guided)
    b: np.ndarray
    classes: np.ndarray  # uint8 grid: SURE_BG / EDGE / SURE_PERSON per cell
    need: np.ndarray  # uint8 grid: 1 where the sharp matte is computed (edges + neighbours)
    plan: tuple  # plan_runs() of classes and need: runs, counts, need_runs, need_counts
    taps: tuple  # wx, y0, y1, wy, starts (frame pixel -> grid)
    guided: bool
    feather: int
    small: np.ndarray  # uint8 matte on the grid (e.g. for the blur's weights)
    thumb: np.ndarray | None = None  # the frame shrunken to the grid (BGR), if at hand

    @property
    def size(self) -> tuple[int, int]:
        """Frame (width, height) the fields are for."""
        return len(self.taps[0]), len(self.taps[1])


def new_plan(cells: tuple[int, int]) -> tuple:
    """Buffers for plan_runs() on a (rows, columns) grid."""
    rows, columns = cells
    return (np.empty((rows, columns, 3), np.int32), np.zeros(rows, np.int32),
            np.empty((rows, columns, 2), np.int32), np.zeros(rows, np.int32))


def with_classes(fields: MatteFields, classes: np.ndarray, need: np.ndarray) -> MatteFields:
    """The same fields with other cell classes (a new plan); e.g. all EDGE to skip nothing."""
    plan = new_plan(classes.shape)
    plan_runs(classes, need, fields.taps[4], *plan)
    return dataclasses.replace(fields, classes=classes, need=need, plan=plan)


_NO_IMAGE = np.zeros((0, 0, 3), np.uint8)
_NO_MATTE = np.zeros((0, 0), np.uint8)
_NO_ROWS = np.zeros(1, np.int32)
_NO_WEIGHTS = np.zeros(1, np.uint16)


def i420_planes(i420: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, ...]:
    """Y (HxW), U and V (H/2 x W/2) views of an I420 buffer for frames shaped like `out`."""
    height, width = out.shape[:2]
    if height % 2 or width % 2 or i420.shape != (height * 3 // 2, width) or out.ndim != 3:
        raise ValueError(f"an I420 buffer {i420.shape} for a {width}x{height} BGR output needs "
                         "an even size and shape (H*3/2, W)")
    flat = i420.reshape(-1)
    quarter = height * width // 4
    luma = flat[: height * width].reshape(height, width)
    u = flat[height * width: height * width + quarter].reshape(height // 2, width // 2)
    v = flat[height * width + quarter:].reshape(height // 2, width // 2)
    return luma, u, v


def draw(fields: MatteFields, frame: np.ndarray, background: tuple | None = None,
         out: np.ndarray | None = None, matte: np.ndarray | None = None,
         edges: np.ndarray | None = None, reuse_edges: bool = False,
         keep_background: bool = False, i420: np.ndarray | None = None) -> np.ndarray | None:
    """One pass over `frame` (C-contiguous BGR): the blend over `background` = (rows, y0, y1,
    wy) into `out` and/or the matte into `matte`; returns `out` (or `matte` without one).
    `edges` keeps the edge runs' matte; `reuse_edges` takes it from there (same scene);
    `keep_background`: `out` already holds this background in the sure background runs;
    `i420` ((H*3/2) x W, even W and H, with `out`): the output in I420 as well, as
    cv2.COLOR_BGR2YUV_I420 gives it (within 1 level)."""
    if fields.size != (frame.shape[1], frame.shape[0]):
        raise ValueError(f"matte fields for {fields.size}, frame {frame.shape[1::-1]}")
    if out is not None and background is None:
        raise ValueError("a blend needs the background rows")
    rows, y0, y1, wy = background or (_NO_IMAGE, _NO_ROWS, _NO_ROWS, _NO_WEIGHTS)
    out_ = _NO_IMAGE if out is None else out
    matte_ = _NO_MATTE if matte is None else matte
    planes = (_NO_MATTE, _NO_MATTE, _NO_MATTE) if i420 is None else i420_planes(i420, out_)
    render(frame, fields.a, fields.b, *fields.plan, fields.taps, fields.guided, fields.feather,
           rows, y0, y1, wy, out_, matte_, _NO_MATTE if edges is None else edges, reuse_edges,
           keep_background and out is not None, chunks(), *planes)
    return out if out is not None else matte
