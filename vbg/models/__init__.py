"""Model files: where they live, and the sha256 check made before any model loads."""

from __future__ import annotations

import hashlib
import json
import os
from functools import cache
from importlib import resources
from pathlib import Path

from vbg.errors import ModelError

# The bundled models, their manifest, NOTICE and licence: package data (vbg/models/bundled/).
BUNDLED_MODELS_DIR = Path(os.fspath(resources.files("vbg.models") / "bundled"))
REPO_MODELS_DIR = BUNDLED_MODELS_DIR  # the name tests and tools have used for it


def models_dir() -> Path:
    """Bundled models: $VBG_MODELS_DIR, else the package's own copy (vbg/models/bundled/)."""
    return Path(os.environ.get("VBG_MODELS_DIR", BUNDLED_MODELS_DIR))


def user_models_dir() -> Path:
    """Per-user cache for downloaded models (never the repository)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vbg" / "models"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@cache
def manifest() -> dict[str, dict]:
    path = models_dir() / "manifest.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(
            f"model manifest {path} is missing; restore it with `git checkout -- "
            "vbg/models/bundled/` (a checkout) or reinstall vbg"
        ) from None
    except (OSError, ValueError) as e:
        raise ModelError(f"model manifest {path} cannot be read: {e}") from None


def verified_path(name: str) -> Path:
    """Path of bundled model `name`, after checking its sha256 against the manifest."""
    entries = manifest()
    if name not in entries:
        raise ModelError(f"unknown model {name!r}; bundled models: {', '.join(sorted(entries))}")
    entry = entries[name]
    path = models_dir() / entry["file"]
    verify_file(path, entry["sha256"], restore=f"git checkout -- vbg/models/bundled/"
                f"{entry['file']}` (a checkout) or `pip install --force-reinstall vbg")
    return path


def verify_file(path: Path, expected: str, restore: str) -> None:
    """Raise ModelError naming the file, both hashes and the fix when `path` does not match."""
    if not path.is_file():
        raise ModelError(f"model file {path} is missing; restore it with `{restore}`")
    actual = sha256_file(path)
    if actual != expected:
        raise ModelError(
            f"model file {path} is corrupt or truncated ({path.stat().st_size} bytes): "
            f"sha256 expected {expected}, got {actual}; restore it with `{restore}`"
        )
