"""Alpha compositing: numba uint8 fixed-point blends into pre-allocated buffers."""

from __future__ import annotations

import cv2
import numpy as np
from numba import njit, prange, types

from vbg import backgrounds
from vbg.backgrounds import Background
from vbg.matte import foreground as foreground_colour
from vbg.matte import onepass, planar
from vbg.matte.onepass import mix255

# The blends compute round(x / 255) exactly for 0 <= x <= 65535 with (t + (t >> 8)) >> 8,
# t = x + 128 (x / 255 is never exactly half-way), so they match the float64 reference
# round(a/255*fg + (1-a/255)*bg) with 0 LSB error. The arithmetic runs in float32, where every
# intermediate is a whole number below 2**24 (exact) and >> 8 is floor(* 1/256): numba widens
# integer arithmetic to int64, which vectorised 2x narrower (float32: ~1.9 vs 3.0 ms at 1080p).
# Rows are processed as flat B,G,R runs with the matte expanded to the same layout, so the
# inner loop vectorises (2x faster than a per-pixel channel loop, measured).
# Explicit signatures (C-contiguous; inputs may be read-only, e.g. a cached background) give one
# compiled version per kernel, loaded from numba's cache at import.
_IMAGE_IN = types.Array(types.uint8, 3, "C", readonly=True)
_MATTE_IN = types.Array(types.uint8, 2, "C", readonly=True)
_IMAGE_OUT = types.Array(types.uint8, 3, "C")
_ROWS = types.Array(types.int32, 1, "C", readonly=True)
_ROW_WEIGHTS = types.Array(types.uint16, 1, "C", readonly=True)
_F32 = np.float32
_INV256 = np.float32(1.0 / 256.0)


@njit(inline="always")
def _expand_matte_row(alpha, y, expanded):  # pragma: no cover - compiled
    """expanded[3x + c] = alpha[y, x] for the three channels of each pixel."""
    for x in range(alpha.shape[1]):
        value = _F32(alpha[y, x])
        expanded[3 * x] = value
        expanded[3 * x + 1] = value
        expanded[3 * x + 2] = value


@njit(
    _IMAGE_OUT(_IMAGE_IN, _IMAGE_IN, _ROWS, _ROWS, _ROW_WEIGHTS, _MATTE_IN, _IMAGE_OUT),
    parallel=True,
    fastmath=True,
    cache=True,
)
def _blend_rows_kernel(fg, rows, y0, y1, wy, alpha, out):  # pragma: no cover - compiled
    """The blend over background row y = rows[y0] and rows[y1] mixed by wy/256: the vertical
    pass of background.Enlarger on the fly (the same arithmetic as background._enlarge_rows,
    exact in float32), a full-size image (y0 = y1 = y, wy = 0) or one colour row."""
    height, width = alpha.shape
    fg_rows = fg.reshape(height, width * 3)
    bg_rows = rows.reshape(rows.shape[0], width * 3)
    out_rows = out.reshape(height, width * 3)
    for y in prange(height):
        expanded = np.empty(width * 3, np.float32)
        _expand_matte_row(alpha, y, expanded)
        bg = np.empty(width * 3, np.float32)  # two simple loops vectorise, one fused did not
        w1 = _F32(wy[y])
        w0 = _F32(256.0) - w1
        top, bottom = bg_rows[y0[y]], bg_rows[y1[y]]
        if wy[y] == 0:
            for i in range(width * 3):
                bg[i] = _F32(top[i])
        else:
            for i in range(width * 3):
                bg[i] = np.floor((w0 * _F32(top[i]) + w1 * _F32(bottom[i]) + _F32(128.0))
                                 * _INV256)
        for i in range(width * 3):
            out_rows[y, i] = mix255(expanded[i], _F32(fg_rows[y, i]), bg[i])
    return out


@njit(_IMAGE_OUT(_IMAGE_IN, _MATTE_IN, _IMAGE_OUT), parallel=True, fastmath=True, cache=True)
def _to_bgra_kernel(fg, alpha, out):  # pragma: no cover - compiled
    height, width = alpha.shape
    for y in prange(height):
        for x in range(width):
            out[y, x, 0] = fg[y, x, 0]
            out[y, x, 1] = fg[y, x, 1]
            out[y, x, 2] = fg[y, x, 2]
            out[y, x, 3] = alpha[y, x]
    return out


def _check_image(name: str, array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Return `array` as C-contiguous uint8 of `shape` (copying only if not contiguous)."""
    if array.dtype != np.uint8 or array.shape != shape:
        raise ValueError(f"{name}: expected uint8 {shape}, got {array.dtype} {array.shape}")
    return np.ascontiguousarray(array)


def _check_out(out: np.ndarray, shape: tuple[int, ...]) -> None:
    """Reject an output buffer the kernels cannot write in place."""
    if out.dtype != np.uint8 or out.shape != shape:
        raise ValueError(f"out: expected uint8 {shape}, got {out.dtype} {out.shape}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out: must be a writeable C-contiguous array")


def straight_rows(height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row taps (y0, y1, wy) of a full-size background: row y is row y."""
    rows = np.arange(height, dtype=np.int32)
    return rows, rows, np.zeros(height, np.uint16)


def color_rows(color_bgr: np.ndarray, width: int, height: int) -> tuple:
    """(rows, y0, y1, wy): a colour as one background row at `width`, for every output row."""
    color = np.ascontiguousarray(color_bgr, dtype=np.uint8).reshape(3)
    zeros = np.zeros(height, np.int32)
    rows = np.ascontiguousarray(np.broadcast_to(color, (1, width, 3)))
    return rows, zeros, zeros, np.zeros(height, np.uint16)


def _blend_rows(fg: np.ndarray, background: tuple, alpha: np.ndarray,
                out: np.ndarray) -> np.ndarray:
    """The blend over `background` = (rows, y0, y1, wy), inputs checked."""
    shape = (*alpha.shape[:2], 3)
    _check_out(out, shape)
    return _blend_rows_kernel(_check_image("fg", fg, shape), *background,
                              _check_image("alpha", alpha, shape[:2]), out)


def blend(fg: np.ndarray, bg: np.ndarray, alpha: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Write round(a*fg + (1-a)*bg) into `out` (uint8 HxWx3; alpha uint8 HxW, 255 = fg)."""
    shape = (*alpha.shape[:2], 3)
    return _blend_rows(fg, (_check_image("bg", bg, shape), *straight_rows(shape[0])), alpha,
                       out)


def blend_color(
    fg: np.ndarray, color_bgr: np.ndarray, alpha: np.ndarray, out: np.ndarray
) -> np.ndarray:
    """Write round(a*fg + (1-a)*color) into `out` (colour: uint8 (3,) BGR)."""
    return _blend_rows(fg, color_rows(color_bgr, *alpha.shape[1::-1]), alpha, out)


def blend_enlarged(fg: np.ndarray, small_bg: np.ndarray, alpha: np.ndarray, out: np.ndarray,
                   enlarger: backgrounds.Enlarger) -> np.ndarray:
    """blend() over `small_bg` enlarged bilinearly to the frame size on the fly (the same
    pixels as `enlarger(small_bg, size)`, without writing that frame-sized image)."""
    size = alpha.shape[1::-1]
    return _blend_rows(fg, enlarger.rows(np.ascontiguousarray(small_bg), size), alpha, out)


def to_bgra(fg: np.ndarray, alpha: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Write straight-alpha BGRA into `out` (HxWx4): BGR = frame, A = matte."""
    shape = (*alpha.shape[:2], 4)
    _check_out(out, shape)
    return _to_bgra_kernel(
        _check_image("fg", fg, (*shape[:2], 3)), _check_image("alpha", alpha, shape[:2]), out
    )


def warm_up() -> None:
    """Compile (or load from cache) and run every kernel, blur ones included; starts numba."""
    fg = np.zeros((4, 5, 3), np.uint8)
    alpha = np.full((4, 5), 128, np.uint8)
    blend(fg, fg, alpha, np.empty_like(fg))
    blend_color(fg, np.zeros(3, np.uint8), alpha, np.empty_like(fg))
    blend_enlarged(fg, fg[:2, :3], alpha, np.empty_like(fg), backgrounds.Enlarger())
    to_bgra(fg, alpha, np.empty((4, 5, 4), np.uint8))
    backgrounds.warm_up()
    foreground_colour.warm_up()


class Compositor:
    """Composites frames over a background into one reused output buffer (BGR or BGRA)."""

    keep_still_background = True  # a still scene leaves the unchanged background unwritten

    def __init__(self, background: Background, foreground: bool = False) -> None:
        # foreground: one-pass renders blend the estimated person colour at soft edges (live).
        self.foreground = foreground
        self._decontaminator = foreground_colour.LiveDecontaminator()
        self._whole_rows: tuple | None = None  # (size, runs, counts, y0, small matte) per size
        # One tuple so a swap from another thread is seen atomically by __call__.
        self._state = (background, self._color_of(background))
        self._out: np.ndarray | None = None
        self._enlarger = backgrounds.Enlarger()  # buffers for smaller backgrounds (the blur)
        # The last blurred background, its Background and the frame shape (still scenes).
        self._last_bg: tuple[Background, np.ndarray, tuple] | None = None
        self._matte = np.empty((0, 0), np.uint8)  # transparent output's matte (one pass)
        self._bg_reused = False  # the last _background() gave the previous pixels back
        # The edge runs' matte of the last fresh render (one pass), redrawn on a still scene.
        self._edges = np.empty((0, 0), np.uint8)
        self._edges_of: onepass.MatteFields | None = None
        # What the output buffer's sure background runs hold: (background, its pixels or colour
        # array, the buffer) of the last one-pass blend. A still scene with the same objects
        # (and the same fields: `_edges_of`) leaves them as they are.
        self._drawn: tuple | None = None
        self._straight: tuple | None = None  # row taps of a full-size background, per height
        self._color_rows: tuple | None = None  # a colour as one background row, per width
        # I420-only renders: the background rows in Y, U, V ((rows, (Y, U, V))), and what the
        # I420 planes' sure background runs hold (as _drawn); whether the last render wrote BGR.
        self._yuv: tuple | None = None
        self._drawn_i420: tuple | None = None
        self.wrote_bgr = True

    @staticmethod
    def _color_of(background: Background) -> np.ndarray | None:
        if background.kind != "color":
            return None
        return np.ascontiguousarray(background.color, dtype=np.uint8).reshape(3)

    @property
    def background(self) -> Background:
        """The current background; assign a new one to swap it at run time."""
        return self._state[0]

    @background.setter
    def background(self, background: Background) -> None:
        # The caller closes the old background once it no longer needs it.
        self._state = (background, self._color_of(background))

    @property
    def channels(self) -> int:
        """3 (BGR) or 4 (BGRA, transparent background)."""
        return 4 if self._state[0].kind == "transparent" else 3

    def _output(self, height: int, width: int, channels: int) -> np.ndarray:
        # Hot path: the output buffer is allocated once per frame size / channel count.
        shape = (height, width, channels)
        if self._out is None or self._out.shape != shape:
            self._out = np.empty(shape, np.uint8)
        return self._out

    def _background(self, frame: np.ndarray, alpha: np.ndarray, same_scene: bool,
                    thumb: np.ndarray | None = None) -> np.ndarray | None:
        """The background's pixels for this frame (None: colour or transparent); `thumb`: the
        frame shrunken, which the blur can start from."""
        background, _ = self._state
        last = self._last_bg
        self._bg_reused = False
        if (same_scene and last is not None and last[0] is background
                and last[2] == frame.shape):
            self._bg_reused = True
            return last[1]
        if background.kind == "blur" and thumb is not None:
            bg = background.prepare(frame, alpha, thumb=thumb)
        else:
            bg = background.prepare(frame, alpha)
        self._last_bg = (background, bg, frame.shape) if background.kind == "blur" else None
        if bg is None and background.kind not in ("color", "transparent"):
            raise ValueError(f"{background.kind} background returned no pixels")
        return bg

    def _rows_of(self, bg: np.ndarray | None, color: np.ndarray | None, width: int,
                 height: int) -> tuple:
        """The background as (rows, y0, y1, wy) for the kernels: taps made once per size."""
        if color is not None:
            key = (width, height, color.tobytes())
            if self._color_rows is None or self._color_rows[0] != key:
                self._color_rows = (key, color_rows(color, width, height))
            return self._color_rows[1]
        assert bg is not None
        if bg.shape[:2] != (height, width):  # a small background (the blur): enlarged rows
            same = self._bg_reused or getattr(self._state[0], "reused", False)
            return self._enlarger.rows(np.ascontiguousarray(bg), (width, height), same=same)
        if self._straight is None or len(self._straight[0]) != height:
            self._straight = straight_rows(height)
        return (np.ascontiguousarray(bg), *self._straight)

    def render(self, frame: np.ndarray, fields: onepass.MatteFields, same_scene: bool = False,
               matte: np.ndarray | None = None, i420: np.ndarray | None = None,
               bgr: bool = True) -> np.ndarray:
        """Composite `frame` with a matte still in low-res `fields` (refine.MatteRefiner.fields)
        in one pass: the matte is drawn only where it is needed, and into `matte` if given;
        the output also into `i420` (onepass.draw) if given. `bgr=False` with `i420`: only
        the I420 planes are written (the returned BGR buffer is then stale) unless this render
        needs BGR itself (`wrote_bgr` says which happened)."""
        background, color = self._state
        planes_only = i420 is not None and not self.foreground
        if not bgr and planes_only and background.kind != "transparent":
            self.wrote_bgr = False
            return self._render_i420(frame, fields, same_scene, matte, i420)
        self.wrote_bgr = True
        height, width = frame.shape[:2]
        frame = np.ascontiguousarray(frame)
        if background.kind == "transparent":
            if matte is None:
                if self._matte.shape != (height, width):
                    self._matte = np.empty((height, width), np.uint8)  # once per size
                matte = self._matte
            onepass.draw(fields, frame, matte=matte)
            return to_bgra(frame, matte, self._output(height, width, 4))
        out = self._output(height, width, 3)
        bg, reuse, static = self._scene(frame, fields, same_scene)
        drawn = (background, color if bg is None else bg, out)
        last, self._drawn = self._drawn, drawn
        keep = self._keeps(last, drawn, reuse, static)
        self._drawn_i420 = (background, color if bg is None else bg, i420)
        onepass.draw(fields, frame, self._rows_of(bg, color, width, height), out=out,
                     matte=matte, edges=self._edges, reuse_edges=reuse, keep_background=keep,
                     i420=i420)
        if self.foreground:  # the edge runs blend F, not the frame (docs/decisions.md)
            self._decontaminator.prepare(frame, fields.small, fields.thumb)
            planes = (onepass.i420_planes(i420, out) if i420 is not None
                      else foreground_colour.NO_PLANES)
            self._decontaminator.apply(frame, out, self._edges, fields.plan[0], fields.plan[1],
                                       fields.taps[1], planes)
        return out

    def _scene(self, frame: np.ndarray, fields: onepass.MatteFields, same_scene: bool
               ) -> tuple[np.ndarray | None, bool, bool]:
        """(the background's pixels or None, whether the edge matte is reused, whether the
        background is unchanged since the last render) for a one-pass render."""
        background, color = self._state
        height, width = frame.shape[:2]
        bg = (None if color is not None
              else self._background(frame, fields.small, same_scene, fields.thumb))
        if self._edges.shape != (height, width):
            self._edges = np.empty((height, width), np.uint8)  # once per frame size
            self._edges_of = None
        # A still scene (same fields as last time): the edge matte is redrawn, not recomputed.
        reuse = same_scene and self._edges_of is fields
        self._edges_of = fields
        # ... and the background, when it did not change, is already in the output buffer.
        static = self._bg_reused or background.kind in ("image", "color")
        return bg, reuse, static

    def _keeps(self, last: tuple | None, drawn: tuple, reuse: bool, static: bool) -> bool:
        """Whether the target's sure background runs already hold `drawn` (leave them)."""
        return (reuse and static and self.keep_still_background and last is not None
                and all(a is b for a, b in zip(last, drawn, strict=True)))

    def _render_i420(self, frame: np.ndarray, fields: onepass.MatteFields, same_scene: bool,
                     matte: np.ndarray | None, i420: np.ndarray) -> np.ndarray:
        """render() into the I420 planes only (no BGR frame stored)."""
        background, color = self._state
        height, width = frame.shape[:2]
        frame = np.ascontiguousarray(frame)
        out = self._output(height, width, 3)  # returned as render's buffer; not written
        bg, reuse, static = self._scene(frame, fields, same_scene)
        rows = self._rows_of(bg, color, width, height)
        # The background's rows in Y, U, V: converted again only when they may have changed.
        made = self._yuv
        if made is None or made[0] is not rows[0] or not static:
            made = (rows[0], planar.yuv_rows(rows[0], None if made is None else made[1]))
            self._yuv = made
        drawn = (background, color if bg is None else bg, i420)
        last, self._drawn_i420 = self._drawn_i420, drawn
        self._drawn = None  # the BGR buffer does not hold this frame
        keep = self._keeps(last, drawn, reuse, static)
        planar.draw_i420(fields, frame, rows, made[1], i420, matte=matte, edges=self._edges,
                         reuse_edges=reuse, keep_background=keep)
        return out

    def __call__(self, frame: np.ndarray, alpha: np.ndarray, same_scene: bool = False,
                 fg: np.ndarray | None = None) -> np.ndarray:
        """Composite `frame` (BGR) with matte `alpha` (uint8, 255 = person); returns the buffer.
        `same_scene`: nothing moved since the last call, so a blurred background is reused;
        `fg`: the person's colour to blend (e.g. foreground.estimate_photo), default `frame`."""
        background, color = self._state
        height, width = frame.shape[:2]
        self._drawn = self._drawn_i420 = None  # the output buffer is written whole here
        person = frame if fg is None else fg
        if background.kind == "transparent":
            return to_bgra(person, alpha, self._output(height, width, 4))
        out = self._output(height, width, 3)
        bg = None if color is not None else self._background(frame, alpha, same_scene)
        _blend_rows(person, self._rows_of(bg, color, width, height), alpha, out)
        if self.foreground and fg is None:  # live with erode / a wide feather: every row
            self._decontaminate_all(frame, alpha, out)
        return out

    def _decontaminate_all(self, frame: np.ndarray, alpha: np.ndarray, out: np.ndarray) -> None:
        """The live F correction over whole rows (no edge runs known), for a full-res matte."""
        height, width = alpha.shape
        if self._whole_rows is None or self._whole_rows[0] != (height, width):
            runs = np.array([[[0, width, onepass.EDGE]]], np.int32)
            self._whole_rows = ((height, width), runs, np.ones(1, np.int32),
                                np.zeros(height, np.int32),
                                np.empty((max(1, height // 6), max(1, width // 6)), np.uint8))
        _, runs, counts, y0, small = self._whole_rows
        cv2.resize(alpha, small.shape[::-1], dst=small, interpolation=cv2.INTER_AREA)
        self._decontaminator.prepare(frame, small)
        self._decontaminator.apply(frame, out, np.ascontiguousarray(alpha), runs, counts, y0)
