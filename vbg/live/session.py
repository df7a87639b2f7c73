"""build_live(settings) -> LivePipeline: live mode as a Python object (run, stop, reload, state)."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from vbg.capture import CaptureThread, open_source
from vbg.errors import ConfigError, VbgError
from vbg.live import build, config
from vbg.live.control import background_changes
from vbg.live.keepup import KeepUp
from vbg.live.meter import RateMeter
from vbg.live.pause import PAUSED_STATE, Pauser
from vbg.live.pipeline import Pipeline, RunStats
from vbg.live.reload import (
    BACKGROUND_KEYS,
    CAMERA_KEYS,
    MODEL_KEYS,
    RESTART_KEYS,
    apply_settings,
)
from vbg.live.settings import LiveSettings
from vbg.live.tap import PreviewTap
from vbg.sinks import make_sinks
from vbg.sinks.ondemand import IDLE_STATE, OnDemand


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
        self._update_lock = threading.Lock()  # one update at a time: each merges over the last
        self._pending: LiveSettings | None = None  # updated, not applied yet (idle)
        self.meter = RateMeter()

    @property
    def stages(self):
        return self.pipeline.stages

    def run(self) -> RunStats:
        """Run until stopped, the source ends or max_frames; closes every stage after."""
        self.meter.restart(self.pipeline.stats.frames_out)
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

    def update(self, changes: Mapping[str, Any], source: str = "the request",
               wait_s: float = 3.0) -> LiveSettings:
        """Apply partial `changes` (config-file keys; a chosen background clears the others)
        before the next frame and wait up to `wait_s` for it; ConfigError (bad key, type,
        range, or a key fixed while running) or the VbgError of a failed apply."""
        with self._update_lock:
            with self._lock:  # over a change not applied yet (while idle), if any
                old = self._pending if self._pending is not None else self.settings
            new = old.merged(background_changes(changes), source)
            fixed = [k for k in (*RESTART_KEYS, "web", "web_port")
                     if old.get(k) != new.get(k)]
            if fixed:
                raise ConfigError(f"{', '.join(fixed)} cannot change while live mode runs (the "
                                  "outputs are open): set it in the config file or with its "
                                  "flag for the next start")
            # A new background is read and fitted here, off the pipeline thread: the frame
            # that takes it is not late (a picture costs ~40 ms to decode and fit).
            background = None
            if any(old.get(k) != new.get(k) for k in BACKGROUND_KEYS):
                background = build.build_background(new)  # a bad file fails here, at once
                size = self.pipeline.output_size
                if size is not None and background.kind == "image":  # its fit, cached
                    background.prepare(np.zeros((size[1], size[0], 3), np.uint8),
                                       np.zeros((size[1], size[0]), np.uint8))
            # So is a new network on the CPU path (~0.1-0.3 s to load and run once).
            segmenter = None
            if any(old.get(k) != new.get(k) for k in MODEL_KEYS) and build.surely_cpu(new):
                segmenter = build.build_segmenter(new)  # a bad model fails here, at once
                build.warm_segmenter(segmenter, self.pipeline.output_size)
            done, failed = threading.Event(), []

            def apply(_p: Pipeline) -> None:
                with self._lock:
                    self._pending = None
                error = self.apply_here(new, background, segmenter)
                if error is not None:
                    failed.append(error)
                done.set()

            self.pipeline.request_reload(apply)
            idle = self.pipeline.state == IDLE_STATE  # applied when a reader comes back
            if not done.wait(0.0 if idle else wait_s):
                with self._lock:
                    self._pending = new
            elif failed:
                raise failed[0]
        return new

    def pause(self, wait_s: float = 1.0) -> None:
        """Release the camera; the outputs get a still card until resume(). Waits up to
        `wait_s` for the pipeline thread to take it (it does between two frames)."""
        if self.pipeline.pause is not None:
            self.pipeline.pause.pause()
            self._wait_until(lambda: self.pipeline.state == PAUSED_STATE, wait_s)

    def resume(self, wait_s: float = 2.0) -> None:
        """Open the camera again (waits up to `wait_s` for it)."""
        if self.pipeline.pause is not None:
            self.pipeline.pause.resume()
            self._wait_until(lambda: self.pipeline.state != PAUSED_STATE, wait_s)

    def _wait_until(self, done: Callable[[], bool], wait_s: float) -> None:
        deadline = time.monotonic() + wait_s
        while not done() and time.monotonic() < deadline and not self.pipeline.stopping:
            time.sleep(0.005)

    @property
    def tap(self) -> PreviewTap:
        return self.pipeline.tap

    def apply_here(self, settings: LiveSettings, background: object = None,
                   segmenter: object = None) -> VbgError | None:
        """Apply `settings` now; only on the pipeline thread (what `reload` schedules)."""
        with self._lock:
            old = self.settings
        try:
            apply_settings(self.pipeline, old, settings, self.log, background, segmenter)
            if any(old.get(k) != settings.get(k) for k in CAMERA_KEYS):
                self._swap_camera(settings)
        except VbgError as e:
            self.log(f"vbg: reload failed, keeping the current settings: {e}")
            return e
        with self._lock:
            self.settings = settings
        self.log("vbg: reloaded configuration")
        return None

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
        fps, cpu_ms = self.meter.sample(p.stats.frames_out)
        camera = p.capture.stats()
        info = camera["info"]
        camera["info"] = None if info is None else (
            f"{info.name if '://' in str(info.name) else Path(info.name).name} "
            f"{info.width}x{info.height} at {info.fps:g} fps "
            f"({info.pixel_format})")
        camera["source"], camera["status"] = s.camera, CAMERA_STATUS.get(
            "released" if p.state == PAUSED_STATE else camera["state"], camera["state"])
        return {
            "state": p.state, "paused": p.state == PAUSED_STATE,
            "frames_out": p.stats.frames_out, "fps": fps, "cpu_ms_per_frame": cpu_ms,
            "latency_p95_ms": float(np.percentile(latencies, 95)) if latencies else None,
            "model": model.name, "provider": model.provider, "gpu": st.gpu is not None,
            "camera": camera, "mirror": p.mirror,
            "background": {k: s.get(k) for k in ("background", "video", "blur", "color")},
            "settings": s.to_dict(),
        }


# capture state -> what the page and `vbg ctl status` say about the camera
CAMERA_STATUS = {"live": "connected", "lost": "reconnecting", "starting": "connecting",
                 "ended": "ended", "stopped": "released", "released": "released (paused)"}


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

    def reopen_after_pause() -> CaptureThread:
        return open_capture(live.settings, realtime=realtime, loop=loop, log=log,
                            wait=True).start()

    pipeline.pause, pipeline.tap = Pauser(reopen_after_pause, log), PreviewTap()
    live = LivePipeline(s, pipeline, log, loop=loop)
    return live
