"""Live mode on the command line (`vbg` with no subcommand): flags, settings, run, signals."""

from __future__ import annotations

import argparse
import signal
import time
from pathlib import Path
from typing import Any

from vbg import outputs
from vbg.errors import ConfigError, VbgError
from vbg.live import config
from vbg.live.session import build_live, stderr_log


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("live mode (defaults from vbg/live/default.toml)")
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
    a("--rvm-size", dest="rvm_size", type=int, metavar="PX",
      help="RVM only: long side of the picture the network works on internally")
    a("--zoom-model", dest="zoom_model", metavar="NAME",
      help="network for the zoomed crop ('' = the same as --model)")
    a("--no-reuse-still", dest="reuse_still", action="store_false", default=None,
      help="run the network on every frame, even while nothing moves")
    a("--smoothing-tau", dest="smoothing.tau", type=float, metavar="S",
      help="time constant (seconds) of the temporal smoothing")
    a("--no-refine-guided", dest="refine.guided", action="store_false", default=None,
      help="no edge refinement guided by the frame")
    a("--alpha-threshold", dest="refine.alpha_threshold", type=float, metavar="T",
      help="centre of the matte contrast curve (0-1)")
    a("--contrast", dest="refine.contrast", type=float, metavar="C",
      help="contrast of the matte edge (1 = unchanged)")
    a("--erode", dest="refine.erode", type=int, metavar="PX",
      help="shrink (positive) or grow (negative) the matte")
    a("--feather", dest="refine.feather", type=int, metavar="PX",
      help="soften the matte edge (0 = off)")
    a("--no-zoom", dest="zoom", action="store_false", default=None,
      help="no second pass on a crop around a small person")
    a("--no-on-demand", dest="on_demand", action="store_false", default=None,
      help="keep the camera and the pipeline running while no application reads the virtual "
      "camera")
    a("--on-demand", dest="on_demand", action="store_true", default=None,
      help="idle (camera released) while no application reads the virtual camera (default)")
    a("--provider", choices=["auto", "cuda", "cpu"], help="inference provider")
    a("--threads", type=int, metavar="N", help="inference threads (0 = automatic)")
    a("--frame-threads", dest="frame_threads", type=int, metavar="N",
      help="threads for the per-frame image work (default 0: automatic, one while it keeps "
      "up; N: always N)")
    a("--output", metavar="FILE", help="write the composited video to FILE (no virtual "
      f"camera); {outputs.RULE}")
    a("--matte-output", dest="matte_output", metavar="FILE",
      help="write the alpha matte as a grey video (the same rule as --output)")
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
             "blur_refresh", "on_demand", "rvm_size", "zoom_model", "reuse_still",
             "smoothing.tau", "refine.guided", "refine.alpha_threshold", "refine.contrast",
             "refine.erode", "refine.feather")
# settings key -> the flag that sets it, where the names differ
FLAG_NAMES = {"smoothing.tau": "--smoothing-tau", "refine.guided": "--no-refine-guided",
              "refine.alpha_threshold": "--alpha-threshold", "refine.contrast": "--contrast",
              "refine.erode": "--erode", "refine.feather": "--feather",
              "reuse_still": "--no-reuse-still", "zoom": "--no-zoom"}


def settings_from(args: argparse.Namespace) -> dict[str, Any]:
    """Defaults < --config FILE (else ~/.config/vbg/config.toml if it exists) < flags."""
    cfg = args.config
    if cfg is None and config.USER_CONFIG.is_file():
        cfg = config.USER_CONFIG
    sources: dict[str, str] = {}
    settings = config.load(cfg, sources)
    flags = {k: getattr(args, k, None) for k in LIVE_KEYS}
    if flags["fps"] is not None:
        flags["fps"] = float(flags["fps"])
    sources.update({k: f"flag {FLAG_NAMES.get(k, '--' + k.replace('_', '-'))}"
                    for k, v in flags.items()
                    if v is not None})
    settings = config.apply_flags(settings, flags)
    if args.no_smoothing:
        settings["smoothing"]["enabled"] = False
    settings["fps"] = float(settings["fps"])
    config.check_ranges(settings, sources)
    if args.frames is not None and args.frames < 1:
        raise ConfigError(f"--frames {args.frames} (flag --frames) is out of range: allowed "
                          "1 or more (leave it out to run until stopped)")
    return settings


def check_files(s: dict[str, Any], args: argparse.Namespace) -> None:
    """Outputs that are an input or each other: ConfigError before anything is opened."""
    def name(key: str) -> str:
        given = getattr(args, key, None) is not None
        return f"--{key.replace('_', '-')}" if given else f"{key} (config file)"

    outputs.check_outputs({name(k): s[k] or None for k in ("camera", "video", "background")},
                          {name(k): s[k] or None for k in ("output", "matte_output")})


def run(args: argparse.Namespace) -> int:
    s = settings_from(args)
    check_files(s, args)
    log = stderr_log
    holder: dict[str, Any] = {"live": None}
    _install_signals(holder, args, log)  # first: a stop during start-up is clean too
    live = build_live(s, realtime=not args.no_realtime, loop=args.loop,
                      max_frames=args.frames, vcam_backend=args.vcam_backend,
                      verbose=args.verbose, log=log)
    holder["live"] = live
    cpu0, wall0 = time.process_time(), time.monotonic()
    stats = live.run()
    wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
    n = max(1, stats.frames_out)
    log(live.pipeline.summary(cpu, n, wall))
    log(f"vbg: {stats.frames_out} frames in {wall:.1f} s ({stats.frames_out / wall:.1f} fps)")
    return 0


def _install_signals(holder: dict, args: argparse.Namespace, log) -> None:
    def on_stop(signum, _frame) -> None:
        live = holder["live"]
        if live is None:
            raise SystemExit(0)  # still starting: nothing to flush, leave at once
        live.stop()

    def on_hup(signum, _frame) -> None:
        live = holder["live"]
        if live is not None:  # files re-read on the pipeline thread, not in the handler
            live.pipeline.request_reload(reread)

    def reread(_p) -> None:  # on the pipeline thread: the new settings apply to this frame
        try:
            new = settings_from(args)
        except VbgError as e:
            log(f"vbg: reload failed, keeping the current settings: {e}")
            return
        holder["live"].apply_here(new)

    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGTERM, on_stop)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, on_hup)


