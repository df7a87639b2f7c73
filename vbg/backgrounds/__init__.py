"""Backgrounds for the compositor: image, looping video, colour, blur, transparent."""

from __future__ import annotations

import os

import numpy as np

from vbg.backgrounds.base import Background, cover_crop, cover_fit, frame_size
from vbg.backgrounds.blur import DEFAULT_BLUR, MAX_BLUR, BlurBackground, warm_up
from vbg.backgrounds.color import (
    COLOR_FORMS,
    NAMED_COLORS_RGB,
    ColorBackground,
    TransparentBackground,
    parse_color,
)
from vbg.backgrounds.enlarge import Enlarger
from vbg.backgrounds.image import (
    BUNDLED_DIR,
    ImageBackground,
    bundled_background,
    bundled_names,
    find_background,
    image_array,
    read_image,
)
from vbg.backgrounds.video import VideoBackground
from vbg.errors import ConfigError

__all__ = [
    "BUNDLED_DIR",
    "COLOR_FORMS",
    "DEFAULT_BLUR",
    "MAX_BLUR",
    "NAMED_COLORS_RGB",
    "Background",
    "BlurBackground",
    "ColorBackground",
    "Enlarger",
    "ImageBackground",
    "TransparentBackground",
    "VideoBackground",
    "bundled_background",
    "bundled_names",
    "cover_crop",
    "cover_fit",
    "find_background",
    "frame_size",
    "image_array",
    "make_background",
    "parse_color",
    "read_image",
    "warm_up",
]


def make_background(
    image: str | os.PathLike[str] | np.ndarray | None = None,
    video: str | os.PathLike[str] | None = None,
    blur: int | None = None,
    color: str | tuple[int, int, int] | None = None,
    transparent: bool = False,
) -> Background:
    """Build the one background chosen; with none chosen, BlurBackground(DEFAULT_BLUR)."""
    chosen = {
        name: value
        for name, value in (("image", image), ("video", video), ("blur", blur), ("color", color))
        if value is not None
    }
    if transparent:
        chosen["transparent"] = True
    if len(chosen) > 1:
        raise ConfigError(
            f"choose one background, got {', '.join(chosen)}: "
            "pass only one of image, video, blur, color, transparent"
        )
    if image is not None:
        return ImageBackground(image)
    if video is not None:
        return VideoBackground(video)
    if color is not None:
        return ColorBackground(color)
    if transparent:
        return TransparentBackground()
    return BlurBackground(DEFAULT_BLUR if blur is None else blur)


def check_blur_flag(value: int | None) -> None:
    """`--blur N` means the same in live and still mode: a strength from 1 to 100."""
    if value is not None and not 1 <= value <= MAX_BLUR:
        raise ConfigError(f"--blur {value} (flag --blur) is out of range: allowed 1 to "
                          f"{MAX_BLUR} (leave --blur out, or choose another background, for no "
                          "blur)")
