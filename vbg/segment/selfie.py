"""MediaPipe selfie segmentation (general 256x256, landscape 144x256) through onnxruntime."""

from __future__ import annotations

import cv2
import numpy as np

from vbg.models import verified_path
from vbg.models.session import new_session, provider_label
from vbg.segment.base import Capabilities, register


class SelfieSegmenter(Capabilities):
    """Stretches the frame to the network input (no letterbox), returns its sigmoid output."""

    def __init__(self, name: str, size: tuple[int, int], provider: str = "auto",
                 threads: int | None = None) -> None:
        self.name = name
        self.input_size = size
        self.session = new_session(verified_path(name), provider, threads)
        self.provider = provider_label(self.session)
        self._in_name = self.session.get_inputs()[0].name
        w, h = size
        # Pre-allocated per-frame buffers (hot path).
        self._small = np.empty((h, w, 3), np.uint8)
        self._mirrored = np.empty((h, w, 3), np.uint8)
        self._rgb = np.empty((h, w, 3), np.uint8)
        self._input = np.empty((1, h, w, 3), np.float32)

    mirrors = True  # __call__(frame, mirror=True) segments the mirrored frame

    def __call__(self, frame: np.ndarray, mirror: bool = False) -> np.ndarray:
        """Alpha of `frame`, or with `mirror` of the frame flipped left-right (flipped after
        the resize: the same pixels, measured, without a frame-sized copy)."""
        w, h = self.input_size
        # A sharp (cubic) resize: the network was trained on sharp inputs (docs/decisions.md).
        cv2.resize(frame, (w, h), dst=self._small, interpolation=cv2.INTER_CUBIC)
        small = self._small
        if mirror:
            small = cv2.flip(self._small, 1, dst=self._mirrored)
        cv2.cvtColor(small, cv2.COLOR_BGR2RGB, dst=self._rgb)
        np.multiply(self._rgb, np.float32(1.0 / 255.0), out=self._input[0])
        out = self.session.run(None, {self._in_name: self._input})[0]
        return out[0, :, :, 0]

    def reset(self) -> None:
        """Stateless network: nothing to forget."""


@register("selfie")
def _selfie(provider: str = "auto", threads: int | None = None) -> SelfieSegmenter:
    return SelfieSegmenter("selfie", (256, 256), provider, threads)


@register("selfie-landscape")
def _selfie_landscape(provider: str = "auto", threads: int | None = None) -> SelfieSegmenter:
    return SelfieSegmenter("selfie-landscape", (256, 144), provider, threads)
