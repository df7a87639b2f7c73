"""Settings precedence: defaults < --config FILE < flags; bad files give clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vbg.cli import build_parser
from vbg.errors import ConfigError
from vbg.live import config
from vbg.live.build import settings_from


def parse(*argv: str):
    return build_parser().parse_args(list(argv))


def test_every_default_key_is_commented() -> None:
    text = config.DEFAULT_CONFIG.read_text().splitlines()
    for i, line in enumerate(text):
        if re.match(r"^[a-z_]+ = ", line):
            assert text[i - 1].startswith("#"), f"key without a comment: {line}"


def test_defaults_load() -> None:
    s = settings_from(parse())
    assert s["camera"] == "0" and s["fps"] == 30.0 and s["smoothing"]["enabled"] is True


def test_file_then_flags(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('camera = "clip.mp4"\nfps = 15\ncolor = "blue"\n[smoothing]\nenabled = false\n')
    s = settings_from(parse("--config", str(cfg)))
    assert (s["camera"], s["fps"], s["color"], s["smoothing"]["enabled"]) == (
        "clip.mp4", 15.0, "blue", False)
    s = settings_from(parse("--config", str(cfg), "--fps", "24", "--blur", "9"))
    assert s["fps"] == 24.0 and s["blur"] == 9 and s["color"] == ""  # flag background wins


def test_unknown_key_and_wrong_type(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("camra = 1\n")
    with pytest.raises(ConfigError, match="unknown setting 'camra'"):
        config.load(cfg)
    cfg.write_text('fps = "fast"\n')
    with pytest.raises(ConfigError, match="fps"):
        config.load(cfg)
    cfg.write_text("fps = [\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(cfg)
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(tmp_path / "missing.toml")


def test_parse_size() -> None:
    assert config.parse_size("1280x720") == (1280, 720)
    with pytest.raises(ConfigError):
        config.parse_size("big")
