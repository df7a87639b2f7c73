"""A local preview window (cv2.imshow); closing it or pressing q/Esc asks the pipeline to stop."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import cv2
import numpy as np

from vbg.errors import SinkError
from vbg.sinks.base import FrameAdapter

_STOP_KEYS = {ord("q"), ord("Q"), 27}  # 27 = Esc


def display_problem(environ: dict[str, str] | None = None,
                    platform: str = sys.platform) -> str | None:
    """Why no window can open here (Linux without a display), or None if one can."""
    if not platform.startswith("linux"):
        return None
    env = os.environ if environ is None else environ
    display, wayland = env.get("DISPLAY", ""), env.get("WAYLAND_DISPLAY", "")
    if not display and not wayland:
        return ("there is no display (DISPLAY and WAYLAND_DISPLAY are unset: SSH session, "
                "service or container)")
    local = re.fullmatch(r":(\d+)(\.\d+)?", display)
    if local and not Path(f"/tmp/.X11-unix/X{local.group(1)}").exists() and not wayland:
        return f"the X display {display} is not running (no /tmp/.X11-unix/X{local.group(1)})"
    return None


class PreviewSink:
    """Shows each frame in a window; `stop_requested` turns True on q, Esc or closing it."""

    needs_matte = False  # the composited frame only

    def __init__(self, title: str = "VBG preview"):
        self.title = title
        self.name = f"preview window {title!r}"
        self.stop_requested = False
        self._adapter: FrameAdapter | None = None
        self._open = False

    def open(self, width: int, height: int, fps: float, channels: int = 3) -> None:
        problem = display_problem()
        if problem:
            raise SinkError(f"cannot open the preview window: {problem}. Fix: run vbg from a "
                            "desktop session (or `ssh -X`), or leave out --preview")
        try:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO)
            cv2.resizeWindow(self.title, width, height)
        except cv2.error as e:
            raise SinkError(f"cannot open the preview window: OpenCV has no GUI here ({e}). "
                            "Fix: install opencv-python (not opencv-python-headless), "
                            "or leave out --preview") from None
        self._adapter = FrameAdapter(width, height, what=self.name)
        self._open = True

    def write(self, frame: np.ndarray, alpha: np.ndarray | None = None,
              timestamp: float | None = None) -> None:
        if not self._open or self._adapter is None:
            raise SinkError(f"{self.name}: write() before open()")
        cv2.imshow(self.title, self._adapter(frame))
        key = cv2.waitKey(1)
        if key != -1 and (key & 0xFF) in _STOP_KEYS:
            self.stop_requested = True
        elif cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            self.stop_requested = True  # the user closed the window

    def close(self) -> None:
        if self._open:
            self._open = False
            try:
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)
            except cv2.error:
                pass
