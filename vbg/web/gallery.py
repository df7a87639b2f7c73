"""The live background gallery: the bundled pictures plus the user's uploads (checked as images
or videos, kept under ~/.local/share/vbg/backgrounds), with small thumbnails."""

from __future__ import annotations

import contextlib
import os
import re
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vbg import imageio
from vbg.backgrounds import BUNDLED_DIR, bundled_names
from vbg.errors import BackgroundError, ImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v")
KINDS = ("bundled", "yours")
THUMB_WIDTH = 240
# Formats OpenCV reads back as they are (the live background reader); others become PNG.
KEEP_FORMATS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif"}

_thumbs: dict[tuple[str, float], bytes] = {}
_thumbs_lock = threading.Lock()


def user_dir() -> Path:
    """$XDG_DATA_HOME/vbg/backgrounds, else ~/.local/share/vbg/backgrounds."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                           "share")
    return Path(base) / "vbg" / "backgrounds"


def folder(kind: str) -> Path:
    if kind not in KINDS:
        raise BackgroundError(f"no background folder {kind!r}: use one of {', '.join(KINDS)}")
    return BUNDLED_DIR if kind == "bundled" else user_dir()


def entry(kind: str, path: Path) -> dict[str, Any]:
    """What the page shows for one background (the path is what PATCH /api/live takes)."""
    is_video = path.suffix.lower() in VIDEO_SUFFIXES
    return {"name": path.name, "kind": kind, "type": "video" if is_video else "image",
            "key": "video" if is_video else "background", "path": str(path),
            "thumb": f"/api/live/backgrounds/{kind}/{path.name}/thumb.jpg"}


def listing() -> list[dict[str, Any]]:
    """The bundled backgrounds, then the user's (newest first)."""
    out = [entry("bundled", BUNDLED_DIR / name) for name in bundled_names()]
    mine = user_dir()
    if mine.is_dir():
        files = [p for p in mine.iterdir() if p.is_file() and not p.name.startswith(".")
                 and p.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES]
        files.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        out += [entry("yours", p) for p in files]
    return out


def find(kind: str, name: str) -> Path:
    """The gallery file `name` of `kind`; BackgroundError when there is none (no other path)."""
    path = folder(kind) / name
    if "/" in name or name.startswith(".") or not path.is_file():
        raise BackgroundError(f"no {kind} background {name!r}: see GET /api/live/backgrounds")
    return path


def first_frame(path: Path) -> np.ndarray | None:
    """The first frame of a video file, or None when it cannot be decoded."""
    cap = cv2.VideoCapture(str(path))
    try:
        ok, frame = cap.read() if cap.isOpened() else (False, None)
    finally:
        cap.release()
    return frame if ok else None


def thumbnail(path: Path) -> bytes:
    """A small JPEG of the picture (or of a video's first frame), cached per file version."""
    key = (str(path), path.stat().st_mtime)
    with _thumbs_lock:
        cached = _thumbs.get(key)
    if cached is not None:
        return cached
    if path.suffix.lower() in VIDEO_SUFFIXES:
        image = first_frame(path)
    else:
        image = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise BackgroundError(f"background {path.name!r} cannot be decoded")
    h, w = image.shape[:2]
    small = cv2.resize(image, (THUMB_WIDTH, max(1, h * THUMB_WIDTH // w)),
                       interpolation=cv2.INTER_AREA)
    data = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()
    with _thumbs_lock:
        _thumbs[key] = data
    return data


def _free_name(directory: Path, stem: str, suffix: str) -> Path:
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-")[:60] or "background"
    path = directory / f"{stem}{suffix}"
    n = 2
    while path.exists():
        path = directory / f"{stem}-{n}{suffix}"
        n += 1
    return path


def save_upload(data: bytes, filename: str) -> dict[str, Any]:
    """Keep an uploaded picture or video in the user's folder once it decodes; ImageError
    (415/422) otherwise. Returns its gallery entry."""
    directory = user_dir()
    directory.mkdir(parents=True, exist_ok=True)
    given = Path(filename or "background")
    tmp = directory / f".upload-{os.getpid()}-{threading.get_ident()}{given.suffix.lower()}"
    try:
        tmp.write_bytes(data)
        if given.suffix.lower() in VIDEO_SUFFIXES:
            if first_frame(tmp) is None:
                raise ImageError(f"{given.name}: not a video this machine can decode (use an "
                                 "MP4, MKV, AVI, MOV or WebM file)")
            path = _free_name(directory, given.stem, given.suffix.lower())
            os.replace(tmp, path)
            return entry("yours", path)
        bgr, _alpha, info = imageio.read_image(tmp)  # the decoder's bomb guard applies
        keep = KEEP_FORMATS.get(str(info.format).upper())
        path = _free_name(directory, given.stem, keep or ".png")
        if keep is None or info.orientation not in (0, 1):
            cv2.imwrite(str(tmp.with_suffix(".png")), bgr)  # upright, in a format we read
            os.replace(tmp.with_suffix(".png"), path)
        else:
            os.replace(tmp, path)
        return entry("yours", path)
    except ImageError as e:
        text = str(e).replace(str(tmp), given.name)
        raise ImageError(text) from None
    finally:
        for leftover in (tmp, tmp.with_suffix(".png")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
