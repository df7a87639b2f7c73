"""Apply new live settings to a running pipeline, between frames on its own thread."""

from __future__ import annotations

from collections.abc import Callable

from vbg.live import build
from vbg.live.build import warm_cpu_path
from vbg.live.pipeline import Pipeline
from vbg.live.settings import LiveSettings
from vbg.live.stillscene import StillScene
from vbg.live.threads import FrameThreads

BACKGROUND_KEYS = ("background", "video", "blur", "color", "blur_refresh")
MODEL_KEYS = ("model", "provider", "threads", "zoom", "zoom_model", "rvm_size")
CAMERA_KEYS = ("camera", "size", "pixel_format", "wait_for_camera")  # the session reopens it
# Fixed once the outputs are open (their size, rate and devices): these wait for a restart.
RESTART_KEYS = ("fps", "output", "matte_output", "virtual_camera", "device", "preview",
                "on_demand")


def apply_settings(p: Pipeline, old: LiveSettings, new: LiveSettings,
                   log: Callable[[str], None], background: object = None,
                   segmenter: object = None) -> None:
    """Swap what changed from `old` to `new` into pipeline `p` (call on the pipeline thread);
    `background` / `segmenter` (CPU path): the new one already built off this thread, else
    it is built here."""
    if any(old.get(k) != new.get(k) for k in BACKGROUND_KEYS):
        previous = p.stages.compositor.background
        p.stages.compositor.background = (  # raises: nothing swapped
            build.build_background(new) if background is None else background)
        previous.close()
    if any(old.get(k) != new.get(k) for k in MODEL_KEYS):
        # Either path to either path: the CUDA path when it works for the new model, else
        # the CPU one (built first: a failure leaves the running stages as they were).
        gpu = None if segmenter is not None else build.build_gpu(new, log)
        if gpu is not None:
            segmenter = gpu.matter
        elif segmenter is None:
            segmenter = build.build_segmenter(new)
        if gpu is None and p.stages.gpu is not None:
            warm_cpu_path()  # the CPU kernels were never needed so far
        p.stages.gpu, p.stages.segmenter = gpu, segmenter
    segmenter = p.stages.gpu.matter if p.stages.gpu is not None else p.stages.segmenter
    p.stages.refiner = build.build_refiner(new, segmenter)
    if hasattr(p.stages.compositor, "foreground"):
        p.stages.compositor.foreground = new.refine.foreground
    smoother = build.build_smoother(new, segmenter)
    p.stages.smoother.enabled, p.stages.smoother.tau = smoother.enabled, smoother.tau
    gpu = p.stages.gpu
    if gpu is not None:
        gpu.smoothing = new.smoothing.enabled and not gpu.matter.temporal
        gpu.tau = new.smoothing.tau
        if not gpu.matter.temporal:
            gpu.threshold = type(gpu.threshold)(new.refine.alpha_threshold)
            gpu.contrast = type(gpu.contrast)(new.refine.contrast)
    if old.reuse_still != new.reuse_still:
        p.still = StillScene() if new.reuse_still else None
    later = [k for k in RESTART_KEYS if old.get(k) != new.get(k)]
    if later:
        log(f"vbg: {', '.join(later)} will change at the next start (the outputs stay open)")
    p.mirror = new.mirror
    p.print_stats = new.stats
    p.frame_threads = FrameThreads(new.frame_threads, p.fps)
