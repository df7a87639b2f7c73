"""Live-mode settings: vbg/live/default.toml, then --config FILE, then flags."""

from __future__ import annotations

import copy
import difflib
import os
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from vbg.errors import ConfigError

DEFAULT_CONFIG = Path(os.fspath(resources.files("vbg.live") / "default.toml"))  # package data
USER_CONFIG = Path.home() / ".config" / "vbg" / "config.toml"


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


TYPE_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}

# Allowed values of every numeric setting: (low, high, what the message says is allowed).
RANGES: dict[str, tuple[float, float, str]] = {
    "fps": (1e-3, 240, "more than 0 and at most 240"),
    "blur": (0, 100, "0 (off) to 100"),
    "blur_refresh": (1, 1000, "1 (every frame) to 1000"),
    "rvm_size": (64, 4096, "64 to 4096 px"),
    "threads": (0, 1024, "0 (automatic) to 1024"),
    "frame_threads": (0, 1024, "0 (automatic) to 1024"),
    "smoothing.tau": (0, 10, "0 to 10 seconds"),
    "refine.alpha_threshold": (0, 1, "0 to 1"),
    "refine.contrast": (0.01, 100, "more than 0 and at most 100"),
    "refine.erode": (-50, 50, "-50 to 50 px"),
    "refine.feather": (0, 50, "0 (off) to 50 px"),
}


def _where(source: Path, section: str, key: str) -> str:
    return f"file {source} key {f'[{section}] ' if section else ''}{key}"


def _merge(base: dict[str, Any], override: dict[str, Any], source: Path,
           sources: dict[str, str] | None = None, section: str = "") -> None:
    for key, value in override.items():
        if key not in base:
            close = difflib.get_close_matches(key, list(base), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            where = f" in [{section}]" if section else ""
            raise ConfigError(f"{source}: unknown setting {key!r}{where}{hint}")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: [{key}] must be a table")
            _merge(base[key], value, source, sources, key)
            continue
        want = type(base[key])
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise ConfigError(f"{_where(source, section, key)} = {value!r} should be "
                              f"{TYPE_WORDS.get(want, want.__name__)}")
        base[key] = value
        if sources is not None:
            sources[f"{section}.{key}" if section else key] = _where(source, section, key)


def load(config_file: Path | None = None,
         sources: dict[str, str] | None = None) -> dict[str, Any]:
    """Defaults, overridden by `config_file` when given; `sources` gets where each came from."""
    settings = _read(DEFAULT_CONFIG)
    if config_file is not None:
        _merge(settings, _read(Path(config_file).expanduser()), Path(config_file), sources)
    return copy.deepcopy(settings)


def check_ranges(settings: dict[str, Any], sources: dict[str, str]) -> None:
    """One ConfigError line naming the setting, its source, the value and what is allowed."""
    for name, (low, high, allowed) in RANGES.items():
        section, _, key = name.rpartition(".")
        value = (settings[section] if section else settings)[key]
        if not low <= value <= high:
            source = sources.get(name, "given in the settings")
            raise ConfigError(f"{name} = {value:g} ({source}) is out of range: allowed "
                              f"{allowed}")


def apply_flags(settings: dict[str, Any], flags: dict[str, Any]) -> dict[str, Any]:
    """Flags given on the command line (not None) win over the files."""
    out = copy.deepcopy(settings)
    chosen_background = any(flags.get(k) not in (None, False) for k in
                             ("background", "video", "blur", "color"))
    if chosen_background:
        out.update(background="", video="", blur=0, color="")
    for key, value in flags.items():
        if value is None:
            continue
        if key in out and not isinstance(out[key], dict):
            out[key] = value
        elif "." in key:
            section, name = key.split(".", 1)
            out[section][name] = value
    return out


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"size {text!r} should look like 1280x720") from None
    if not (16 <= w <= 7680 and 16 <= h <= 4320):
        raise ConfigError(f"size {text!r} is out of range (16x16 to 7680x4320)")
    return w, h
