"""numba's kernel cache: where it lives, whether it is built, and building it once with one line."""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
# Measured with an empty cache on the project's 2-core VM (loaded): 40-70 s for every kernel.
ESTIMATE = "about a minute"
_KERNEL_MARK = "njit("


def default_cache_dir() -> Path:
    """The per-user kernel cache (works from a read-only install): ~/.cache/vbg/numba."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "vbg" / "numba"


def cache_dir() -> Path:
    """Where numba keeps vbg's compiled kernels now (NUMBA_CACHE_DIR, set by `vbg`)."""
    chosen = os.environ.get("NUMBA_CACHE_DIR")
    return Path(chosen) if chosen else default_cache_dir()


def kernel_sources() -> list[Path]:
    """The vbg source files that define CPU kernels (numba keys its cache on these files)."""
    return sorted(p for p in PACKAGE.rglob("*.py")
                  if _KERNEL_MARK in p.read_text(encoding="utf-8", errors="replace"))


def stamp_path() -> Path:
    """A file in the cache that says: every kernel of these sources was compiled there."""
    digest = hashlib.sha256()
    try:
        numba_version = importlib.metadata.version("numba")
    except importlib.metadata.PackageNotFoundError:
        numba_version = "?"
    digest.update(f"{numba_version} {sys.version} {sys.platform}".encode())
    for path in kernel_sources():
        st = path.stat()
        digest.update(f"{path} {st.st_mtime_ns} {st.st_size}\n".encode())
    return cache_dir() / f"vbg-kernels-{digest.hexdigest()[:16]}.ok"


def is_built() -> bool:
    """True when the cache holds every kernel for this install (no compiling ahead)."""
    return stamp_path().is_file()


def _write_stamp(path: Path) -> bool:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text("every vbg kernel is compiled in this cache\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        return False  # a read-only cache: numba compiles in memory each run, and we say so
    return True


def ensure_kernels(log: Callable[[str], None] | None = None, force: bool = False) -> float | None:
    """Compile every kernel into the cache if it is not there yet, saying so in one line
    before and one after; returns the seconds it took, or None when the cache was built."""
    stamp = stamp_path()
    if stamp.is_file() and not force:
        return None
    if log is not None:
        log(f"vbg: compiling image kernels once ({ESTIMATE}; later runs start in seconds) ...")
    t0 = time.perf_counter()
    # Imported here on purpose: importing the kernel modules is what starts the compiling.
    importlib.import_module("vbg.warmup").warm_all()
    seconds = time.perf_counter() - t0
    kept = _write_stamp(stamp)
    if log is not None:
        where = f"cached in {stamp.parent}" if kept else (
            f"not cached: {stamp.parent} is not writable; set NUMBA_CACHE_DIR to a writable "
            "folder")
        log(f"vbg: image kernels compiled in {seconds:.0f} s ({where})")
    return seconds
