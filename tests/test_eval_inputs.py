"""`vbg eval` on bad input: one line and exit 2; images it cannot score are named, not hidden."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import pytest

from vbg.cli import main


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_a_missing_data_folder_is_one_line(tmp_path, capsys):
    assert main(["eval", "--data", str(tmp_path / "nope")]) == 2
    assert "no such folder" in _one_line(capsys)


def test_a_file_as_data_is_one_line(tmp_path, capsys):
    note = tmp_path / "some_file.txt"
    note.write_text("not a data set")
    assert main(["eval", "--data", str(note)]) == 2
    assert "is a file, not a folder" in _one_line(capsys)


def test_images_without_usable_ground_truth_are_reported_as_skipped(shared_set, tmp_path,
                                                                     capsys):
    coco = shared_set("coco_person")
    stems = sorted(p.stem for p in (coco / "images").glob("*.jpg"))[:3]
    data = tmp_path / "set"
    (data / "images").mkdir(parents=True)
    (data / "alpha").mkdir()
    for stem in stems:
        shutil.copy(coco / "images" / f"{stem}.jpg", data / "images")
    shutil.copy(coco / "alpha" / f"{stems[0]}.png", data / "alpha")  # good
    gt = cv2.imread(str(coco / "alpha" / f"{stems[1]}.png"), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(data / "alpha" / f"{stems[1]}.png"), gt[: gt.shape[0] // 2])  # wrong size
    # stems[2]: no ground truth at all
    assert main(["eval", "--data", str(data), "--config", "raw", "--provider", "cpu",
                 "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out.strip().splitlines()[-1])
    assert [r["frames"] for r in report["results"]] == [1]
    skipped = [ln for ln in captured.err.splitlines() if "skipping" in ln]
    assert len(skipped) == 2
    assert any(stems[1] in ln and "is " in ln and "the image" in ln for ln in skipped)
    assert any(stems[2] in ln and "no ground truth" in ln for ln in skipped)


@pytest.mark.parametrize("what", ["missing", "file"])
def test_the_cli_never_shows_a_traceback_for_bad_data(what, tmp_path):
    import subprocess
    import sys

    path = tmp_path / "x.txt"
    if what == "file":
        path.write_text("x")
    result = subprocess.run([sys.executable, "-m", "vbg", "eval", "--data", str(path)],
                            capture_output=True, text=True, timeout=300,
                            cwd=Path(__file__).resolve().parent.parent)
    assert result.returncode == 2
    lines = [ln for ln in result.stderr.splitlines() if not ln.startswith("vbg: ") or
             "error" in ln]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
