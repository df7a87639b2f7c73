"""Package data that belongs to no stage: the sample portrait, the system files doctor names."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

DATA_DIR = Path(os.fspath(resources.files("vbg.data")))
SYSTEM_FILES = ("v4l2loopback.conf", "vbg-modules-load.conf", "vbg.service")  # = configs/


def data_path(*parts: str) -> Path:
    """The path of a packaged data file, e.g. data_path("samples", "astronaut.png")."""
    return DATA_DIR.joinpath(*parts)
