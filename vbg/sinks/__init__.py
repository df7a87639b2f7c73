"""Output sinks: virtual camera, video files, preview window, null; `make_sinks` builds them."""

from __future__ import annotations

import os

from vbg.errors import ConfigError
from vbg.sinks.base import FrameAdapter, Sink, close_all, open_all
from vbg.sinks.camera import VirtualCameraSink
from vbg.sinks.files import CODECS, MatteFileSink, VideoFileSink
from vbg.sinks.null import NullSink
from vbg.sinks.preview import PreviewSink

__all__ = [
    "CODECS", "FrameAdapter", "MatteFileSink", "NullSink", "PreviewSink", "Sink",
    "VideoFileSink", "VirtualCameraSink", "close_all", "make_sinks", "open_all",
]


def make_sinks(output: str | os.PathLike | None = None,
               matte_output: str | os.PathLike | None = None,
               virtual_camera: bool | None = None, preview: bool = False,
               device: str | None = None, backend: str | None = None) -> list[Sink]:
    """The sinks the flags ask for (not opened yet).

    The virtual camera is on by default, and off when --output is given unless
    virtual_camera=True says otherwise.
    """
    want_camera = virtual_camera if virtual_camera is not None else output is None
    sinks: list[Sink] = []
    if want_camera:
        sinks.append(VirtualCameraSink(device=device, backend=backend))
    if output is not None:
        sinks.append(VideoFileSink(output))
    if matte_output is not None:
        sinks.append(MatteFileSink(matte_output))
    if preview:
        sinks.append(PreviewSink())
    if not sinks:
        raise ConfigError("no output: the virtual camera is off and neither --output, "
                          "--matte-output nor --preview is given; turn one of them on")
    return sinks
