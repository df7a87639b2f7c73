"""Full-resolution matte from the low-res segmenter alpha: fast guided filter + matting knobs.

The live path stops at the low-res fields (`MatteRefiner.fields`); onepass.py draws the
full-res matte inside the blend, only in the cells where it is not surely 0 or 255.
DEFAULTS and their measurements: docs/decisions.md, "Matte refinement defaults".
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numba as nb
import numpy as np

from vbg.errors import ConfigError
from vbg.matte import onepass
from vbg.pixels import linear_taps
from vbg.segment.thumbs import Thumbnailer


@dataclass(frozen=True)
class RefineParams:
    """Matte refinement settings; sizes in px, alpha curve on the [0,1] scale."""

    guided: bool = True  # guided filter against the frame; False = plain bilinear upsampling
    radius: int = 1  # guided filter box radius, in guide pixels
    eps: float = 3e-4  # guided filter regularisation (guide intensities in [0,1])
    guide_width: int = 320  # width of the downscaled grey guide (aspect kept)
    threshold: float = 0.5  # centre of the contrast curve
    contrast: float = 3.0  # slope: alpha' = clip((alpha - threshold) * contrast + 0.5, 0, 1)
    erode: int = 0  # px at full res; negative dilates
    feather: int = 1  # Gaussian blur radius of the final matte, px at full res; 0 = off

    def __post_init__(self) -> None:
        checks = (
            ("radius", float(self.radius).is_integer() and self.radius >= 1, "an integer >= 1"),
            ("eps", self.eps > 0, "a number > 0 (e.g. 3e-4)"),
            ("guide_width", float(self.guide_width).is_integer() and self.guide_width >= 8,
             "an integer >= 8 (e.g. 320)"),
            ("threshold", 0.0 <= self.threshold <= 1.0, "between 0 and 1"),
            ("contrast", self.contrast > 0, "a number > 0 (1 = unchanged)"),
            ("erode", float(self.erode).is_integer(), "a whole number of pixels"),
            ("feather", float(self.feather).is_integer() and self.feather >= 0,
             "a whole number of pixels >= 0"),
        )
        for name, ok, want in checks:
            if not ok:
                raise ConfigError(f"matte setting {name}={getattr(self, name)!r} is invalid: "
                                  f"use {want}")


DEFAULTS = RefineParams(guided=True, radius=1, eps=3e-4, guide_width=320,
                        threshold=0.5, contrast=3.0, erode=0, feather=1)


@nb.njit(cache=True, fastmath=True)
def _guide_stats(grey: np.ndarray, p: np.ndarray, stats: np.ndarray) -> None:
    """stats[..., :] = (I, p, I*p, I*I) with I = grey / 255, for one box filter over all four."""
    scale = np.float32(1.0 / 255.0)
    for y in range(grey.shape[0]):
        for x in range(grey.shape[1]):
            i, v = np.float32(grey[y, x]) * scale, p[y, x]
            stats[y, x, 0] = i
            stats[y, x, 1] = v
            stats[y, x, 2] = i * v
            stats[y, x, 3] = i * i


@nb.njit(cache=True, fastmath=True)
def _linear_model(means: np.ndarray, eps: float, coef: np.ndarray) -> None:
    """Per window: a = cov(I,p) / (var(I) + eps), b = mean(p) - a * mean(I) (He et al.)."""
    for y in range(means.shape[0]):
        for x in range(means.shape[1]):
            mi, mp, mip, mii = means[y, x, 0], means[y, x, 1], means[y, x, 2], means[y, x, 3]
            a = (mip - mi * mp) / (mii - mi * mi + np.float32(eps))
            coef[y, x, 0] = a
            coef[y, x, 1] = mp - a * mi


@nb.njit(cache=True, fastmath=True)
def _fold_curve(coef: np.ndarray, threshold: float, contrast: float, ak: np.ndarray,
                bk: np.ndarray) -> None:
    """ak * grey_255 + bk = 255 * ((a * grey_255 / 255 + b - threshold) * contrast + 0.5)."""
    gain = np.float32(255.0 * contrast)
    offset = np.float32(127.5 - 255.0 * contrast * threshold)
    for y in range(coef.shape[0]):
        for x in range(coef.shape[1]):
            ak[y, x] = coef[y, x, 0] * np.float32(contrast)
            bk[y, x] = coef[y, x, 1] * gain + offset


@nb.njit(cache=True, fastmath=True)
def _bounds(a: np.ndarray, b: np.ndarray, guided: bool, grey: np.ndarray, lo: np.ndarray,
            hi: np.ndarray, small: np.ndarray) -> None:
    """Per guide cell: the lowest and highest a * g + b for any grey g in 0..255, and the matte
    at the guide grid (`small`, uint8; the blur's weights)."""
    top = np.float32(255.0)
    for y in range(b.shape[0]):
        for x in range(b.shape[1]):
            value, low, high = b[y, x], b[y, x], b[y, x]
            if guided:
                slope = a[y, x] * top
                low += min(slope, np.float32(0.0))
                high += max(slope, np.float32(0.0))
                value += a[y, x] * np.float32(grey[y, x])
            lo[y, x], hi[y, x] = low, high
            small[y, x] = np.uint8(np.int32(min(max(value, np.float32(0.0)), top) + 0.5))


@nb.njit(cache=True, fastmath=True)
def _classify(lo4: np.ndarray, hi4: np.ndarray, classes: np.ndarray, edges: np.ndarray) -> None:
    """Class of each guide cell from its 4x4 neighbourhood bounds (margins cover float error:
    values >= 254.5 round to 255, < 0.5 to 0); edges = 1 where it is EDGE."""
    for y in range(lo4.shape[0]):
        for x in range(lo4.shape[1]):
            edges[y, x] = 0
            if lo4[y, x] >= np.float32(255.25):
                classes[y, x] = onepass.SURE_PERSON
            elif hi4[y, x] <= np.float32(0.25):
                classes[y, x] = onepass.SURE_BG
            else:
                classes[y, x] = onepass.EDGE
                edges[y, x] = 1


_CELL_WINDOW = np.ones((4, 4), np.uint8)  # cells -1..+2: the bilinear taps and the feather
_NEIGHBOURS = np.ones((3, 3), np.uint8)  # sharp rows are needed one cell around the edges


def warm_up() -> None:
    """Compile (or load from cache) the numba kernels and start their thread pool."""
    for feather in (1, 0):
        MatteRefiner(RefineParams(guided=True, feather=feather))(np.zeros((36, 64, 3), np.uint8),
                                                                 np.zeros((9, 16), np.float32))
    MatteRefiner(RefineParams(guided=False))(np.zeros((36, 64, 3), np.uint8),
                                              np.zeros((9, 16), np.float32))


class MatteRefiner:
    """(frame BGR uint8 HxWx3, low-res float32 alpha) -> the frame's matte: `fields()` gives it
    low-res (drawn later in one pass with the blend), calling the refiner gives it as a uint8 HxW
    image (a reused buffer, overwritten by the next call: copy it to keep it)."""

    def __init__(self, params: RefineParams = DEFAULTS) -> None:
        self._frame_size: tuple[int, int] | None = None
        self._field_size: tuple[int, int] | None = None
        self._out = np.empty((0, 0), np.uint8)
        self._plain = np.empty((0, 0), np.float32)
        self.params = params

    @property
    def params(self) -> RefineParams:
        return self._params

    @params.setter
    def params(self, params: RefineParams) -> None:
        """Settings can change while running; buffers are rebuilt on the next frame."""
        self._params = params
        self._frame_size = None

    @property
    def one_pass(self) -> bool:
        """Whether the matte can be drawn inside the blend (no erode, feather 0 or 1)."""
        return self.params.erode == 0 and self.params.feather <= 1

    # --- buffers (pre-allocated once per frame size; hot path writes with dst=/out=) ---
    def _alloc_frame(self, h: int, w: int) -> None:
        p = self.params
        self._frame_size = (h, w)
        self._field_size = None
        self._out = np.empty((h, w), np.uint8)
        self._tmp = np.empty((h, w), np.uint8)
        gw = min(p.guide_width, w)
        gh = max(1, round(h * gw / w))
        self._guide_size = (gh, gw)
        # Big frames: a sparse thumbnail at twice the guide first, then an exact 2x2 mean (as
        # good as INTER_AREA, reading a fraction of the frame: docs/decisions.md, "Thumbnails").
        self._thumbnailer = Thumbnailer(2 * gw)
        self._guide_bgr = np.empty((gh, gw, 3), np.uint8)
        self._guide_grey = np.empty((gh, gw), np.uint8)
        self._p = np.empty((gh, gw), np.float32)
        self._stats = np.empty((gh, gw, 4), np.float32)
        self._means = np.empty((gh, gw, 4), np.float32)
        self._coef = np.empty((gh, gw, 2), np.float32)
        self._mean_coef = np.empty((gh, gw, 2), np.float32)
        self._ak = np.empty((gh, gw), np.float32)
        self._bk = np.empty((gh, gw), np.float32)
        n = abs(int(p.erode))
        self._morph_kernel = (cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * n + 1, 2 * n + 1))
                              if n else None)

    def _grid_for(self, fh: int, fw: int) -> None:
        """Interpolation tables and the classification buffers for one field grid size."""
        if self._field_size != (fh, fw):
            h, w = self._frame_size  # type: ignore[misc]
            x0, _, wx = linear_taps(w, fw)
            y0, y1, wy = linear_taps(h, fh)
            starts = np.searchsorted(x0, np.arange(fw + 1)).astype(np.int32)
            self._taps = (wx, y0, y1, wy, starts)
            # Skipping sure cells needs every frame pixel's neighbours within one cell.
            self._can_skip = fw <= w and fh <= h
            self._lo = np.empty((fh, fw), np.float32)
            self._hi = np.empty((fh, fw), np.float32)
            self._lo4 = np.empty((fh, fw), np.float32)
            self._hi4 = np.empty((fh, fw), np.float32)
            self._classes = np.full((fh, fw), onepass.EDGE, np.uint8)
            self._edges = np.ones((fh, fw), np.uint8)
            self._need = np.ones((fh, fw), np.uint8)
            self._plan = onepass.new_plan((fh, fw))
            self._small = np.empty((fh, fw), np.uint8)
            self._no_grey = np.zeros((fh, fw), np.uint8)
            self._field_size = (fh, fw)

    # --- stages ---
    def guide(self, frame: np.ndarray, thumb: np.ndarray | None = None) -> np.ndarray:
        """The frame's grey guide (guide size, uint8; a reused buffer). Called before
        `fields(..., guide_ready=True)` it is made once per frame and shared with the stages
        that only need a small grey picture (the motion checks)."""
        h, w = frame.shape[:2]
        if self._frame_size != (h, w):
            self._alloc_frame(h, w)
        gh, gw = self._guide_size
        if thumb is None or thumb.shape[1] < 2 * gw:  # none given, or too coarse
            thumb = self._thumbnailer(frame)
        cv2.resize(thumb, (gw, gh), dst=self._guide_bgr, interpolation=cv2.INTER_AREA)
        cv2.cvtColor(self._guide_bgr, cv2.COLOR_BGR2GRAY, dst=self._guide_grey)
        return self._guide_grey

    def _guided_fields(self, frame: np.ndarray, alpha: np.ndarray, thumb: np.ndarray | None,
                       guide_ready: bool) -> tuple[np.ndarray, np.ndarray]:
        """Guided-filter coefficients at guide size, curve folded in, scaled for grey 0..255."""
        p = self.params
        gh, gw = self._guide_size
        if alpha.shape == (gh, gw):
            np.copyto(self._p, alpha)
        else:
            cv2.resize(alpha, (gw, gh), dst=self._p, interpolation=cv2.INTER_LINEAR)
        box = (2 * p.radius + 1, 2 * p.radius + 1)
        grey = self._guide_grey if guide_ready else self.guide(frame, thumb)
        _guide_stats(grey, self._p, self._stats)
        cv2.boxFilter(self._stats, -1, box, dst=self._means, borderType=cv2.BORDER_REFLECT)
        _linear_model(self._means, p.eps, self._coef)
        cv2.boxFilter(self._coef, -1, box, dst=self._mean_coef, borderType=cv2.BORDER_REFLECT)
        _fold_curve(self._mean_coef, p.threshold, p.contrast, self._ak, self._bk)
        return self._ak, self._bk

    def _curve(self, field: np.ndarray) -> None:
        """In place: field = 255 * ((field - threshold) * contrast + 0.5)."""
        p = self.params
        field -= np.float32(p.threshold)
        field *= np.float32(255.0 * p.contrast)
        field += np.float32(127.5)

    def _bilinear_fields(self, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._plain.shape != alpha.shape:
            self._plain = np.empty(alpha.shape, np.float32)
        np.copyto(self._plain, alpha)
        self._curve(self._plain)
        return self._plain, self._plain

    def fields(self, frame: np.ndarray, alpha_lowres: np.ndarray, feather: int | None = None,
               thumb: np.ndarray | None = None, guide_ready: bool = False
               ) -> onepass.MatteFields:
        """The matte of `frame` as low-res fields (reused buffers, valid until the next call);
        `feather` overrides the setting (0 or 1); `thumb`: the frame already shrunken
        (thumbs.Thumbnailer), saves reading the frame for the guide; `guide_ready`: guide()
        was called with this frame."""
        h, w = frame.shape[:2]
        if self._frame_size != (h, w):
            self._alloc_frame(h, w)
            guide_ready = False
        p = self.params
        alpha = np.asarray(alpha_lowres, dtype=np.float32)
        if p.guided:
            a, b = self._guided_fields(frame, alpha, thumb, guide_ready)
            grey = self._guide_grey
        else:
            a, b = self._bilinear_fields(alpha)
            grey = None
        self._grid_for(*b.shape)
        if grey is None:
            grey = self._no_grey
        _bounds(a, b, p.guided, grey, self._lo, self._hi, self._small)
        if self._can_skip:
            cv2.erode(self._lo, _CELL_WINDOW, dst=self._lo4, anchor=(1, 1))
            cv2.dilate(self._hi, _CELL_WINDOW, dst=self._hi4, anchor=(1, 1))
            _classify(self._lo4, self._hi4, self._classes, self._edges)
            cv2.dilate(self._edges, _NEIGHBOURS, dst=self._need)
        onepass.plan_runs(self._classes, self._need, self._taps[4], *self._plan)
        feather = min(1, p.feather) if feather is None else feather
        return onepass.MatteFields(a, b, self._classes, self._need, self._plan, self._taps,
                                   p.guided, feather, self._small,
                                   self._guide_bgr if p.guided else None)

    def __call__(self, frame: np.ndarray, alpha_lowres: np.ndarray) -> np.ndarray:
        p = self.params
        if not frame.flags.c_contiguous:  # the pipeline's frames are; views (crops) are not
            frame = np.ascontiguousarray(frame)
        if self.one_pass:
            return onepass.draw(self.fields(frame, alpha_lowres), frame, matte=self._out)
        fields = self.fields(frame, alpha_lowres, feather=0)
        # Post-filters need src != dst; the last stage always writes the stable output buffer.
        posts = int(p.erode != 0) + int(p.feather > 0)
        src = onepass.draw(fields, frame, matte=self._tmp if posts == 1 else self._out)
        if p.erode:
            dst = self._tmp if posts == 2 else self._out
            op = cv2.erode if p.erode > 0 else cv2.dilate
            op(src, self._morph_kernel, dst=dst)
            src = dst
        if p.feather:
            size = 2 * int(p.feather) + 1
            cv2.GaussianBlur(src, (size, size), 0, dst=self._out)
        return self._out
