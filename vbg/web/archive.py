"""Photos inside an uploaded zip: extracted safely (names, counts and sizes capped)."""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath

from vbg.errors import ImageError

ZIP_MAGIC = b"PK\x03\x04"
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
MAX_MEMBERS = 2000  # photos taken from one archive
MAX_MEMBER_BYTES = 256 * 1024 * 1024  # one photo, uncompressed
MAX_TOTAL_BYTES = 2 * 1024 * 1024 * 1024  # the whole archive, uncompressed (zip-bomb guard)


def is_zip(path: Path) -> bool:
    """True when the file starts like a zip archive."""
    with open(path, "rb") as f:
        return f.read(4) == ZIP_MAGIC


def extract_photos(path: Path, folder: Path, shown: str) -> list[tuple[str, Path]]:
    """(name inside the archive, extracted file) for each photo in the zip, in name order;
    ImageError when it is not a readable zip or exceeds the caps (folders, hidden files and
    other kinds of file are left out)."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise ImageError(f"{shown}: not a readable zip archive ({e})") from None
    with archive:
        members = [m for m in archive.infolist() if wanted(m)]
        if len(members) > MAX_MEMBERS:
            raise ImageError(f"{shown}: {len(members)} photos in the archive (at most "
                             f"{MAX_MEMBERS} per zip): split it")
        total = sum(m.file_size for m in members)
        if total > MAX_TOTAL_BYTES:
            raise ImageError(f"{shown}: the archive unpacks to {total / 1e9:.1f} GB (limit "
                             f"{MAX_TOTAL_BYTES / 1e9:.0f} GB; possible zip bomb)")
        out = []
        for n, member in enumerate(sorted(members, key=lambda m: m.filename)):
            target = folder / f"{n:05d}{PurePosixPath(member.filename).suffix.lower()}"
            try:
                with archive.open(member) as source, open(target, "wb") as sink:
                    copy_capped(source, sink, MAX_MEMBER_BYTES)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
                raise ImageError(f"{shown}: {member.filename} cannot be unpacked ({e})") from None
            out.append((member.filename, target))
    return out


def wanted(member: zipfile.ZipInfo) -> bool:
    """A photo file: not a folder, not hidden (macOS __MACOSX/._ files), a photo suffix."""
    parts = PurePosixPath(member.filename).parts
    return (not member.is_dir() and bool(parts)
            and not any(p.startswith(".") or p == "__MACOSX" for p in parts)
            and parts[-1].lower().endswith(PHOTO_SUFFIXES))


def copy_capped(source, sink, limit: int) -> None:
    """Copy at most `limit` bytes; ValueError when there is more (a lying header)."""
    copied = 0
    while chunk := source.read(1 << 20):
        copied += len(chunk)
        if copied > limit:
            raise ValueError(f"a photo larger than {limit / 1e6:.0f} MB")
        sink.write(chunk)

