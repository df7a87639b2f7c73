"""Live mode (`vbg` with no subcommand): camera -> matte -> background -> "VBG Camera"."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from vbg.errors import VbgError
from vbg.live import config
from vbg.live.threads import FrameThreads


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("live mode (defaults from configs/default.toml)")
    a = g.add_argument
    a("--config", type=Path, metavar="FILE", help="settings file (TOML) over the defaults")
    a("--camera", metavar="SRC", help="camera index, /dev/videoN, video file or stream URL")
    a("--size", metavar="WxH", help="capture size asked of the camera, e.g. 1280x720")
    a("--fps", type=float, metavar="N", help="frame rate of the camera and the output")
    a("--pixel-format", dest="pixel_format", choices=["mjpg", "yuyv"], help="camera format")
    a("--wait-for-camera", dest="wait_for_camera", action="store_true", default=None,
      help="wait for the camera to appear instead of failing")
    a("--background", metavar="IMG", help="background image")
    a("--video", metavar="FILE", help="looping background video")
    a("--blur", type=int, metavar="N", help="blur the real background (strength 1-100)")
    a("--color", metavar="C", help="solid colour: #rrggbb, r,g,b or a name (white, blue...)")
    a("--blur-refresh", dest="blur_refresh", type=int, metavar="N",
      help="reuse the blurred room up to N frames while it does not change (1 = every frame)")
    a("--mirror", action="store_true", default=None, help="flip the picture horizontally")
    a("--model", metavar="NAME",
      help="segmentation model: auto, selfie-landscape, selfie, rvm (`vbg models`)")
    a("--no-zoom", dest="zoom", action="store_false", default=None,
      help="no second pass on a crop around a small person")
    a("--provider", choices=["auto", "cuda", "cpu"], help="inference provider")
    a("--threads", type=int, metavar="N", help="inference threads (0 = automatic)")
    a("--frame-threads", dest="frame_threads", type=int, metavar="N",
      help="threads for the per-frame image work (default 0: automatic, one while it keeps "
      "up; N: always N)")
    a("--output", metavar="FILE", help="write the composited video to FILE (no virtual camera)")
    a("--matte-output", dest="matte_output", metavar="FILE",
      help="write the alpha matte as a grey video")
    a("--virtual-camera", dest="virtual_camera", action="store_true", default=None,
      help="keep the virtual camera on as well as --output")
    a("--device", metavar="DEV", help="v4l2loopback device for the virtual camera")
    a("--vcam-backend", dest="vcam_backend", metavar="NAME",
      help="pyvirtualcam backend (v4l2loopback, obs, unitycapture; default: the platform's)")
    a("--loop", action="store_true", help="file sources: start again at the end")
    a("--preview", action="store_true", default=None, help="show a preview window")
    a("--frames", type=int, metavar="N", help="stop after N output frames")
    a("--no-realtime", dest="no_realtime", action="store_true",
      help="file sources: process every frame in order, as fast as possible")
    a("--no-smoothing", dest="no_smoothing", action="store_true",
      help="turn temporal smoothing off")
    a("--stats", action="store_true", default=None, help="print fps, CPU and latency")
    a("-v", "--verbose", action="store_true", help="say more about what runs")


LIVE_KEYS = ("camera", "size", "fps", "pixel_format", "wait_for_camera", "background", "video",
             "blur", "color", "mirror", "model", "provider", "threads", "output", "matte_output",
             "virtual_camera", "device", "preview", "stats", "zoom", "frame_threads",
             "blur_refresh")


def settings_from(args: argparse.Namespace) -> dict[str, Any]:
    """Defaults < --config FILE (else ~/.config/vbg/config.toml if it exists) < flags."""
    cfg = args.config
    if cfg is None and config.USER_CONFIG.is_file():
        cfg = config.USER_CONFIG
    settings = config.load(cfg)
    flags = {k: getattr(args, k, None) for k in LIVE_KEYS}
    if flags["fps"] is not None:
        flags["fps"] = float(flags["fps"])
    settings = config.apply_flags(settings, flags)
    if args.no_smoothing:
        settings["smoothing"]["enabled"] = False
    settings["fps"] = float(settings["fps"])
    if settings["fps"] <= 0 or settings["fps"] > 240:
        raise VbgError(f"--fps {settings['fps']:g} is out of range (1-240)")
    return settings


def build_background(s: dict[str, Any]):
    from vbg.backgrounds import make_background

    background = make_background(image=s["background"] or None, video=s["video"] or None,
                                 blur=s["blur"] or None, color=s["color"] or None)
    if background.kind == "blur":
        background.refresh = max(1, s["blur_refresh"])  # live: reuse the blurred room
    return background


def choose_model(s: dict[str, Any]) -> str:
    """`auto`: rvm when it is installed and a GPU provider really works, else the fast tier."""
    if s["model"] != "auto":
        return s["model"]
    from vbg.segment.rvm import rvm_installed

    if s["provider"] != "cpu" and rvm_installed() and cuda_works():
        return "rvm"
    return "selfie-landscape"


def cuda_works() -> bool:
    from vbg.models import verified_path
    from vbg.models.session import new_session, provider_label

    try:
        return provider_label(new_session(verified_path("selfie-landscape"), "auto")) == "cuda"
    except VbgError:
        return False


def build_segmenter(s: dict[str, Any]):
    from vbg.segment import new_segmenter
    from vbg.segment.zoom import TrackedSegmenter

    segmenter = new_segmenter(choose_model(s), s["provider"], s["threads"] or None)
    if segmenter.name == "rvm":
        segmenter.internal = s["rvm_size"]
    elif s["zoom"]:
        zoom = None
        if s["zoom_model"] and s["zoom_model"] != segmenter.name:
            zoom = new_segmenter(s["zoom_model"], s["provider"], s["threads"] or None)
        segmenter = TrackedSegmenter(segmenter, zoom=zoom)
    return segmenter


def build_smoother(s: dict[str, Any], segmenter=None):
    """Adaptive smoothing, unless the model carries its own temporal state (RVM)."""
    from vbg.matte.smoothing import TemporalSmoother

    enabled = s["smoothing"]["enabled"] and not getattr(segmenter, "temporal", False)
    return TemporalSmoother(tau=s["smoothing"]["tau"], enabled=enabled)


def build_refiner(s: dict[str, Any], segmenter=None):
    """Guided upsampling for low-res models; a full-resolution matte (RVM) is kept as it is."""
    from dataclasses import replace

    from vbg.matte.refine import DEFAULTS, MatteRefiner

    r = s["refine"]
    if getattr(segmenter, "full_resolution", False):
        # RVM's own matte: only erode/dilate applies (its soft alpha is measured best as is:
        # DAVIS clip IoU 0.930 / dtSSD 5.9 against 0.925 / 6.1 through the fast tier's curve).
        params = replace(DEFAULTS, guided=False, threshold=0.5, contrast=1.0,
                         erode=r["erode"], feather=0)
    else:
        params = replace(DEFAULTS, guided=r["guided"], threshold=r["alpha_threshold"],
                         contrast=r["contrast"], erode=r["erode"], feather=r["feather"])
    return MatteRefiner(params)


def build_gpu(s: dict[str, Any], log=None):
    """The CUDA path (vbg.gpu) when onnxruntime runs on CUDA, numba.cuda runs kernels and a
    test blend on the GPU is right; else None, and the CPU path runs (saying why if asked
    for CUDA)."""
    if s["provider"] == "cpu":
        return None
    from vbg.gpu import cuda_status

    # First, as it fails at once without a driver: the model choice may start a CUDA session.
    works, what = cuda_status()
    if not works:
        if s["provider"] == "cuda" and log is not None:
            log(f"vbg: frames stay on the CPU: {what}")
        return None
    from vbg.gpu.device import DeviceBuffers
    from vbg.gpu.frames import GpuFrameWork
    from vbg.gpu.matters import new_gpu_matter

    buffers = DeviceBuffers()
    try:  # a model without a GPU version says so here
        matter = new_gpu_matter(choose_model(s), buffers, s["provider"], s["threads"] or None,
                                s["rvm_size"])
    except VbgError as e:
        if s["provider"] == "cuda" and log is not None:
            log(f"vbg: frames stay on the CPU: {e}")
        return None
    r = s["refine"]
    gpu = GpuFrameWork(matter, buffers, smoothing=s["smoothing"]["enabled"],
                       tau=s["smoothing"]["tau"],
                       threshold=None if matter.temporal else r["alpha_threshold"],
                       contrast=None if matter.temporal else r["contrast"])
    problem = gpu.self_check()
    if problem is not None:
        if log is not None:
            log(f"vbg: frames stay on the CPU: {problem}")
        return None
    gpu.warm_up()
    gpu.device_name = what
    return gpu


def build_stages(s: dict[str, Any], log=None):
    """Segmenter, smoother, refiner and compositor as live mode runs them, warmed up; with
    the CUDA path (`Stages.gpu`) when the GPU really works."""
    from vbg.compose import composite
    from vbg.live.pipeline import Stages
    from vbg.matte import refine
    from vbg.segment import thumbs

    background = build_background(s)  # fails now, naming the path, if unreadable
    gpu = build_gpu(s, log)
    if gpu is not None:
        return Stages(gpu.matter, build_smoother(s, gpu.matter), build_refiner(s, gpu.matter),
                      composite.Compositor(background), gpu=gpu)
    segmenter = build_segmenter(s)
    stages = Stages(segmenter, build_smoother(s, segmenter), build_refiner(s, segmenter),
                    composite.Compositor(background))
    # Warm everything before the first frame: kernels compiled, threads started, session run.
    composite.warm_up()
    refine.warm_up()
    thumbs.warm_up()
    stages.smoother.warm_up()
    segmenter(np.zeros((64, 64, 3), np.uint8))
    return stages


def run(args: argparse.Namespace) -> int:
    from vbg.capture import CaptureThread, open_source
    from vbg.live.pipeline import Pipeline
    from vbg.sinks import make_sinks

    s = settings_from(args)
    log = _logger()
    holder: dict[str, Pipeline | None] = {"pipeline": None}
    _install_signals(holder, args, log)  # first: a stop during start-up is clean too
    size = config.parse_size(s["size"]) if s["size"] else None
    t0 = time.perf_counter()
    stages = build_stages(s, log)
    segmenter = stages.segmenter
    why = " (chosen by --model auto)" if s["model"] == "auto" else ""
    log(f"vbg: model {segmenter.name}{why} on {segmenter.provider.upper()}"
        + ("; CUDA is not usable here, see `vbg doctor`" if s["provider"] == "auto"
           and segmenter.provider == "cpu" else "")
        + (f"; whole frames on the GPU ({stages.gpu.device_name})" if stages.gpu else ""))
    if args.verbose:
        log(f"vbg: built and warmed up in {(time.perf_counter() - t0) * 1e3:.0f} ms")

    def opener():
        return open_source(str(s["camera"]), size=size, fps=s["fps"],
                           pixel_format=s["pixel_format"])

    capture = CaptureThread(opener, realtime=not args.no_realtime,
                            wait_for_camera=s["wait_for_camera"], loop=args.loop)
    sinks = make_sinks(output=s["output"] or None, matte_output=s["matte_output"] or None,
                       virtual_camera=True if s["virtual_camera"] else None,
                       preview=s["preview"], device=s["device"] or None,
                       backend=args.vcam_backend)
    capture.start()
    info = capture.stats().get("info")
    if info is not None:
        log(f"vbg: camera {info}")
    pipeline = Pipeline(capture, stages, sinks,
                        fps=s["fps"], realtime=not args.no_realtime, max_frames=args.frames,
                        mirror=s["mirror"], stats=s["stats"], log=log,
                        reuse_still=s["reuse_still"], frame_threads=s["frame_threads"])
    holder["pipeline"] = pipeline
    for sink in sinks:
        log(f"vbg: output -> {sink.name}")
    cpu0, wall0 = time.process_time(), time.monotonic()
    stats = pipeline.run()
    wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
    n = max(1, stats.frames_out)
    log(pipeline.summary(cpu, n, wall))
    log(f"vbg: {stats.frames_out} frames in {wall:.1f} s ({stats.frames_out / wall:.1f} fps)")
    return 0


def _install_signals(holder: dict, args: argparse.Namespace, log) -> None:
    def on_stop(signum, _frame) -> None:
        pipeline = holder["pipeline"]
        if pipeline is None:
            raise SystemExit(0)  # still starting: nothing to flush, leave at once
        pipeline.stop()

    def on_hup(signum, _frame) -> None:
        if holder["pipeline"] is not None:
            holder["pipeline"].request_reload(rebuild)

    def rebuild(p) -> None:
        try:
            s = settings_from(args)
            new_bg = build_background(s)
        except VbgError as e:
            log(f"vbg: reload failed, keeping the current settings: {e}")
            return
        old = p.stages.compositor.background
        p.stages.compositor.background = new_bg
        p.stages.refiner = build_refiner(s, p.stages.segmenter)
        p.stages.smoother.enabled = build_smoother(s, p.stages.segmenter).enabled
        if p.stages.gpu is not None:
            p.stages.gpu.smoothing = p.stages.smoother.enabled
        p.frame_threads = FrameThreads(s["frame_threads"], p.fps)
        old.close()
        log("vbg: reloaded configuration and background")

    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGTERM, on_stop)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, on_hup)


def _logger():
    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    return log
