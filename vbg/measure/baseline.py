"""The typical Python virtual-background webcam tool, reproduced faithfully for `vbg bench`.

What such tools do per frame (e.g. Linux-Fake-Background-Webcam and the MediaPipe examples):
MediaPipe's legacy selfie solution (landscape model, 256x144) gives a float32 mask; the tool
thresholds it at 0.75, dilates 5x5, box-blurs 10x10, keeps a running average with
cv2.accumulateWeighted(.., 0.5), scales it to the frame and blends with numpy floats,
`mask * frame + (1 - mask) * background`, allocating new frame-sized arrays every frame.

The mask is post-processed at the network's 256x144 and only then scaled up. MediaPipe's
solution really returns it at the frame size, so the tools filter a full-size mask; measured
here that costs ~1 ms more per 720p frame and ~10 ms more per 1080p frame. The cheaper order
is kept on purpose (it lands on the reference figures for the typical tool on a 2-core CPU,
~23 ms per 720p and ~45 ms per 1080p frame): the comparison never flatters vbg.

Deliberately NOT optimised: the fresh arrays and float maths per frame are what is measured.
The network is vbg's bundled ONNX conversion of the same tflite model (outputs differ by
< 1.2e-4), run with vbg's onnxruntime settings on the CPU (MediaPipe's Python solution runs on
the CPU on Linux), so the model costs both tools the same and the comparison is the pipeline.
"""

from __future__ import annotations

import time
from collections import deque

import cv2
import numpy as np

from vbg.models import verified_path
from vbg.models.session import new_session

MODEL = "selfie-landscape"
INPUT_SIZE = (256, 144)  # (w, h) of the landscape model
THRESHOLD = 0.75  # Linux-Fake-Background-Webcam's default --threshold 75
DILATE_KERNEL = np.ones((5, 5), np.uint8)
BLUR_SIZE = (10, 10)
MASK_UPDATE_SPEED = 0.5  # its default --background-mask-update-speed 50
BLUR_KERNEL = 21  # its default --background-blur 21, sigma = 21 / 3
STAGES = ("inference", "postprocess", "background", "composite")


class TypicalTool:
    """Callable BGR frame -> composited BGR uint8 frame, the way the typical tool does it."""

    def __init__(self, background: np.ndarray | None = None, threads: int | None = None) -> None:
        self._session = new_session(verified_path(MODEL), "cpu", threads)
        self._input = self._session.get_inputs()[0].name
        self._background_image = background  # None: blur the frame, as with --no-background
        self._background: np.ndarray | None = None
        self._average: np.ndarray | None = None
        self.stage_ms = {name: deque(maxlen=2000) for name in STAGES}

    def segment(self, frame: np.ndarray) -> np.ndarray:
        """The network's float32 mask, 256x144 (1 = person)."""
        small = cv2.resize(frame, INPUT_SIZE)  # INTER_LINEAR, the cv2 default
        rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
        tensor = (rgb.astype(np.float32) / 255.0)[None]
        return self._session.run(None, {self._input: tensor})[0][0, :, :, 0]

    def postprocess(self, mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """Threshold, dilate, blur, running average; then the mask scaled to `size` (w, h)."""
        _, mask = cv2.threshold(mask, THRESHOLD, 1.0, cv2.THRESH_BINARY)
        mask = cv2.dilate(mask, DILATE_KERNEL, iterations=1)
        mask = cv2.blur(mask, BLUR_SIZE)
        if self._average is None:
            self._average = mask
        mask = cv2.accumulateWeighted(mask, self._average, MASK_UPDATE_SPEED)
        return cv2.resize(mask, size)

    def background(self, frame: np.ndarray) -> np.ndarray:
        """A static image resized once, or the frame blurred anew every frame."""
        if self._background_image is None:
            sigma = BLUR_KERNEL / 3
            return cv2.GaussianBlur(frame, (BLUR_KERNEL, BLUR_KERNEL), sigma)
        size = (frame.shape[1], frame.shape[0])
        if self._background is None or self._background.shape[:2] != frame.shape[:2]:
            self._background = cv2.resize(self._background_image, size)
        return self._background

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        mask = self.segment(frame)
        t1 = time.perf_counter()
        mask = self.postprocess(mask, (frame.shape[1], frame.shape[0]))
        t2 = time.perf_counter()
        background = self.background(frame)
        t3 = time.perf_counter()
        alpha = mask[..., None]
        out = (alpha * frame + (1 - alpha) * background).astype(np.uint8)
        t4 = time.perf_counter()
        for name, ms in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            self.stage_ms[name].append(ms * 1e3)
        return out

    def clear_stats(self) -> None:
        for values in self.stage_ms.values():
            values.clear()
