"""build_live(settings) -> LivePipeline: live mode as a Python object (run, stop, reload, state)."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from vbg.capture import CaptureThread, open_source
from vbg.errors import VbgError
from vbg.live import build, config
from vbg.live.keepup import KeepUp
from vbg.live.pipeline import Pipeline, RunStats
from vbg.live.reload import CAMERA_KEYS, apply_settings
from vbg.live.settings import LiveSettings
from vbg.sinks import make_sinks
from vbg.sinks.ondemand import OnDemand


def stderr_log(message: str) -> None:
    """Live mode's log: one line on stderr, flushed."""
    print(message, file=sys.stderr, flush=True)


class LivePipeline:
    """A built live pipeline; `stop`, `reload` and `state` are safe from any thread."""

    def __init__(self, settings: LiveSettings, pipeline: Pipeline,
                 log: Callable[[str], None], loop: bool = False) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.log = log
        self.loop = loop  # file cameras start again at the end (also after a camera change)
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

    def reload(self, settings: LiveSettings) -> None:
        """Apply `settings` before the next frame, on the pipeline thread (outputs stay)."""
        settings.check()
        self.pipeline.request_reload(lambda _p: self.apply_here(settings))

    def update(self, changes: Mapping[str, Any], source: str = "the request") -> LiveSettings:
        """Reload with partial `changes` (config-file keys); ConfigError at once when bad."""
        with self._lock:
            new = self.settings.merged(changes, source)
        self.reload(new)
        return new

    def apply_here(self, settings: LiveSettings) -> None:
        """Apply `settings` now; only on the pipeline thread (what `reload` schedules)."""
        with self._lock:
            old = self.settings
        try:
            apply_settings(self.pipeline, old, settings, self.log)
            if any(old.get(k) != settings.get(k) for k in CAMERA_KEYS):
                self._swap_camera(settings)
        except VbgError as e:
            self.log(f"vbg: reload failed, keeping the current settings: {e}")
            return
        with self._lock:
            self.settings = settings
        self.log("vbg: reloaded configuration")

    def _swap_camera(self, s: LiveSettings) -> None:
        """Open the new camera first; the old one is released only once that worked."""
        capture = open_capture(s, realtime=self.pipeline.realtime, loop=self.loop,
                               log=self.log).start()
        old, self.pipeline.capture = self.pipeline.capture, capture
        old.stop()

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
            "background": {k: s.get(k) for k in ("background", "video", "blur", "color")},
        }


def open_capture(s: LiveSettings, *, realtime: bool, loop: bool,
                 log: Callable[[str], None], wait: bool | None = None) -> CaptureThread:
    """The capture thread for `s.camera` (not started)."""
    size = config.parse_size(s.size) if s.size else None

    def opener():
        return open_source(str(s.camera), size=size, fps=s.fps, pixel_format=s.pixel_format)

    return CaptureThread(opener, realtime=realtime,
                         wait_for_camera=s.wait_for_camera if wait is None else wait,
                         loop=loop, log=log)


def build_live(settings: LiveSettings | Mapping[str, Any] | None = None, *,
               realtime: bool = True, loop: bool = False, max_frames: int | None = None,
               vcam_backend: str | None = None, verbose: bool = False,
               log: Callable[[str], None] = stderr_log) -> LivePipeline:
    """Stages, camera, sinks and pipeline for `settings` (LiveSettings, or config-file keys
    over the defaults), started camera included; call `.run()` next."""
    if settings is None:
        s = LiveSettings()
    elif isinstance(settings, LiveSettings):
        s = settings
        s.check()
    else:
        s = LiveSettings.from_mapping(settings)
    if s.size:
        config.parse_size(s.size)  # a bad size fails here, before anything opens
    t0 = time.perf_counter()
    stages = build.build_stages(s, log)
    segmenter = stages.segmenter
    why = " (chosen by --model auto)" if s.model == "auto" else ""
    log(f"vbg: model {segmenter.name}{why} on {segmenter.provider.upper()}"
        + ("; CUDA is not usable here, see `vbg doctor`" if s.provider == "auto"
           and segmenter.provider == "cpu" else "")
        + (f"; whole frames on the GPU ({stages.gpu.device_name})" if stages.gpu else ""))
    if verbose:
        log(f"vbg: built and warmed up in {(time.perf_counter() - t0) * 1e3:.0f} ms")

    capture = open_capture(s, realtime=realtime, loop=loop, log=log)
    sinks = make_sinks(output=s.output or None, matte_output=s.matte_output or None,
                       virtual_camera=True if s.virtual_camera else None,
                       preview=s.preview, device=s.device or None, backend=vcam_backend)
    capture.start()
    info = capture.stats().get("info")
    if info is not None:
        log(f"vbg: camera {info}")

    def reopen() -> CaptureThread:  # on-demand: the camera again, for a new reader
        return open_capture(live.settings, realtime=True, loop=loop, log=log, wait=True).start()

    # Only the virtual camera has readers to count (OnDemand.begin says so for the others).
    on_demand = OnDemand(reopen, log=log) if s.on_demand and realtime else None
    pipeline = Pipeline(capture, stages, sinks,
                        fps=s.fps, realtime=realtime, max_frames=max_frames,
                        mirror=s.mirror, stats=s.stats, log=log,
                        reuse_still=s.reuse_still, frame_threads=s.frame_threads,
                        on_demand=on_demand)
    for sink in sinks:
        log(f"vbg: output -> {sink.name}")
    if realtime:
        pipeline.keep_up = KeepUp(s.fps, segmenter.name, log)
    live = LivePipeline(s, pipeline, log, loop=loop)
    return live
