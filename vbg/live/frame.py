"""The live stages (typed) and the one CPU per-frame matte that the pipeline and `vbg eval` run."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from vbg.matte import onepass
from vbg.segment.base import Segmenter
from vbg.segment.thumbs import Thumbnailer

if TYPE_CHECKING:
    from vbg.gpu.frames import GpuFrameWork  # compiles CUDA kernels at import: types only
    from vbg.matte.onepass import MatteFields

# A low-res alpha smoothed over time: (alpha, small picture of the frame, media time s) -> alpha.
Smoother = Callable[[np.ndarray, np.ndarray, float], np.ndarray]
# (frame BGR, low-res alpha) -> the frame's uint8 matte.
Refiner = Callable[[np.ndarray, np.ndarray], np.ndarray]
# (frame BGR, uint8 matte, same_scene=...) -> the composited frame.
Compositor = Callable[..., np.ndarray]


@runtime_checkable
class OnePassRefiner(Protocol):
    """A refiner whose matte can stay low-res and be drawn inside the blend."""

    one_pass: bool  # true while its settings allow it (no erode, feather 0 or 1)

    def __call__(self, frame: np.ndarray, alpha_lowres: np.ndarray) -> np.ndarray: ...

    def guide(self, frame: np.ndarray, thumb: np.ndarray | None = None) -> np.ndarray: ...

    def fields(self, frame: np.ndarray, alpha_lowres: np.ndarray, feather: int | None = None,
               thumb: np.ndarray | None = None, guide_ready: bool = False) -> MatteFields: ...


@runtime_checkable
class OnePassCompositor(Protocol):
    """A compositor that draws a low-res matte (`OnePassRefiner.fields`) in its blend."""

    def __call__(self, frame: np.ndarray, alpha: np.ndarray,
                 same_scene: bool = False) -> np.ndarray: ...

    def render(self, frame: np.ndarray, fields: MatteFields, same_scene: bool = False,
               matte: np.ndarray | None = None, i420: np.ndarray | None = None,
               bgr: bool = True) -> np.ndarray: ...


@dataclass
class Stages:
    """The processing objects; each can be swapped or tested alone."""

    segmenter: Segmenter
    smoother: Smoother
    refiner: Refiner | OnePassRefiner
    compositor: Compositor | OnePassCompositor
    gpu: GpuFrameWork | None = None  # the whole frame on the GPU (CUDA path)


def one_pass(stages: Stages) -> bool:
    """Matte and blend in one pass, when both stages can (the live default)."""
    return (isinstance(stages.refiner, OnePassRefiner) and stages.refiner.one_pass
            and isinstance(stages.compositor, OnePassCompositor))


class FrameMatter:
    """The CPU path's matte of one frame: thumbnail, network, smoothing, refinement."""

    def __init__(self, stages: Stages,
                 add_stage: Callable[[str, float], None] | None = None) -> None:
        self.stages = stages
        self.thumbnailer = Thumbnailer()  # one small copy of each frame for every stage
        self.add_stage = add_stage or (lambda _name, _ms: None)
        self._checked: tuple[Any, Any] | None = None  # the stages `_capable` was found for
        self._capable = False

    def one_pass(self) -> bool:
        """`one_pass(stages)`; the protocol checks (~0.1 ms) redone only for new stages."""
        st = self.stages
        checked = self._checked
        if checked is None or checked[0] is not st.refiner or checked[1] is not st.compositor:
            self._checked = (st.refiner, st.compositor)
            self._capable = (isinstance(st.refiner, OnePassRefiner)
                             and isinstance(st.compositor, OnePassCompositor))
        return self._capable and st.refiner.one_pass  # type: ignore[union-attr]

    def prepare(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(thumbnail, small grey or BGR picture for the motion check and the smoother)."""
        t = time.perf_counter()
        thumb = self.thumbnailer(image)
        # One small grey picture for the motion checks and the refiner's guide, made once.
        refiner: Any = self.stages.refiner
        small = refiner.guide(image, thumb) if self.one_pass() else thumb
        self.add_stage("thumbnail", (time.perf_counter() - t) * 1e3)
        return thumb, small

    def matte(self, image: np.ndarray, thumb: np.ndarray, small: np.ndarray,
              media_time: float) -> Any:
        """The matte: low-res fields for a one-pass compositor, else a uint8 HxW image."""
        st = self.stages
        segmenter: Any = st.segmenter
        refiner: Any = st.refiner
        t0 = time.perf_counter()
        # The network takes the thumbnail only when it holds the frame's own pixels
        # (docs/decisions.md: "The network's input from the thumbnail").
        if self.thumbnailer.exact and segmenter.takes_thumb:
            low = segmenter(image, thumb=thumb)
        else:
            low = segmenter(image)
        t1 = time.perf_counter()
        low = st.smoother(low, small, media_time)  # needs only a small picture
        t2 = time.perf_counter()
        if self.one_pass():
            matte = refiner.fields(image, low, thumb=thumb, guide_ready=True)
        else:
            matte = refiner(image, low)
        t3 = time.perf_counter()
        self.add_stage("inference", (t1 - t0) * 1e3)
        self.add_stage("smoothing", (t2 - t1) * 1e3)
        self.add_stage("refine", (t3 - t2) * 1e3)
        return matte

    @staticmethod
    def as_image(image: np.ndarray, matte: Any) -> np.ndarray:
        """`matte()`'s result as a new uint8 HxW image (low-res fields drawn at full size)."""
        if isinstance(matte, np.ndarray):
            return matte.copy()
        return onepass.draw(matte, image, matte=np.empty(image.shape[:2], np.uint8))

    def reset(self) -> None:
        """A new scene: forget the network's and the smoother's state."""
        for stage in (self.stages.segmenter, self.stages.smoother):
            reset = getattr(stage, "reset", None)  # plain functions have no state
            if reset is not None:
                reset()
