"""Zoom on the person: a second pass on a crop around where they were makes small or moving
people as large to the network as a close-up (figures: docs/decisions.md, "Zoom pass")."""

from __future__ import annotations

import cv2
import numpy as np
from numba import njit

from vbg.segment.base import Capabilities, Segmenter


@njit(cache=True)
def _box(alpha: np.ndarray, threshold: float) -> tuple[int, int, int, int]:
    """One pass: (x0, y0, x1, y1) of the pixels above threshold; x0 = -1 if none."""
    height, width = alpha.shape
    x0, y0, x1, y1 = width, height, -1, -1
    for y in range(height):
        row = alpha[y]
        first = -1
        for x in range(width):
            if row[x] > threshold:
                first = x
                break
        if first < 0:
            continue
        last = first
        for x in range(width - 1, first, -1):
            if row[x] > threshold:
                last = x
                break
        x0, x1 = min(x0, first), max(x1, last)
        y0 = min(y0, y)
        y1 = y
    if x1 < 0:
        return -1, -1, -1, -1
    return x0, y0, x1 + 1, y1 + 1


def person_box(alpha: np.ndarray, threshold: float = 0.5) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1), end-exclusive, around the pixels where alpha > threshold; None if none."""
    x0, y0, x1, y1 = _box(np.ascontiguousarray(alpha), float(threshold))
    return None if x0 < 0 else (int(x0), int(y0), int(x1), int(y1))


class TrackedSegmenter(Capabilities):
    """Wraps a segmenter: whole-frame pass + a pass on the tracked person box, merged on a
    working canvas (long side `canvas`), returned as the low-res alpha at long side `output`
    (the refiner's guide grid: smoothing and refining there lose nothing, measured)."""

    # Defaults measured with `vbg eval` on DAVIS: docs/decisions.md, "Zoom pass".
    def __init__(self, inner: Segmenter, canvas: int = 512, output: int = 320,
                 margin: float = 0.15,
                 max_area: float = 0.6, stretch: float = 2.0, mirror: bool = True,
                 full_every: int = 4, hold: float = 0.3, zoom: Segmenter | None = None) -> None:
        self.inner = inner
        # The network for crops: the square 256x256 model suits a person-shaped crop better
        # than the wide landscape one (docs/decisions.md, "Zoom pass").
        self.zoom = zoom or inner
        self.name = inner.name
        self.input_size = self.zoom.input_size  # crops are shaped for the zoom network
        self.provider = inner.provider
        self.canvas = canvas
        self.output = output
        self.margin = margin  # box grows by this fraction of its size on each side
        self.max_area = max_area  # skip the zoom pass when the box covers more of the frame
        self.stretch = stretch  # crop aspect may differ from the network's by up to this factor
        self.mirror = mirror  # also run the crop mirrored and average (test-time augmentation)
        self.full_every = max(1, full_every)  # whole-frame pass every N frames while zoomed
        self.hold = hold  # keep the last crop while the person stays inside it (less jitter)
        self._crop: tuple[int, int, int, int] | None = None
        self.zoomed = 0
        self._count = 0
        self._frame_size: tuple[int, int] | None = None
        self._box: np.ndarray | None = None  # x0, y0, x1, y1 in frame pixels (float)

    def networks(self) -> tuple[Segmenter, ...]:
        return (self.inner,) if self.zoom is self.inner else (self.inner, self.zoom)

    def reset(self) -> None:
        self._box = None
        self._full_fresh = False
        self._count = 0
        self.inner.reset()
        if self.zoom is not self.inner:
            self.zoom.reset()

    def _alloc(self, fw: int, fh: int) -> None:
        scale = min(1.0, self.canvas / max(fw, fh))
        self._cw, self._ch = max(2, round(fw * scale)), max(2, round(fh * scale))
        self._scale = scale
        # Pre-allocated canvas buffers (hot path), remade only when the frame size changes.
        self._out = np.zeros((self._ch, self._cw), np.float32)
        self._full = np.zeros((self._ch, self._cw), np.float32)
        self._mirrored = np.zeros((self._ch, self._cw), np.float32)
        self._flipped: np.ndarray | None = None  # frame-sized, only for inners without mirror=
        self._net_in: np.ndarray | None = None  # the crop at the zoom network's input size
        self._net_out: np.ndarray | None = None  # its two passes averaged
        grid = min(1.0, self.output / max(fw, fh))
        self._result = np.zeros((max(2, round(fh * grid)), max(2, round(fw * grid))), np.float32)
        self._frame_size = (fw, fh)
        self._box = None
        self._full_fresh = False  # _full holds this frame size's last whole-frame pass

    takes_thumb = True  # __call__(frame, thumb=...)

    def __call__(self, frame: np.ndarray, thumb: np.ndarray | None = None) -> np.ndarray:
        """Low-res alpha of `frame`; `thumb` (the frame decimated, thumbs.Thumbnailer) can feed
        the whole-frame pass, the crop pass always reads the frame."""
        fh, fw = frame.shape[:2]
        if self._frame_size != (fw, fh):
            self._alloc(fw, fh)
        crop = self._crop_box(fw, fh)
        if self.hold > 0 and crop is not None and self._crop is not None:
            ox0, oy0, ox1, oy1 = self._crop
            nx0, ny0, nx1, ny1 = crop
            inside = nx0 >= ox0 and ny0 >= oy0 and nx1 <= ox1 and ny1 <= oy1
            small = (ox1 - ox0) * (oy1 - oy0) <= (1 + self.hold) * (nx1 - nx0) * (ny1 - ny0)
            if inside and small:
                crop = self._crop
        self._crop = crop
        whole = frame if thumb is None else thumb
        if crop is None:  # the whole-frame pass is the answer: straight to the output grid
            self._count += 1
            self._full_fresh = False
            result = self._result
            cv2.resize(self.inner(whole), (result.shape[1], result.shape[0]), dst=result,
                       interpolation=cv2.INTER_LINEAR)
            return self._track(result, result.shape[1] / fw)
        if self._count % self.full_every == 0 or not self._full_fresh:
            cv2.resize(self.inner(whole), (self._cw, self._ch), dst=self._full,
                       interpolation=cv2.INTER_LINEAR)
            self._full_fresh = True
        self._count += 1
        self._out[:] = self._full
        x0, y0, x1, y1 = crop
        s = self._scale
        cx0, cy0 = round(x0 * s), round(y0 * s)
        cx1, cy1 = max(cx0 + 1, round(x1 * s)), max(cy0 + 1, round(y1 * s))
        dst = self._out[cy0:cy1, cx0:cx1]
        size = (cx1 - cx0, cy1 - cy0)
        if self.mirror and self.zoom.mirrors:
            self._both_ways(frame[y0:y1, x0:x1], size, dst)
            self.zoomed += 1
            return self._finish(self._out)
        cv2.resize(self.zoom(frame[y0:y1, x0:x1]), size, dst=dst,
                   interpolation=cv2.INTER_LINEAR)
        if self.mirror:
            mirrored = self._mirrored[: size[1], : size[0]]  # pre-allocated canvas buffer
            cv2.resize(self._mirrored_pass(frame[y0:y1, x0:x1]), size, dst=mirrored,
                       interpolation=cv2.INTER_LINEAR)
            dst += mirrored[:, ::-1]
            dst *= 0.5
        self.zoomed += 1
        return self._finish(self._out)

    def _both_ways(self, crop: np.ndarray, size: tuple[int, int], dst: np.ndarray) -> None:
        """The crop's plain and mirrored passes from one resize of the crop, averaged at the
        network's size, then one resize onto the canvas (the same pixels as two resizes and
        an average there, as bilinear sampling is symmetric, for ~0.2 ms less per frame)."""
        w, h = self.zoom.input_size
        if self._net_in is None or self._net_in.shape[:2] != (h, w):
            self._net_in = np.empty((h, w, 3), np.uint8)  # once per network size
            self._net_out = np.empty((h, w), np.float32)
        cv2.resize(crop, (w, h), dst=self._net_in, interpolation=cv2.INTER_CUBIC)
        plain = self.zoom(self._net_in)  # its own resize is now a same-size copy
        np.add(plain, self.zoom(self._net_in, mirror=True)[:, ::-1], out=self._net_out)
        self._net_out *= 0.5
        cv2.resize(self._net_out, size, dst=dst, interpolation=cv2.INTER_LINEAR)

    def _finish(self, merged: np.ndarray) -> np.ndarray:
        """The merged canvas at the output grid; the person's box to follow."""
        result = self._result
        cv2.resize(merged, (result.shape[1], result.shape[0]), dst=result,
                   interpolation=cv2.INTER_LINEAR)
        self._track(merged, self._scale)
        return result

    def _track(self, alpha: np.ndarray, scale: float) -> np.ndarray:
        """Keep the box (frame pixels) around the person in `alpha` (frame scaled by `scale`)."""
        box = person_box(alpha)
        self._box = None if box is None else np.array(box, np.float64) / scale
        return alpha

    def _mirrored_pass(self, crop: np.ndarray) -> np.ndarray:
        """The zoom network on the crop flipped left-right, without allocating per frame."""
        if self.zoom.mirrors:
            return self.zoom(crop, mirror=True)  # flips the network input, not the crop
        if self._flipped is None or self._flipped.shape[2] != crop.shape[2]:
            fw, fh = self._frame_size  # type: ignore[misc]
            self._flipped = np.empty((fh, fw, crop.shape[2]), crop.dtype)  # once per size
        flipped = self._flipped[: crop.shape[0], : crop.shape[1]]
        cv2.flip(crop, 1, dst=flipped)
        return self.zoom(flipped)

    def _crop_box(self, fw: int, fh: int) -> tuple[int, int, int, int] | None:
        """Frame-pixel crop around the tracked box, near the network's aspect, or None."""
        if self._box is None:
            return None
        x0, y0, x1, y1 = self._box
        bw, bh = (x1 - x0) * (1 + 2 * self.margin), (y1 - y0) * (1 + 2 * self.margin)
        aspect = self.input_size[0] / self.input_size[1]
        ratio = bw / max(bh, 1e-6)
        if ratio < aspect / self.stretch:
            bw = bh * aspect / self.stretch
        elif ratio > aspect * self.stretch:
            bh = bw / (aspect * self.stretch)
        bw, bh = min(bw, fw), min(bh, fh)
        if bw * bh > self.max_area * fw * fh or bw < 8 or bh < 8:
            return None
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        left = int(np.clip(cx - bw / 2, 0, fw - bw))
        top = int(np.clip(cy - bh / 2, 0, fh - bh))
        return left, top, int(left + bw), int(top + bh)
