"""build_live(settings) -> LivePipeline: live mode as a Python object (run, stop, reload, state)."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from vbg.capture import CaptureThread, open_source
from vbg.errors import VbgError
from vbg.live import build, config
from vbg.live.keepup import KeepUp
from vbg.live.pipeline import Pipeline, RunStats
from vbg.live.reload import apply_settings
from vbg.sinks import make_sinks
from vbg.sinks.ondemand import OnDemand


def stderr_log(message: str) -> None:
    """Live mode's log: one line on stderr, flushed."""
    print(message, file=sys.stderr, flush=True)


class LivePipeline:
    """A built live pipeline; `stop`, `reload` and `state` are safe from any thread."""

    def __init__(self, settings: dict[str, Any], pipeline: Pipeline,
                 log: Callable[[str], None]) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.log = log
        self._lock = threading.Lock()

    @property
    def stages(self):
        return self.pipeline.stages

    def run(self) -> RunStats:
        """Run until stopped, the source ends or max_frames; closes every stage after."""
        try:
            return self.pipeline.run()
        finally:
            self.pipeline.stages.compositor.background.close()  # joins a video decoder

    def stop(self) -> None:
        self.pipeline.stop()

    def reload(self, settings: dict[str, Any]) -> None:
        """Apply `settings` before the next frame, on the pipeline thread (the camera stays)."""
        self.pipeline.request_reload(lambda _p: self.apply_here(settings))

    def apply_here(self, settings: dict[str, Any]) -> None:
        """Apply `settings` now; only on the pipeline thread (what `reload` schedules)."""
        with self._lock:
            old = self.settings
        try:
            apply_settings(self.pipeline, old, settings, self.log)
        except VbgError as e:
            self.log(f"vbg: reload failed, keeping the current settings: {e}")
            return
        with self._lock:
            self.settings = settings
        self.log("vbg: reloaded configuration")

    def state(self) -> dict[str, Any]:
        """A snapshot: run state, frames, latency p95, model, provider, background settings."""
        p = self.pipeline
        st = p.stages
        model = st.gpu.matter if st.gpu is not None else st.segmenter
        latencies = list(p.stats.latencies_ms)
        with self._lock:
            s = self.settings
        return {
            "state": p.state, "frames_out": p.stats.frames_out,
            "latency_p95_ms": float(np.percentile(latencies, 95)) if latencies else None,
            "model": model.name, "provider": model.provider, "gpu": st.gpu is not None,
            "camera": p.capture.stats(), "mirror": p.mirror,
            "background": {k: s[k] for k in ("background", "video", "blur", "color")},
        }


def build_live(settings: dict[str, Any] | None = None, *, realtime: bool = True,
               loop: bool = False, max_frames: int | None = None,
               vcam_backend: str | None = None, verbose: bool = False,
               log: Callable[[str], None] = stderr_log) -> LivePipeline:
    """Stages, camera, sinks and pipeline for `settings` (config.load() when None), started
    camera included; call `.run()` next."""
    s = config.load(None) if settings is None else settings
    config.check_ranges(s, {})
    size = config.parse_size(s["size"]) if s["size"] else None
    t0 = time.perf_counter()
    stages = build.build_stages(s, log)
    segmenter = stages.segmenter
    why = " (chosen by --model auto)" if s["model"] == "auto" else ""
    log(f"vbg: model {segmenter.name}{why} on {segmenter.provider.upper()}"
        + ("; CUDA is not usable here, see `vbg doctor`" if s["provider"] == "auto"
           and segmenter.provider == "cpu" else "")
        + (f"; whole frames on the GPU ({stages.gpu.device_name})" if stages.gpu else ""))
    if verbose:
        log(f"vbg: built and warmed up in {(time.perf_counter() - t0) * 1e3:.0f} ms")

    def opener():
        return open_source(str(s["camera"]), size=size, fps=s["fps"],
                           pixel_format=s["pixel_format"])

    capture = CaptureThread(opener, realtime=realtime,
                            wait_for_camera=s["wait_for_camera"], loop=loop, log=log)
    sinks = make_sinks(output=s["output"] or None, matte_output=s["matte_output"] or None,
                       virtual_camera=True if s["virtual_camera"] else None,
                       preview=s["preview"], device=s["device"] or None,
                       backend=vcam_backend)
    capture.start()
    info = capture.stats().get("info")
    if info is not None:
        log(f"vbg: camera {info}")

    def reopen() -> CaptureThread:  # on-demand: the camera again, for a new reader
        return CaptureThread(opener, realtime=True, wait_for_camera=True, loop=loop,
                             log=log).start()

    # Only the virtual camera has readers to count (OnDemand.begin says so for the others).
    on_demand = OnDemand(reopen, log=log) if s["on_demand"] and realtime else None
    pipeline = Pipeline(capture, stages, sinks,
                        fps=s["fps"], realtime=realtime, max_frames=max_frames,
                        mirror=s["mirror"], stats=s["stats"], log=log,
                        reuse_still=s["reuse_still"], frame_threads=s["frame_threads"],
                        on_demand=on_demand)
    for sink in sinks:
        log(f"vbg: output -> {sink.name}")
    if realtime:
        pipeline.keep_up = KeepUp(s["fps"], segmenter.name, log)
    return LivePipeline(s, pipeline, log)
