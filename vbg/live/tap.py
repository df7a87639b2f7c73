"""The preview tap: the frames the outputs get, as JPEGs for pages that watch; while no page
watches, a frame costs one integer check."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import cv2
import numpy as np

PREVIEW_FPS = 12.0  # enough to judge a background; each JPEG costs ~2 ms of encoding
PREVIEW_WIDTH = 640
JPEG_QUALITY = 80


class PreviewTap:
    """offer(frame) on the pipeline thread copies at most `max_fps` frames a second, and only
    while someone watches; next_jpeg() encodes on the watcher's thread."""

    def __init__(self, max_fps: float = PREVIEW_FPS, width: int = PREVIEW_WIDTH) -> None:
        self.min_gap = 1.0 / max_fps
        self.width = width
        self.watchers = 0
        self.copies = 0  # frames copied for watchers (tests: zero while nobody watches)
        self._cond = threading.Condition()
        self._frame: np.ndarray | None = None
        self._seq = 0
        self._last = 0.0

    @property
    def seq(self) -> int:
        """Sequence number of the newest frame copied."""
        return self._seq

    def offer(self, frame: np.ndarray) -> None:
        """Called with every output frame; free while nobody watches."""
        if not self.watchers:
            return
        now = time.monotonic()
        if now - self._last < self.min_gap:
            return
        self._last = now
        image = frame if frame.ndim == 3 and frame.shape[2] == 3 else None
        if image is None:
            image = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR if frame.ndim == 2
                                 else cv2.COLOR_BGRA2BGR)
        with self._cond:
            if self._frame is None or self._frame.shape != image.shape:
                self._frame = np.empty_like(image)  # once per output size
            np.copyto(self._frame, image)
            self._seq += 1
            self.copies += 1
            self._cond.notify_all()

    @contextmanager
    def watching(self) -> Iterator[PreviewTap]:
        """Count a watcher for the duration of the block."""
        with self._cond:
            self.watchers += 1
        try:
            yield self
        finally:
            with self._cond:
                self.watchers -= 1

    def next_jpeg(self, after: int, timeout: float) -> tuple[int, bytes] | None:
        """The first frame newer than sequence number `after` as (seq, JPEG bytes), or None
        when none came within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._seq <= after or self._frame is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
            seq, image = self._seq, self._frame.copy()
        h, w = image.shape[:2]
        if w > self.width:
            image = cv2.resize(image, (self.width, max(1, round(h * self.width / w))),
                               interpolation=cv2.INTER_AREA)
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        return (seq, data.tobytes()) if ok else None
