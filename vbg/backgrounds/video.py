"""A looping video background, decoded by its own thread at the video's fps."""

from __future__ import annotations

import math
import os
import threading
import time

import cv2
import numpy as np

from vbg.backgrounds.base import cover_fit, frame_size
from vbg.errors import BackgroundError


def _open_video(path: str) -> cv2.VideoCapture:
    """Open a video file or raise BackgroundError naming it."""
    if not os.path.isfile(path):
        raise BackgroundError(f"background video {path!r} not found: check the path")
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        capture.release()
        raise BackgroundError(
            f"background video {path!r} cannot be opened: use a video file OpenCV/FFmpeg "
            "can read (MP4/H.264, AVI/MJPG, WebM)"
        )
    return capture


class VideoBackground:
    """A looping video, played at its own fps by a decoder thread; latest frame wins."""

    kind = "video"
    _BUFFERS = 3  # triple buffer: one shown, one latest, one being written

    def __init__(self, path: str | os.PathLike[str], loop: bool = True) -> None:
        self.path = os.fspath(path)
        self.loop = loop
        self._capture = _open_video(self.path)
        if cv2.haveImageReader(self.path) or self._capture.get(cv2.CAP_PROP_FRAME_COUNT) == 1:
            self._capture.release()  # FFmpeg reads a picture as a 1-frame video, then spins
            raise BackgroundError(f"background video {self.path!r} is a still image: give it "
                                  f"with --background {self.path} (--video is for video files)")
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if math.isfinite(fps) and 1 <= fps <= 240 else 30.0
        self._raw = [np.empty(0, np.uint8), np.empty(0, np.uint8)]  # decode ping-pong
        self._raw_latest = 0
        if not self._read_raw(0):
            self._capture.release()
            raise BackgroundError(
                f"background video {self.path!r} has no readable frames: "
                "check that the file is a complete, supported video"
            )
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._size: tuple[int, int] | None = None
        self._fitted: list[np.ndarray] = []
        self._latest = 0
        self._shown = 0
        self._generation = 0
        self.rewinds = 0

    def _read_raw(self, index: int) -> bool:
        """Decode the next frame into raw buffer `index`; rewind once at end of file."""
        ok, image = self._capture.read(self._raw[index] if self._raw[index].size else None)
        if not ok and self.loop:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, image = self._capture.read(self._raw[index] if self._raw[index].size else None)
            if not ok:  # some containers cannot seek: reopen instead
                self._capture.release()
                self._capture = cv2.VideoCapture(self.path)
                ok, image = self._capture.read()
            self.rewinds += ok
        if ok:
            self._raw[index] = image
        return bool(ok)

    def _allocate(self, size: tuple[int, int]) -> None:
        """New fitted buffers for `size`, the latest decoded frame in one of them (under lock)."""
        width, height = size
        self._fitted = [np.empty((height, width, 3), np.uint8) for _ in range(self._BUFFERS)]
        cover_fit(self._raw[self._raw_latest], size, out=self._fitted[0], fast=True)
        self._latest = self._shown = 0
        self._size = size
        self._generation += 1

    def _run(self) -> None:
        """Decoder thread: decode, cover-fit into a free buffer, publish at the frame's time."""
        start = time.monotonic()
        index = 1  # frame 0 was decoded at construction
        raw = 1
        while not self._stop.is_set():
            due = start + index / self.fps
            late = time.monotonic() - due
            if late > 1:  # stalled (suspend, overload): resume from here, do not race to catch up
                start, late = start + late, 0.0
                due = start + index / self.fps
            if late > 2 / self.fps and self._capture.grab():  # behind: skip without decoding
                index += 1
                continue
            if not self._read_raw(raw):
                return  # end of a non-looping video, or decode failure: keep the last frame
            with self._lock:
                self._raw_latest = raw
                generation, size = self._generation, self._size
                target = next(
                    i for i in range(self._BUFFERS) if i not in (self._latest, self._shown)
                )
                buffer = self._fitted[target]
            raw = 1 - raw
            cover_fit(self._raw[1 - raw], size, out=buffer, fast=True)
            if self._stop.wait(max(0.0, due - time.monotonic())):
                return
            with self._lock:
                if generation == self._generation:
                    self._latest = target
            index += 1

    def prepare(self, frame: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """The video frame for now, cover-fitted to the frame size (reused buffers)."""
        size = frame_size(frame)
        with self._lock:
            if size != self._size:
                self._allocate(size)
            self._shown = self._latest
            shown = self._fitted[self._shown]
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="vbg-video-bg", daemon=True)
            self._thread.start()
        return shown

    def close(self) -> None:
        """Stop the decoder thread and release the file."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._capture.release()
