"""Live-mode settings: configs/default.toml, then --config FILE, then flags."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

from vbg.errors import ConfigError

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "default.toml"
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


def _merge(base: dict[str, Any], override: dict[str, Any], source: Path) -> None:
    for key, value in override.items():
        if key not in base:
            raise ConfigError(
                f"{source}: unknown setting {key!r}; known: {', '.join(sorted(base))}"
            )
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: [{key}] must be a table")
            _merge(base[key], value, source)
            continue
        want = type(base[key])
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise ConfigError(
                f"{source}: {key} = {value!r} should be a {want.__name__}"
            )
        base[key] = value


def load(config_file: Path | None = None) -> dict[str, Any]:
    """Defaults, overridden by `config_file` when given."""
    settings = _read(DEFAULT_CONFIG)
    if config_file is not None:
        _merge(settings, _read(Path(config_file).expanduser()), Path(config_file))
    return copy.deepcopy(settings)


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
