"""The per-frame work of the CUDA path: one upload, the network's input, the network, the
smoothing, the background and the blend on the GPU, then one download of the output."""

from __future__ import annotations

import math
import time
from typing import Any

import cv2
import numpy as np

from vbg.gpu import kernels
from vbg.gpu.device import DeviceBuffers


def gauss_taps(sigma: float) -> np.ndarray:
    """The CPU blur's Gaussian (cv2's, radius ceil(3 sigma)) as float32 taps."""
    return cv2.getGaussianKernel(2 * math.ceil(3 * sigma) + 1, sigma).astype(np.float32).ravel()


class GpuFrameWork:
    """`__call__(frame, background, t)` -> the composited frame (a reused host buffer) and,
    if asked, the matte. Device buffers are made once per frame size (hot path); `last_ms`
    holds this frame's stage times (each stage ends in a stream sync)."""

    def __init__(self, matter, buffers: DeviceBuffers, smoothing: bool = True,
                 tau: float = 0.25, motion_gain: float = 6.0,
                 threshold: float | None = None, contrast: float | None = None) -> None:
        self.matter = matter
        self.b = buffers
        self.smoothing = smoothing and not matter.temporal
        self.tau = tau
        self.motion_gain = motion_gain
        self.threshold = np.float32(matter.threshold if threshold is None else threshold)
        self.contrast = np.float32(matter.contrast if contrast is None else contrast)
        self.last_ms: dict[str, float] = {}
        self._size: tuple[int, int] | None = None
        self._channels = 0
        self._last_t: float | None = None
        self._turn = 0
        self._bg_of: Any = None  # the host array (image) or colour now on the device
        self._blur: tuple | None = None  # (sigma, shrink, size) of the blur buffers
        self._smooth_shape: tuple | None = None  # the smoothing buffers' shape

    # -- buffers -------------------------------------------------------------------------
    def _allocate(self, width: int, height: int, channels: int) -> None:
        b = self.b
        self._frame = b.empty((height, width, 3), np.uint8)
        self._out = b.empty((height, width, channels), np.uint8)
        self._host_out = b.pinned((height, width, channels), np.uint8)
        self._bg = b.empty((height, width, 3), np.uint8)
        self._color = b.empty((1, 1, 3), np.uint8)  # a colour background's one pixel
        self._matte = b.empty((height, width), np.uint8)
        self._host_matte = b.pinned((height, width), np.uint8)
        self._size, self._channels = (width, height), channels
        self._bg_of, self._blur, self._last_t = None, None, None

    def _smoothing_buffers(self, shape: tuple[int, int]) -> None:
        if self._smooth_shape != shape:
            b = self.b
            # Zeroed: the first frame weighs them by 0, and 0 * NaN garbage would be NaN.
            self._smoothed = (b.zeros(shape), b.zeros(shape))
            self._greys = (b.zeros(shape), b.zeros(shape))
            self._smooth_shape = shape
            self._last_t = None

    def reset(self) -> None:
        """Forget the smoothing's past and the network's recurrent state."""
        self._last_t = None
        self.matter.reset()

    # -- per frame -----------------------------------------------------------------------
    def __call__(self, frame: np.ndarray, background, timestamp: float,
                 want_matte: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        height, width = frame.shape[:2]
        channels = 4 if background.kind == "transparent" else 3
        if self._size != (width, height) or self._channels != channels:
            self._allocate(width, height, channels)
        b, stream = self.b, self.b.stream
        grid, block = kernels.launch(width, height)
        t0 = time.perf_counter()
        self._frame.copy_to_device(np.ascontiguousarray(frame), stream=stream)  # the upload
        tensor = self.matter.input_tensor(width, height)
        if self.matter.layout == "nchw":
            g, k = kernels.launch(tensor.shape[3], tensor.shape[2])
            kernels.to_nchw[g, k, stream](self._frame, tensor)
        else:
            g, k = kernels.launch(tensor.shape[2], tensor.shape[1])
            kernels.to_nhwc_cubic[g, k, stream](self._frame, tensor)
        b.sync()  # onnxruntime runs on its own stream: the input must be complete
        t1 = time.perf_counter()
        alpha = self.matter.run()  # returns once the matte is written
        t2 = time.perf_counter()
        if self.smoothing:
            alpha = self._smooth(alpha, timestamp)
            b.sync()
        t3 = time.perf_counter()
        self._blend(frame, background, alpha, grid, block)
        self._out.copy_to_host(self._host_out, stream=stream)  # the one download
        matte = None
        if want_matte:  # a sink records the matte: a second, smaller download
            kernels.matte[grid, block, stream](alpha, self.threshold, self.contrast,
                                               self._matte)
            self._matte.copy_to_host(self._host_matte, stream=stream)
            matte = self._host_matte
        b.sync()
        t4 = time.perf_counter()
        self.last_ms = {"preprocess": (t1 - t0) * 1e3, "inference": (t2 - t1) * 1e3,
                        "smoothing": (t3 - t2) * 1e3, "composite": (t4 - t3) * 1e3}
        return self._host_out, matte

    def _smooth(self, alpha, timestamp: float):
        """The CPU smoother's rule on the device (its scene-cut reset aside: large grey
        changes already turn the smoothing off pixel by pixel)."""
        shape = tuple(alpha.shape)
        self._smoothing_buffers(shape)
        stream = self.b.stream
        prev, out = self._smoothed[self._turn], self._smoothed[1 - self._turn]
        prev_grey, grey = self._greys[self._turn], self._greys[1 - self._turn]
        g, k = kernels.launch(shape[1], shape[0])
        kernels.grey_at[g, k, stream](self._frame, grey)
        if self._last_t is None:
            keep = 0.0
        else:
            dt = max(1e-3, timestamp - self._last_t)
            keep = math.exp(-dt / self.tau) if self.tau > 0 else 0.0
        kernels.smooth[g, k, stream](alpha, prev, grey, prev_grey, np.float32(keep),
                                     np.float32(self.motion_gain), out)
        self._last_t = timestamp
        self._turn = 1 - self._turn
        return out

    def _blend(self, frame: np.ndarray, background, alpha, grid, block) -> None:
        stream, kind = self.b.stream, background.kind
        args = (self._frame, alpha, self.threshold, self.contrast)
        if kind == "transparent":
            kernels.to_bgra[grid, block, stream](*args, self._out)
        elif kind == "color":
            color = np.asarray(background.color, np.uint8).reshape(1, 1, 3)
            if self._bg_of is None or not np.array_equal(self._bg_of, color):
                self._color.copy_to_device(color, stream=stream)
                self._bg_of = color
            kernels.blend[grid, block, stream](*args, self._color, self._out)
        elif kind == "blur":
            blurred = self._blurred_room(background, alpha)
            kernels.blend_blur[grid, block, stream](*args, blurred, self._out)
        else:  # image or video: the background's own pixels at frame size
            pixels = background.prepare(frame, None)
            # A still image is uploaded once; a video's next frame every time.
            if kind != "image" or pixels is not self._bg_of:
                self._bg.copy_to_device(np.ascontiguousarray(pixels), stream=stream)
                self._bg_of = pixels
            kernels.blend[grid, block, stream](*args, self._bg, self._out)

    def _blurred_room(self, background, alpha):
        """The room blurred without the person: weighted block means at 1/shrink of the
        frame (the CPU blur's sigma and shrink), two Gaussian passes; the blend enlarges and
        divides by the weight."""
        width, height = self._size  # type: ignore[misc]
        sigma, shrink = background.sigma, background.shrink
        if self._blur != (sigma, shrink, self._size):
            b = self.b
            small = (max(1, -(-height // shrink)), max(1, -(-width // shrink)))
            self._levels = (b.empty((*small, 4)), b.empty((*small, 4)))
            self._taps = b.cuda.to_device(gauss_taps(sigma / shrink), stream=b.stream)
            self._blur = (sigma, shrink, self._size)
        stream = self.b.stream
        level, tmp = self._levels
        g, k = kernels.launch(level.shape[1], level.shape[0])
        kernels.shrink_weighted[g, k, stream](self._frame, alpha, self.threshold,
                                              self.contrast, np.int32(shrink), level)
        kernels.gauss_pass[g, k, stream](level, self._taps, np.int32(0), tmp)
        kernels.gauss_pass[g, k, stream](tmp, self._taps, np.int32(1), level)
        return level

    # -- start-up ------------------------------------------------------------------------
    def self_check(self) -> str | None:
        """Blend a known frame and matte on the device and compare with numpy: None if the
        GPU gives the right pixels, else what went wrong (the caller falls back to CPU)."""
        rng = np.random.default_rng(7)
        fg = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
        bg = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
        alpha = np.linspace(0, 1, 24 * 40, dtype=np.float32).reshape(24, 40)
        b = self.b
        try:
            out = b.empty((24, 40, 3), np.uint8)
            grid, block = kernels.launch(40, 24)
            kernels.blend[grid, block, b.stream](
                b.cuda.to_device(fg), b.cuda.to_device(alpha), np.float32(0.5),
                np.float32(1.0), b.cuda.to_device(bg), out)
            got = out.copy_to_host(stream=b.stream)
            b.sync()
        except Exception as e:  # driver or launch failure
            return f"a test blend failed on the GPU: {e}"
        want = np.round(bg + alpha[..., None] * (fg.astype(np.float32) - bg))
        worst = np.abs(got.astype(np.int16) - want.astype(np.int16)).max()
        if worst > 1:
            return f"a test blend on the GPU is off by {worst} levels"
        return None

    def warm_up(self, width: int = 64, height: int = 48) -> None:
        """Compile/load every kernel and start the network before the first real frame."""
        from vbg.backgrounds import BlurBackground, ColorBackground, TransparentBackground

        frame = np.zeros((height, width, 3), np.uint8)
        for background in (ColorBackground((0, 0, 0)), TransparentBackground()):
            self(frame, background, 0.0, want_matte=True)
        self._blurred_room(BlurBackground(), self.matter.run())
        self.matter.reset()
        self._size = None  # the real frames get their own buffers
