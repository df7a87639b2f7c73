"""Zoom on the person: a second pass on a crop around where they were makes small or moving
people as large to the network as a close-up (DAVIS IoU 0.73 -> 0.80 with the landscape model)."""

from __future__ import annotations

import cv2
import numpy as np

from vbg.segment.base import Segmenter


class TrackedSegmenter:
    """Wraps a segmenter: whole-frame pass + a pass on the tracked person box, merged on a
    working canvas (long side `canvas`), returned as the low-res alpha."""

    def __init__(self, inner: Segmenter, canvas: int = 512, margin: float = 0.15,
                 max_area: float = 0.6, smooth: float = 0.5) -> None:
        self.inner = inner
        self.name = inner.name
        self.input_size = inner.input_size
        self.provider = inner.provider
        self.canvas = canvas
        self.margin = margin  # box grows by this fraction of its size on each side
        self.max_area = max_area  # skip the zoom pass when the box covers more of the frame
        self.smooth = smooth  # box follows the person with this EMA weight (grows at once)
        self.zoomed = 0
        self._frame_size: tuple[int, int] | None = None
        self._box: np.ndarray | None = None  # x0, y0, x1, y1 in canvas pixels (float)

    def reset(self) -> None:
        self._box = None
        self.inner.reset()

    def _alloc(self, fw: int, fh: int) -> None:
        scale = min(1.0, self.canvas / max(fw, fh))
        self._cw, self._ch = max(2, round(fw * scale)), max(2, round(fh * scale))
        self._scale = scale
        # Pre-allocated canvas buffers (hot path), remade only when the frame size changes.
        self._out = np.zeros((self._ch, self._cw), np.float32)
        self._frame_size = (fw, fh)
        self._box = None

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        fh, fw = frame.shape[:2]
        if self._frame_size != (fw, fh):
            self._alloc(fw, fh)
        cv2.resize(self.inner(frame), (self._cw, self._ch), dst=self._out,
                   interpolation=cv2.INTER_LINEAR)
        crop = self._crop_box(fw, fh)
        if crop is not None:
            x0, y0, x1, y1 = crop
            roi = self.inner(frame[y0:y1, x0:x1])
            s = self._scale
            cx0, cy0 = round(x0 * s), round(y0 * s)
            cx1, cy1 = max(cx0 + 1, round(x1 * s)), max(cy0 + 1, round(y1 * s))
            cv2.resize(roi, (cx1 - cx0, cy1 - cy0), dst=self._out[cy0:cy1, cx0:cx1],
                       interpolation=cv2.INTER_LINEAR)
            self.zoomed += 1
        self._track()
        return self._out

    def _track(self) -> None:
        """Follow the person's bounding box on the canvas."""
        mask = self._out > 0.5
        cols, rows = np.flatnonzero(mask.any(axis=0)), np.flatnonzero(mask.any(axis=1))
        if cols.size == 0:
            self._box = None
            return
        box = np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], np.float64)
        if self._box is None:
            self._box = box
        else:
            follow = self.smooth * self._box + (1 - self.smooth) * box
            # Grow at once (never cut a limb), shrink smoothly.
            self._box = np.array([min(follow[0], box[0]), min(follow[1], box[1]),
                                  max(follow[2], box[2]), max(follow[3], box[3])])

    def _crop_box(self, fw: int, fh: int) -> tuple[int, int, int, int] | None:
        """Frame-pixel crop around the tracked box, at the network's aspect, or None."""
        if self._box is None:
            return None
        x0, y0, x1, y1 = self._box / self._scale
        bw, bh = (x1 - x0) * (1 + 2 * self.margin), (y1 - y0) * (1 + 2 * self.margin)
        aspect = self.input_size[0] / self.input_size[1]
        if bw / max(bh, 1e-6) < aspect:
            bw = bh * aspect
        else:
            bh = bw / aspect
        bw, bh = min(bw, fw), min(bh, fh)
        if bw * bh > self.max_area * fw * fh or bw < 8 or bh < 8:
            return None
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        left = int(np.clip(cx - bw / 2, 0, fw - bw))
        top = int(np.clip(cy - bh / 2, 0, fh - bh))
        return left, top, int(left + bw), int(top + bh)
