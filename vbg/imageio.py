"""Robust still-image reading (upright BGR + alpha, clear errors) and atomic writing."""

from __future__ import annotations

import contextlib
import io
import os
import re
import stat
import tempfile
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageCms, ImageFile, PngImagePlugin

from vbg.errors import ImageError, SinkError

# Refuse images whose declared size is above this many pixels, before decoding anything.
# (Pillow independently refuses above 2 x Image.MAX_IMAGE_PIXELS, about 179 megapixels.)
MAX_PIXELS = 100_000_000

# Formats we decode; anything else Pillow could open is refused (smaller attack surface).
READ_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF")  # JPEG includes MPO (camera) files
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


def _too_large(declared: str) -> str:
    return (f"image too large: {declared} (limit {MAX_PIXELS / 1e6:.0f} megapixels); "
            "refused before decoding (possible decompression bomb)")


def _open(path: Path, data: bytes) -> Image.Image:
    """Open (header only) with our format list; decompression bombs become ImageError."""
    try:
        im = Image.open(io.BytesIO(data), formats=READ_FORMATS)
    except Image.DecompressionBombError as e:
        pixels = re.search(r"\((\d+) pixels\)", str(e))
        declared = f"{int(pixels.group(1)) / 1e6:.0f} megapixels" if pixels else "too many pixels"
        raise _fail(path, _too_large(declared)) from None
    except Image.UnidentifiedImageError:
        raise _fail(path, _unidentified_reason(data)) from None
    except Exception as e:  # plugins raise many kinds while parsing headers
        raise _fail(path, _decode_reason(_magic_format(data) or "image", e)) from None
    width, height = im.size
    if width * height > MAX_PIXELS:
        raise _fail(path, _too_large(f"{width}x{height} = {width * height / 1e6:.0f} megapixels"))
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
    return cv2.cvtColor(np.asarray(im.convert("RGB")), cv2.COLOR_RGB2BGR), None


def _upright(image: np.ndarray, orientation: int) -> np.ndarray:
    """Undo EXIF orientation 2..8 (same transforms as PIL.ImageOps.exif_transpose)."""
    if orientation in (5, 6, 7, 8):
        image = cv2.transpose(image)
    flip = {2: 1, 3: -1, 4: 0, 6: 1, 7: -1, 8: 0}.get(orientation)  # cv2.flip codes
    return image if flip is None else cv2.flip(image, flip)


def read_image(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray | None, ImageInfo]:
    """Decode an image file fully: (BGR uint8 HxWx3 upright, alpha uint8 HxW or None, info).

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
        im = _open(path, data)
        fmt = im.format or "image"
        try:
            im.load()  # full decode: truncation and corrupt data surface here
            orientation = _orientation(im, notes)
            bgr, alpha = _to_bgr_alpha(im, notes)
        except Exception as e:
            raise _fail(path, _decode_reason(fmt, e)) from None
    notes += [" ".join(str(w.message).split()) for w in caught
              if not issubclass(w.category, (ResourceWarning, Image.DecompressionBombWarning))]
    bgr = _upright(bgr, orientation)
    if alpha is not None:
        alpha = _upright(alpha, orientation)
    icc = _icc(im)
    info = ImageInfo(path=path, format=fmt, mode=im.mode, size=im.size, orientation=orientation,
                     dpi=_dpi(im), warnings=tuple(notes),
                     icc_profile=icc if icc and icc[16:20] == b"RGB " else None)
    return np.ascontiguousarray(bgr), alpha, info


# --- writing -------------------------------------------------------------------------------------

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
    if image.ndim == 3 and image.shape[2] == 3:
        return Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), "RGB")
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
