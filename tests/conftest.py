"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

# Real evaluation data (not part of the repository): /work/shared/data next to the checkout.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of the shared evaluation data; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared evaluation data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def shared_set(shared_data: Path) -> Callable[[str], Path]:
    """`shared_set("coco_person")` -> its folder (images/ + alpha/), skipping if incomplete."""

    def get(name: str) -> Path:
        root = shared_data / name
        if not (root / "images").is_dir() or not (root / "alpha").is_dir():
            pytest.skip(f"shared data set {name!r} not found at {root} (needs images/ and alpha/)")
        return root

    return get


@pytest.fixture(scope="session")
def davis_clip(shared_data: Path) -> Path:
    """The real DAVIS parkour clip (854x480, 100 frames) as a camera; skips when absent."""
    path = shared_data / "davis_parkour" / "clip.mp4"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture(autouse=True)
def _private_user_dirs(tmp_path_factory, monkeypatch):
    """Live mode's runtime file and remembered choices go to a temp folder, not the user's."""
    home = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(home / "run"))
    (home / "run").mkdir(mode=0o700)
    from vbg.live import config

    monkeypatch.setattr(config, "USER_CONFIG", home / "config" / "vbg" / "config.toml")
