"""Robust still-image reading (upright BGR + alpha, clear errors); writing is vbg.imagewrite."""

from __future__ import annotations

import io
import math
import os
import re
import stat
import threading
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageCms, ImageFile

from vbg.errors import ImageError
from vbg.imagewrite import _EXIF_SOFTWARE, SOFTWARE, WRITE_FORMATS, write_image

__all__ = ["MAX_PIXELS", "READ_FORMATS", "SOFTWARE", "WRITE_FORMATS", "ImageInfo",
           "parse_pixels", "read_image", "write_image", "written_by_vbg"]

# Refuse images whose declared size is above this many pixels, before decoding anything.
# (Pillow independently refuses above 2 x Image.MAX_IMAGE_PIXELS, about 179 megapixels.)
# `max_pixels` (still mode's --max-pixels) raises it for files the user trusts.
MAX_PIXELS = 100_000_000
_PILLOW_LIMIT = threading.Lock()  # Pillow's own bomb limit is a module global
_BAND_PIXELS = 1 << 20  # pixels per band when copying a decoded photo out of Pillow

# Formats we decode; anything else Pillow could open is refused (smaller attack surface).
READ_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF")  # JPEG includes MPO (camera) files

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
_EXIF_ORIENTATION = 0x0112
_FOREIGN_MAGIC = (  # (prefix, offset, name) of formats we recognise but do not read
    (b"GIF8", 0, "GIF"), (b"8BPS", 0, "Photoshop PSD"), (b"%PDF", 0, "PDF"),
    (b"\x00\x00\x01\x00", 0, "ICO"), (b"\xff\x0a", 0, "JPEG XL"), (b"JXL ", 4, "JPEG XL"),
    (b"ftypavif", 4, "AVIF"), (b"ftypavis", 4, "AVIF"), (b"ftypheic", 4, "HEIC"),
    (b"ftypheix", 4, "HEIC"), (b"ftypmif1", 4, "HEIF"), (b"ftypmsf1", 4, "HEIF"),
    (b"ftyphevc", 4, "HEIF"), (b"qoif", 0, "QOI"), (b"\x00\x00\x00\x0cjP  ", 0, "JPEG 2000"),
)


@dataclass(frozen=True)
class ImageInfo:
    """What the file said about itself (size as stored, before EXIF rotation)."""

    path: Path
    format: str  # Pillow format name: "JPEG", "PNG", "WEBP", "BMP", "TIFF", ...
    mode: str  # Pillow mode as stored: "RGB", "CMYK", "I;16", "P", "LA", ...
    size: tuple[int, int]  # (width, height) as stored in the file
    orientation: int = 1  # EXIF orientation that was undone (1 = none)
    dpi: tuple[float, float] | None = None
    icc_profile: bytes | None = None  # RGB ICC profile of the pixels (None = sRGB assumed)
    warnings: tuple[str, ...] = ()  # non-fatal problems (bad EXIF, broken ICC profile, ...)


def _fail(path: Path, reason: str) -> ImageError:
    """ImageError whose one-line message is '<path>: <reason>'."""
    err = ImageError(f"{path}: {' '.join(reason.split())}")
    err.path, err.reason = path, reason  # type: ignore[attr-defined]
    return err


# --- reading -------------------------------------------------------------------------------------

def _read_bytes(path: Path) -> bytes:
    """The whole file, after checks that give a specific reason for each kind of failure."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise _fail(path, "file not found") from None
    except PermissionError:
        raise _fail(path, "permission denied (cannot look inside its folder)") from None
    except OSError as e:
        raise _fail(path, f"cannot read: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise _fail(path, "is a directory, not an image file")
    if not stat.S_ISREG(st.st_mode):
        raise _fail(path, "not a regular file")
    if st.st_size == 0:
        raise _fail(path, "empty file (0 bytes)")
    try:
        return path.read_bytes()
    except PermissionError:
        raise _fail(path, "permission denied (check the file's read permission)") from None
    except MemoryError:
        raise _fail(path, f"not enough memory to read {st.st_size} bytes") from None
    except OSError as e:
        raise _fail(path, f"cannot read: {e.strerror or e}") from None


def _magic_format(data: bytes) -> str | None:
    """Format name from the file signature, for formats we read."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(_PNG_MAGIC):
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if data.startswith(b"BM"):
        return "BMP"
    return None


def _unidentified_reason(data: bytes) -> str:
    """Why Pillow could not identify `data`: a damaged known format, a foreign one, or text."""
    known = _magic_format(data)
    if known:
        return f"damaged {known} file: its header cannot be read (corrupt or truncated)"
    for prefix, offset, name in _FOREIGN_MAGIC:
        if data[offset:offset + len(prefix)] == prefix:
            return f"unsupported format {name}; convert it to JPEG or PNG first"
    head = data[:2048]
    if b"<svg" in head.lower():
        return "SVG is a vector format and is not supported; export it as PNG first"
    if b"\x00" not in head:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as e:
            if e.start < len(head) - 4:  # not just a character cut at the 2048-byte boundary
                return "not an image file (unrecognised content)"
        return "not an image file (it contains text)"
    return "not an image file (unrecognised content)"


def _riff_truncation(data: bytes) -> str | None:
    """Reason if a WebP (RIFF) file is shorter than its header says."""
    declared = int.from_bytes(data[4:8], "little") + 8
    if len(data) < declared:
        return (f"truncated WebP file: {len(data)} of {declared} bytes "
                "(incomplete download or copy?)")
    return None


def _png_crc_problem(data: bytes) -> str | None:
    """Reason if a complete critical PNG chunk has a bad CRC (libpng refuses those too)."""
    view = memoryview(data)
    pos = len(_PNG_MAGIC)
    while pos + 12 <= len(data):
        length = int.from_bytes(view[pos:pos + 4], "big")
        end = pos + 8 + length
        if end + 4 > len(data):
            return None  # incomplete tail: the decoder reports truncation
        kind = bytes(view[pos + 4:pos + 8])
        crc = int.from_bytes(view[end:end + 4], "big")
        if kind[:1].isupper() and zlib.crc32(view[pos + 4:end]) != crc:
            return f"corrupt PNG data: bad CRC in {kind.decode('latin-1')} chunk"
        if kind == b"IEND":
            return None
        pos = end + 4
    return None


def _decode_reason(fmt: str, error: BaseException) -> str:
    """Classify an exception raised while decoding pixel data."""
    message = " ".join(str(error).split()) or type(error).__name__
    low = message.lower()
    if isinstance(error, EOFError) or "truncated" in low or "premature end" in low:
        return f"truncated {fmt} file: the data ends early (incomplete download or copy?)"
    if isinstance(error, MemoryError):
        return "not enough memory to decode this image"
    if any(w in low for w in ("not available", "unsupported", "not supported", "unknown raw")):
        return f"unsupported {fmt} variant ({message})"
    return f"corrupt {fmt} data ({message})"


def parse_pixels(text: str) -> int:
    """A pixel count: 120000000, 120e6, 120M or 0.12G; ValueError otherwise."""
    value = text.strip().upper()
    scale = {"K": 1e3, "M": 1e6, "G": 1e9}.get(value[-1:], 1.0)
    number = float(value[:-1] if scale != 1.0 else value)
    if not math.isfinite(number) or number * scale < 1:
        raise ValueError(f"not a pixel count: {text!r}")
    return int(number * scale)


def _too_large(declared: str, limit: int) -> str:
    return (f"image too large: {declared} (limit {limit / 1e6:g} megapixels); refused before "
            "decoding (possible decompression bomb); if you trust the file, raise the limit "
            "with --max-pixels, e.g. --max-pixels 150M")


def _open(path: Path, data: bytes, max_pixels: int) -> Image.Image:
    """Open (header only) with our format list; decompression bombs become ImageError."""
    try:
        with _PILLOW_LIMIT:
            default = Image.MAX_IMAGE_PIXELS
            if default is not None and max_pixels > 2 * default:  # Pillow refuses above 2x
                Image.MAX_IMAGE_PIXELS = max_pixels // 2 + 1
            try:
                im = Image.open(io.BytesIO(data), formats=READ_FORMATS)
            finally:
                Image.MAX_IMAGE_PIXELS = default
    except Image.DecompressionBombError as e:
        pixels = re.search(r"\((\d+) pixels\)", str(e))
        declared = f"{int(pixels.group(1)) / 1e6:.0f} megapixels" if pixels else "too many pixels"
        raise _fail(path, _too_large(declared, max_pixels)) from None
    except Image.UnidentifiedImageError:
        raise _fail(path, _unidentified_reason(data)) from None
    except Exception as e:  # plugins raise many kinds while parsing headers
        raise _fail(path, _decode_reason(_magic_format(data) or "image", e)) from None
    width, height = im.size
    if width * height > max_pixels:
        raise _fail(path, _too_large(f"{width}x{height} = {width * height / 1e6:.0f} megapixels",
                                     max_pixels))
    if width < 1 or height < 1:
        raise _fail(path, f"corrupt {im.format} data (size {width}x{height})")
    return im


def _orientation(im: Image.Image, notes: list[str]) -> int:
    try:
        value = int(im.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception as e:  # corrupt EXIF must not cost the picture
        notes.append(f"EXIF unreadable, orientation ignored ({type(e).__name__})")
        return 1
    return value if 1 <= value <= 8 else 1


def _dpi(im: Image.Image) -> tuple[float, float] | None:
    """Resolution in dots per inch (format field, else EXIF), None when absent or <= 1."""
    dpi = im.info.get("dpi")
    if dpi is None:  # WebP (and some JPEGs) carry it only as EXIF tags
        try:
            exif = im.getexif()
            per_inch = {2: 1.0, 3: 2.54}.get(int(exif.get(0x0128, 2)))
            if per_inch and 0x011A in exif and 0x011B in exif:
                dpi = (float(exif[0x011A]) * per_inch, float(exif[0x011B]) * per_inch)
        except Exception:  # corrupt EXIF: no resolution rather than no picture
            return None
    try:
        x, y = (float(v) for v in dpi)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    return (round(x, 3), round(y, 3)) if x > 1 and y > 1 else None


def _icc(im: Image.Image) -> bytes | None:
    icc = im.info.get("icc_profile")
    return icc if isinstance(icc, bytes) and len(icc) >= 128 else None


def _scale_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    """Single-channel 16/32-bit or float data to uint8, rounding (not clipping) 16-bit ranges."""
    if mode == "F":
        values = values.astype(np.float32)
        if np.nanmax(values, initial=0.0) <= 1.0:
            values = values * 255.0
        return np.clip(np.nan_to_num(values) + 0.5, 0, 255).astype(np.uint8)
    wide = values.astype(np.int64)  # I;16 (any byte order) is 0..65535; "I" is taken as 16-bit
    return ((np.clip(wide, 0, 65535) + 128) // 257).astype(np.uint8)


def _cmyk_to_rgb(im: Image.Image, icc: bytes | None, notes: list[str]) -> Image.Image:
    """CMYK (Adobe-inverted JPEGs are un-inverted by Pillow) to RGB, through its ICC if any."""
    if icc is not None:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(im, source, ImageCms.createProfile("sRGB"),
                                             outputMode="RGB")
        except Exception as e:
            notes.append(f"CMYK ICC profile unusable, plain conversion used ({type(e).__name__})")
    return im.convert("RGB")  # (255 - C) * (255 - K) / 255 per channel


def _to_bgr_alpha(im: Image.Image, notes: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """Decoded Pillow image of any mode -> (BGR uint8, alpha uint8 or None)."""
    mode = im.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        grey = _scale_to_uint8(np.asarray(im), mode)
        return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR), None
    if mode == "CMYK":
        rgb = np.asarray(_cmyk_to_rgb(im, _icc(im), notes))
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), None
    has_alpha = mode in _ALPHA_MODES or (
        mode in ("P", "L", "RGB") and "transparency" in im.info)
    if has_alpha:
        rgba = np.asarray(im.convert("RGBA"))
        return cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGR), np.ascontiguousarray(rgba[:, :, 3])
    return _rgb_to_bgr(im if mode == "RGB" else im.convert("RGB")), None


def _rgb_to_bgr(im: Image.Image) -> np.ndarray:
    """An RGB Pillow image as BGR, copied out in bands and swapped in place, then `im`'s pixels
    freed: one image-sized array besides Pillow's (np.asarray(im) goes through tobytes(), which
    holds two more: a 108-megapixel JPEG read peaked at 4.5x its BGR size)."""
    width, height = im.size
    out = np.empty((height, width, 3), np.uint8)
    band = max(1, _BAND_PIXELS // max(1, width))
    for y in range(0, height, band):
        out[y:y + band] = np.asarray(im.crop((0, y, width, min(height, y + band))))
    im.close()
    cv2.cvtColor(out, cv2.COLOR_RGB2BGR, dst=out)
    return out


def _upright(image: np.ndarray, orientation: int) -> np.ndarray:
    """Undo EXIF orientation 2..8 (same transforms as PIL.ImageOps.exif_transpose)."""
    if orientation in (5, 6, 7, 8):
        image = cv2.transpose(image)
    flip = {2: 1, 3: -1, 4: 0, 6: 1, 7: -1, 8: 0}.get(orientation)  # cv2.flip codes
    return image if flip is None else cv2.flip(image, flip)


def read_image(path: str | os.PathLike[str], max_pixels: int | None = None
               ) -> tuple[np.ndarray, np.ndarray | None, ImageInfo]:
    """Decode an image file fully: (BGR uint8 HxWx3 upright, alpha uint8 HxW or None, info);
    files declaring more than `max_pixels` (default MAX_PIXELS) are refused before decoding.

    Raises ImageError('<path>: <reason>') for anything that is not a complete, valid image.
    """
    path = Path(path)
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # someone switched truncation detection off
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES must stay False")
    data = _read_bytes(path)
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # nothing from Pillow may reach stderr
        check = {"PNG": _png_crc_problem, "WebP": _riff_truncation}.get(_magic_format(data))
        if check is not None and (problem := check(data)):
            raise _fail(path, problem)
        im = _open(path, data, MAX_PIXELS if max_pixels is None else max_pixels)
        fmt = im.format or "image"
        try:
            im.load()  # full decode: truncation and corrupt data surface here
            orientation = _orientation(im, notes)
            mode, size, icc, dpi = im.mode, im.size, _icc(im), _dpi(im)
            bgr, alpha = _to_bgr_alpha(im, notes)  # closes `im`: its pixels are dropped early
        except Exception as e:
            raise _fail(path, _decode_reason(fmt, e)) from None
    notes += [" ".join(str(w.message).split()) for w in caught
              if not issubclass(w.category, (ResourceWarning, Image.DecompressionBombWarning))]
    bgr = _upright(bgr, orientation)
    if alpha is not None:
        alpha = _upright(alpha, orientation)
    info = ImageInfo(path=path, format=fmt, mode=mode, size=size, orientation=orientation,
                     dpi=dpi, warnings=tuple(notes),
                     icc_profile=icc if icc and icc[16:20] == b"RGB " else None)
    return np.ascontiguousarray(bgr), alpha, info


def written_by_vbg(path: str | os.PathLike[str]) -> bool:
    """True when the file's metadata says vbg wrote it (reads the header only)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path, formats=READ_FORMATS) as im:
                if im.info.get("Software") == SOFTWARE:
                    return True
                return im.getexif().get(_EXIF_SOFTWARE) == SOFTWARE
    except Exception:  # unreadable: not ours; reading it later reports the real problem
        return False
