"""A daemon thread that owns a source: timestamps frames, hands out the newest, reconnects."""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from vbg.capture.sources import Source, SourceInfo, as_bgr
from vbg.errors import CameraError

BACKOFF_START = 0.25  # seconds before the first reopen attempt after a failure
BACKOFF_MAX = 1.0  # a returning camera is picked up within about a second
LOSSLESS_QUEUE = 3  # frames buffered ahead in realtime=False mode
STOP_JOIN = 0.5  # how long stop() waits for the thread before leaving it (it is a daemon)
# At most one line per kind of camera event (lost, back, waiting) in this many seconds: a
# flapping cable or a long wait does not flood the log.
LOG_EVERY = {"lost": 10.0, "back": 10.0, "waiting": 30.0}

_logger = logging.getLogger("vbg.capture")


def _warn(message: str) -> None:
    _logger.warning(message)


class EventLog:
    """One line per event kind at most every LOG_EVERY[kind] s; says how many were held back."""

    def __init__(self, log: Callable[[str], None], every: dict[str, float] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._log, self._every, self._clock = log, every or LOG_EVERY, clock
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def __call__(self, kind: str, message: str) -> bool:
        """Log `message` unless a `kind` line went out recently; True if it was logged."""
        now = self._clock()
        last = self._last.get(kind)
        if last is not None and now - last < self._every.get(kind, 10.0):
            self._held[kind] = self._held.get(kind, 0) + 1
            return False
        held = self._held.pop(kind, 0)
        self.mark(kind)
        self._log(message + (f" ({held} similar line{'s' * (held > 1)} held back)" if held
                             else ""))
        return True

    def mark(self, kind: str) -> None:
        """Count a `kind` line as just logged (a line that says the same went out)."""
        self._last[kind] = self._clock()


@dataclass(frozen=True, slots=True)
class Frame:
    """One captured frame: BGR image, capture time (time.monotonic()) and sequence number."""

    image: np.ndarray
    timestamp: float
    index: int


class CaptureThread:
    """Reads a source on a daemon thread; latest-frame-wins, or lossless with realtime=False."""

    def __init__(self, opener: Callable[[], Source], realtime: bool = True,
                 wait_for_camera: bool = False, loop: bool = False,
                 read_ahead: int = LOSSLESS_QUEUE,
                 log: Callable[[str], None] | None = _warn) -> None:
        self._opener = opener
        # Camera events (lost, back, waiting), one line each, rate-limited; None: silent.
        self._events = EventLog(log) if log is not None else None
        self._lost_at: float | None = None  # when the input was lost (or first missing)
        self.realtime = realtime
        # realtime=False: frames read ahead of the consumer; 0 = read only when it asks (a
        # frame's capture time is then when it was wanted: benchmarks measure pure latency).
        self.read_ahead = read_ahead
        self._asking = 0  # consumers waiting in get()
        self.wait_for_camera = wait_for_camera
        self.loop = loop
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._opened = threading.Event()
        self._queue: collections.deque[Frame] = collections.deque()
        self._latest: Frame | None = None
        self._returned = -1  # index of the last frame handed out
        self._state = "starting"
        self._source: Source | None = None
        self._info: SourceInfo | None = None
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None  # the last failure, for status lines
        self.frames = self.dropped = self.reconnects = 0

    # -- consumer side ---------------------------------------------------------------------

    def start(self) -> CaptureThread:
        """Open the source and start reading; raises CameraError if it cannot be opened."""
        if self._thread is not None:
            raise RuntimeError("CaptureThread.start() called twice")
        self._thread = threading.Thread(target=self._run, name="vbg-capture", daemon=True)
        self._thread.start()
        self._opened.wait()  # the first open attempt (bounded by the source's open timeout)
        if not self.wait_for_camera and self._info is None:
            raise self.error if isinstance(self.error, CameraError) else CameraError(
                f"the input could not be opened: {self.error}")
        return self

    def get(self, timeout: float | None = None) -> Frame | None:
        """Newest frame not yet returned (next in order with realtime=False); None on timeout,
        after stop(), or once a file has ended and every frame was handed out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._asking += 1
            self._cond.notify_all()  # an on-demand reader reads now
            try:
                while self._state != "stopped":
                    frame = self._take()
                    if frame is not None:
                        return frame
                    if self._state == "ended":
                        return None
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return None
                    self._cond.wait(remaining)
                return None
            finally:
                self._asking -= 1

    def _take(self) -> Frame | None:
        if not self.realtime:
            if not self._queue:
                return None
            frame = self._queue.popleft()
            self._cond.notify_all()  # room for the producer
        else:
            frame = self._latest
            if frame is None or frame.index <= self._returned:
                return None
        self._returned = frame.index
        return frame

    @property
    def state(self) -> str:
        """'starting' | 'live' | 'lost' | 'ended' | 'stopped'."""
        return self._state

    @property
    def info(self) -> SourceInfo | None:
        """What the source last opened delivers (None before the first open)."""
        return self._info

    def stats(self) -> dict[str, Any]:
        """Counters and state for status lines and benchmarks."""
        source = self._source
        return {
            "frames": self.frames,
            "dropped": self.dropped,
            "skipped": getattr(source, "skipped", 0),
            "reconnects": self.reconnects,
            "state": self._state,
            "info": self._info,
            "error": str(self.error) if self.error else None,
        }

    def stop(self) -> None:
        """Stop reading and release the source; returns within ~0.5 s even if a read blocks."""
        self._stop.set()
        self._set_state("stopped")
        source = self._source
        if source is not None:
            source.interrupt()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(STOP_JOIN)

    def __enter__(self) -> CaptureThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- capture thread --------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._capture_loop()
        except BaseException as e:  # never die silently: keep the error for stats()
            self.error = e
        finally:
            self._close_source()
            self._opened.set()
            with self._cond:
                if self._state not in ("ended", "stopped"):
                    self._state = "ended"
                self._cond.notify_all()

    def _capture_loop(self) -> None:
        backoff, ever_opened, rewinding, due = BACKOFF_START, False, False, 0.0
        while not self._stop.is_set():
            if self._source is None:
                if not self._open(ever_opened):
                    if not (ever_opened or self.wait_for_camera):
                        return  # start() raises the error
                    self._say_waiting(ever_opened)
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX)
                    continue
                if ever_opened and not rewinding:
                    self.reconnects += 1
                self._say_back(ever_opened and not rewinding)
                first_open = not ever_opened
                ever_opened, rewinding, backoff = True, False, BACKOFF_START
                due, self.error = time.monotonic(), None
                self._set_state("live")
                self._opened.set()
                if first_open and self.realtime and self._source.is_file:
                    # A file plays at its own rate from when the consumer first asks, not
                    # from when it was opened: start-up work never costs frames.
                    self._wait_for_consumer()
                    due = time.monotonic()
            source = self._source
            if self.realtime and source.is_file:
                due = self._pace(due, source.info.fps)
            if not self.realtime and not self._wait_for_room():
                return
            try:
                image = source.read()
            except Exception as e:  # any read failure means the input is lost
                self._lose(e if isinstance(e, CameraError) else CameraError(
                    f"{source.info.name} failed: {e}"))
                if source.is_file:  # a broken file does not come back: do not replay it
                    self._set_state("ended")
                    return
                continue
            if self._stop.is_set():
                return
            if image is None and source.is_file:
                if self.loop:  # demo mode: start the file again (not a reconnect)
                    self._close_source()
                    rewinding = True
                    continue
                self._set_state("ended")
                return
            frame = as_bgr(image)
            if frame is None:
                self._lose(CameraError(f"{source.info.name} delivered no usable frame"))
                continue
            self._publish(frame, time.monotonic())

    def _wait_for_consumer(self) -> None:
        """Block until a consumer asks for a frame (or stop)."""
        with self._cond:
            while not self._stop.is_set() and not self._asking:
                self._cond.wait(0.1)

    def _say_waiting(self, reopening: bool) -> None:
        if self._events is None:
            return
        now = time.monotonic()
        if self._lost_at is None:
            self._lost_at = now
        what = "reconnecting" if reopening else "waiting for the camera"
        since = now - self._lost_at
        self._events("waiting", f"vbg: {what} ({since:.0f} s so far, retrying every "
                                f"{BACKOFF_MAX:g} s): {self.error}")

    def _say_back(self, reconnected: bool) -> None:
        lost_at, self._lost_at = self._lost_at, None
        if self._events is None or self._info is None:
            return
        if reconnected or lost_at is not None:
            gone = f" after {time.monotonic() - lost_at:.1f} s" if lost_at is not None else ""
            info = self._info
            self._events("back", f"vbg: camera {'back' if reconnected else 'found'}{gone}: "
                                 f"{info.name} {info.width}x{info.height}")

    def _wait_for_room(self) -> bool:
        """Lossless mode: block until a frame may be read (queue room, or a consumer asking
        when read_ahead is 0); False once stopping."""
        with self._cond:
            while not self._stop.is_set():
                if self.read_ahead > 0 and len(self._queue) < self.read_ahead:
                    return True
                if self.read_ahead == 0 and not self._queue and self._asking:
                    return True
                self._cond.wait(0.1)
        return False

    def _open(self, reopening: bool) -> bool:
        try:
            source = self._opener()
        except Exception as e:  # keep retrying whatever the opener raised
            self.error = e if isinstance(e, CameraError) else CameraError(str(e))
            if not reopening:
                self._opened.set()
            return False
        if self._stop.is_set():
            source.close()
            return False
        self._source, self._info = source, source.info
        return True

    def _pace(self, due: float, fps: float) -> float:
        """Sleep until the next frame is due (absolute deadlines, no drift); the next deadline."""
        period = 1.0 / fps if fps > 0 else 0.0
        now = time.monotonic()
        if due > now:
            self._stop.wait(due - now)
        elif now - due > period:
            due = now  # fell behind by more than a frame: resync instead of bursting
        return due + period

    def _publish(self, image: np.ndarray, timestamp: float) -> None:
        with self._cond:
            if self.realtime:
                latest = self._latest
                # Frames replaced before the consumer took its first one are not drops.
                if latest is not None and latest.index > self._returned >= 0:
                    self.dropped += 1
                self._latest = Frame(image, timestamp, self.frames)
            else:
                while len(self._queue) >= max(1, self.read_ahead) and not self._stop.is_set():
                    self._cond.wait()  # backpressure: the consumer takes frames in order
                if self._stop.is_set():
                    return
                self._queue.append(Frame(image, timestamp, self.frames))
            self.frames += 1
            self._cond.notify_all()

    def _lose(self, error: BaseException) -> None:
        self.error = error
        self._lost_at = time.monotonic()
        source = self._source
        self._close_source()
        self._set_state("lost")
        if self._events is not None:
            again = ("" if source is not None and source.is_file
                     else "; reconnecting (the output keeps its frame rate meanwhile)")
            self._events("lost", f"vbg: camera lost: {error}{again}")
            self._events.mark("waiting")  # that line said it: the next one in LOG_EVERY s

    def _close_source(self) -> None:
        source, self._source = self._source, None
        if source is not None:
            # closing a broken source must not kill the thread
            with contextlib.suppress(Exception):
                source.close()

    def _set_state(self, state: str) -> None:
        with self._cond:
            if self._state == "stopped":
                return
            self._state = state
            self._cond.notify_all()
