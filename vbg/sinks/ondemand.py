"""On-demand: while no application reads the virtual camera, the real camera is released,
the pipeline waits, and the device gets a cheap idle frame about once a second."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from vbg.sinks.readers import ReaderWatcher, WatchError

IDLE_AFTER_S = 2.0  # no reader this long -> idle (an app closing and reopening stays served)
IDLE_FRAME_S = 1.0  # idle frame period: keeps the device fresh for the next reader
IDLE_STATE = "idle, no reader"


def idle_card(width: int, height: int) -> np.ndarray:
    """The idle frame: dark grey with 'VBG Camera' (never the last picture of the room)."""
    card = np.full((height, width, 3), 24, np.uint8)
    text = "VBG Camera"
    scale = max(0.5, width / 1280)
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
    cv2.putText(card, text, ((width - tw) // 2, (height + th) // 2), cv2.FONT_HERSHEY_SIMPLEX,
                scale, (160, 160, 160), 2, cv2.LINE_AA)
    return card


def watch_path(sinks: list) -> str | None:
    """The device to watch: set when every sink is a virtual camera on one watchable path
    (the v4l2loopback device, or a stand-in `readers_path` for tests and the bench)."""
    paths = set()
    for sink in sinks:
        path = getattr(sink, "readers_path", None)
        if path is None:
            return None  # a file, a window: someone sees it, never idle
        paths.add(path)
    return paths.pop() if len(paths) == 1 else None


class OnDemand:
    """Tells the pipeline when nobody reads, and restarts the capture when someone does.

    `reopen()` makes and starts a new capture (the old one is stopped, so the camera is
    released). begin() after the sinks are open: our own open of the device does not count.
    If the device cannot be watched, on-demand stays off (always running) and says why."""

    def __init__(self, reopen: Callable[[], Any], log: Callable[[str], None] = print,
                 idle_after_s: float = IDLE_AFTER_S, idle_frame_s: float = IDLE_FRAME_S,
                 ) -> None:
        self.reopen = reopen
        self.log = log
        self.idle_after_s = idle_after_s
        self.idle_frame_s = idle_frame_s
        self.watcher: ReaderWatcher | None = None
        self.path: str | None = None
        self.off_because: str | None = None
        self._none_since: float | None = None
        self.idle_periods = 0

    def begin(self, sinks: list) -> bool:
        """Start watching the sinks' device; False (and a line saying why) if it cannot."""
        path = watch_path(sinks)
        if path is None:
            self.off_because = "the output is not only a virtual camera"
            return False
        watcher = ReaderWatcher(path)
        try:
            watcher.start()
        except WatchError as e:
            self.off_because = str(e)
            self.log(f"vbg: on-demand off (always running): {e}")
            return False
        self.watcher, self.path = watcher, path
        self._none_since = time.monotonic()
        return True

    @property
    def active(self) -> bool:
        return self.watcher is not None

    def no_reader(self) -> bool:
        """True once nobody has read the device for idle_after_s."""
        if self.watcher is None:
            return False
        if self.watcher.readers != 0:  # -1 (unknown) counts as a reader: never idle blindly
            self._none_since = None
            return False
        now = time.monotonic()
        if self._none_since is None:
            self._none_since = now
        return now - self._none_since >= self.idle_after_s

    def wait_for_reader(self, timeout: float) -> bool:
        """Block up to `timeout` s for a reader; True when there is one."""
        if self.watcher is None:
            return True
        if self.watcher.wait(True, timeout):
            self._none_since = None
            return True
        return False

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.close()
            self.watcher = None
