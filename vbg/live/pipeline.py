"""Live pipeline: capture -> segment -> smooth -> refine -> composite -> sinks, paced at fps."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from vbg.live.frame import FrameMatter, Stages
from vbg.live.stillscene import StillScene
from vbg.live.threads import FrameThreads
from vbg.sinks.ondemand import IDLE_STATE, idle_card

if TYPE_CHECKING:
    from vbg.capture import CaptureThread, Frame

STATS_EVERY_S = 5.0


@dataclass
class RunStats:
    """What a run did, for --stats, tests and benchmarks."""

    frames_out: int = 0
    frames_processed: int = 0
    mattes_reused: int = 0
    fillers: int = 0
    skipped_fast: int = 0
    latencies_ms: deque = field(default_factory=lambda: deque(maxlen=2000))
    stage_ms: dict[str, deque] = field(default_factory=dict)

    def add_stage(self, name: str, ms: float) -> None:
        self.stage_ms.setdefault(name, deque(maxlen=2000)).append(ms)


class Pipeline:
    """Wires a capture thread, the stages and the sinks; `run()` until stopped or done."""

    def __init__(self, capture: CaptureThread, stages: Stages, sinks: list, fps: float,
                 realtime: bool = True, max_frames: int | None = None, mirror: bool = False,
                 stats: bool = False, log=print, reuse_still: bool = True,
                 frame_threads: int = 0, on_demand: Any = None) -> None:
        self.capture = capture
        self.stages = stages
        self.sinks = sinks
        self.fps = float(fps)
        self.realtime = realtime
        self.max_frames = max_frames
        self.mirror = mirror
        self.print_stats = stats
        self.log = log
        self.stats = RunStats()
        self.still = StillScene() if reuse_still else None
        # Kernel threads, set on the pipeline's thread when it starts (see threads.py).
        self._frame_threads_setting = frame_threads
        self.frame_threads: FrameThreads | None = None
        self.frame_matter = FrameMatter(stages, self.stats.add_stage)  # the CPU path's matte
        self.keep_up: Any = None  # vbg.live.keepup.KeepUp: says once if frames take too long
        self._stop = threading.Event()
        self._reload: Any = None
        self._size: tuple[int, int] | None = None  # output (w, h), fixed by the first frame
        self._opened = False
        self._last_output: np.ndarray | None = None
        self._last_alpha: np.ndarray | None = None  # the full-res matte the sinks got
        self._last_matte: Any = None  # what the compositor needs to redo the last frame
        self._matte: np.ndarray | None = None  # full-res matte buffer, if a sink wants one
        # Sinks say whether they use the matte (a matte video); unknown sinks are given it.
        self._wants_matte = any(getattr(s, "needs_matte", True) for s in sinks)
        self._card: np.ndarray | None = None  # the notice shown while the camera is gone
        self._no_alpha: np.ndarray | None = None
        self._flip: np.ndarray | None = None
        self._resized: np.ndarray | None = None
        # Idle while nobody reads the virtual camera (vbg.sinks.ondemand.OnDemand), or None.
        self.on_demand = on_demand
        self.state = "starting"  # "running", or IDLE_STATE while idle (for --stats and status)
        self._i420: np.ndarray | None = None  # the final pass's I420 output, for sinks taking it
        self._i420_ready = False  # _i420 holds the frame being emitted
        self._bgr_stale = False  # the last output exists only in _i420 (last_output())
        self.pause: Any = None  # vbg.live.pause.Pauser: holds a still card while paused
        self.tap: Any = None  # vbg.live.tap.PreviewTap: the output for pages that watch

    # -- control (safe from signal handlers and other threads) --
    def stop(self) -> None:
        self._stop.set()

    def request_reload(self, rebuild) -> None:
        """Run `rebuild(pipeline)` on the pipeline thread before the next frame (SIGHUP)."""
        self._reload = rebuild

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # -- the loop --
    def run(self) -> RunStats:
        try:
            if self.frame_threads is None:
                self.frame_threads = FrameThreads(self._frame_threads_setting, self.fps)
            if self.realtime:
                self._run_paced()
            else:
                self._run_every_frame()
        finally:
            self.close()
        return self.stats

    def _run_every_frame(self) -> None:
        while not self._done():
            self._maybe_reload()
            if self.pause is not None and self.pause.wanted:
                self.pause.hold(self)
                continue
            frame = self.capture.get(timeout=0.5)
            if frame is None:
                if self.capture.state in ("ended", "stopped"):
                    return
                continue
            self._emit(self._process(frame), self._last_alpha, frame.timestamp)

    def _run_paced(self) -> None:
        period = 1.0 / self.fps
        next_due = time.monotonic()
        last_stats = time.monotonic()
        cpu0, frames0 = time.process_time(), 0
        while not self._done():
            self._maybe_reload()
            if self.pause is not None and self.pause.wanted:
                self.pause.hold(self)
                next_due = time.monotonic()
                continue
            if self.on_demand is not None and self.on_demand.no_reader():
                self._sit_out()
                next_due = time.monotonic()
                continue
            now = time.monotonic()
            frame = self.capture.get(timeout=max(0.0, next_due + 0.5 * period - now))
            now = time.monotonic()
            if frame is not None:
                if now < next_due - 0.5 * period:
                    self.stats.skipped_fast += 1  # camera faster than --fps: drop, never lag
                    continue
                self._emit(self._process(frame), self._last_alpha, frame.timestamp)
            elif self.capture.state in ("ended", "stopped"):
                return
            elif now >= next_due + 0.5 * period:
                self._emit_filler(now)
            else:
                continue
            next_due = max(next_due + period, now - period)
            if self.print_stats and now - last_stats >= STATS_EVERY_S:
                cpu1, frames1 = time.process_time(), self.stats.frames_out
                self.log(self.summary(cpu1 - cpu0, frames1 - frames0, now - last_stats))
                cpu0, frames0, last_stats = cpu1, frames1, now

    def _sit_out(self) -> None:
        """Nobody reads the virtual camera: release the camera, keep the device fresh with an
        idle frame about once a second, and start the capture again when a reader opens it."""
        od = self.on_demand
        self.capture.stop()  # the camera is released (its light goes off)
        self.state = IDLE_STATE
        self.log("vbg: idle, no reader: camera released")
        h, w = self._last_output.shape[:2]  # type: ignore[union-attr]
        card = idle_card(w, h)
        said = time.monotonic()
        while not self._stop.is_set():
            for sink in self.sinks:
                sink.write(card, None, None)
            if od.wait_for_reader(od.idle_frame_s):
                break
            if self.print_stats and time.monotonic() - said >= STATS_EVERY_S:
                self.log(f"vbg: {IDLE_STATE}")
                said = time.monotonic()
        if self._stop.is_set():
            return
        self.capture = od.reopen()
        self.frame_matter.reset()  # the scene may be another one now
        self._last_matte = None
        self.state = "running"
        self.log("vbg: a reader opened the virtual camera: running")

    def _done(self) -> bool:
        if self._stop.is_set():
            return True
        if self.max_frames is not None and self.stats.frames_out >= self.max_frames:
            return True
        return any(getattr(s, "stop_requested", False) for s in self.sinks)

    def _maybe_reload(self) -> None:
        rebuild, self._reload = self._reload, None
        if rebuild is not None:
            rebuild(self)

    # -- per frame --
    def _process(self, frame: Frame) -> np.ndarray:
        st = self.stages
        self._bgr_stale = False
        if st.gpu is not None:
            return self._process_on_gpu(frame)
        self._card = None  # a new outage gets a card of this frame
        image = self._fit(frame.image)
        thumb, small = self.frame_matter.prepare(image)
        self._i420_ready = False
        if (self.still is not None and self.still.unchanged(small)
                and self._last_matte is not None):
            # Nothing moved: the last matte still fits; only the blend is redone.
            t3 = time.perf_counter()
            out = self._composite(image, self._last_matte, same_scene=True)
            self.stats.add_stage("composite", (time.perf_counter() - t3) * 1e3)
            self.stats.mattes_reused += 1
            self.stats.frames_processed += 1
            self._last_output = out
            return out
        t0 = time.perf_counter()
        matte = self.frame_matter.matte(image, thumb, small, self._media_time(frame))
        t3 = time.perf_counter()
        out = self._composite(image, matte)
        t4 = time.perf_counter()
        self.frame_threads.update((t4 - t0) * 1e3)  # type: ignore[union-attr]
        if self.keep_up is not None:
            self.keep_up.add((t4 - t0) * 1e3)
        self._last_matte = matte
        self._last_output = out
        self.stats.frames_processed += 1
        self.stats.add_stage("composite", (t4 - t3) * 1e3)
        return out

    def _process_on_gpu(self, frame: Frame) -> np.ndarray:
        """The CUDA path: up once, matte, smoothing and blend on the GPU, down once."""
        gpu = self.stages.gpu
        self._card = None  # a new outage gets a card of this frame
        out, self._last_alpha = gpu(self._fit(frame.image), self.stages.compositor.background,
                                    self._media_time(frame), want_matte=self._wants_matte)
        for name, ms in gpu.last_ms.items():
            self.stats.add_stage(name, ms)
        self.stats.frames_processed += 1
        self._last_output = out
        return out

    def _composite(self, image: np.ndarray, matte: Any, same_scene: bool = False) -> np.ndarray:
        """The blend; sets _last_alpha to the full-res matte when a sink wants it."""
        if isinstance(matte, np.ndarray):
            self._last_alpha = matte
            return self.stages.compositor(image, matte, same_scene=same_scene)
        buffer = None
        if self._wants_matte:
            if self._matte is None or self._matte.shape != image.shape[:2]:
                self._matte = np.empty(image.shape[:2], np.uint8)  # once per frame size
            buffer = self._matte
        self._last_alpha = buffer
        i420 = self._i420_target(image)
        compositor = self.stages.compositor
        out = compositor.render(image, matte, same_scene=same_scene, matte=buffer, i420=i420,
                                bgr=i420 is None or self._wants_bgr())
        self._i420_ready = i420 is not None and out.ndim == 3 and out.shape[2] == 3
        # I420 only: the BGR buffer is stale until last_output() converts the planes back.
        self._bgr_stale = self._i420_ready and not getattr(compositor, "wrote_bgr", True)
        return out

    def _wants_bgr(self) -> bool:
        """Whether this frame needs the BGR output: a sink that does not take I420, or a page
        watching the preview."""
        if self.tap is not None and self.tap.watchers:
            return True
        return not all(getattr(s, "takes_i420", False) for s in self.sinks)

    @property
    def output_size(self) -> tuple[int, int] | None:
        """(width, height) of the output, fixed by the first frame; None before it."""
        return self._size

    def last_output(self) -> np.ndarray | None:
        """The last output frame in BGR (converted from the I420 planes once, if the final
        pass wrote only those)."""
        if self._bgr_stale and self._last_output is not None and self._i420 is not None:
            cv2.cvtColor(self._i420, cv2.COLOR_YUV2BGR_I420, dst=self._last_output)
            self._bgr_stale = False
        return self._last_output

    def _i420_target(self, image: np.ndarray) -> np.ndarray | None:
        """The I420 buffer the final pass also writes, when an open sink takes I420 at this
        (even) size; else None (sinks convert the BGR output themselves)."""
        h, w = image.shape[:2]
        if not self._opened or h % 2 or w % 2:
            return None
        if not any(getattr(s, "takes_i420", False) for s in self.sinks):
            return None
        if self._i420 is None or self._i420.shape != (h * 3 // 2, w):
            self._i420 = np.empty((h * 3 // 2, w), np.uint8)  # once per frame size
        return self._i420

    def _media_time(self, frame: Frame) -> float:
        """Time of the frame in the scene: capture time live, position in the file otherwise
        (unpaced file frames arrive faster than they were filmed)."""
        if self.realtime:
            return frame.timestamp
        info = getattr(self.capture, "info", None)
        fps = getattr(info, "fps", None) or self.fps
        return frame.index / fps

    def _fit(self, image: np.ndarray) -> np.ndarray:
        """Mirror if asked, and keep every frame at the output size fixed by the first one."""
        if self._size is None:
            self._size = (image.shape[1], image.shape[0])
        if self.mirror:
            if self._flip is None or self._flip.shape != image.shape:
                self._flip = np.empty_like(image)  # pre-allocated mirror buffer
            cv2.flip(image, 1, dst=self._flip)
            image = self._flip
        w, h = self._size
        if (image.shape[1], image.shape[0]) != (w, h):
            if self._resized is None:
                self._resized = np.empty((h, w, 3), np.uint8)
            cv2.resize(image, (w, h), dst=self._resized, interpolation=cv2.INTER_AREA)
            image = self._resized
        return image

    def _emit(self, out: np.ndarray, alpha: np.ndarray, timestamp: float,
              fresh: bool = True) -> None:
        if not self._opened:
            h, w = out.shape[:2]
            for sink in self.sinks:
                sink.open(w, h, self.fps, out.shape[2])
            self._opened = True
            self.state = "running"
            if self.on_demand is not None:
                self.on_demand.begin(self.sinks)  # after our own open of the device
        t0 = time.perf_counter()
        i420 = self._i420 if fresh and self._i420_ready else None
        for sink in self.sinks:
            if i420 is not None and getattr(sink, "takes_i420", False):
                sink.write_i420(i420, timestamp)
            else:
                sink.write(out, alpha, timestamp)
        if self.tap is not None and self.tap.watchers:
            self.tap.offer(self.last_output() if out is self._last_output else out)
        now = time.monotonic()
        self.stats.add_stage("sink", (time.perf_counter() - t0) * 1e3)
        self.stats.latencies_ms.append((now - timestamp) * 1e3)
        self.stats.frames_out += 1

    def _emit_filler(self, now: float) -> None:
        """Keep the output frame rate: repeat the last frame, or a dimmed 'unavailable' card."""
        if self._last_output is None:
            return  # nothing shown yet: sinks open with the first real frame
        if self.capture.state == "live":
            out, alpha = self._last_output, self._last_alpha
        else:
            out, alpha = self._unavailable_card(), self._no_alpha
        self.stats.fillers += 1
        self._emit(out, alpha, now, fresh=out is self._last_output)

    def _unavailable_card(self) -> np.ndarray:
        """The last good frame dimmed, with a notice; built once per outage."""
        if self._card is None:  # dropped by every processed frame
            card = (self.last_output().astype(np.uint16) * 3 // 8).astype(np.uint8)
            h, w = card.shape[:2]
            text = "Camera unavailable - reconnecting..."
            scale = max(0.5, w / 1280)
            (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
            org = ((w - tw) // 2, (h + th) // 2)
            color = (255, 255, 255, 255)[: card.shape[2]]
            cv2.putText(card, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, 2, cv2.LINE_AA)
            self._card = card
            self._no_alpha = np.zeros((h, w), np.uint8)
        return self._card

    def close(self) -> None:
        if self.on_demand is not None:
            self.on_demand.close()
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as e:  # one failing sink must not keep the others open
                self.log(f"vbg: closing {getattr(sink, 'name', sink)}: {e}")
        self.capture.stop()

    def summary(self, cpu_s: float | None = None, frames: int | None = None,
                wall_s: float | None = None) -> str:
        s = self.stats
        lat = np.array(s.latencies_ms) if s.latencies_ms else np.zeros(1)
        parts = [] if self.state in ("running", "starting") else [self.state]
        if frames and wall_s:
            parts.append(f"{frames / wall_s:.1f} fps")
        if frames and cpu_s is not None:
            parts.append(f"CPU {cpu_s * 1e3 / frames:.1f} ms/frame")
        p50, p95 = np.percentile(lat, [50, 95])
        parts.append(f"latency p50 {p50:.1f} ms p95 {p95:.1f} ms")
        stages = ", ".join(f"{k} {np.median(v):.1f}" for k, v in s.stage_ms.items() if v)
        parts.append(f"stages ms: {stages}")
        cs = self.capture.stats()
        parts.append(f"dropped {cs.get('dropped', 0)}, reconnects {cs.get('reconnects', 0)}, "
                     f"fillers {s.fillers}")
        return "vbg: " + "; ".join(parts)
