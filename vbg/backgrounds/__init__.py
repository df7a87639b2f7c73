"""Backgrounds for the compositor: image, looping video, colour, blur, transparent."""

from __future__ import annotations

import itertools
import math
import os
import re
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
from numba import njit, prange, types

from vbg.errors import BackgroundError, ConfigError

DEFAULT_BLUR = 15
MAX_BLUR = 100
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


def _frame_size(frame: np.ndarray) -> tuple[int, int]:
    return frame.shape[1], frame.shape[0]


BUNDLED_DIR = Path(os.fspath(resources.files("vbg.backgrounds") / "images"))
BUNDLED_SUFFIXES = (".png", ".jpg")


def bundled_names() -> list[str]:
    """File names of the bundled backgrounds (studio.png, space.jpg, launch.jpg)."""
    return sorted(p.name for p in BUNDLED_DIR.iterdir() if p.suffix in BUNDLED_SUFFIXES)


def bundled_background(name: str) -> Path:
    """The bundled background called `name` ("studio" or "studio.png"); BackgroundError else."""
    for file in bundled_names():
        if name in (file, Path(file).stem):
            return BUNDLED_DIR / file
    raise BackgroundError(f"no bundled background {name!r}: choose one of "
                          f"{', '.join(bundled_names())} or give an image file")


def find_background(path: str | os.PathLike[str]) -> Path:
    """`path` when it exists, else the bundled background of that name (so "studio",
    "studio.png" and the old checkout path "backgrounds/studio.png" all work), else `path`."""
    given = Path(path)
    if given.exists():
        return given
    try:
        return bundled_background(given.name)
    except BackgroundError:
        return given


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as BGR uint8 (any path, EXIF orientation applied)."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise BackgroundError(
            f"background image {os.fspath(path)!r} not found: check the path, or name a "
            f"bundled one ({', '.join(Path(n).stem for n in bundled_names())})"
        ) from None
    except OSError as exc:
        raise BackgroundError(
            f"background image {os.fspath(path)!r} cannot be read ({exc.strerror or exc}): "
            "check that it is a readable file"
        ) from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise BackgroundError(
            f"background image {os.fspath(path)!r} is not an image OpenCV can decode: "
            "use a JPEG, PNG, WebP, BMP or TIFF file"
        )
    # IMREAD_COLOR gives 3-channel uint8: grey expanded, alpha dropped, 16-bit scaled down.
    return np.ascontiguousarray(image)


def image_array(image: np.ndarray) -> np.ndarray:
    """A background given as an array: BGR uint8 HxWx3 (grey HxW expanded, BGRA's alpha
    dropped); BackgroundError for anything else."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise BackgroundError(
            f"background image array must be uint8, got {getattr(image, 'dtype', type(image))}: "
            "convert it with .astype(np.uint8) (values 0-255)"
        )
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
        raise BackgroundError(
            f"background image array has shape {image.shape}: use HxWx3 BGR (or HxW grey)"
        )
    return np.ascontiguousarray(image)


class ImageBackground:
    """A still image, cover-fitted to the frame size once per size."""

    kind = "image"

    def __init__(self, source: str | os.PathLike[str] | np.ndarray) -> None:
        if isinstance(source, np.ndarray):
            self.path = "<array>"
            self._image = image_array(source)
        else:
            found = find_background(source)
            self.path = os.fspath(found)
            self._image = read_image(found)
        self._fitted: dict[tuple[int, int], np.ndarray] = {}

    def prepare(self, frame: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """The image cover-fitted to the frame size (computed once per size, read-only)."""
        size = _frame_size(frame)
        fitted = self._fitted.get(size)
        if fitted is None:
            fitted = cover_fit(self._image, size)
            fitted.flags.writeable = False
            self._fitted[size] = fitted
        return fitted

    def close(self) -> None:
        """Drop the cached images."""
        self._fitted.clear()


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


# Blur background: normalized convolution B = blur(F*w) / blur(w), w = 1 - alpha, computed
# on a shrunken frame. w is taken as (16321 - 64*alpha) / 16320, i.e. 1 - alpha plus a floor
# of 1/16320, so blur(w) never reaches 0: deep inside the person B falls back smoothly to the
# plain blurred frame, elsewhere the person's own pixels count ~1/16000 as much as the scene's.
# One compiled version per kernel (C-contiguous, inputs may be read-only), loaded at import.
_FRAME_IN = types.Array(types.uint8, 3, "C", readonly=True)
_MATTE_IN = types.Array(types.uint8, 2, "C", readonly=True)
_WEIGHTED = types.Array(types.float32, 3, "C")
_IMAGE_OUT = types.Array(types.uint8, 3, "C")


@njit(_WEIGHTED(_FRAME_IN, _MATTE_IN, _WEIGHTED), fastmath=True, cache=True)
def _weigh(small, alpha, out):  # pragma: no cover - compiled
    """out (h, w, 4) float32 = (F*w, w), w = 16321 - 64*alpha, on the shrunken frame."""
    for y in range(out.shape[0]):
        for x in range(out.shape[1]):
            weight = np.float32(16321 - 64 * np.int32(alpha[y, x]))
            for c in range(3):
                out[y, x, c] = np.float32(small[y, x, c]) * weight
            out[y, x, 3] = weight
    return out


@njit(_IMAGE_OUT(_WEIGHTED, _IMAGE_OUT), fastmath=True, cache=True)
def _unweight(weighted, out):  # pragma: no cover - compiled
    """out (uint8 BGR) = round(F*w / w); w >= floor > 0 after any blur."""
    height, width = out.shape[:2]
    for y in range(height):
        for x in range(width):
            scale = np.float32(1.0) / weighted[y, x, 3]
            for c in range(3):
                value = weighted[y, x, c] * scale + np.float32(0.5)
                out[y, x, c] = np.uint8(min(max(value, np.float32(0.0)), np.float32(255.0)))
    return out


_WIDE_IN = types.Array(types.uint8, 3, "C", readonly=True)
_ROWS = types.Array(types.int32, 1, "C", readonly=True)
_ROW_WEIGHTS = types.Array(types.uint16, 1, "C", readonly=True)


@njit(_IMAGE_OUT(_WIDE_IN, _ROWS, _ROWS, _ROW_WEIGHTS, _IMAGE_OUT), parallel=True, fastmath=True,
      cache=True)
def _enlarge_rows(wide, y0, y1, wy, out):  # pragma: no cover - compiled
    """out row y = round(wide[y0] * (256 - wy) + wide[y1] * wy) / 256 (the vertical pass)."""
    height, width = out.shape[:2]
    wide_rows = wide.reshape(wide.shape[0], width * 3)
    out_rows = out.reshape(height, width * 3)
    for y in prange(height):
        w1 = np.uint16(wy[y])
        w0 = np.uint16(256) - w1
        top, bottom = wide_rows[y0[y]], wide_rows[y1[y]]
        for i in range(width * 3):
            value = w0 * np.uint16(top[i]) + w1 * np.uint16(bottom[i]) + np.uint16(128)
            out_rows[y, i] = np.uint8(value >> np.uint16(8))
    return out


def row_taps(dst: int, src: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear source rows and weights in 1/256 (half-pixel centres, as cv2 INTER_LINEAR)."""
    pos = np.clip((np.arange(dst, dtype=np.float64) + 0.5) * (src / dst) - 0.5, 0.0, src - 1)
    lo = np.floor(pos).astype(np.int32)
    hi = np.minimum(lo + 1, src - 1).astype(np.int32)
    return lo, hi, np.round((pos - lo) * 256).astype(np.uint16)


class Enlarger:
    """Bilinear enlargement of a small BGR image in two passes: cv2 along x into a buffer
    with the small image's rows, then along y one output row at a time (`_enlarge_rows`, or
    fused into the compositor's blend so the full-size background is never written)."""

    def __init__(self) -> None:
        self._key: tuple[int, int, int, int] | None = None
        self._last: np.ndarray | None = None

    def rows(self, small: np.ndarray, size: tuple[int, int], same: bool = False):
        """(wide, y0, y1, wy): `small` enlarged along x to width size[0], and the row taps;
        `same`: `small` is the picture of the last call, unchanged (its rows are reused)."""
        width, height = size
        key = (small.shape[1], small.shape[0], width, height)
        if same and key == self._key and small is self._last:
            return self._wide, self._y0, self._y1, self._wy
        self._last = small
        if key != self._key:
            # Hot path: the buffer and tables are made once per (small, frame) size.
            self._wide = np.empty((small.shape[0], width, 3), np.uint8)
            self._y0, self._y1, self._wy = row_taps(height, small.shape[0])
            self._key = key
        cv2.resize(small, (width, small.shape[0]), dst=self._wide,
                   interpolation=cv2.INTER_LINEAR)
        return self._wide, self._y0, self._y1, self._wy

    def __call__(self, small: np.ndarray, size: tuple[int, int],
                 out: np.ndarray | None = None) -> np.ndarray:
        """`small` enlarged to size (w, h), into `out` if given."""
        if out is None:
            out = np.empty((size[1], size[0], 3), np.uint8)
        return _enlarge_rows(*self.rows(np.ascontiguousarray(small), size), out)


def _halved(size: tuple[int, int]) -> tuple[int, int]:
    return max(1, size[0] // 2), max(1, size[1] // 2)


@njit(fastmath=True, cache=True)
def _room_change(small, person, ref, ref_person, block):  # pragma: no cover - compiled
    """Largest |mean grey change| over blocks of the room: every other pixel where `person`
    (the matte widened) is below 8 in both pictures. Block means cancel sensor noise (0.4
    levels on the bench clip); 0 if no block shows enough room."""
    height, width = person.shape
    worst = np.float32(0.0)
    for by in range(0, height, block):
        for bx in range(0, width, block):
            total, count = np.float32(0.0), 0
            for y in range(by, min(by + block, height), 2):
                for x in range(bx, min(bx + block, width), 2):
                    if person[y, x] < 8 and ref_person[y, x] < 8:
                        total += (np.float32(0.114) * (np.float32(small[y, x, 0])
                                                       - np.float32(ref[y, x, 0]))
                                  + np.float32(0.587) * (np.float32(small[y, x, 1])
                                                         - np.float32(ref[y, x, 1]))
                                  + np.float32(0.299) * (np.float32(small[y, x, 2])
                                                         - np.float32(ref[y, x, 2])))
                        count += 1
            if 16 * count >= block * block:  # a quarter of the samples at least
                worst = max(worst, abs(total / count))
    return worst


@njit(fastmath=True, cache=True)
def _update_plate(small, person, plate, unseen):  # pragma: no cover - compiled
    """The room as last seen: plate = small where the (widened) person is absent."""
    for y in range(person.shape[0]):
        for x in range(person.shape[1]):
            if person[y, x] < 8:
                plate[y, x, 0] = small[y, x, 0]
                plate[y, x, 1] = small[y, x, 1]
                plate[y, x, 2] = small[y, x, 2]
                unseen[y, x] = 0


_WIDEN = np.ones((5, 5), np.uint8)


class BlurBackground:
    """The frame itself, blurred with the person masked out (no halo around them).

    `refresh` > 1 (live mode): the room is kept as last seen (a plate at the blur's base size,
    updated wherever the person is not), so the blur shows the room behind the person rather
    than a smudge, and it is re-blurred only every `refresh` frames or at once when the visible
    room changes (block means beyond `change_level` grey levels; the person moving in front
    does not count; noise measured 0.7-2.5 on the bench clip). A changed room also forgets
    what was behind the person (a moving camera then gets the plain masked blur)."""

    kind = "blur"

    def __init__(self, strength: int = DEFAULT_BLUR, refresh: int = 1,
                 change_level: float = 3.0) -> None:
        if isinstance(strength, bool) or not isinstance(strength, int | np.integer):
            raise BackgroundError(f"invalid blur strength {strength!r}: use an integer 1-100")
        if not 0 < strength <= MAX_BLUR:
            raise BackgroundError(
                f"invalid blur strength {strength}: use an integer from 1 to {MAX_BLUR}"
            )
        self.strength = int(strength)
        # Gaussian sigma in full-res pixels (blur radius ~ 2 sigma = strength). The frame is
        # shrunk by a power of two (4..32) that leaves 0.9-1.8 px of sigma on the small image
        # (less below strength 8), so the cost stays flat whatever the strength. Against an
        # exact full-res blur (1080p, strength 15, shrink 8): mean |diff| 0.5, p99 2.9 levels;
        # 1.5-3 px (shrink 4) gave 0.34 / 1.2 for twice the cost (1.6 vs 0.8 ms).
        self.sigma = self.strength / 2
        self.shrink = 4
        while self.shrink < 32 and self.shrink * 2 <= self.sigma / 0.9:
            self.shrink *= 2
        self._size: tuple[int, int] | None = None
        self._base: tuple[int, int] | None = None
        self.refresh = refresh
        self.change_level = change_level
        self.reused = False  # the last prepare() gave the previous blur back unchanged
        self._age = 0
        self._have_ref = False

    def _allocate(self, size: tuple[int, int], base: tuple[int, int]) -> None:
        # Hot path: every buffer is allocated once per frame size and base size.
        width = size[0]
        self._small_frame = np.empty((base[1], base[0], 3), np.uint8)
        self._small_alpha = np.empty((base[1], base[0]), np.uint8)
        self._levels = [np.empty((base[1], base[0], 4), np.float32)]
        small = base
        while width / small[0] * 2 <= self.shrink * 1.01 and min(small) > 1:
            small = _halved(small)
            self._levels.append(np.empty((small[1], small[0], 4), np.float32))
        self._blurred = np.empty_like(self._levels[-1])
        self._small_out = np.empty((small[1], small[0], 3), np.uint8)
        self._plate = np.zeros((base[1], base[0], 3), np.uint8)  # the room as last seen
        self._unseen = np.full((base[1], base[0]), 255, np.uint8)  # 255: never seen yet
        self._ref = np.empty((base[1], base[0], 3), np.uint8)  # the plate last blurred
        self._ref_unseen = np.empty((base[1], base[0]), np.uint8)
        self._person = np.empty((base[1], base[0]), np.uint8)
        self._have_ref = False
        small_sigma = self.sigma * small[0] / width
        self._ksize = 2 * math.ceil(3 * small_sigma) + 1
        self._small_sigma = small_sigma
        self._size, self._base = size, base

    def prepare(self, frame: np.ndarray, alpha: np.ndarray,
                thumb: np.ndarray | None = None) -> np.ndarray:
        """B = blur(F*(1-a)) / blur(1-a) on a shrunken frame, left small (reused buffer): the
        compositor enlarges it while blending; `full()` gives it at frame size. `alpha`: the
        matte (uint8, 255 = person) at any size, e.g. the refiner's low-res one; `thumb`: the
        frame already shrunken (BGR), used when it is not coarser than the blur needs."""
        size = _frame_size(frame)
        if min(size) < 4:  # too small to blur
            return np.ascontiguousarray(frame)
        use_thumb = (thumb is not None and thumb.shape[1] >= 2 and thumb.shape[0] >= 2
                     and 2 <= size[0] / thumb.shape[1] <= self.shrink * 1.01)
        base = (thumb.shape[1], thumb.shape[0]) if use_thumb else (size[0] // 4, size[1] // 4)
        if size != self._size or base != self._base:
            self._allocate(size, base)
        levels = self._levels
        if use_thumb:
            small = np.ascontiguousarray(thumb)
        else:
            # At 1/4 INTER_LINEAR averages the middle 2x2 pixels of each 4x4 block: a quarter
            # of the frame is read (0.35 vs 2.2 ms for INTER_AREA at 1080p); the blur hides it.
            small = self._small_frame
            cv2.resize(frame, base, dst=small, interpolation=cv2.INTER_LINEAR)
        if alpha.shape[:2] == (base[1], base[0]):
            small_alpha = np.ascontiguousarray(alpha)
        else:
            small_alpha = self._small_alpha
            cv2.resize(alpha, base, dst=small_alpha, interpolation=cv2.INTER_LINEAR)
        self.reused = False
        if self.refresh > 1:
            # The person widened by 2 px (12 at 1080p): the low-res matte's edge is no room.
            cv2.dilate(small_alpha, _WIDEN, dst=self._person)
            change = (_room_change(small, self._person, self._ref, self._ref_unseen, 8)
                      if self._have_ref else np.inf)
            if change >= self.change_level:
                self._unseen.fill(255)  # the room changed: what is behind the person is unknown
            _update_plate(small, self._person, self._plate, self._unseen)
            if self._have_ref and self._age + 1 < self.refresh and change < self.change_level:
                self._age += 1
                self.reused = True
                return self._small_out
            np.copyto(self._ref, self._plate)
            np.copyto(self._ref_unseen, self._unseen)
            self._have_ref, self._age = True, 0
            small, small_alpha = self._plate, self._unseen
        _weigh(small, small_alpha, levels[0])
        for larger, smaller in itertools.pairwise(levels):
            # INTER_LINEAR at exactly 1/2 is the 2x2 block mean (an area resize).
            size_wh = (smaller.shape[1], smaller.shape[0])
            cv2.resize(larger, size_wh, dst=smaller, interpolation=cv2.INTER_LINEAR)
        cv2.GaussianBlur(
            levels[-1],
            (self._ksize, self._ksize),
            self._small_sigma,
            dst=self._blurred,
            borderType=cv2.BORDER_REFLECT,
        )
        return _unweight(self._blurred, self._small_out)

    def full(self, frame: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """The blurred background at frame size (a new array; the compositor never needs it)."""
        background = self.prepare(frame, alpha)
        if background.shape[:2] == frame.shape[:2]:
            return background.copy()
        return Enlarger()(background, _frame_size(frame))

    def close(self) -> None:
        """Drop the buffers."""
        self._size = None


def warm_up() -> None:
    """Compile (or load from cache) and run the blur kernels once."""
    BlurBackground(15).full(np.zeros((16, 16, 3), np.uint8), np.zeros((16, 16), np.uint8))


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
        size = _frame_size(frame)
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
