"""`vbg bench`: CPU, fps, latency and memory of the real live pipeline, and of the typical tool.

What is measured (after the first --warmup frames):
- cpu_ms_per_frame: time.process_time() of the whole process (every thread: capture, onnxruntime,
  numba) over the measured frames, divided by their number. Sleeping and waiting cost nothing.
- stage_ms: medians (over the last <= 2000 measured frames) of wall time per stage. decode =
  Source.read() on the capture thread (~0 for the in-memory clip); preprocess = the frame's
  shared thumbnail (vbg.segment.thumbs) + resize, colour and scaling into the network input;
  inference = onnxruntime's run() alone; refine = the matte's low-res fields; composite = the
  one pass that draws the matte and blends (onepass.py), preparing the background included
  (composite_background, e.g. the blur), and the I420 planes the virtual camera takes;
  sink = handing them to the NullSink (a BGR filler is converted there), without a device.
- latency_ms: capture timestamp (taken when read() returned) -> sink write done.
  lossless mode (default): every frame processed as fast as possible; the capture thread runs up
  to 3 frames ahead, so the latency includes waiting in that queue (throughput-bound, not what a
  camera user sees). paced mode (--fps F): frames arrive at F fps like a camera and live mode's
  paced loop runs (latest frame wins); the latency is what a viewer of the virtual camera gets.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import deque
from typing import Any

import cv2

from vbg.backgrounds import read_image
from vbg.capture import CaptureThread, Source, open_source
from vbg.errors import ConfigError, VbgError
from vbg.live import config
from vbg.live.build import build_stages
from vbg.live.pipeline import Pipeline
from vbg.live.settings import LiveSettings
from vbg.measure import idle
from vbg.measure.baseline import TypicalTool
from vbg.measure.benchclip import RING_FRAMES, RingSource, TimedSource, make_clip
from vbg.measure.probes import (
    BackgroundTimer,
    MeasuringSink,
    NetworkClock,
    SegmenterTimer,
    SessionTimer,
    Window,
    latency,
    machine,
    median,
)
from vbg.sinks import NullSink

DEFAULT_SIZE = "1280x720"
STAGES = ("decode", "preprocess", "inference", "smoothing", "refine", "composite",
          "composite_background", "sink")
KEYS = ("size", "frames", "warmup", "mode", "fps", "model", "provider", "gpu", "background",
        "source", "stage_ms", "network_runs_per_frame", "cpu_ms_per_frame", "wall_fps",
        "latency_ms_p50", "latency_ms_p95", "rss_mb", "rss_growth_mb", "dropped", "fillers",
        "frame_threads", "machine")
BASELINE_KEYS = ("baseline_stage_ms", "baseline_cpu_ms_per_frame", "baseline_wall_fps",
                 "baseline_latency_ms_p50", "baseline_latency_ms_p95", "baseline_cpu_ratio")


def add_arguments(p: argparse.ArgumentParser) -> None:
    a = p.add_argument
    a("--size", metavar="WxH", help=f"frame size (default {DEFAULT_SIZE}; a --source file: "
      "its own size unless given)")
    a("--frames", type=int, default=300, metavar="N", help="measured frames (default 300)")
    a("--warmup", type=int, default=30, metavar="N",
      help="frames run first and left out of every figure (default 30)")
    a("--model", metavar="NAME", help="segmentation model (default: live mode's, `auto`)")
    a("--provider", default="auto", choices=["auto", "cuda", "cpu"], help="inference provider")
    a("--threads", type=int, default=0, metavar="N", help="inference threads (0 = automatic)")
    a("--frame-threads", dest="frame_threads", type=int, metavar="N",
      help="threads for the per-frame image work (default: live mode's, 0 = automatic)")
    a("--source", metavar="FILE", help="a video file or stream instead of the in-memory clip "
      "(its decode time is then reported)")
    a("--background", metavar="IMG", help="background image (default: live mode's blur)")
    a("--blur", type=int, metavar="N", help="blur strength 1-100 (default: live mode's)")
    a("--still", action="store_true",
      help="the person holds still (only sensor noise): measures the still-scene matte reuse")
    a("--fps", type=float, metavar="F", help="paced mode: frames arrive at F fps like a camera "
      "(default: lossless, as fast as possible)")
    a("--baseline", action="store_true",
      help="also run the typical Python tool on the same frames and compare CPU")
    a("--json", action="store_true", help="print the results as one JSON object (last line)")
    a("--no-reader", dest="no_reader", action="store_true",
      help="measure on-demand instead: idle CPU while nobody reads a stand-in virtual camera, "
      "whether the camera stays open, and the time back to frames for a reader")
    a("--seconds", type=float, metavar="N", help="--no-reader: seconds of idling measured "
      "(default 10)")


# -- vbg's pipeline -------------------------------------------------------------------------

def live_settings(args: argparse.Namespace) -> LiveSettings:
    """Live mode's default settings with the bench's flags applied."""
    flags = {"model": args.model, "provider": args.provider, "threads": args.threads,
             "frame_threads": args.frame_threads,
             "background": args.background, "blur": args.blur}
    settings = config.apply_flags(LiveSettings(), flags)
    settings.check({k: f"flag --{k.replace('_', '-')}" for k, v in flags.items() if v is not None})
    return settings


def run_vbg(stages, opener, fps: float | None, warmup: int, frames: int,
            frame_threads: int = 0) -> dict[str, Any]:
    """Frames through CaptureThread + Pipeline into the measuring NullSink; the figures."""
    extra: dict[str, deque] = {name: deque(maxlen=2000)
                               for name in ("decode", "network", "bg")}
    seg, clock = stages.segmenter, NetworkClock()
    # Time every network run apart from its preprocessing (the zoom wrapper holds two), summed
    # per frame: a zoomed frame runs the network more than once.
    timed = False
    gpu = stages.gpu  # the CUDA path times its own stages (each ends in a stream sync)
    for net in () if gpu is not None else seg.networks():
        if net.session is not None:
            net.session = SessionTimer(net.session, clock)
            timed = True
    if timed:
        stages.segmenter = SegmenterTimer(seg, clock, extra["network"])
    stages.compositor.background = BackgroundTimer(stages.compositor.background, extra["bg"])
    window = Window((lambda: gpu.matter.runs) if gpu is not None else (lambda: clock.total_runs))
    paced = bool(fps)
    # Lossless: each frame is read when the pipeline asks for it, so latency is the pipeline's
    # own (capture -> sink), not time spent queued behind earlier frames.
    capture = CaptureThread(lambda: opener(extra["decode"]), realtime=paced, loop=True,
                            read_ahead=0)

    def on_warm() -> None:
        for values in (*pipeline.stats.stage_ms.values(), *extra.values()):
            values.clear()
        pipeline.stats.latencies_ms.clear()

    sink = MeasuringSink(warmup, frames, window, on_warm)
    capture.start()
    pipeline = Pipeline(capture, stages, [sink], fps=fps or 30.0, realtime=paced,
                        max_frames=warmup + frames, log=_log, frame_threads=frame_threads)
    if warmup == 0:
        window.start()
    stats = pipeline.run()
    if sink.written < warmup + frames:
        raise VbgError(f"the input ended after {sink.written} frames; ask for fewer --frames")
    st = stats.stage_ms
    # Both hold one entry per segmented frame since warm-up (cleared together by on_warm).
    total, network = list(st.get("inference", ())), list(extra["network"])
    if gpu is not None:  # upload + input kernel; the network alone
        preprocess = median(st.get("preprocess", ()))
    elif timed:
        preprocess = (median([a - b for a, b in zip(total, network, strict=True)])
                      + (median(st.get("thumbnail", ())) or 0.0))
    else:
        preprocess = None
    stage_ms = {
        "decode": median(extra["decode"]),
        "preprocess": preprocess,
        "inference": median(network) if timed else median(total),
        "smoothing": median(st.get("smoothing", ())),
        "refine": median(st.get("refine", ())),
        "composite": median(st.get("composite", ())),
        "composite_background": median(extra["bg"]),
        "sink": median(st.get("sink", ())),
    }
    p50, p95 = latency(stats.latencies_ms)
    return {"stage_ms": stage_ms,
            # Every measured frame counts: a reused matte (still scene) runs no network.
            "network_runs_per_frame": (window.counted / frames if timed or gpu is not None
                                       else None),
            **window.figures(frames), "latency_ms_p50": p50,
            "latency_ms_p95": p95, "dropped": capture.stats()["dropped"] + stats.skipped_fast,
            "fillers": stats.fillers,
            "frame_threads": (f"{pipeline.frame_threads.count}"  # type: ignore[union-attr]
                              + (" (auto)" if not frame_threads else ""))}


# -- the typical tool -----------------------------------------------------------------------

def run_baseline(tool, opener, fps: float | None, warmup: int, frames: int) -> dict[str, Any]:
    """The typical tool's single-threaded loop: read, compose, convert for the camera."""
    decode_ms: deque = deque(maxlen=2000)
    source: Source = opener(decode_ms)
    sink, window = NullSink(), Window()
    latencies: deque = deque(maxlen=2000)
    sink_ms: deque = deque(maxlen=2000)
    period = 1.0 / fps if fps else 0.0
    due = time.monotonic()
    for i in range(warmup + frames):
        if i == warmup:
            tool.clear_stats()
            for values in (latencies, sink_ms, decode_ms):
                values.clear()
            window.start()
        if period:  # a camera delivers the next frame at its own pace
            time.sleep(max(0.0, due - time.monotonic()))
            due = max(due + period, time.monotonic() - period)
        frame = source.read()
        if frame is None:  # file ended: start it again, as the vbg run loops it
            source.close()
            source = opener(decode_ms)
            frame = source.read()
        captured = time.monotonic()
        out = tool(frame)
        t0 = time.perf_counter()
        if i == 0:
            sink.open(out.shape[1], out.shape[0], fps or 30.0)
        sink.write(out)
        sink_ms.append((time.perf_counter() - t0) * 1e3)
        latencies.append((time.monotonic() - captured) * 1e3)
    window.stop()
    source.close()
    figures = window.figures(frames)
    p50, p95 = latency(latencies)
    stage_ms = {"decode": median(decode_ms),
                **{name: median(v) for name, v in tool.stage_ms.items()},
                "sink": median(sink_ms)}
    return {"baseline_stage_ms": stage_ms,
            "baseline_cpu_ms_per_frame": figures["cpu_ms_per_frame"],
            "baseline_wall_fps": figures["wall_fps"],
            "baseline_latency_ms_p50": p50, "baseline_latency_ms_p95": p95}


# -- the command ----------------------------------------------------------------------------

def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _check(args: argparse.Namespace) -> None:
    if args.frames < 1:
        raise ConfigError(f"--frames {args.frames}: give 1 or more")
    if args.warmup < 0:
        raise ConfigError(f"--warmup {args.warmup}: give 0 or more")
    if args.baseline and args.warmup < 1:
        raise ConfigError("--baseline needs --warmup 1 or more (the first frames allocate)")
    if args.fps is not None and not 1 <= args.fps <= 240:
        raise ConfigError(f"--fps {args.fps:g} is out of range (1-240)")
    if args.background and args.blur:
        raise ConfigError("choose one background: --background IMG or --blur N, not both")


def _openers(args: argparse.Namespace, size: tuple[int, int] | None):
    """(opener(decode_ms) -> Source for vbg, description, frame size)."""
    if args.source:
        probe = open_source(args.source)  # fails now, naming the file, if unusable
        native = (probe.info.width, probe.info.height)
        probe.close()

        def opener(decode_ms: deque) -> Source:
            return TimedSource(open_source(args.source), decode_ms, size, args.fps)

        return opener, args.source, size or native
    size = size or config.parse_size(DEFAULT_SIZE)
    _log(f"vbg bench: building a {RING_FRAMES}-frame {size[0]}x{size[1]} clip in memory")
    clip = make_clip(size, still=args.still)

    def ring(decode_ms: deque) -> Source:
        return TimedSource(RingSource(clip, args.fps or 0.0), decode_ms)

    return ring, RingSource(clip).info.name, size


def run(args: argparse.Namespace) -> int:
    _check(args)
    size = config.parse_size(args.size) if args.size else None
    s = live_settings(args)
    # Stages first, in live mode's order, so the process is set up as live mode sets it up
    # before the clip builder runs any kernel.
    default_cv2_threads = cv2.getNumThreads()
    stages = build_stages(s, _log)
    if args.no_reader and not args.fps:
        args.fps = 30.0  # the clip comes at a camera's pace
    opener, source_name, size = _openers(args, size)
    if args.no_reader:
        figures = {"size": f"{size[0]}x{size[1]}", "model": stages.segmenter.name,
                   "source": source_name,
                   **idle.run(args, stages, lambda: opener(deque())), "machine": machine()}
        print(idle.report(figures))
        if args.json:
            print(json.dumps(figures))
        return 0
    background = (f"image {s.background}" if s.background
                  else f"blur {getattr(stages.compositor.background, 'strength', '?')}")
    _log(f"vbg bench: vbg pipeline, {args.warmup} + {args.frames} frames")
    result: dict[str, Any] = {
        "size": f"{size[0]}x{size[1]}", "frames": args.frames, "warmup": args.warmup,
        "mode": "paced" if args.fps else "lossless", "fps": args.fps,
        "model": stages.segmenter.name, "provider": stages.segmenter.provider,
        # The CUDA path's device (upload, matte, blend, download on it), else None.
        "gpu": getattr(stages.gpu, "device_name", None),
        "background": background, "source": source_name,
        **run_vbg(stages, opener, args.fps, args.warmup, args.frames, s.frame_threads),
        "machine": machine(),
    }
    if args.baseline:
        _log("vbg bench: the typical tool, same frames")
        cv2.setNumThreads(default_cv2_threads)  # as the typical tool runs: OpenCV's default
        image = read_image(s.background) if s.background else None
        tool = TypicalTool(image, s.threads or None)
        result.update(run_baseline(tool, opener, args.fps, args.warmup, args.frames))
        result["baseline_cpu_ratio"] = (result["baseline_cpu_ms_per_frame"]
                                        / result["cpu_ms_per_frame"])
    result = {k: result[k] for k in (*KEYS, *(BASELINE_KEYS if args.baseline else ()))}
    print(report(result))
    if args.json:
        print(json.dumps(result))
    return 0


def _ms(value: float | None) -> str:
    return "      -" if value is None else f"{value:7.2f}"


def report(r: dict[str, Any]) -> str:
    """The human-readable table."""
    m = r["machine"]
    lines = [f"vbg bench: {r['size']} {r['mode']}"
             + (f" at {r['fps']:g} fps" if r["fps"] else "")
             + f", {r['frames']} frames after {r['warmup']} warm-up, model {r['model']} on "
             f"{r['provider'].upper()}"
             + (f" (whole frames on the GPU: {r['gpu']})" if r.get("gpu") else "")
             + f", background {r['background']}, source {r['source']}",
             f"machine: {m['cpus']} CPUs ({m['cpus_usable']} usable), {m['cpu_model']}, "
             f"load {m['loadavg_1min'] or 0:.2f}, frame threads {r['frame_threads']}, "
             f"numba {m['numba_threading_layer']} threads"
             + (f" (OMP_WAIT_POLICY={m['omp_wait_policy']})" if m["omp_wait_policy"] else ""),
             "stage (median ms)     vbg" + ("   typical" if "baseline_stage_ms" in r else "")]
    base = r.get("baseline_stage_ms", {})
    pairs = [("decode", "decode", "decode"), ("preprocess", "preprocess", None),
             ("inference", "inference", "inference"), ("smoothing", "smoothing", None),
             ("refine / postprocess", "refine", "postprocess"),
             ("composite", "composite", "composite"),
             ("  of which background", "composite_background", "background"),
             ("sink (BGR->I420)", "sink", "sink")]
    for label, key, base_key in pairs:
        line = f"  {label:<20}{_ms(r['stage_ms'][key])}"
        if base:
            line += "   " + _ms(base.get(base_key) if base_key else None)
        if key == "inference" and r.get("network_runs_per_frame") is not None:
            line += f"   ({r['network_runs_per_frame']:.2f} network runs per frame)"
        lines.append(line)
    lines += [f"cpu_ms_per_frame {r['cpu_ms_per_frame']:.2f}   wall_fps {r['wall_fps']:.1f}   "
              f"latency p50 {r['latency_ms_p50']:.1f} ms p95 {r['latency_ms_p95']:.1f} ms",
              f"rss {r['rss_mb']:.0f} MB (growth {r['rss_growth_mb']:+.1f} MB)   "
              f"dropped {r['dropped']}   fillers {r['fillers']}"]
    if "baseline_cpu_ratio" in r:
        lines += [f"typical tool: cpu_ms_per_frame {r['baseline_cpu_ms_per_frame']:.2f}   "
                  f"wall_fps {r['baseline_wall_fps']:.1f}   latency p50 "
                  f"{r['baseline_latency_ms_p50']:.1f} ms p95 "
                  f"{r['baseline_latency_ms_p95']:.1f} ms",
                  f"==> the typical tool uses {r['baseline_cpu_ratio']:.2f}x the CPU of vbg "
                  f"per frame ({r['baseline_cpu_ms_per_frame']:.1f} vs "
                  f"{r['cpu_ms_per_frame']:.1f} ms)"]
    return "\n".join(lines)
