"""Apply new live settings to a running pipeline, between frames on its own thread."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vbg.live import build
from vbg.live.threads import FrameThreads

BACKGROUND_KEYS = ("background", "video", "blur", "color", "blur_refresh")
MODEL_KEYS = ("model", "provider", "threads", "zoom", "zoom_model", "rvm_size")


def apply_settings(p: Any, old: dict[str, Any], new: dict[str, Any],
                   log: Callable[[str], None]) -> None:
    """Swap what changed from `old` to `new` into pipeline `p` (call on the pipeline thread)."""
    if any(old[k] != new[k] for k in BACKGROUND_KEYS):
        previous = p.stages.compositor.background
        p.stages.compositor.background = build.build_background(new)  # raises: nothing swapped
        previous.close()
    if any(old[k] != new[k] for k in MODEL_KEYS):
        if p.stages.gpu is not None:
            log("vbg: a new model or provider on the CUDA path needs a restart; kept the "
                "current one")
        else:
            p.stages.segmenter = build.build_segmenter(new)
    segmenter = p.stages.gpu.matter if p.stages.gpu is not None else p.stages.segmenter
    p.stages.refiner = build.build_refiner(new, segmenter)
    smoother = build.build_smoother(new, segmenter)
    p.stages.smoother.enabled, p.stages.smoother.tau = smoother.enabled, smoother.tau
    gpu = p.stages.gpu
    if gpu is not None:
        gpu.smoothing = new["smoothing"]["enabled"] and not gpu.matter.temporal
        gpu.tau = new["smoothing"]["tau"]
        if not gpu.matter.temporal:
            gpu.threshold = type(gpu.threshold)(new["refine"]["alpha_threshold"])
            gpu.contrast = type(gpu.contrast)(new["refine"]["contrast"])
    p.mirror = new["mirror"]
    p.print_stats = new["stats"]
    p.frame_threads = FrameThreads(new["frame_threads"], p.fps)
