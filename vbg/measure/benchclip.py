"""The bench's in-memory clip (a real portrait swaying over a real room) and its sources."""

from __future__ import annotations

import dataclasses
import time
from collections import deque

import cv2
import numpy as np

from vbg.backgrounds import BUNDLED_DIR, cover_fit
from vbg.capture import Source, SourceInfo
from vbg.data import data_path
from vbg.errors import VbgError
from vbg.matte.refine import MatteRefiner
from vbg.segment import new_segmenter

PORTRAIT = data_path("samples", "astronaut.png")  # package data: works from a wheel too
SCENE = BUNDLED_DIR / "launch.jpg"  # the "room" behind the person in the bench clip
RING_FRAMES = 60


def _person_layer() -> tuple[np.ndarray, np.ndarray]:
    """The portrait and its matte (vbg's own models, computed once, not measured)."""
    portrait = cv2.imread(str(PORTRAIT), cv2.IMREAD_COLOR)
    if portrait is None:
        raise VbgError(f"bench sample {PORTRAIT} is missing or unreadable; restore it with "
                       "`git checkout -- vbg/data/samples/` or reinstall vbg, or give --source "
                       "FILE")
    low = new_segmenter("selfie", "cpu")(portrait).copy()
    matte = MatteRefiner()(portrait, low)
    return portrait, cv2.erode(matte, np.ones((5, 5), np.uint8))  # no halo of the old scene


def _scene(size: tuple[int, int]) -> np.ndarray:
    scene = cv2.imread(str(SCENE), cv2.IMREAD_COLOR)
    if scene is None:
        raise VbgError(f"bench scene {SCENE} is missing or unreadable; restore it with "
                       "`git checkout -- vbg/backgrounds/images/` or reinstall vbg, or give "
                       "--source FILE")
    return cover_fit(scene, size)


def make_clip(size: tuple[int, int], count: int = RING_FRAMES, seed: int = 0,
              still: bool = False) -> list[np.ndarray]:
    """`count` distinct BGR frames: the portrait sways, zooms and tilts over a scene, with
    sensor-like noise; a loop (the last frame leads smoothly into the first). `still`: a
    talking head that holds still, only the sensor noise changes."""
    w, h = size
    portrait, matte = _person_layer()
    scene = _scene(size).astype(np.float32)
    noise = np.random.default_rng(seed).normal(0.0, 2.0, (h, w, 3)).astype(np.float32)
    # Portrait rows 15 (top of the hair) .. 512 (shoulders, cut) span 1.0 h: the head sits near
    # the top and the cut edge stays below the frame whatever the sway.
    base = h / 497.0
    pivot = (256.0, 400.0)  # chest, in portrait pixels
    frames = []
    for i in range(count):
        t = 0.0 if still else 2 * np.pi * i / count
        zoom = base * (1 + 0.05 * np.sin(t + 1.0))
        angle = 4.0 * np.sin(2 * t)
        m = cv2.getRotationMatrix2D(pivot, angle, zoom)
        m[0, 2] += w / 2 - pivot[0] + 0.06 * w * np.sin(t)
        m[1, 2] += 0.895 * h - pivot[1] + 0.02 * h * np.sin(3 * t)
        person = cv2.warpAffine(portrait, m, size, flags=cv2.INTER_LINEAR).astype(np.float32)
        alpha = cv2.warpAffine(matte, m, size, flags=cv2.INTER_LINEAR)[..., None] / 255.0
        frame = person * alpha + scene * (1.0 - alpha)
        frame += np.roll(noise, 37 * i, axis=1)  # sensor-like noise, different every frame
        frames.append(np.ascontiguousarray(np.clip(frame + 0.5, 0, 255).astype(np.uint8)))
    return frames


class RingSource(Source):
    """Endless frames from a pre-built ring (no decode); behaves as a file, paced or not."""

    is_file = True
    is_live = False

    def __init__(self, frames: list[np.ndarray], fps: float = 0.0) -> None:
        h, w = frames[0].shape[:2]
        self._frames = frames
        self._next = 0
        self.info = SourceInfo(f"in-memory clip ({len(frames)} frames)", w, h, fps, "BGR")

    def read(self) -> np.ndarray:
        frame = self._frames[self._next]  # shared, read-only by every stage: no copy
        self._next = (self._next + 1) % len(self._frames)
        return frame


class TimedSource(Source):
    """Wraps a source: times read() (decode), resizes to `size`, can present another fps."""

    def __init__(self, inner: Source, decode_ms: deque, size: tuple[int, int] | None = None,
                 fps: float | None = None) -> None:
        self._inner = inner
        self._decode_ms = decode_ms
        self._size = size
        info = inner.info
        if size:
            info = dataclasses.replace(info, width=size[0], height=size[1])
        if fps:
            info = dataclasses.replace(info, fps=fps)
        self.info = info
        self.is_file = inner.is_file
        self.is_live = inner.is_live

    def read(self) -> np.ndarray | None:
        t0 = time.perf_counter()
        image = self._inner.read()
        if image is not None and self._size and image.shape[1::-1] != self._size:
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        self._decode_ms.append((time.perf_counter() - t0) * 1e3)
        return image

    def close(self) -> None:
        self._inner.close()

    def interrupt(self) -> None:
        self._inner.interrupt()
