"""A pyvirtualcam backend that records every frame in memory, for tests and dry runs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

# libyuv FourCC strings pyvirtualcam uses (pyvirtualcam.PixelFormat values) -> frame shape
_SHAPES = {
    "raw ": lambda w, h: (h, w, 3),  # RGB
    "24BG": lambda w, h: (h, w, 3),  # BGR
    "ABGR": lambda w, h: (h, w, 4),  # RGBA
    "J400": lambda w, h: (h, w),  # GRAY
    "I420": lambda w, h: (h * 3 // 2, w),
    "NV12": lambda w, h: (h * 3 // 2, w),
    "YUY2": lambda w, h: (h, w * 2),
    "UYVY": lambda w, h: (h, w * 2),
}


@dataclass
class RecordedFrame:
    """One frame as the backend received it (a copy), shaped for its pixel format."""

    data: np.ndarray = field(repr=False)
    index: int
    sent_at: float  # time.perf_counter() when send() was called


@dataclass
class RecordingSession:
    """One opened camera: its settings and the frames sent to it, in order."""

    width: int
    height: int
    fps: float
    fmt: str  # pyvirtualcam.PixelFormat name, e.g. "BGR"
    device: str
    frames: list[RecordedFrame] = field(default_factory=list, repr=False)
    closed: bool = False


class Recorder:
    """What the recording backend saw; `fail_with` makes the next opens raise it."""

    def __init__(self, name: str):
        self.name = name
        self.sessions: list[RecordingSession] = []
        self.fail_with: Exception | None = None

    @property
    def last(self) -> RecordingSession:
        if not self.sessions:
            raise AssertionError(f"no camera was opened with the {self.name!r} backend")
        return self.sessions[-1]

    @property
    def frames(self) -> list[RecordedFrame]:
        return [f for s in self.sessions for f in s.frames]

    def clear(self) -> None:
        self.sessions.clear()
        self.fail_with = None


def _format_name(fourcc: int) -> tuple[str, str]:
    from pyvirtualcam import PixelFormat
    from pyvirtualcam.util import decode_fourcc

    code = decode_fourcc(fourcc)
    try:
        return code, PixelFormat(code).name
    except ValueError:
        raise ValueError(f"Unsupported image format {code!r}.") from None


def _backend_class(recorder: Recorder) -> type:
    class RecordingBackend:
        """pyvirtualcam backend interface: __init__(**kw), send, close, device, native_fourcc."""

        def __init__(self, *, width: int, height: int, fps: float, fourcc: int,
                     device: str | None, **kw):
            if recorder.fail_with is not None:
                raise recorder.fail_with
            self._code, fmt = _format_name(fourcc)
            self._fourcc = fourcc
            self._shape = _SHAPES[self._code](width, height)
            self._session = RecordingSession(
                width, height, fps, fmt, device or f"{recorder.name}:{len(recorder.sessions)}")
            recorder.sessions.append(self._session)

        def send(self, frame: np.ndarray) -> None:
            frames = self._session.frames
            frames.append(RecordedFrame(frame.reshape(self._shape).copy(), len(frames),
                                        time.perf_counter()))

        def close(self) -> None:
            self._session.closed = True

        def device(self) -> str:
            return self._session.device

        def native_fourcc(self) -> int:
            return self._fourcc

    return RecordingBackend


def register_recording_backend(name: str = "recording") -> Recorder:
    """Register (or replace) backend `name` with pyvirtualcam; returns its fresh Recorder."""
    import pyvirtualcam

    recorder = Recorder(name)
    pyvirtualcam.register_backend(name, _backend_class(recorder))
    return recorder
