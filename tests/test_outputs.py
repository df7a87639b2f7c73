"""Outputs that are an input or each other: exit 2 before anything is opened, inputs intact."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from vbg.cli import main
from vbg.errors import ConfigError
from vbg.outputs import check_outputs, same_file


def test_same_file_sees_through_symlinks_relative_paths_and_hard_links(tmp_path, monkeypatch):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"video")
    (tmp_path / "link.mp4").symlink_to(clip)
    os.link(clip, tmp_path / "hard.mp4")
    monkeypatch.chdir(tmp_path)
    assert same_file("clip.mp4", clip)
    assert same_file(tmp_path / "link.mp4", "clip.mp4")
    assert same_file("hard.mp4", "clip.mp4")
    assert same_file("./sub/../new.mp4", tmp_path / "new.mp4")  # neither exists yet
    assert not same_file("clip.mp4", "other.mp4")


def test_check_outputs_names_both_settings(tmp_path):
    clip = tmp_path / "in.mp4"
    clip.write_bytes(b"video")
    with pytest.raises(ConfigError, match=r"--output .* same file as --camera"):
        check_outputs({"--camera": str(clip)}, {"--output": str(clip)})
    with pytest.raises(ConfigError, match=r"--output .* and --matte-output .* same file"):
        check_outputs({}, {"--output": "x.mp4", "--matte-output": "./x.mp4"})
    # cameras by number or URL, and unset outputs, are not files
    check_outputs({"--camera": "0", "--video": None}, {"--output": str(tmp_path / "o.mp4"),
                                                      "--matte-output": None})
    check_outputs({"--camera": "http://127.0.0.1:8080/video"}, {"--output": "o.mp4"})


@pytest.fixture
def clip(shared_data: Path, tmp_path: Path) -> Path:
    source = shared_data / "davis_parkour" / "clip.mp4"
    if not source.is_file():
        pytest.skip(f"{source} not found")
    copy = tmp_path / "talk.mp4"
    shutil.copyfile(source, copy)
    return copy


def _refused(argv: list[str], protected: list[Path], capsys) -> str:
    before = {p: p.read_bytes() for p in protected}
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    for path, data in before.items():
        assert path.read_bytes() == data, f"{path} was changed"
    return err


def test_output_equal_to_the_camera_is_refused(clip, capsys):
    err = _refused(["--camera", str(clip), "--output", str(clip)], [clip], capsys)
    assert "--output" in err and "--camera" in err


def test_output_through_a_symlink_and_a_relative_path(clip, tmp_path, capsys, monkeypatch):
    link = tmp_path / "alias.mp4"
    link.symlink_to(clip)
    monkeypatch.chdir(tmp_path)
    _refused(["--camera", "talk.mp4", "--output", str(link)], [clip], capsys)
    _refused(["--camera", str(clip), "--matte-output", "./talk.mp4"], [clip], capsys)


def test_output_equal_to_the_background_video_is_refused(clip, tmp_path, capsys):
    video = tmp_path / "beach.mp4"
    shutil.copyfile(clip, video)
    err = _refused(["--camera", str(clip), "--video", str(video), "--output", str(video)],
                   [clip, video], capsys)
    assert "--video" in err


def test_output_and_matte_output_on_one_file_are_refused(clip, tmp_path, capsys):
    existing = tmp_path / "x.mp4"
    existing.write_bytes(b"an earlier result")
    err = _refused(["--camera", str(clip), "--output", str(existing), "--matte-output",
                    str(existing)], [clip, existing], capsys)
    assert "--matte-output" in err


def test_help_states_the_rule(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "may not be an input" in out and "renamed" in out
