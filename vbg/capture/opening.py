"""open_source: a camera index, /dev/videoN, video file, MJPEG http(s) URL or FFmpeg URL."""

from __future__ import annotations

from vbg.capture.mjpeg import NotMjpegError, open_mjpeg
from vbg.capture.sources import (
    DEVICE,
    URL,
    Source,
    open_camera,
    open_file,
    open_stream,
    pixel_fourcc,
)
from vbg.errors import ConfigError


def open_source(spec: str, size: tuple[int, int] | None = None, fps: float | None = None,
                pixel_format: str | None = None, open_timeout: float = 5.0,
                read_timeout: float = 2.0) -> Source:
    """Open a camera index, /dev/videoN, video file, MJPEG http(s) URL or FFmpeg URL."""
    spec = str(spec).strip()
    if not spec:
        raise ConfigError("empty input source: give a camera index (0), /dev/videoN, a file or URL")
    fourcc = pixel_fourcc(pixel_format)
    if spec.isdigit() or DEVICE.match(spec):
        return open_camera(spec, size, fps, fourcc, read_timeout)
    if URL.match(spec):
        if spec.lower().startswith(("http://", "https://")):
            try:
                return open_mjpeg(spec, fps, open_timeout, read_timeout)
            except NotMjpegError as e:  # some other kind of HTTP stream: let FFmpeg try
                detail = f" (it answered Content-Type '{e}', which is not MJPEG or JPEG)"
                return open_stream(spec, open_timeout, read_timeout, detail)
        return open_stream(spec, open_timeout, read_timeout)
    return open_file(spec)
