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

# BT.601 luma weights, the same cv2.COLOR_BGR2GRAY uses.
_WB, _WG, _WR = np.float32(0.114), np.float32(0.587), np.float32(0.299)
_F32 = np.float32
_INV256 = np.float32(1.0 / 256.0)
SURE_BG, EDGE, SURE_PERSON = 0, 1, 2


# Pixel loops index whole rows with unsigned ranges: numba then drops its negative-index
# handling and LLVM can vectorise them (signed start + k did not: 10 ms for a frame of
# background instead of 0.3).
_U64 = np.uint64


@njit(cache=True, fastmath=True, inline="always")
def _sharp_row(row, a, b, ya, yb, fy, need_runs, count, starts, wx, guided,
               dst):  # pragma: no cover - compiled
    """dst[x] = unfeathered matte (0..255, float32) of frame `row` (flat BGR) in the `count`
    runs of grid cells `need_runs`; a, b blended along y once per cell, along x per pixel."""
    cells = b.shape[1]
    for r in range(count):
        for i in range(need_runs[r, 0], need_runs[r, 1]):
            k = min(i + 1, cells - 1)  # every pixel of cell i lies between grid columns i, k
            bl = b[ya, i] + (b[yb, i] - b[ya, i]) * fy
            br = b[ya, k] + (b[yb, k] - b[ya, k]) * fy
            al = a[ya, i] + (a[yb, i] - a[ya, i]) * fy
            ar = a[ya, k] + (a[yb, k] - a[ya, k]) * fy
            for x in range(_U64(starts[i]), _U64(starts[i + 1])):
                value = bl + (br - bl) * wx[x]
                if guided:
                    grey = (_WB * _F32(row[3 * x]) + _WG * _F32(row[3 * x + 1])
                            + _WR * _F32(row[3 * x + 2]))
                    value += (al + (ar - al) * wx[x]) * grey
                dst[x] = _F32(np.int32(min(max(value, _F32(0.0)), _F32(255.0)) + _F32(0.5)))


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
def _mix(a, fg, bg):  # pragma: no cover - compiled
    """round((a*fg + (255-a)*bg) / 255) for whole numbers 0..255, exactly (see composite.py)."""
    t = a * fg + (np.int32(255) - a) * bg + np.int32(128)
    return np.uint8((t + (t >> 8)) >> 8)


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


# Two kernels, not one: with the edge code in the same function LLVM stopped vectorising the
# sure runs (a frame of background: 1.4 ms against 0.3 ms alone; the split saves ~0.4 ms of
# the ~2.2 ms a 1080p frame took in one kernel).
@njit(cache=True, parallel=True, fastmath=True)
def render_sure(frame, runs, counts, y0, bg, by0, by1, bwy, out, matte,
                chunks):  # pragma: no cover - compiled
    """The sure runs of every row: the frame (person) or the background (bg rows blended along
    y by (by0, by1, bwy/256)) into `out` (HxWx3; (0, 0, 3) = don't), 255/0 into `matte` (HxW;
    (0, 0) = don't)."""
    height, width = frame.shape[0], frame.shape[1]
    pixels, out_rows, bg_rows, compose, keep_matte = _rows(frame, out, bg, matte)
    chunks = max(1, min(height, chunks))
    for chunk in prange(chunks):
        no_out = np.empty(3 * width, np.uint8)  # stands in for the output row when not blending
        no_matte = np.empty(width, np.uint8)  # and for the matte row when not drawing it
        for y in range(chunk * height // chunks, (chunk + 1) * height // chunks):
            row_runs = runs[y0[y]]
            w1 = np.int32(bwy[y])
            w0 = np.int32(256) - w1
            src, top, bottom = pixels[y], bg_rows[by0[y]], bg_rows[by1[y]]
            dst = out_rows[y] if compose else no_out
            mrow = matte[y] if keep_matte else no_matte
            for r in range(counts[y0[y]]):
                xs, xe, kind = row_runs[r, 0], row_runs[r, 1], row_runs[r, 2]
                if kind == SURE_PERSON:  # the frame as it is
                    if compose:
                        for k in range(_U64(3 * xs), _U64(3 * xe)):
                            dst[k] = src[k]
                    if keep_matte:
                        for x in range(_U64(xs), _U64(xe)):
                            mrow[x] = 255
                elif kind == SURE_BG:
                    if compose and w1 == 0:
                        for k in range(_U64(3 * xs), _U64(3 * xe)):
                            dst[k] = top[k]
                    elif compose:
                        for k in range(_U64(3 * xs), _U64(3 * xe)):
                            dst[k] = np.uint8((w0 * np.int32(top[k]) + w1 * np.int32(bottom[k])
                                               + np.int32(128)) >> 8)
                    if keep_matte:
                        for x in range(_U64(xs), _U64(xe)):
                            mrow[x] = 0


@njit(cache=True, parallel=True, fastmath=True)
def render_edges(frame, a, b, runs, counts, need_runs, need_counts, wx, y0, y1, wy, starts,
                 guided, feather, bg, by0, by1, bwy, out, matte, edges, reuse,
                 chunks):  # pragma: no cover - compiled
    """The edge runs of every row: the matte pixel by pixel (sharp rows from the fields where
    `need_runs` say, [1 2 1]^2 / 16 feathered), blended into `out` / written into `matte`.
    `edges` (HxW, or (0, 0)): the edge runs' matte is kept there, or with `reuse` taken from
    there instead of computed (the scene did not move: only the blend is redone)."""
    height, width = frame.shape[0], frame.shape[1]
    pixels, out_rows, bg_rows, compose, keep_matte = _rows(frame, out, bg, matte)
    keep_edges = edges.shape[0] == height
    reuse = reuse and keep_edges
    compute = not reuse
    chunks = max(1, min(height, chunks))
    for chunk in prange(chunks):
        start, stop = chunk * height // chunks, (chunk + 1) * height // chunks
        sharp = np.zeros((3, width), np.float32)  # rows y-1, y, y+1 (rotating)
        alpha = np.empty(width, np.float32)  # the matte of the edge runs
        column = np.empty(width + 2, np.float32)  # vertical [1 2 1] sums (+2), x at x + 1
        spread = np.empty(3 * width, np.int32)  # the matte once per channel
        no_out = np.empty(3 * width, np.uint8)
        no_matte = np.empty(width, np.uint8)
        if feather and compute:
            for n in range(2):
                yy = _reflect(start - 1 + n, height)
                _sharp_row(pixels[yy], a, b, y0[yy], y1[yy], wy[yy], need_runs[y0[yy]],
                           need_counts[y0[yy]], starts, wx, guided, sharp[n])
        above, here, below = 0, 1, 2
        for y in range(start, stop):
            if feather and compute:
                yy = _reflect(y + 1, height)
                _sharp_row(pixels[yy], a, b, y0[yy], y1[yy], wy[yy], need_runs[y0[yy]],
                           need_counts[y0[yy]], starts, wx, guided, sharp[below])
            elif compute:
                _sharp_row(pixels[y], a, b, y0[y], y1[y], wy[y], need_runs[y0[y]],
                           need_counts[y0[y]], starts, wx, guided, sharp[here])
            erow = edges[y] if keep_edges else no_matte
            row_runs = runs[y0[y]]
            w1 = np.int32(bwy[y])
            w0 = np.int32(256) - w1
            src, top, bottom = pixels[y], bg_rows[by0[y]], bg_rows[by1[y]]
            dst = out_rows[y] if compose else no_out
            mrow = matte[y] if keep_matte else no_matte
            r0, r1, r2 = sharp[above], sharp[here], sharp[below]
            for r in range(counts[y0[y]]):
                xs, xe, kind = row_runs[r, 0], row_runs[r, 1], row_runs[r, 2]
                if kind != EDGE:
                    continue
                if reuse:
                    for x in range(_U64(xs), _U64(xe)):
                        alpha[x] = _F32(erow[x])
                elif feather:
                    left, right = _reflect(xs - 1, width), _reflect(xe, width)
                    column[xs] = r0[left] + _F32(2.0) * r1[left] + r2[left] + _F32(2.0)
                    column[xe + 1] = r0[right] + _F32(2.0) * r1[right] + r2[right] + _F32(2.0)
                    for x in range(_U64(xs), _U64(xe)):
                        column[x + 1] = r0[x] + _F32(2.0) * r1[x] + r2[x] + _F32(2.0)
                    for x in range(_U64(xs), _U64(xe)):
                        total = column[x] + _F32(2.0) * column[x + 1] + column[x + 2]
                        alpha[x] = _F32(np.int32(total * _F32(1.0 / 16.0)))
                else:
                    for x in range(_U64(xs), _U64(xe)):
                        alpha[x] = r1[x]
                if keep_edges and compute:
                    for x in range(_U64(xs), _U64(xe)):
                        erow[x] = np.uint8(alpha[x])
                if keep_matte:
                    for x in range(_U64(xs), _U64(xe)):
                        mrow[x] = np.uint8(alpha[x])
                if compose:
                    for x in range(_U64(xs), _U64(xe)):
                        value = np.int32(alpha[x])
                        spread[3 * x] = value
                        spread[3 * x + 1] = value
                        spread[3 * x + 2] = value
                    for k in range(_U64(3 * xs), _U64(3 * xe)):
                        back = (w0 * np.int32(top[k]) + w1 * np.int32(bottom[k])
                                + np.int32(128)) >> 8
                        dst[k] = _mix(spread[k], np.int32(src[k]), back)
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


def draw(fields: MatteFields, frame: np.ndarray, background: tuple | None = None,
         out: np.ndarray | None = None, matte: np.ndarray | None = None,
         edges: np.ndarray | None = None, reuse_edges: bool = False) -> np.ndarray | None:
    """One pass over `frame` (C-contiguous BGR): the blend over `background` = (rows, y0, y1,
    wy) into `out` and/or the matte into `matte`; returns `out` (or `matte` without one).
    `edges` keeps the edge runs' matte; `reuse_edges` takes it from there (same scene)."""
    if fields.size != (frame.shape[1], frame.shape[0]):
        raise ValueError(f"matte fields for {fields.size}, frame {frame.shape[1::-1]}")
    if out is not None and background is None:
        raise ValueError("a blend needs the background rows")
    rows, y0, y1, wy = background or (_NO_IMAGE, _NO_ROWS, _NO_ROWS, _NO_WEIGHTS)
    out_ = _NO_IMAGE if out is None else out
    matte_ = _NO_MATTE if matte is None else matte
    bands = chunks()
    runs, counts = fields.plan[0], fields.plan[1]
    render_sure(frame, runs, counts, fields.taps[1], rows, y0, y1, wy, out_, matte_, bands)
    render_edges(frame, fields.a, fields.b, *fields.plan, *fields.taps, fields.guided,
                 fields.feather, rows, y0, y1, wy, out_, matte_,
                 _NO_MATTE if edges is None else edges, reuse_edges, bands)
    return out if out is not None else matte
