"""ID-photo print sheets (counts, positions, crop lines, 300 dpi) and --max-kb JPEG sizes."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from vbg import cli
from vbg.errors import ConfigError, ImageError
from vbg.imagewrite import write_image
from vbg.still.idpresets import PRESETS, parse_size, sized_preset
from vbg.still.idsheet import (
    CROP_LINE_BGR,
    SHEET_GAP,
    SHEET_MARGIN,
    SHEETS,
    encode_image,
    make_sheet,
    sheet_grid,
    write_jpeg_max_kb,
)

ASTRONAUT = Path(__file__).resolve().parents[1] / "samples" / "astronaut.png"


def photo(w: int, h: int, seed: int = 0) -> np.ndarray:
    """A noisy photo (hard to compress) with a distinct top-left pixel."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 3), np.uint8)
    img[0, 0] = (1, 2, 3)
    return img


@pytest.mark.parametrize(("sheet", "size", "count"), [
    ("6inch", (295, 413), 10), ("6inch", (413, 531), 8), ("6inch", (600, 600), 2),
    ("5inch", (295, 413), 8), ("a4", (295, 413), 49), ("3r", (295, 413), 9),
    ("4r", (413, 531), 6),
])
def test_sheet_counts_positions_and_crop_lines(sheet, size, count):
    spec = SHEETS[sheet]
    w, h = size
    img = photo(w, h)
    out, n = make_sheet(img, sheet)
    assert n == count and out.shape == (spec.height, spec.width, 3)
    corners = sheet_grid(spec, w, h)
    assert len(corners) == count
    # As many as fit: one more column or row would not.
    cols = len({x for x, _ in corners})
    rows = len({y for _, y in corners})
    assert cols * rows == count
    assert (cols + 1) * w + cols * SHEET_GAP > spec.width - 2 * SHEET_MARGIN
    assert (rows + 1) * h + rows * SHEET_GAP > spec.height - 2 * SHEET_MARGIN
    for x, y in corners:
        assert x >= SHEET_MARGIN and y >= SHEET_MARGIN
        assert x + w <= spec.width - SHEET_MARGIN and y + h <= spec.height - SHEET_MARGIN
        assert np.array_equal(out[y:y + h, x:x + w], img)  # the copy, untouched
        # A crop line 1 px outside each side, in the gap.
        assert tuple(out[y - 2, x + w // 2]) == CROP_LINE_BGR
        assert tuple(out[y + h + 1, x + w // 2]) == CROP_LINE_BGR
        assert tuple(out[y + h // 2, x - 2]) == CROP_LINE_BGR
        assert tuple(out[y + h // 2, x + w + 1]) == CROP_LINE_BGR
    xs = sorted({x for x, _ in corners})
    assert all(b - a == w + SHEET_GAP for a, b in itertools.pairwise(xs))
    assert tuple(out[2, 2]) == (255, 255, 255)  # paper


def test_sheet_keeps_the_print_size_of_other_dpis():
    out, n = make_sheet(photo(590, 826), "a4", photo_dpi=600)  # 25x35 mm at 600 dpi
    assert n == 49 and out.shape == (3508, 2480, 3)


def test_photo_too_big_for_the_sheet():
    with pytest.raises(ImageError, match="does not fit on a 3r sheet"):
        make_sheet(photo(1050, 1499), "3r")
    with pytest.raises(ConfigError, match="--sheet 'a5': choose one of 6inch"):
        make_sheet(photo(10, 10), "a5")


@pytest.mark.parametrize("kb", [20, 50, 120])
def test_max_kb_gives_the_largest_quality_that_fits(tmp_path, kb):
    img = cv2.GaussianBlur(photo(600, 600), (0, 0), 1.5)
    path = tmp_path / "id.jpg"
    quality = write_jpeg_max_kb(path, img, 300, kb)
    assert path.stat().st_size <= kb * 1024
    with Image.open(path) as im:
        assert im.format == "JPEG" and im.info["dpi"] == pytest.approx((300, 300), abs=0.01)
    if quality < 95:  # the next quality up would not fit
        bigger = tmp_path / "q.jpg"
        write_image(bigger, img, dpi=300, quality=quality + 1)
        assert bigger.stat().st_size > kb * 1024
    data, q = encode_image(img, "jpg", 300, kb)  # the same in memory (the web app's way)
    assert q == quality and len(data) == path.stat().st_size
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_max_kb_too_small_is_one_error_and_no_file(tmp_path):
    path = tmp_path / "id.jpg"
    with pytest.raises(ImageError, match=r"even at JPEG quality 1 the photo is \d+ KB, more than "
                                         r"--max-kb 1; allow more KB"):
        write_jpeg_max_kb(path, photo(1200, 1200), 300, 1)
    assert list(tmp_path.iterdir()) == []


def test_sizes_in_px_and_mm():
    assert parse_size("413x531") == (413, 531)
    assert parse_size("35x45mm") == (413, 531)
    assert parse_size("35x45mm", 600) == (827, 1063)
    for bad in ("35", "0x10", "35x45cm", "x"):
        with pytest.raises(ConfigError, match="--id-size"):
            parse_size(bad)
    p = sized_preset("passport", "35x45mm", 600)
    assert (p.width, p.height, p.dpi, p.head_range) == (827, 1063, 600,
                                                        PRESETS["passport"].head_range)
    assert sized_preset(None, "300x400").name == "custom"


def test_cli_max_kb_sheet_and_report(tmp_path, capsys):
    rc = cli.main(["still", str(ASTRONAUT), "--id-photo", "us", "--color", "blue", "--max-kb",
                   "50", "-o", str(tmp_path / "us.jpg"), "--report", str(tmp_path / "r.json"),
                   "--matting", "fast"])
    captured = capsys.readouterr()
    assert rc == 0 and captured.err == ""
    assert (tmp_path / "us.jpg").stat().st_size <= 50 * 1024
    assert captured.out.splitlines()[-1].startswith(f"vbg: {ASTRONAUT}: us 600x600 ok; head ")
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["ok"] == 1 and report["files"][0]["jpeg_quality"] >= 1
    assert report["files"][0]["kb"] <= 50
    rc = cli.main(["still", str(ASTRONAUT), "--id-photo", "1inch", "--sheet", "6inch", "-o",
                   str(tmp_path / "sheet.jpg"), "--matting", "fast"])
    assert rc == 0
    with Image.open(tmp_path / "sheet.jpg") as im:
        assert im.size == (1800, 1200) and im.info["dpi"] == pytest.approx((300, 300), abs=0.01)
    capsys.readouterr()


@pytest.mark.parametrize(("flags", "message"), [
    (["--id-photo", "us", "--max-kb", "50", "-o", "x.png"], "--max-kb needs jpg output"),
    (["--id-photo", "us", "--max-kb", "0", "-o", "x.jpg"], "--max-kb 0: use 1 or more KB"),
    (["--id-photo", "us", "--sheet", "a5", "-o", "x.jpg"], "--sheet 'a5': choose one of"),
    (["--id-photo", "us", "--id-size", "35x45cm", "-o", "x.jpg"], "--id-size '35x45cm'"),
    (["--id-photo", "us", "--dpi", "5", "-o", "x.jpg"], "--dpi 5: use 50 to 1200"),
    (["--force", "-o", "x.png"], "--force only applies to --id-photo"),
    (["--report", "r.json", "-o", "x.png"], "--report only applies to --id-photo"),
    (["--id-photo", "custom", "-o", "x.jpg"], "--id-photo custom needs --id-size"),
])
def test_bad_flags_are_usage_errors(tmp_path, capsys, monkeypatch, flags, message):
    monkeypatch.chdir(tmp_path)
    rc = cli.main(["still", str(ASTRONAUT), *flags])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("vbg: error: ") and message in err, err
    assert list(tmp_path.iterdir()) == []
