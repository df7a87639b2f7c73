"""Video files of the result and of the matte, written atomically with cv2.VideoWriter: frames
go to a temporary file in the same folder, renamed over the target only on a clean stop."""

from __future__ import annotations

import contextlib
import os
import re
import sys
from pathlib import Path

import cv2
import numpy as np

from vbg.errors import SinkError
from vbg.sinks.base import FrameAdapter, even_size, log

# Extension -> codecs to try in order. Measured on davis_parkour 854x480 (mean abs error of a
# written-then-read frame, person region): mp4v 3.1, MJPG 2.2, FFV1 0 (lossless, ~5x larger).
# This OpenCV build cannot encode avc1/H.264, and rejects VIDEOWRITER_PROP_QUALITY with FFmpeg.
CODECS: dict[str, tuple[str, ...]] = {
    ".mp4": ("mp4v",),
    ".m4v": ("mp4v",),
    ".mov": ("mp4v",),
    ".avi": ("MJPG", "XVID"),
    ".mkv": ("FFV1", "MJPG"),
}


def _temp_path(path: Path, pid: int | None = None) -> Path:
    # Same folder (os.replace stays atomic) and same extension (FFmpeg picks the container by it).
    return path.with_name(f".{path.stem}.{os.getpid() if pid is None else pid}.partial"
                          f"{path.suffix}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temps(path: Path) -> list[Path]:
    """Temporary files of `path` that killed runs (their process is gone) left behind."""
    pattern = re.compile(rf"\.{re.escape(path.stem)}\.(\d+)\.partial{re.escape(path.suffix)}")
    removed = []
    with contextlib.suppress(OSError):
        for entry in path.parent.iterdir():
            match = pattern.fullmatch(entry.name)
            if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
                with contextlib.suppress(OSError):
                    entry.unlink()
                    removed.append(entry)
    return removed


def _failing() -> bool:
    """close() runs while an error (not a stop: Ctrl-C, exit) unwinds the run."""
    error = sys.exc_info()[1]
    return error is not None and not isinstance(error, KeyboardInterrupt | SystemExit)


class _VideoWriterSink:
    """Shared part: codec choice, temp file, frame counting, atomic rename at close."""

    grey = False
    kind = "video"

    def __init__(self, path: str | os.PathLike, fourcc: str | None = None):
        self.path = Path(path)
        self.fourcc = fourcc
        self.name = f"{self.kind} file {self.path}"
        self.frames_written = 0
        self.codec: str | None = None
        self._writer: cv2.VideoWriter | None = None
        self._adapter: FrameAdapter | None = None
        self._tmp = _temp_path(self.path)

    def _codecs(self) -> tuple[str, ...]:
        if self.fourcc:
            if len(self.fourcc) != 4:
                raise SinkError(f"cannot write {self.path}: fourcc {self.fourcc!r} must be "
                                "4 characters, e.g. mp4v, MJPG, FFV1")
            return (self.fourcc,)
        suffix = self.path.suffix.lower()
        if suffix not in CODECS:
            raise SinkError(f"cannot write {self.path}: unknown video extension {suffix!r}; "
                            f"use one of {', '.join(CODECS)}")
        return CODECS[suffix]

    def _check_folder(self) -> None:
        folder = self.path.parent
        if not folder.is_dir():
            raise SinkError(f"cannot write {self.path}: folder {folder} does not exist; "
                            "create it first")
        if not os.access(folder, os.W_OK):
            raise SinkError(f"cannot write {self.path}: folder {folder} is not writable")

    def open(self, width: int, height: int, fps: float, channels: int = 3) -> None:
        self._check_folder()
        remove_stale_temps(self.path)
        codecs = self._codecs()
        out_w, out_h = even_size(width, height, self.name)
        params = [cv2.VIDEOWRITER_PROP_IS_COLOR, 0 if self.grey else 1]
        for codec in codecs:
            writer = cv2.VideoWriter(str(self._tmp), cv2.CAP_FFMPEG,
                                     cv2.VideoWriter_fourcc(*codec), float(fps or 30.0),
                                     (out_w, out_h), params)
            if writer.isOpened():
                break
            writer.release()
            self._remove_temp()
        else:
            container = self.path.suffix or "a file without extension"
            raise SinkError(f"cannot write {self.path}: this OpenCV build cannot encode "
                            f"{'/'.join(codecs)} into {container}; "
                            "use .mp4 (mp4v), .avi (MJPG) or .mkv (FFV1, lossless)")
        if codec != codecs[0]:
            log.warning("%s: %s is not available; writing %s instead", self.name, codecs[0], codec)
        self.codec = codec
        self._writer = writer
        self._adapter = FrameAdapter(out_w, out_h, grey=self.grey, what=self.name)

    def _write(self, image: np.ndarray) -> None:
        if self._writer is None or self._adapter is None:
            raise SinkError(f"{self.name}: write() before open()")
        # The adapter keeps the size fixed: VideoWriter silently drops frames of another size.
        self._writer.write(self._adapter(image))
        self.frames_written += 1

    def _remove_temp(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._tmp.unlink()

    def discard(self) -> None:
        """Stop writing and drop the temporary file: an existing output stays as it was."""
        if self._writer is None:
            return
        writer, self._writer = self._writer, None
        writer.release()
        self._remove_temp()
        kept = " (the existing file is unchanged)" if self.path.exists() else ""
        log.warning("%s: the run failed; its %d frames were discarded%s", self.name,
                    self.frames_written, kept)

    def close(self) -> None:
        """Finish the file and rename it over the target; while an error unwinds the run
        (not a stop), discard() instead."""
        if self._writer is None:
            return
        if _failing():
            self.discard()
            return
        writer, self._writer = self._writer, None
        writer.release()
        if self.frames_written == 0:
            self._remove_temp()
            log.warning("%s: no frames were written; the file was not created", self.name)
            return
        try:
            os.replace(self._tmp, self.path)
        except OSError as e:
            self._remove_temp()
            raise SinkError(f"cannot write {self.path}: {e.strerror or e}") from None
        log.info("%s: %d frames (%s)", self.name, self.frames_written, self.codec)


class VideoFileSink(_VideoWriterSink):
    """The composited video; codec from the extension (.mp4 mp4v, .avi MJPG, .mkv FFV1)."""

    needs_matte = False

    def write(self, frame: np.ndarray, alpha: np.ndarray | None = None,
              timestamp: float | None = None) -> None:
        self._write(frame)


class MatteFileSink(_VideoWriterSink):
    """The alpha matte as a grey video (255 = person), same frame count as the result."""

    grey = True
    kind = "matte"
    needs_matte = True

    def write(self, frame: np.ndarray, alpha: np.ndarray | None = None,
              timestamp: float | None = None) -> None:
        if alpha is None:
            if frame.ndim == 3 and frame.shape[2] == 4:
                alpha = frame[:, :, 3]
            else:
                raise ValueError(f"{self.name}: write() needs the alpha matte")
        if alpha.ndim != 2:
            raise ValueError(f"{self.name}: the matte must be HxW, got shape {alpha.shape}")
        self._write(alpha)
