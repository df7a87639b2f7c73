"""Atomic still-image writing (temporary file in the same folder, then rename), marked as vbg's."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, PngImagePlugin

from vbg.errors import SinkError

WRITE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP",
                 ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}
JPEG_QUALITY = 95
WEBP_QUALITY = 95
# zlib level 1: ~6x faster than Pillow's default 6 on photos, files ~20 % larger.
PNG_COMPRESS_LEVEL = 1
# Every file vbg writes says so (PNG text / EXIF / TIFF "Software"), so a folder run whose
# output folder is also its input skips its own earlier results (not BMP: no such field).
SOFTWARE = "vbg"
_EXIF_SOFTWARE = 0x0131


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()


def _to_pil(image: np.ndarray) -> Image.Image:
    if image.dtype != np.uint8:
        raise ValueError(f"expected uint8 image, got {image.dtype}")
    if image.ndim == 2:
        return Image.fromarray(np.ascontiguousarray(image), "L")
    if image.ndim == 3 and image.shape[2] == 3:  # Pillow unpacks BGR itself: no RGB copy
        height, width = image.shape[:2]
        return Image.frombuffer("RGB", (width, height), np.ascontiguousarray(image), "raw",
                                "BGR", 0, 1)
    if image.ndim == 3 and image.shape[2] == 4:
        return Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA), "RGBA")
    raise ValueError(f"expected HxW, HxWx3 (BGR) or HxWx4 (BGRA), got shape {image.shape}")


def _save_options(fmt: str, pil: Image.Image, dpi: tuple[float, float] | None,
                  quality: int | None, icc_profile: bytes | None) -> dict:
    opts: dict = {}
    exif = Image.Exif()
    exif[_EXIF_SOFTWARE] = SOFTWARE
    if fmt == "PNG":
        opts["compress_level"] = PNG_COMPRESS_LEVEL
        info = PngImagePlugin.PngInfo()
        info.add_text("Software", SOFTWARE)
        opts["pnginfo"] = info
    elif fmt == "JPEG":
        opts["quality"] = quality or JPEG_QUALITY
        opts["subsampling"] = 0 if opts["quality"] >= 90 else 2  # 4:4:4 keeps edges crisp
    elif fmt == "WEBP":
        opts["quality"] = quality or WEBP_QUALITY
        opts["alpha_quality"] = 100
    elif fmt == "TIFF":
        opts["compression"] = "tiff_lzw"
        opts["tiffinfo"] = {_EXIF_SOFTWARE: SOFTWARE}
    if dpi is not None:
        if fmt == "WEBP":  # WebP has no density field: store it as EXIF resolution
            exif[0x011A], exif[0x011B], exif[0x0128] = float(dpi[0]), float(dpi[1]), 2
        else:
            opts["dpi"] = (float(dpi[0]), float(dpi[1]))
    if fmt in ("JPEG", "WEBP"):
        opts["exif"] = exif.tobytes()
    if icc_profile and fmt != "BMP" and pil.mode != "L":
        opts["icc_profile"] = icc_profile
    return opts


def write_image(path: str | os.PathLike[str], image: np.ndarray, *,
                dpi: float | tuple[float, float] | None = None, quality: int | None = None,
                icc_profile: bytes | None = None) -> Path:
    """Write BGR / BGRA / grey uint8 atomically; format from the extension (png jpg webp bmp tif).

    JPEG cannot hold alpha: a BGRA image to .jpg raises SinkError (flatten it first).
    Raises SinkError naming the file on any failure, leaving no temporary file behind.
    """
    path = Path(path)
    fmt = WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise SinkError(f"{path}: unknown output format {path.suffix or '(no extension)'!r}; "
                        f"use one of {', '.join(WRITE_FORMATS)}")
    pil = _to_pil(image)
    if fmt == "JPEG" and pil.mode == "RGBA":
        raise SinkError(f"{path}: JPEG cannot store transparency; write .png or .webp, "
                        "or put the cut-out on a background first")
    if isinstance(dpi, int | float):
        dpi = (float(dpi), float(dpi))
    opts = _save_options(fmt, pil, dpi, quality, icc_profile)
    folder = path.parent
    tmp_name = None
    try:
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".part")
        with os.fdopen(fd, "wb") as f:
            pil.save(f, format=fmt, **opts)
            f.flush()
            os.fsync(f.fileno())
        try:
            mode = stat.S_IMODE(path.stat().st_mode)  # keep an overwritten file's permissions
        except OSError:
            mode = 0o666 & ~_UMASK
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
        tmp_name = None
    except FileNotFoundError:
        raise SinkError(f"{path}: cannot write: folder {folder} does not exist") from None
    except PermissionError:
        raise SinkError(f"{path}: cannot write: permission denied") from None
    except IsADirectoryError:
        raise SinkError(f"{path}: cannot write: a directory has that name") from None
    except OSError as e:
        raise SinkError(f"{path}: cannot write: {e.strerror or e}") from None
    except (ValueError, TypeError, KeyError) as e:  # encoder refused the options or data
        raise SinkError(f"{path}: cannot encode {fmt}: {e}") from None
    finally:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
    return path
