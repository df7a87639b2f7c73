"""Live-mode settings: the schema's defaults (live/settings.py) < --config FILE < flags."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from vbg.errors import ConfigError
from vbg.live.settings import LiveSettings, fields

# The defaults as a TOML file to read and copy (package data, written from the schema).
DEFAULT_CONFIG = Path(os.fspath(resources.files("vbg.live") / "default.toml"))
USER_CONFIG = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "vbg" \
    / "config.toml"


def _read(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    except OSError as e:
        raise ConfigError(f"config file {path} cannot be read: {e.strerror}") from None


# Allowed values of every numeric setting, from the schema: (low, high, what is allowed).
RANGES: dict[str, tuple[float, float, str]] = {
    name: spec.range for name, _, spec in fields() if spec.range is not None}


def load(config_file: Path | None = None,
         sources: dict[str, str] | None = None) -> LiveSettings:
    """Defaults, overridden by `config_file` when given; `sources` gets where each came from."""
    if config_file is None:
        return LiveSettings()
    return LiveSettings.from_mapping(_read(Path(config_file).expanduser()), Path(config_file),
                                     sources)


def check_ranges(settings: LiveSettings, sources: dict[str, str]) -> None:
    """One ConfigError line naming the setting, its source, the value and what is allowed."""
    settings.check(sources)


def merged(settings: LiveSettings, changes: Mapping[str, Any],
           source: str = "the request") -> LiveSettings:
    """`settings` with partial `changes` (config-file keys) applied; ConfigError when bad."""
    return settings.merged(changes, source)


BACKGROUND_KEYS = ("background", "video", "blur", "color")


def clear_other_backgrounds(changes: Mapping[str, Any],
                            unset: tuple[Any, ...] = (None, False)) -> dict[str, Any]:
    """`changes` where choosing one background (image, video, blur, colour) clears the others;
    a value in `unset` does not count as chosen."""
    out = dict(changes)
    if any(changes.get(k) not in unset for k in BACKGROUND_KEYS):
        for key, cleared in (("background", ""), ("video", ""), ("blur", 0), ("color", "")):
            out.setdefault(key, cleared)
    return out


def apply_flags(settings: LiveSettings, flags: Mapping[str, Any]) -> LiveSettings:
    """Flags given (not None) win over the files; a chosen background clears the others.
    Unchecked: the caller checks once it knows where each value came from."""
    given = {k: v for k, v in flags.items() if v is not None}
    return settings.merged(clear_other_backgrounds(given), "the command line", check=False)


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"size {text!r} should look like 1280x720") from None
    if not (16 <= w <= 7680 and 16 <= h <= 4320):
        raise ConfigError(f"size {text!r} is out of range (16x16 to 7680x4320)")
    return w, h
