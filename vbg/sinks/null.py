"""A sink that does the virtual camera's colour conversion and throws the result away."""

from __future__ import annotations

import cv2
import numpy as np

from vbg.errors import SinkError
from vbg.sinks.base import FrameAdapter, even_size


class NullSink:
    """For benchmarks: BGR -> I420 (as the virtual camera does) into one buffer, then nothing."""

    needs_matte = False  # the composited frame only

    def __init__(self, convert: bool = True):
        self.convert = convert
        self.name = "null"
        self.frames_written = 0
        self._adapter: FrameAdapter | None = None
        self._i420: np.ndarray | None = None

    def open(self, width: int, height: int, fps: float, channels: int = 3) -> None:
        out_w, out_h = even_size(width, height, "null sink")
        self._adapter = FrameAdapter(out_w, out_h, what="null sink")
        self._i420 = np.empty((out_h * 3 // 2, out_w), np.uint8)  # allocated once, reused
        self.frames_written = 0

    @property
    def last_i420(self) -> np.ndarray | None:
        """The last converted frame (I420 planes stacked, (h*3/2) x w)."""
        return self._i420

    def write(self, frame: np.ndarray, alpha: np.ndarray | None = None,
              timestamp: float | None = None) -> None:
        if self._adapter is None or self._i420 is None:
            raise SinkError("null sink: write() before open()")
        if self.convert:
            cv2.cvtColor(self._adapter(frame), cv2.COLOR_BGR2YUV_I420, dst=self._i420)
        self.frames_written += 1

    takes_i420 = True  # as the v4l2loopback camera: the final pass can hand over I420

    def write_i420(self, planes: np.ndarray, timestamp: float | None = None) -> None:
        """A frame the final pass already wrote in I420: nothing left to convert."""
        if self._i420 is None:
            raise SinkError("null sink: write_i420() before open()")
        if planes.shape != self._i420.shape:
            raise SinkError(f"null sink: I420 planes {planes.shape}, opened for "
                            f"{self._i420.shape}")
        self.frames_written += 1

    def close(self) -> None:
        self._adapter = None
