"""Person segmenters behind one protocol; build them by name with `new_segmenter`."""

from vbg.segment import rvm as _rvm  # noqa: F401  (registers RVM, installed on demand)
from vbg.segment import selfie as _selfie  # noqa: F401  (registers the bundled models)
from vbg.segment.base import Segmenter, available, new_segmenter, register

__all__ = ["Segmenter", "available", "new_segmenter", "register"]
