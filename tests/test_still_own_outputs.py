"""`vbg still photos/ -o photos/` twice: the second run does not take the first one's results
for photos (it made b.png.png before)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from vbg.cli import main
from vbg.imageio import write_image, written_by_vbg

PORTRAIT = Path(__file__).resolve().parent.parent / "samples" / "astronaut.png"


def _photos(folder: Path) -> None:
    folder.mkdir()
    image = cv2.imread(str(PORTRAIT))
    small = cv2.resize(image, (256, 256), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(folder / "a.jpg"), small)
    cv2.imwrite(str(folder / "b.jpg"), cv2.flip(small, 1))


def test_a_second_run_into_the_input_folder_skips_the_first_runs_results(tmp_path, capsys):
    photos = tmp_path / "photos"
    _photos(photos)
    assert main(["still", str(photos), "-o", str(photos)]) == 0
    assert sorted(p.name for p in photos.iterdir()) == ["a.jpg", "a.png", "b.jpg", "b.png"]
    capsys.readouterr()
    assert main(["still", str(photos), "-o", str(photos)]) == 0
    assert sorted(p.name for p in photos.iterdir()) == ["a.jpg", "a.png", "b.jpg", "b.png"]
    err = capsys.readouterr().err
    assert "skipping 2 files vbg wrote earlier" in err and "a.png" in err


def test_results_elsewhere_are_ordinary_inputs(tmp_path):
    """Only results inside the output folder are skipped: a cut-out given on purpose from
    another folder is processed."""
    photos, out = tmp_path / "photos", tmp_path / "out"
    _photos(photos)
    assert main(["still", str(photos), "-o", str(out)]) == 0
    assert main(["still", str(out), "-o", str(tmp_path / "again"), "--color", "white",
                 "--format", "jpg"]) == 0
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == ["a.jpg", "b.jpg"]


def test_every_written_format_but_bmp_carries_the_mark(tmp_path):
    image = np.zeros((8, 8, 3), np.uint8)
    for ext in ("png", "jpg", "webp", "tif"):
        assert written_by_vbg(write_image(tmp_path / f"x.{ext}", image, dpi=300))
    assert not written_by_vbg(PORTRAIT)
    plain = tmp_path / "camera.jpg"
    cv2.imwrite(str(plain), image)
    assert not written_by_vbg(plain)
