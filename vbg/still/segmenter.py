"""The photo segmenter: models averaged (selfie ones with mirror passes), then a zoomed pass."""

from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np

from vbg.errors import ConfigError
from vbg.segment import new_segmenter, rvm
from vbg.segment.zoom import person_box

# RVM's internal long side for photos (live video uses 640): see docs/decisions.md,
# "Still RVM internal size".
STILL_RVM_SIZE = 576
# `--model auto` = RVM when installed (`vbg models pull rvm`), else both bundled selfie models
# averaged, each with its mirror image; then a second pass on a crop around the people
# (docs/decisions.md, "Photo ensemble").
FALLBACK_MODELS = ("selfie", "selfie-landscape")
MIRROR_AVERAGED = frozenset(FALLBACK_MODELS)  # the mirror pass does not help RVM
ZOOM_MARGIN = 0.15  # margin added around the people's box, as a fraction of its size
ZOOM_MAX_AREA = 0.8  # no zoomed pass when the box covers more of the photo than this
CANVAS = 1280  # long side of the alpha handed to the refiner (photo size if smaller; = RVM's)


class PhotoMatter(Protocol):
    """What StillPipeline needs from a segmenter: a photo in, its float32 alpha out."""

    name: str  # "rvm" selects RVM's gentler alpha curve in the refiner

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """float32 alpha (1 = person) of a BGR uint8 photo, at any size (it is resized)."""
        ...


def model_names(text: str) -> list[str]:
    """The models `--model` asks for; `auto` = rvm if installed, else the bundled pair."""
    if text.strip() == "auto":
        return ["rvm"] if rvm.rvm_installed() else list(FALLBACK_MODELS)
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise ConfigError("--model: give auto or at least one model name")
    return names


def models_line(text: str) -> str:
    """One line saying which model(s) `--model text` uses, and why when `auto` chose."""
    names = model_names(text)
    used = f"vbg: model{'s' * (len(names) > 1)} {'+'.join(names)}"
    if text.strip() != "auto":
        return used
    if names == ["rvm"]:
        return (f"{used} (--model auto: RVM is installed; --model {','.join(FALLBACK_MODELS)} "
                "for the bundled pair, `vbg models remove rvm` to go back to it)")
    return f"{used} (--model auto: the bundled pair; `vbg models pull rvm` adds RVM)"


class PhotoSegmenter:
    """Photo alpha: models averaged (selfie ones with mirror passes), again on the people's box."""

    def __init__(self, names: list[str], provider: str, threads: int | None = None) -> None:
        self.models = [new_segmenter(name, provider=provider, threads=threads,
                                     **({"internal": STILL_RVM_SIZE} if name == "rvm" else {}))
                       for name in names]
        self.name = "+".join(names)
        self.provider = self.models[0].provider

    def _average(self, frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """Mean alpha of the models (and mirror passes) on `frame`, resized to size (w, h)."""
        acc = np.zeros((size[1], size[0]), np.float32)
        passes = 0
        mirrored = None
        for model in self.models:
            model.reset()  # each photo on its own: no recurrent state from the last one
            acc += cv2.resize(model(frame), size, interpolation=cv2.INTER_LINEAR)
            passes += 1
            if model.name in MIRROR_AVERAGED:
                if mirrored is None:
                    mirrored = np.ascontiguousarray(frame[:, ::-1])
                acc += cv2.resize(model(mirrored), size, interpolation=cv2.INTER_LINEAR)[:, ::-1]
                passes += 1
        acc *= np.float32(1.0 / passes)
        return acc

    @staticmethod
    def _zoom_box(alpha: np.ndarray) -> tuple[int, int, int, int] | None:
        """(x0, y0, x1, y1) around alpha > 0.5 plus a margin, or None when not worth it."""
        box = person_box(alpha)
        if box is None:
            return None
        h, w = alpha.shape
        x0, y0, x1, y1 = box
        mx, my = ZOOM_MARGIN * (x1 - x0), ZOOM_MARGIN * (y1 - y0)
        x0, x1 = max(0, int(x0 - mx)), min(w, int(np.ceil(x1 + mx)))
        y0, y1 = max(0, int(y0 - my)), min(h, int(np.ceil(y1 + my)))
        if (x1 - x0) * (y1 - y0) > ZOOM_MAX_AREA * w * h:
            return None
        return x0, y0, x1, y1

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """float32 alpha (1 = person) at the photo's size, long side capped at CANVAS."""
        h, w = frame.shape[:2]
        scale = min(1.0, CANVAS / max(h, w))
        cw, ch = max(1, round(w * scale)), max(1, round(h * scale))
        alpha = self._average(frame, (cw, ch))
        box = self._zoom_box(alpha)
        if box is not None:
            x0, y0, x1, y1 = box
            crop = frame[round(y0 * h / ch):round(y1 * h / ch),
                         round(x0 * w / cw):round(x1 * w / cw)]
            alpha[y0:y1, x0:x1] = self._average(np.ascontiguousarray(crop), (x1 - x0, y1 - y0))
        return alpha
