"""Frame sources behind one small API: cameras, video files, MJPEG/RTSP streams."""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vbg.errors import CameraError, ConfigError

PIXEL_FORMATS = {"mjpg": "MJPG", "yuyv": "YUYV"}
DEFAULT_FILE_FPS = 30.0
URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
DEVICE = re.compile(r"^/dev/video(\d+)$")
CAMERA_HINTS = (
    "Is the camera plugged in? Is it in use by another application (close other video apps)? "
    "On Linux your user needs access to it (the 'video' group: "
    "`sudo usermod -aG video $USER`, then log in again). `vbg doctor` lists the cameras found."
)


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What a source actually delivers (not what was requested)."""

    name: str
    width: int
    height: int
    fps: float
    pixel_format: str
    frame_count: int | None = None  # files only

    def __str__(self) -> str:
        frames = f", {self.frame_count} frames" if self.frame_count else ""
        return (f"{self.name}: {self.width}x{self.height} at {self.fps:g} fps "
                f"({self.pixel_format}{frames})")


class Source:
    """A stream of BGR uint8 frames; subclasses implement read() and close()."""

    info: SourceInfo
    is_file: bool = False
    is_live: bool = True

    def read(self) -> np.ndarray | None:
        """Next BGR frame; None at the end of a file; raises CameraError when the input fails."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the device or connection (idempotent)."""

    def interrupt(self) -> None:
        """Best effort, callable from another thread: make a blocked read() return soon."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def as_bgr(image: np.ndarray | None) -> np.ndarray | None:
    """Normalise a decoded frame to C-contiguous BGR uint8 HxWx3; None if it is not a frame."""
    if not isinstance(image, np.ndarray) or image.size == 0 or image.dtype != np.uint8:
        return None
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim != 3:
        return None
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.shape[2] != 3:
        return None
    return image if image.flags.c_contiguous else np.ascontiguousarray(image)


def fourcc_text(code: float) -> str:
    """Decode an OpenCV FOURCC property into text ('MJPG'); '' if unknown."""
    value = int(code) if code and math.isfinite(code) else 0
    text = "".join(chr((value >> (8 * i)) & 0xFF) for i in range(4))
    return text.strip("\x00 ") if text.isprintable() else ""


_quiet_lock = threading.Lock()
_quiet_users = [0, 0]  # [number of opens in progress, log level to restore]


@contextlib.contextmanager
def quiet_opencv() -> Iterator[None]:
    """Hide OpenCV's own warnings while probing; our CameraError says what went wrong."""
    logging = cv2.utils.logging
    with _quiet_lock:
        if _quiet_users[0] == 0:
            _quiet_users[1] = logging.getLogLevel()
            logging.setLogLevel(logging.LOG_LEVEL_ERROR)
        _quiet_users[0] += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_users[0] -= 1
            if _quiet_users[0] == 0:
                logging.setLogLevel(_quiet_users[1])


class CvSource(Source):
    """A cv2.VideoCapture (camera, file or FFmpeg stream)."""

    def __init__(self, cap: cv2.VideoCapture, info: SourceInfo, is_file: bool,
                 first: np.ndarray | None) -> None:
        self._cap: cv2.VideoCapture | None = cap
        self.info = info
        self.is_file = is_file
        self.is_live = not is_file
        self._pending = first

    def read(self) -> np.ndarray | None:
        """Next BGR frame (None at end of file)."""
        if self._pending is not None:
            frame, self._pending = self._pending, None
            return frame
        if self._cap is None:
            raise CameraError(f"{self.info.name}: the source is closed")
        ok, image = self._cap.read()
        frame = as_bgr(image) if ok else None
        if frame is not None:
            return frame
        if self.is_file:
            return None
        raise CameraError(
            f"{self.info.name} stopped delivering frames (unplugged, stream ended or timed out)"
        )

    def close(self) -> None:
        """Release the capture."""
        cap, self._cap = self._cap, None
        self._pending = None
        if cap is not None:
            cap.release()


def pixel_fourcc(pixel_format: str | None) -> str | None:
    if pixel_format is None or pixel_format.lower() in ("", "auto"):
        return None
    try:
        return PIXEL_FORMATS[pixel_format.lower()]
    except KeyError:
        choices = ", ".join(PIXEL_FORMATS)
        raise ConfigError(
            f"unknown camera pixel format '{pixel_format}': use one of {choices} (or auto)"
        ) from None


def open_camera(spec: str, size: tuple[int, int] | None, fps: float | None,
                fourcc: str | None, read_timeout: float) -> Source:
    """Open a local camera by index or /dev/videoN and read back what it delivers."""
    linux = sys.platform.startswith("linux")
    match = DEVICE.match(spec)
    device = spec if match else (f"/dev/video{spec}" if linux else f"camera {spec}")
    if linux:
        _check_device_node(device)
    target: int | str = int(spec) if spec.isdigit() else spec
    with quiet_opencv():
        cap = cv2.VideoCapture(target, cv2.CAP_V4L2 if linux else cv2.CAP_ANY)
        if not cap.isOpened():
            cap.release()
            raise CameraError(f"camera {device} could not be opened. {CAMERA_HINTS}")
        if fourcc:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*fourcc))
        if size:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
        if fps:
            cap.set(cv2.CAP_PROP_FPS, fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # keep latency low: newest frame, not a backlog
        cap.set(cv2.CAP_PROP_READ_TIMEOUT_MSEC, read_timeout * 1000)  # ignored if unsupported
        ok, image = cap.read()
    first = as_bgr(image) if ok else None
    if first is None:
        cap.release()
        raise CameraError(
            f"camera {device} opened but delivered no frame: it may be in use by another "
            f"application or not support the requested format "
            f"({fourcc or 'auto'} {_size_text(size)} @ {fps or 'auto'} fps). {CAMERA_HINTS}"
        )
    got_fps = _finite(cap.get(cv2.CAP_PROP_FPS)) or fps or DEFAULT_FILE_FPS
    info = SourceInfo(device, first.shape[1], first.shape[0], got_fps,
                      fourcc_text(cap.get(cv2.CAP_PROP_FOURCC)) or "unknown")
    return CvSource(cap, info, is_file=False, first=first)


def _check_device_node(device: str) -> None:
    if not os.path.exists(device):
        raise CameraError(f"camera {device} could not be opened: no such device. {CAMERA_HINTS}")
    if not os.access(device, os.R_OK | os.W_OK):
        raise CameraError(
            f"camera {device} could not be opened: permission denied. Add your user to the "
            f"'video' group (`sudo usermod -aG video $USER`, then log in again)."
        )


def _open_with_first_frame(*args) -> tuple[cv2.VideoCapture, np.ndarray | None]:
    """cv2.VideoCapture(*args) and its first frame as BGR; None (capture released) if it
    cannot be opened or read."""
    with quiet_opencv():
        cap = cv2.VideoCapture(*args)
        ok, image = cap.read() if cap.isOpened() else (False, None)
    first = as_bgr(image) if ok else None
    if first is None:
        cap.release()
    return cap, first


def open_file(spec: str) -> Source:
    """Open a video file; it reports its own fps (30 if the container has none)."""
    path = Path(spec).expanduser()
    if not path.is_file():
        raise CameraError(
            f"video file {spec} could not be opened: no such file. Check the path, or give a "
            f"camera index (0), /dev/videoN or a URL."
        )
    cap, first = _open_with_first_frame(str(path))
    if first is None:
        raise CameraError(
            f"video file {spec} could not be read as a video (unsupported or corrupt). "
            f"Convert it, e.g. `ffmpeg -i {path.name} -c:v libx264 out.mp4`."
        )
    count = int(_finite(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
    info = SourceInfo(str(spec), first.shape[1], first.shape[0], file_fps(cap),
                      fourcc_text(cap.get(cv2.CAP_PROP_FOURCC)) or "unknown", count or None)
    return CvSource(cap, info, is_file=True, first=first)


def file_fps(cap: cv2.VideoCapture) -> float:
    """The container's frame rate, or 30 if it has none that makes sense."""
    fps = _finite(cap.get(cv2.CAP_PROP_FPS))
    return fps if 0.5 <= fps <= 1000 else DEFAULT_FILE_FPS


def open_stream(url: str, open_timeout: float, read_timeout: float,
                detail: str = "") -> Source:
    """Open an RTSP/HTTP/other URL with FFmpeg, with bounded open and read timeouts."""
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(open_timeout * 1000),
              cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(read_timeout * 1000)]
    cap, first = _open_with_first_frame(url, cv2.CAP_FFMPEG, params)
    if first is None:
        raise CameraError(
            f"stream {redact(url)} could not be opened or delivered no frame within "
            f"{open_timeout:g} s{detail}. Check the URL, credentials and network, and that "
            f"the camera is on."
        )
    info = SourceInfo(redact(url), first.shape[1], first.shape[0], file_fps(cap),
                      fourcc_text(cap.get(cv2.CAP_PROP_FOURCC)) or "unknown")
    return CvSource(cap, info, is_file=False, first=first)


def redact(url: str) -> str:
    """The URL without a password, for messages and names."""
    return re.sub(r"(://[^/:@]*):[^/@]*@", r"\1:***@", url)


def _finite(value: float) -> float:
    return float(value) if value and math.isfinite(value) and value > 0 else 0.0


def _size_text(size: tuple[int, int] | None) -> str:
    return f"{size[0]}x{size[1]}" if size else "any size"
