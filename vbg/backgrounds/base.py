"""The Background protocol and the cover fit every picture background uses."""

from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np


class Background(Protocol):
    """What the compositor needs from a background (kind "color" also has `color`, BGR)."""

    kind: str  # "image" | "video" | "color" | "blur" | "transparent"

    def prepare(self, frame: np.ndarray, alpha: np.ndarray) -> np.ndarray | None:
        """BGR uint8 background (reused buffer) at frame size, or smaller (the blur: the
        compositor enlarges it bilinearly while blending), or None (colour/transparent)."""
        ...

    def close(self) -> None:
        """Release threads and files."""
        ...


def cover_crop(src_size: tuple[int, int], dst_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Centred (x, y, w, h) crop of a src (w, h) image that has the aspect ratio of dst (w, h)."""
    src_w, src_h = src_size
    dst_w, dst_h = dst_size
    if src_w * dst_h > dst_w * src_h:  # source is wider: crop the sides
        crop_w, crop_h = max(1, round(src_h * dst_w / dst_h)), src_h
    else:  # source is taller: crop top and bottom
        crop_w, crop_h = src_w, max(1, round(src_w * dst_h / dst_w))
    return (src_w - crop_w) // 2, (src_h - crop_h) // 2, crop_w, crop_h


def cover_fit(
    image: np.ndarray, size: tuple[int, int], out: np.ndarray | None = None, fast: bool = False
) -> np.ndarray:
    """Scale `image` to cover `size` (w, h) and centre-crop it, writing into `out` if given.

    Shrinking uses INTER_AREA and enlarging INTER_CUBIC; with `fast` (per video frame)
    INTER_LINEAR is used unless the image shrinks by more than 2x.
    """
    x, y, crop_w, crop_h = cover_crop((image.shape[1], image.shape[0]), size)
    crop = image[y : y + crop_h, x : x + crop_w]
    if (crop_w, crop_h) == tuple(size):
        if out is None:
            return crop.copy()
        out[...] = crop
        return out
    shrink = crop_w / size[0]
    if fast:
        interpolation = cv2.INTER_AREA if shrink > 2 else cv2.INTER_LINEAR
    else:
        interpolation = cv2.INTER_AREA if shrink > 1 else cv2.INTER_CUBIC
    return cv2.resize(crop, tuple(size), dst=out, interpolation=interpolation)


def frame_size(frame: np.ndarray) -> tuple[int, int]:
    """(width, height) of a frame."""
    return frame.shape[1], frame.shape[0]
