"""Settings precedence: defaults < --config FILE < flags; bad files give clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vbg.cli import build_parser
from vbg.cli.live import settings_from
from vbg.errors import ConfigError
from vbg.live import config


def parse(*argv: str):
    return build_parser().parse_args(list(argv))


def test_every_default_key_is_commented() -> None:
    text = config.DEFAULT_CONFIG.read_text().splitlines()
    for i, line in enumerate(text):
        if re.match(r"^[a-z_]+ = ", line):
            assert text[i - 1].startswith("#"), f"key without a comment: {line}"


def test_defaults_load() -> None:
    s = settings_from(parse())
    assert s.camera == "0" and s.fps == 30.0 and s.smoothing.enabled is True


def test_file_then_flags(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('camera = "clip.mp4"\nfps = 15\ncolor = "blue"\n[smoothing]\nenabled = false\n')
    s = settings_from(parse("--config", str(cfg)))
    assert (s.camera, s.fps, s.color, s.smoothing.enabled) == (
        "clip.mp4", 15.0, "blue", False)
    s = settings_from(parse("--config", str(cfg), "--fps", "24", "--blur", "9"))
    assert s.fps == 24.0 and s.blur == 9 and s.color == ""  # flag background wins


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


def test_misspelt_key_names_the_file_and_the_closest_key(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[smoothing]\ntua = 0.3\n")
    with pytest.raises(ConfigError, match=r"c\.toml: unknown setting 'tua' in \[smoothing\]; "
                                          r"did you mean 'tau'\?"):
        config.load(cfg)
    cfg.write_text('fps = "fast"\n')
    with pytest.raises(ConfigError, match=r"key fps = 'fast' should be a number$"):
        config.load(cfg)


@pytest.mark.parametrize("argv, words", [
    (["--threads", "-3"], ["threads = -3", "flag --threads", "0 (automatic) to 1024"]),
    (["--blur-refresh", "0"], ["blur_refresh = 0", "flag --blur-refresh", "1 (every frame)"]),
    (["--fps", "0"], ["fps = 0", "flag --fps", "more than 0"]),
    (["--frames", "0"], ["--frames 0", "flag --frames", "1 or more"]),
    (["--frames", "-1"], ["--frames -1", "flag --frames", "1 or more"]),
])
def test_out_of_range_flag_names_setting_source_and_range(argv, words) -> None:
    with pytest.raises(ConfigError) as e:
        settings_from(parse(*argv))
    for word in words:
        assert word in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("text, words", [
    ("[smoothing]\ntau = -1\n", ["smoothing.tau = -1", "key [smoothing] tau", "0 to 10"]),
    ("fps = 0\n", ["fps = 0", "key fps", "more than 0"]),
    ("[refine]\nalpha_threshold = 1.5\n", ["refine.alpha_threshold = 1.5", "0 to 1"]),
])
def test_out_of_range_file_value_names_the_file_and_key(tmp_path: Path, text, words) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as e:
        settings_from(parse("--config", str(cfg)))
    message = str(e.value)
    assert f"file {cfg}" in message and "flag" not in message
    for word in words:
        assert word in message


def test_cli_exits_2_with_one_line(tmp_path: Path, capsys) -> None:
    from vbg.cli import main

    cfg = tmp_path / "c.toml"
    cfg.write_text("[smoothing]\ntau = -1\n")
    assert main(["--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "smoothing.tau" in err[0] and str(cfg) in err[0]


def test_every_default_key_has_a_flag_that_sets_it() -> None:
    from vbg.cli.live import LIVE_KEYS

    defaults = config.load().to_dict()
    keys = {f"{k}.{n}" if isinstance(v, dict) else k
            for k, v in defaults.items() for n in (v if isinstance(v, dict) else [None])}
    assert keys - set(LIVE_KEYS) == set()
    s = settings_from(parse("--smoothing-tau", "0.5", "--alpha-threshold", "0.3",
                            "--rvm-size", "512", "--no-reuse-still", "--feather", "2"))
    assert (s.smoothing.tau, s.refine.alpha_threshold, s.rvm_size,
            s.reuse_still, s.refine.feather) == (0.5, 0.3, 512, False, 2)
    with pytest.raises(ConfigError, match=r"smoothing.tau = -1 \(flag --smoothing-tau\)"):
        settings_from(parse("--smoothing-tau", "-1"))


def test_the_default_file_is_the_schema_written_out() -> None:
    from vbg.live.settings import default_toml

    assert config.DEFAULT_CONFIG.read_text() == default_toml(), (
        "regenerate it: python -m vbg.live.settings > vbg/live/default.toml")
    assert config.load(config.DEFAULT_CONFIG) == config.load()


def test_partial_changes_are_checked_and_name_their_source() -> None:
    s = config.load()
    new = config.merged(s, {"color": "#00ff00", "smoothing": {"tau": 0.5}, "refine.erode": 2})
    assert (new.color, new.smoothing.tau, new.refine.erode, s.color) == ("#00ff00", 0.5, 2, "")
    cases = [({"colour": "red"}, "unknown setting 'colour'; did you mean 'color'"),
             ({"blur": "lots"}, "blur = 'lots' should be a whole number"),
             ({"smoothing": {"tua": 1}}, "unknown setting 'tua' in [smoothing]"),
             ({"blur": 101}, "blur = 101 (the request, key blur) is out of range"),
             ({"provider": "gpu"}, "provider = 'gpu' (the request, key provider) is not one of")]
    for changes, words in cases:
        with pytest.raises(ConfigError) as e:
            config.merged(s, changes)
        assert words in str(e.value)


def test_a_choice_from_a_file_is_checked(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('pixel_format = "h264"\n')
    with pytest.raises(ConfigError, match=rf"pixel_format = 'h264' \(file {re.escape(str(cfg))}"
                       r" key pixel_format\) is not one of mjpg, yuyv"):
        config.load(cfg)


@pytest.mark.parametrize("argv", [["--blur", "0"], ["--blur", "101"],
                                  ["still", "in.png", "-o", "out.png", "--blur", "0"]])
def test_blur_flag_means_the_same_in_live_and_still_mode(argv, capsys) -> None:
    from vbg.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"vbg: error: --blur {argv[-1]} (flag --blur) is out of range: "
                          "allowed 1 to 100")
