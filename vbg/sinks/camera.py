"""The virtual camera ('VBG Camera') through pyvirtualcam."""

from __future__ import annotations

import sys
import time

import numpy as np

from vbg.errors import SinkError
from vbg.sinks import vcam
from vbg.sinks.base import FrameAdapter, even_size, log


class VirtualCameraSink:
    """Sends BGR frames to a v4l2loopback device (Linux) or OBS Virtual Camera (Windows/macOS).

    pyvirtualcam converts BGR to I420 itself (libyuv), so no extra conversion happens here;
    the pipeline paces frames, so `sleep_until_next_frame` is never called.
    """

    needs_matte = False  # the composited frame only

    def __init__(self, device: str | None = None, backend: str | None = None,
                 name: str = vcam.LABEL):
        self.requested_device = device
        self.backend = backend
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
        try:
            self._cam = pyvirtualcam.Camera(out_w, out_h, fps, fmt=pyvirtualcam.PixelFormat.BGR,
                                            device=device, backend=backend, print_fps=False)
        except Exception as e:  # pyvirtualcam raises RuntimeError/ValueError/OSError per backend
            raise SinkError(vcam.explain_open_error(str(e), device, out_w, out_h)) from None
        self._adapter = FrameAdapter(out_w, out_h, what="virtual camera")
        self.name = f"virtual camera {self._cam.device}"
        log.info("virtual camera: %s (%s backend) at %dx%d, %.4g fps", self._cam.device,
                 self._cam.backend, out_w, out_h, fps)

    def write(self, frame: np.ndarray, alpha: np.ndarray | None = None,
              timestamp: float | None = None) -> None:
        if self._cam is None or self._adapter is None:
            raise SinkError("virtual camera: write() before open()")
        self._cam.send(self._adapter(frame))
        self.frames_sent += 1
        if timestamp is not None:
            self.last_latency_s = time.perf_counter() - timestamp

    def close(self) -> None:
        if self._cam is not None:
            cam, self._cam = self._cam, None
            cam.close()
