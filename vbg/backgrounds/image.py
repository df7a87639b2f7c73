"""Picture backgrounds: a file or an array, cover-fitted; the bundled pictures by name."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from vbg.backgrounds.base import cover_fit, frame_size
from vbg.errors import BackgroundError

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
        size = frame_size(frame)
        fitted = self._fitted.get(size)
        if fitted is None:
            fitted = cover_fit(self._image, size)
            fitted.flags.writeable = False
            self._fitted[size] = fitted
        return fitted

    def close(self) -> None:
        """Drop the cached images."""
        self._fitted.clear()
