"""ID-photo print sheets (copies with gaps and crop lines, 300 dpi) and size-capped JPEGs."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vbg.errors import ConfigError, ImageError
from vbg.imagewrite import write_image

SHEET_DPI = 300


@dataclass(frozen=True)
class Sheet:
    """A photo paper: size in pixels at 300 dpi."""

    name: str
    width: int
    height: int
    label: str


SHEETS: dict[str, Sheet] = {s.name: s for s in (
    Sheet("6inch", 1800, 1200, "6x4 in (152x102 mm), landscape"),
    Sheet("5inch", 1500, 1050, "5x3.5 in (127x89 mm), landscape"),
    Sheet("a4", 2480, 3508, "A4, 210x297 mm, portrait"),
    Sheet("3r", 1050, 1500, "3R, 3.5x5 in (89x127 mm), portrait"),
    Sheet("4r", 1200, 1800, "4R, 4x6 in (102x152 mm), portrait"),
)}
SHEET_MARGIN = 30  # px (2.5 mm) of paper kept clear at each edge
SHEET_GAP = 24  # px (2 mm) between copies; the crop lines run in it
CROP_LINE_BGR = (170, 170, 170)
JPEG_QUALITIES = range(95, 0, -1)


def get_sheet(name: str) -> Sheet:
    """The sheet called `name`, or a ConfigError that lists them."""
    try:
        return SHEETS[name.lower()]
    except KeyError:
        raise ConfigError(f"--sheet {name!r}: choose one of {', '.join(SHEETS)}") from None


def sheet_grid(sheet: Sheet, width: int, height: int) -> list[tuple[int, int]]:
    """Top-left corners of as many width x height copies as fit, centred on the sheet."""
    cols = (sheet.width - 2 * SHEET_MARGIN + SHEET_GAP) // (width + SHEET_GAP)
    rows = (sheet.height - 2 * SHEET_MARGIN + SHEET_GAP) // (height + SHEET_GAP)
    if cols < 1 or rows < 1:
        return []
    x0 = (sheet.width - cols * width - (cols - 1) * SHEET_GAP) // 2
    y0 = (sheet.height - rows * height - (rows - 1) * SHEET_GAP) // 2
    return [(x0 + c * (width + SHEET_GAP), y0 + r * (height + SHEET_GAP))
            for r in range(rows) for c in range(cols)]


def make_sheet(photo: np.ndarray, sheet: str = "6inch",
               photo_dpi: int = SHEET_DPI) -> tuple[np.ndarray, int]:
    """(white BGR sheet at 300 dpi with copies of `photo` and crop lines, number of copies);
    the photo keeps its print size (resized when its dpi is not 300)."""
    spec = get_sheet(sheet)
    if photo_dpi != SHEET_DPI:
        size = (round(photo.shape[1] * SHEET_DPI / photo_dpi),
                round(photo.shape[0] * SHEET_DPI / photo_dpi))
        photo = cv2.resize(photo, size, interpolation=cv2.INTER_AREA if photo_dpi > SHEET_DPI
                           else cv2.INTER_CUBIC)
    h, w = photo.shape[:2]
    corners = sheet_grid(spec, w, h)
    if not corners:
        raise ImageError(f"the ID photo ({w}x{h} px at 300 dpi) does not fit on a {spec.name} "
                         f"sheet ({spec.label}); choose a larger --sheet")
    out = np.full((spec.height, spec.width, 3), 255, np.uint8)
    for x, y in corners:
        # Crop line: a 1 px outline in the gap, 1 px outside the copy.
        cv2.rectangle(out, (x - 2, y - 2), (x + w + 1, y + h + 1), CROP_LINE_BGR, 1)
    for x, y in corners:
        out[y:y + h, x:x + w] = photo[..., :3]
    return out, len(corners)


def write_jpeg_max_kb(path: Path, image: np.ndarray, dpi: int, max_kb: int) -> int:
    """Write the largest-quality JPEG of at most max_kb KB (1 KB = 1024 bytes) atomically;
    returns the quality. ImageError (nothing written) when even quality 1 is larger."""
    limit = max_kb * 1024
    folder = Path(path).parent
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{Path(path).name}.", suffix=".jpg")
    os.close(fd)
    try:
        lo, hi, best = 1, JPEG_QUALITIES.start, None
        while lo <= hi:  # file size grows with quality: binary search the largest that fits
            q = (lo + hi) // 2
            write_image(tmp, image, dpi=dpi, quality=q)
            if os.path.getsize(tmp) <= limit:
                best, lo = q, q + 1
            else:
                hi = q - 1
        if best is None:
            kb = os.path.getsize(tmp) / 1024
            raise ImageError(f"even at JPEG quality 1 the photo is {kb:.0f} KB, more than "
                             f"--max-kb {max_kb}; allow more KB or choose a smaller --id-size")
        write_image(tmp, image, dpi=dpi, quality=best)
        os.replace(tmp, path)
        return best
    finally:
        Path(tmp).unlink(missing_ok=True)


def encode_image(image: np.ndarray, fmt: str = "jpg", dpi: int = SHEET_DPI,
                 max_kb: int | None = None) -> tuple[bytes, int | None]:
    """(file bytes, JPEG quality or None) of the image with its dpi; max_kb only for jpg."""
    fmt = fmt.lower().lstrip(".")
    if max_kb is not None and fmt not in ("jpg", "jpeg"):
        raise ConfigError(f"max_kb applies to jpg output only, not {fmt}")
    with tempfile.TemporaryDirectory(prefix="vbg-id-") as folder:
        path = Path(folder) / f"photo.{fmt}"
        quality = None
        if max_kb is not None:
            quality = write_jpeg_max_kb(path, image, dpi, max_kb)
        else:
            write_image(path, image, dpi=dpi)
        return path.read_bytes(), quality
