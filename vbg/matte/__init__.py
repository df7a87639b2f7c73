"""Matte stages (smoothing, refinement, one-pass draw); `vbg.matte(image)` is vbg.api.matte.

The public API names a function `vbg.matte`, and this subpackage has the same name: Python
sets `vbg.matte` to the subpackage whenever one of its modules is imported, so the subpackage
itself is made callable and forwards to the function.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallableModule(types.ModuleType):
    """This package, callable as vbg.api.matte."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """vbg.api.matte(image, ...): the uint8 alpha matte of a photo."""
        from vbg.api import matte  # here, not at the top: vbg.api imports this package

        return matte(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
