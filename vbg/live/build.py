"""Live-mode stage builders: LiveSettings -> segmenter, smoother, refiner, compositor, GPU path."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from vbg import warmup
from vbg.backgrounds import Background, make_background
from vbg.compose import composite
from vbg.errors import VbgError
from vbg.gpu import cuda_status, no_driver
from vbg.live.pipeline import Stages
from vbg.live.settings import LiveSettings
from vbg.matte import refine
from vbg.matte.refine import DEFAULTS, MatteRefiner
from vbg.matte.smoothing import TemporalSmoother
from vbg.models import verified_path
from vbg.models.session import new_session, provider_label
from vbg.segment import Segmenter, new_segmenter, thumbs
from vbg.segment.rvm import rvm_installed
from vbg.segment.zoom import TrackedSegmenter

Log = Callable[[str], None]


def build_background(s: LiveSettings) -> Background:
    background = make_background(image=s.background or None, video=s.video or None,
                                 blur=s.blur or None, color=s.color or None)
    if background.kind == "blur":
        background.refresh = max(1, s.blur_refresh)  # live: reuse the blurred room
    return background


def choose_model(s: LiveSettings) -> str:
    """`auto`: rvm when it is installed and a GPU provider really works, else the fast tier."""
    if s.model != "auto":
        return s.model
    if s.provider != "cpu" and rvm_installed() and cuda_works():
        return "rvm"
    return "selfie-landscape"


def cuda_works() -> bool:
    try:
        return provider_label(new_session(verified_path("selfie-landscape"), "auto")) == "cuda"
    except VbgError:
        return False


def build_segmenter(s: LiveSettings) -> Segmenter:
    name = choose_model(s)
    options = {"internal": s.rvm_size} if name == "rvm" else {}
    segmenter = new_segmenter(name, s.provider, s.threads or None, **options)
    if segmenter.name != "rvm" and s.zoom:
        zoom = None
        if s.zoom_model and s.zoom_model != segmenter.name:
            zoom = new_segmenter(s.zoom_model, s.provider, s.threads or None)
        segmenter = TrackedSegmenter(segmenter, zoom=zoom)
    return segmenter


def surely_cpu(s: LiveSettings) -> bool:
    """build_gpu(s) is None for sure, known without touching CUDA (which binds to a thread)."""
    return s.provider == "cpu" or no_driver()


def warm_segmenter(segmenter: Segmenter, size: tuple[int, int] | None) -> None:
    """One run on a blank frame of `size` (the network's first run allocates), then reset."""
    if size is not None:
        segmenter(np.zeros((size[1], size[0], 3), np.uint8))
        segmenter.reset()


def build_smoother(s: LiveSettings, segmenter: Segmenter | None = None) -> TemporalSmoother:
    """Adaptive smoothing, unless the model carries its own temporal state (RVM)."""
    temporal = segmenter is not None and segmenter.temporal
    return TemporalSmoother(tau=s.smoothing.tau, enabled=s.smoothing.enabled and not temporal)


def build_refiner(s: LiveSettings, segmenter: Segmenter | None = None) -> MatteRefiner:
    """Guided upsampling for low-res models; a full-resolution matte (RVM) is kept as it is."""
    r = s.refine
    if segmenter is not None and segmenter.full_resolution:
        # RVM's own matte: only erode/dilate applies (measured best as is: docs/decisions.md).
        params = replace(DEFAULTS, guided=False, threshold=0.5, contrast=1.0,
                         erode=r.erode, feather=0)
    else:
        params = replace(DEFAULTS, guided=r.guided, threshold=r.alpha_threshold,
                         contrast=r.contrast, erode=r.erode, feather=r.feather)
    return MatteRefiner(params)


def build_gpu(s: LiveSettings, log: Log | None = None):
    """The CUDA path (vbg.gpu) when onnxruntime runs on CUDA, numba.cuda runs kernels and a
    test blend on the GPU is right; else None, and the CPU path runs (saying why if asked
    for CUDA)."""
    if s.provider == "cpu":
        return None
    # First, as it fails at once without a driver: the model choice may start a CUDA session.
    works, what = cuda_status()
    if not works:
        if s.provider == "cuda" and log is not None:
            log(f"vbg: frames stay on the CPU: {what}")
        return None
    # Imported only now: these modules compile CUDA kernels at import, which needs a driver.
    from vbg.gpu.device import DeviceBuffers
    from vbg.gpu.frames import GpuFrameWork
    from vbg.gpu.matters import new_gpu_matter

    buffers = DeviceBuffers()
    try:  # a model without a GPU version says so here
        matter = new_gpu_matter(choose_model(s), buffers, s.provider, s.threads or None,
                                s.rvm_size)
    except VbgError as e:
        if s.provider == "cuda" and log is not None:
            log(f"vbg: frames stay on the CPU: {e}")
        return None
    r = s.refine
    gpu = GpuFrameWork(matter, buffers, smoothing=s.smoothing.enabled, tau=s.smoothing.tau,
                       threshold=None if matter.temporal else r.alpha_threshold,
                       contrast=None if matter.temporal else r.contrast)
    problem = gpu.self_check()
    if problem is not None:
        if log is not None:
            log(f"vbg: frames stay on the CPU: {problem}")
        return None
    gpu.warm_up()
    gpu.device_name = what
    return gpu


def build_stages(s: LiveSettings, log: Log | None = None) -> Stages:
    """Segmenter, smoother, refiner and compositor as live mode runs them, warmed up; with
    the CUDA path (`Stages.gpu`) when the GPU really works."""
    background = build_background(s)  # fails now, naming the path, if unreadable
    gpu = build_gpu(s, log)
    if gpu is not None:
        return Stages(gpu.matter, build_smoother(s, gpu.matter), build_refiner(s, gpu.matter),
                      composite.Compositor(background), gpu=gpu)
    segmenter = build_segmenter(s)
    stages = Stages(segmenter, build_smoother(s, segmenter), build_refiner(s, segmenter),
                    composite.Compositor(background, foreground=s.refine.foreground))
    warm_cpu_path()
    stages.smoother.warm_up()
    segmenter(np.zeros((64, 64, 3), np.uint8))  # the session's first run
    return stages


def warm_cpu_path() -> None:
    """Before the first CPU frame: every kernel compiled (or loaded), threads started."""
    composite.warm_up()
    refine.warm_up()
    thumbs.warm_up()
    warmup.warm_all()  # every kernel in every type the frames need
