"""The virtual camera ('VBG Camera') through pyvirtualcam."""

from __future__ import annotations

import sys
import time

import cv2
import numpy as np

from vbg.errors import SinkError
from vbg.sinks import vcam
from vbg.sinks.base import FrameAdapter, even_size, log


class VirtualCameraSink:
    """Sends frames to a v4l2loopback device (Linux) or OBS Virtual Camera (Windows/macOS).

    `pixel_format` "auto": I420 for v4l2loopback (what pyvirtualcam writes there anyway), so the
    pipeline's final pass can hand over I420 planes (`write_i420`) and nothing converts them
    again; BGR for the other backends (pyvirtualcam converts). BGR frames given to write()
    (the notice card, the idle frame) are converted here as cv2 does. The pipeline paces
    frames, so `sleep_until_next_frame` is never called.
    """

    needs_matte = False  # the composited frame only
    PIXEL_FORMATS = ("auto", "bgr", "i420")

    def __init__(self, device: str | None = None, backend: str | None = None,
                 name: str = vcam.LABEL, stand_in: str | None = None,
                 pixel_format: str = "auto"):
        if pixel_format not in self.PIXEL_FORMATS:
            raise SinkError(f"virtual camera pixel format {pixel_format!r}: use one of "
                            f"{', '.join(self.PIXEL_FORMATS)}")
        self.pixel_format = pixel_format
        self.takes_i420 = False  # set by open(): write_i420() takes the final pass's planes
        self._i420: np.ndarray | None = None
        self.requested_device = device
        self.backend = backend
        self.stand_in = stand_in  # a file whose readers stand for the device's (tests, bench)
        self.label = name
        self.name = "virtual camera"
        self._cam = None
        self._adapter: FrameAdapter | None = None
        self.frames_sent = 0
        self.last_latency_s: float | None = None  # capture timestamp -> frame handed over

    @property
    def device(self) -> str | None:
        """The device really opened (e.g. /dev/video10), None while closed."""
        return self._cam.device if self._cam is not None else None

    @property
    def readers_path(self) -> str | None:
        """The path whose readers are this camera's (on-demand), None where none can be
        counted (OBS/Unity backends, closed)."""
        if self.stand_in is not None:
            return self.stand_in
        if self._cam is not None and self._cam.backend == "v4l2loopback":
            return self._cam.device
        return None

    def _choose_device(self) -> str | None:
        if self.requested_device or self.backend not in (None, "v4l2loopback"):
            return self.requested_device
        if not sys.platform.startswith("linux"):
            return None
        found = vcam.find_loopback_device(self.label)
        if found is None:
            others = vcam.loopback_devices()
            if others:
                log.warning("no v4l2loopback device is labelled %r; pyvirtualcam picks the first "
                            "free one (%s). To label it: %s", self.label,
                            ", ".join(f"{p} {n!r}" for p, n in others), vcam.reload_command())
        return found

    def open(self, width: int, height: int, fps: float, channels: int = 3) -> None:
        import pyvirtualcam

        out_w, out_h = even_size(width, height, "virtual camera")
        device = self._choose_device()
        backend = self.backend
        if backend is None and sys.platform.startswith("linux"):
            backend = "v4l2loopback"  # not whatever else is registered (test backends)
        if backend is not None and backend not in pyvirtualcam.camera.BACKENDS:
            known = ", ".join(sorted(pyvirtualcam.camera.BACKENDS)) or "none"
            raise SinkError(f"unknown virtual camera backend {backend!r}; "
                            f"available here: {known}")
        i420 = self.pixel_format == "i420" or (self.pixel_format == "auto"
                                               and backend == "v4l2loopback")
        fmt = pyvirtualcam.PixelFormat.I420 if i420 else pyvirtualcam.PixelFormat.BGR
        try:
            self._cam = pyvirtualcam.Camera(out_w, out_h, fps, fmt=fmt, device=device,
                                            backend=backend, print_fps=False)
        except Exception as e:  # pyvirtualcam raises RuntimeError/ValueError/OSError per backend
            raise SinkError(vcam.explain_open_error(str(e), device, out_w, out_h)) from None
        self._adapter = FrameAdapter(out_w, out_h, what="virtual camera")
        self.takes_i420 = i420
        self._i420 = np.empty((out_h * 3 // 2, out_w), np.uint8) if i420 else None  # reused
        self.name = f"virtual camera {self._cam.device}"
        log.info("virtual camera: %s (%s backend) at %dx%d, %.4g fps", self._cam.device,
                 self._cam.backend, out_w, out_h, fps)

    def write(self, frame: np.ndarray, alpha: np.ndarray | None = None,
              timestamp: float | None = None) -> None:
        if self._cam is None or self._adapter is None:
            raise SinkError("virtual camera: write() before open()")
        frame = self._adapter(frame)
        if self._i420 is not None:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420, dst=self._i420)
        self._send(frame, timestamp)

    def write_i420(self, planes: np.ndarray, timestamp: float | None = None) -> None:
        """Take one frame already in I420 ((h*3/2) x w at the opened size), as it is."""
        if self._cam is None or self._i420 is None:
            raise SinkError("virtual camera: write_i420() before open() or on a BGR camera")
        if planes.shape != self._i420.shape:
            raise SinkError(f"virtual camera: I420 planes {planes.shape}, opened for "
                            f"{self._i420.shape}")
        self._send(planes, timestamp)

    def _send(self, frame: np.ndarray, timestamp: float | None) -> None:
        self._cam.send(frame)  # type: ignore[union-attr]
        self.frames_sent += 1
        if timestamp is not None:
            self.last_latency_s = time.perf_counter() - timestamp

    def close(self) -> None:
        if self._cam is not None:
            cam, self._cam = self._cam, None
            cam.close()
