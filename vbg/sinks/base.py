"""The Sink protocol, the frame adapter every sink shares, and open/close helpers."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

log = logging.getLogger("vbg.sinks")


@runtime_checkable
class Sink(Protocol):
    """Where composited frames go: virtual camera, file, window, nowhere."""

    name: str
    needs_matte: bool  # write() gets the matte only if True (absent: treated as True)

    def open(self, width: int, height: int, fps: float, channels: int = 3) -> None:
        """Prepare for frames of this size; raise SinkError with the fix if impossible."""

    def write(self, frame: np.ndarray, alpha: np.ndarray | None = None,
              timestamp: float | None = None) -> None:
        """Take one frame (BGR/BGRA uint8), its uint8 HxW matte and its capture time."""

    def close(self) -> None:
        """Release everything; safe to call twice."""


def even(n: int) -> int:
    return n - (n % 2)


class FrameAdapter:
    """Brings frames to one fixed size and layout (BGR or grey) in buffers allocated once.

    Drops alpha (BGRA -> BGR), crops an odd frame to the even size consumers need,
    and resizes a frame of another size (a reconnected camera) rather than dropping it.
    """

    def __init__(self, out_width: int, out_height: int, grey: bool = False, what: str = "sink"):
        self.size = (out_width, out_height)
        self.grey = grey
        self.what = what
        shape = (out_height, out_width) if grey else (out_height, out_width, 3)
        self._out = np.empty(shape, np.uint8)  # hot path: written in place every frame
        self._bgr: np.ndarray | None = None  # BGRA -> BGR scratch, reallocated only on size change
        self._warned_resize = False

    def _drop_alpha(self, frame: np.ndarray) -> np.ndarray:
        if self._bgr is None or self._bgr.shape[:2] != frame.shape[:2]:
            self._bgr = np.empty((*frame.shape[:2], 3), np.uint8)
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR, dst=self._bgr)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        if frame.dtype != np.uint8:
            raise TypeError(f"{self.what}: frames must be uint8, got {frame.dtype}")
        if not self.grey and frame.ndim == 3 and frame.shape[2] == 4:
            frame = self._drop_alpha(frame)
        height, width = frame.shape[:2]
        out_w, out_h = self.size
        if (width, height) == (out_w, out_h):
            if frame.flags.c_contiguous:
                return frame
            np.copyto(self._out, frame)
        elif width - out_w in (0, 1) and height - out_h in (0, 1):
            np.copyto(self._out, frame[:out_h, :out_w])  # odd -> even crop
        else:
            if not self._warned_resize:
                log.warning("%s: frame size changed to %dx%d; resizing to %dx%d", self.what,
                            width, height, out_w, out_h)
                self._warned_resize = True
            cv2.resize(frame, self.size, dst=self._out, interpolation=cv2.INTER_LINEAR)
        return self._out


def even_size(width: int, height: int, what: str) -> tuple[int, int]:
    """(width, height) rounded down to even, saying so once when that crops."""
    if width < 2 or height < 2:
        raise ValueError(f"{what}: frame size {width}x{height} is too small")
    size = (even(width), even(height))
    if size != (width, height):
        log.warning("%s: frame size %dx%d is odd; writing %dx%d (YUV 4:2:0 consumers such as "
                    "Chrome need even sizes)", what, width, height, *size)
    return size


def open_all(sinks: Iterable[Sink], width: int, height: int, fps: float,
             channels: int = 3) -> None:
    """Open every sink; if one fails, close those already open and re-raise."""
    opened: list[Sink] = []
    try:
        for sink in sinks:
            sink.open(width, height, fps, channels)
            opened.append(sink)
    except BaseException:
        close_all(opened)
        raise


def close_all(sinks: Iterable[Sink]) -> None:
    """Close every sink even if some fail; re-raise the first failure afterwards."""
    first: BaseException | None = None
    for sink in sinks:
        try:
            sink.close()
        except Exception as e:  # keep closing the others
            first = first or e
    if first is not None:
        raise first
