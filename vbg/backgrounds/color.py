"""Solid-colour and transparent backgrounds, and the colour names and forms accepted."""

from __future__ import annotations

import re

import numpy as np

from vbg.errors import BackgroundError

COLOR_FORMS = "#rrggbb, rrggbb, #rgb, r,g,b (0-255) or a name: " + ", ".join(
    ("white", "black", "green", "blue", "red", "gray", "grey")
)
# RGB values of the colour names; "blue" is the ID-photo blue.
NAMED_COLORS_RGB = {
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "green": (0, 255, 0),
    "blue": (67, 142, 219),
    "red": (255, 0, 0),
    "gray": (128, 128, 128),
    "grey": (128, 128, 128),
}


def parse_color(text: str) -> tuple[int, int, int]:
    """Parse a colour given as hex, 'r,g,b' or a name; return it as (b, g, r)."""
    value = text.strip().lower()
    rgb: tuple[int, ...] | None = NAMED_COLORS_RGB.get(value)
    if rgb is None and re.fullmatch(r"#?[0-9a-f]{6}", value):
        digits = value.lstrip("#")
        rgb = tuple(int(digits[i : i + 2], 16) for i in (0, 2, 4))
    elif rgb is None and re.fullmatch(r"#[0-9a-f]{3}", value):
        rgb = tuple(int(digit * 2, 16) for digit in value[1:])
    elif rgb is None and re.fullmatch(r"\d{1,3}\s*,\s*\d{1,3}\s*,\s*\d{1,3}", value):
        rgb = tuple(int(part) for part in value.split(","))
        if max(rgb) > 255:
            rgb = None
    if rgb is None:
        raise BackgroundError(f"invalid colour {text!r}: use {COLOR_FORMS}")
    red, green, blue = rgb
    return (blue, green, red)


class ColorBackground:
    """A solid colour; the compositor blends it with its own kernel."""

    kind = "color"

    def __init__(self, color: str | tuple[int, int, int]) -> None:
        bgr = parse_color(color) if isinstance(color, str) else tuple(int(c) for c in color)
        if len(bgr) != 3 or not all(0 <= c <= 255 for c in bgr):
            raise BackgroundError(f"invalid colour {color!r} (b, g, r): use {COLOR_FORMS}")
        self.color: tuple[int, int, int] = bgr  # B, G, R

    def prepare(self, frame: np.ndarray, alpha: np.ndarray) -> None:
        """No pixels: the compositor uses `color`."""
        return None

    def close(self) -> None:
        """Nothing to release."""


class TransparentBackground:
    """No background: the compositor outputs BGRA with the matte as alpha."""

    kind = "transparent"

    def prepare(self, frame: np.ndarray, alpha: np.ndarray) -> None:
        """No pixels: the compositor writes BGRA."""
        return None

    def close(self) -> None:
        """Nothing to release."""
