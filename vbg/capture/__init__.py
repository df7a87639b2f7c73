"""Capture: camera/file/stream sources and the thread that reads them."""

from vbg.capture.opening import open_source
from vbg.capture.sources import Source, SourceInfo
from vbg.capture.thread import CaptureThread, Frame

__all__ = ["CaptureThread", "Frame", "Source", "SourceInfo", "open_source"]
