"""User-facing errors: each message says what went wrong and how to fix it."""


class VbgError(Exception):
    """An expected failure with a clear, specific message (no traceback shown)."""


class ModelError(VbgError):
    """A model file is missing, corrupt or unknown."""


class ImageError(VbgError):
    """An input image cannot be read."""


class BackgroundError(VbgError):
    """A background (image, video, colour) cannot be used."""


class CameraError(VbgError):
    """The capture source cannot be opened or read."""


class SinkError(VbgError):
    """An output (virtual camera, file, window) cannot be opened or written."""


class ConfigError(VbgError):
    """A configuration value or flag is invalid."""
