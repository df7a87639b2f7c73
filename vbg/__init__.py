"""vbg: real-time virtual background camera and portrait cut-outs."""

__version__ = "0.1.0"

import importlib as _importlib
import logging as _logging
import os as _os

# numba's OpenMP worker threads must wait passively: spinning costs several times the CPU of
# the work itself (docs/decisions.md, "numba's threads wait passively"). This only takes
# effect before the first parallel kernel runs, hence here.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# numba keeps compiled kernels in a per-user folder (~/.cache/vbg/numba), not next to the
# modules, so an install the user cannot write to still caches them (vbg/jit.py).
if not _os.environ.get("NUMBA_CACHE_DIR"):
    from vbg.jit import default_cache_dir as _default_cache_dir

    _os.environ["NUMBA_CACHE_DIR"] = str(_default_cache_dir())

# The public API, imported on first use so that `import vbg` (and `vbg --help`) stays fast.
from typing import TYPE_CHECKING as _TYPE_CHECKING

if _TYPE_CHECKING:
    from vbg.api import cut_out, id_photo, id_photo_result, matte
    from vbg.live.session import LivePipeline, build_live
    from vbg.live.settings import LiveSettings
    from vbg.segment import new_segmenter
    from vbg.still.idphoto import IdPhoto
    from vbg.still.options import StillOptions
    from vbg.still.pipeline import StillPipeline

# public name -> the module that defines it
_LAZY = {
    "cut_out": "vbg.api",
    "matte": "vbg.matte",  # the subpackage, callable as vbg.api.matte (see vbg/matte)
    "id_photo": "vbg.api",
    "id_photo_result": "vbg.api",
    "IdPhoto": "vbg.still.idphoto",
    "StillOptions": "vbg.still.options",
    "StillPipeline": "vbg.still.pipeline",
    "new_segmenter": "vbg.segment",
    "build_live": "vbg.live.session",
    "LivePipeline": "vbg.live.session",
    "LiveSettings": "vbg.live.settings",
}

__all__ = ["IdPhoto", "LivePipeline", "LiveSettings", "StillOptions", "StillPipeline",
           "__version__", "build_live", "cut_out", "id_photo", "id_photo_result", "matte",
           "new_segmenter"]


def __getattr__(name: str) -> object:
    """The public API's names, imported from their modules when first used."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vbg' has no attribute {name!r}")
    from vbg import jit  # first use ever: compile the kernels, saying so (logging) as `vbg` does

    jit.ensure_kernels(_logging.getLogger("vbg").warning)
    imported = _importlib.import_module(module)
    value = imported if module == f"{__name__}.{name}" else getattr(imported, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
