"""`vbg still`: batches over broken and awkward files, single files, mattes, backgrounds."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from test_imageio import H, W, make_mixed, quadrants_rgb

from vbg import cli
from vbg.cli import still as still_cli
from vbg.measure.metrics import iou, load_set
from vbg.still import jobs, segmenter

REPO = Path(__file__).resolve().parents[1]


def vbg(capsys, *argv: str | Path) -> tuple[int, str]:
    """Run `vbg still ARGV` in-process; (exit code, stderr)."""
    rc = cli.main(["still", *(str(a) for a in argv)])
    return rc, capsys.readouterr().err


def is_summary(line: str, done: int, failed: int, skipped: int = 0) -> bool:
    """The batch summary line: counts, elapsed time and images per second."""
    pattern = (rf"vbg: done {done}, failed {failed}, skipped {skipped} "
               r"in \d+\.\d s \((\d+\.\d\d|-) images/s\)")
    return re.fullmatch(pattern, line) is not None


def expected_names(names: list[str]) -> dict[str, str]:
    """Input file name -> output base name: the stem, or the full name when stems collide."""
    stems = Counter(Path(n).stem.lower() for n in names)
    return {n: Path(n).stem if stems[Path(n).stem.lower()] == 1 else n for n in names}


def read_rgba(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.format == "PNG" and im.mode == "RGBA", (path, im.format, im.mode)
        return np.asarray(im)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> tuple[Path, dict, dict]:
    """A folder of awkward valid files, broken files and files a scan must ignore."""
    folder = tmp_path_factory.mktemp("mixed")
    return (folder, *make_mixed(folder))


@pytest.fixture(scope="module")
def batch(mixed, tmp_path_factory) -> tuple[int, Path, Path]:
    """`vbg still MIXED -o out --matte mattes`, run once for several tests."""
    out = tmp_path_factory.mktemp("batch")
    rc = cli.main(["still", str(mixed[0]), "-o", str(out / "out"), "--matte", str(out / "m")])
    return rc, out / "out", out / "m"


def test_batch_writes_every_valid_file_upright_rgba(mixed, batch):
    _, awkward, broken = mixed
    rc, out, mattes = batch
    assert rc == 1
    names = expected_names(sorted([*awkward, *broken]))
    expected = {f"{names[n]}.png" for n in awkward}
    assert {p.name for p in out.iterdir()} == expected  # no temp files, nothing for broken
    assert {p.name for p in mattes.iterdir()} == expected
    assert "grey.jpg.png" in expected and "rgb16.tif.png" in expected  # stems collided
    for name, exp in awkward.items():
        rgba = read_rgba(out / f"{names[name]}.png")
        size = exp.bgr.shape[:2] if exp.bgr is not None else (H, W)
        assert rgba.shape == (*size, 4), name
        with Image.open(mattes / f"{names[name]}.png") as m:
            assert m.mode == "L"
            np.testing.assert_array_equal(np.asarray(m), rgba[:, :, 3])  # matte = cut-out alpha


def test_batch_keeps_original_colours_and_orientation(mixed, batch):
    _, out, _ = batch
    for name in ("exif6.png", "exif8.png", "exif3.png"):
        rgb = read_rgba(out / name)[:, :, :3]
        tl, br = rgb[4:12, 4:12].mean((0, 1)), rgb[-12:-4, -12:-4].mean((0, 1))
        assert np.abs(tl - (255, 0, 0)).max() < 40 and np.abs(br - 255).max() < 40, name


class LeftHalfPerson:
    """A segmenter that sees a person on the left half of every photo (deterministic mattes)."""

    name = "left-half"

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        alpha = np.zeros(frame.shape[:2], np.float32)
        alpha[:, : frame.shape[1] // 2] = 1.0
        return alpha


def vbg_left_half(capsys, *argv: str | Path) -> tuple[int, str]:
    """`vbg still ARGV` in-process with the LeftHalfPerson segmenter; (exit code, stderr)."""
    args = cli.build_parser().parse_args(["still", *(str(a) for a in argv)])
    rc = still_cli.run(args, segmenter=LeftHalfPerson())
    return rc, capsys.readouterr().err


def test_input_alpha_multiplies_the_matte(mixed, tmp_path, capsys):
    in_alpha = mixed[1]["rgba.png"].alpha.astype(int)
    rc, _ = vbg_left_half(capsys, mixed[0] / "rgba.png", "-o", tmp_path / "a.png", "--matte",
                tmp_path / "m.png")
    assert rc == 0
    out_alpha = read_rgba(tmp_path / "a.png")[:, :, 3].astype(int)
    np.testing.assert_array_equal(out_alpha, np.asarray(Image.open(tmp_path / "m.png")))
    left, right = slice(0, W // 2 - 8), slice(W // 2 + 8, W)
    assert np.abs(out_alpha[:, left] - in_alpha[:, left]).max() <= 1  # person: input alpha
    assert out_alpha[:, right].max() == 0  # background: transparent


def test_batch_reports_each_broken_file_once(mixed, tmp_path, capsys):
    folder, awkward, broken = mixed
    rc, err = vbg(capsys, folder, "-o", tmp_path / "out")
    assert rc == 1
    lines = err.splitlines()
    assert "Traceback" not in err
    for name, reason in broken.items():
        hits = [line for line in lines if f"{folder / name}:" in line]
        assert len(hits) == 1, (name, hits)
        assert hits[0].startswith(f"vbg: {folder / name}: ") and reason in hits[0]
    for ignored in ("vector.svg", "notes.txt", "anim.gif", "sub.jpg", "._resource.jpg"):
        assert ignored not in err
    assert is_summary(lines[-1], len(awkward), len(broken)), lines[-1]
    assert len(lines) == len(broken) + 1
    assert "\r" not in err  # no progress bar when stderr is not a terminal


def test_subprocess_exit_code_and_no_traceback(mixed, tmp_path):
    folder, awkward, broken = mixed
    proc = subprocess.run([sys.executable, "-m", "vbg", "still", str(folder), "-o",
                           str(tmp_path / "out")], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) == len(broken) + 1
    assert len(list((tmp_path / "out").iterdir())) == len(awkward)


def test_single_file_cutout_and_matte(mixed, tmp_path, capsys):
    folder = mixed[0]
    rc, err = vbg(capsys, folder / "exif6.jpg", "-o", tmp_path / "sub" / "cut.png",
                  "--matte", tmp_path / "m.png")
    assert (rc, err) == (0, "")
    rgba = read_rgba(tmp_path / "sub" / "cut.png")
    assert rgba.shape == (H, W, 4)
    with Image.open(tmp_path / "m.png") as m:
        np.testing.assert_array_equal(np.asarray(m), rgba[:, :, 3])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.png", "sub"]


def test_single_file_into_folders(mixed, tmp_path, capsys):
    (tmp_path / "m").mkdir()
    rc, err = vbg(capsys, mixed[0] / "exif8.jpg", "-o", tmp_path / "out", "--matte",
                  tmp_path / "m")
    assert (rc, err) == (0, "")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["exif8.png"]
    assert [p.name for p in (tmp_path / "m").iterdir()] == ["exif8.png"]


def test_single_file_broken_input(mixed, tmp_path, capsys):
    folder = mixed[0]
    rc, err = vbg(capsys, folder / "truncated.png", "-o", tmp_path / "x.png")
    assert rc == 1
    assert err.splitlines() == [f"vbg: {folder / 'truncated.png'}: truncated PNG file: "
                                "the data ends early (incomplete download or copy?)"]
    assert list(tmp_path.iterdir()) == []


def test_cutout_to_jpeg_is_refused_up_front(mixed, tmp_path, capsys):
    rc, err = vbg(capsys, mixed[0] / "rgb.bmp", "-o", tmp_path / "cut.jpg")
    assert rc == 2 and "JPEG cannot store the transparent cut-out" in err
    assert list(tmp_path.iterdir()) == []


def _solid(path: Path, rgb: tuple[int, int, int], size=(80, 60)) -> Path:
    Image.new("RGB", size, rgb).save(path)
    return path


def test_colour_background_single_jpeg(mixed, tmp_path, capsys):
    src = mixed[0] / "rgb.tif"
    rc, err = vbg_left_half(capsys, src, "-o", tmp_path / "out.jpg", "--color", "#0a1428",
                  "--matte", tmp_path / "m.png")
    assert (rc, err) == (0, "")
    with Image.open(tmp_path / "out.jpg") as im:
        assert im.format == "JPEG" and im.mode == "RGB" and im.size == (W, H)
        out = np.asarray(im).astype(int)
    matte = np.asarray(Image.open(tmp_path / "m.png")).astype(int)
    assert matte[:, : W // 2 - 8].min() == 255 and matte[:, W // 2 + 8:].max() == 0
    a = matte[..., None] / 255.0
    reference = a * quadrants_rgb() + (1 - a) * np.array([10, 20, 40])
    assert np.abs(out - reference).mean() < 6  # JPEG noise only


def test_image_and_blur_backgrounds_in_folder_mode(mixed, tmp_path, capsys):
    folder = mixed[0]
    bg = _solid(tmp_path / "bg.png", (10, 200, 30))
    inputs = [folder / "rgb.bmp", folder / "grey.png"]
    rc, err = vbg_left_half(capsys, *inputs, "-o", tmp_path / "img", "--background", bg,
                  "--matte", tmp_path / "m")
    assert rc == 0 and len(err.splitlines()) == 1 and is_summary(err.splitlines()[0], 2, 0)
    for name, src in (("rgb", quadrants_rgb()), ("grey", mixed[1]["grey.png"].bgr)):
        with Image.open(tmp_path / "img" / f"{name}.png") as im:
            assert im.mode == "RGB" and im.size == (W, H)
            out = np.asarray(im).astype(int)
        matte = np.asarray(Image.open(tmp_path / "m" / f"{name}.png"))
        assert np.all(out[matte == 0] == (10, 200, 30))
        np.testing.assert_array_equal(out[matte == 255], src[matte == 255])
    rc, _ = vbg_left_half(capsys, *inputs, "-o", tmp_path / "blur", "--blur", "5")
    assert rc == 0
    for name in ("rgb", "grey"):
        with Image.open(tmp_path / "blur" / f"{name}.png") as im:
            assert im.mode == "RGB" and im.size == (W, H)


def test_missing_background_fails_at_start(mixed, tmp_path, capsys):
    missing = tmp_path / "nope.jpg"
    rc, err = vbg(capsys, mixed[0], "-o", tmp_path / "out", "--background", missing)
    assert rc == 2
    assert err.startswith("vbg: error: ") and str(missing) in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("flags", "message"), [
    (["--contrast", "0"], "--contrast 0: use a value above 0"),
    (["--alpha-threshold", "1.5"], "--alpha-threshold 1.5: use a value from 0 to 1"),
    (["--model", "nosuch"], "unknown model 'nosuch'"),
    (["--matte", "SAME"], "is the same as -o"),
])
def test_bad_flags_are_clear_errors(mixed, tmp_path, capsys, flags, message):
    out = tmp_path / "a.png"
    flags = [str(out) if f == "SAME" else f for f in flags]
    rc, err = vbg(capsys, mixed[0] / "rgb.bmp", "-o", out, *flags)
    assert rc == 2 and err.startswith("vbg: error: ") and message in err
    assert len(err.splitlines()) == 1 and list(tmp_path.iterdir()) == []


def test_model_auto_prefers_rvm_when_installed(monkeypatch):
    from vbg.segment import rvm

    monkeypatch.setattr(rvm, "rvm_installed", lambda: True)
    assert segmenter.model_names("auto") == ["rvm"]
    monkeypatch.setattr(rvm, "rvm_installed", lambda: False)
    assert segmenter.model_names("auto") == ["selfie", "selfie-landscape"]
    assert segmenter.model_names(" selfie , rvm ") == ["selfie", "rvm"]


def test_output_never_replaces_an_input(tmp_path, capsys):
    Image.fromarray(quadrants_rgb()).save(tmp_path / "a.png")
    before = (tmp_path / "a.png").read_bytes()
    Image.fromarray(quadrants_rgb()).save(tmp_path / "b.jpg")
    rc, err = vbg(capsys, tmp_path, "-o", tmp_path)
    assert rc == 1
    assert f"vbg: {tmp_path / 'a.png'}: the output would replace an input file" in err
    assert (tmp_path / "a.png").read_bytes() == before
    assert (tmp_path / "b.png").is_file()


def test_output_names_disambiguate_collisions(tmp_path):
    names = jobs.output_names([Path("x/a.jpg"), Path("x/A.png"), Path("y/a.jpg"),
                                Path("x/b.jpg"), Path("x/a.jpg.png")])
    assert names == ["a.jpg", "A.png", "a.jpg-2", "b", "a.jpg-3"]
    names = jobs.output_names([Path("x/a.jpg"), Path("y/b.png")])
    assert names == ["a", "b"]


def test_collect_sources_sorted_deduplicated_and_filtered(mixed, tmp_path):
    folder, awkward, broken = mixed
    (tmp_path / "empty").mkdir()
    sources, problems = jobs.collect_sources([folder, folder / "rgb.bmp", tmp_path / "empty"])
    assert [s.path.name for s in sources] == sorted([*awkward, *broken])
    assert len(problems) == 1 and "no image files" in problems[0]


def test_progress_line_on_a_terminal(mixed, tmp_path, monkeypatch):
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    err = Tty()
    monkeypatch.setattr(sys, "stderr", err)
    folder = mixed[0]
    rc = cli.main(["still", str(folder / "rgb.bmp"), str(folder / "grey.png"),
                   "-o", str(tmp_path)])
    assert rc == 0
    text = err.getvalue()
    assert "\r[>                   ] 0/2   0%  ETA --:--  rgb.bmp" in text
    assert re.search(r"\r\[==========>         \] 1/2  50%  ETA 0:\d\d  grey\.png", text)
    assert "\r[====================] 2/2 100%  ETA 0:00  grey.png" in text
    assert is_summary(text.rsplit("\r", 1)[-1].strip(), 2, 0)


@pytest.mark.parametrize("model", ["auto", "selfie,selfie-landscape"])
def test_coco_mattes_through_vbg_still(shared_set, tmp_path, capsys, model):
    root = shared_set("coco_person")
    if model == "auto" and segmenter.model_names("auto") != ["rvm"]:
        pytest.skip("RVM is not installed (`vbg models pull rvm`): auto = the selfie pair")
    rc, err = vbg(capsys, root / "images", "-o", tmp_path / "out",
                  "--matte", tmp_path / "mattes", "--model", model)
    assert rc == 0, err
    scores = []
    for stem, _, alpha_path in load_set(root):
        matte = cv2.imread(str(tmp_path / "mattes" / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
        gt = cv2.imread(str(alpha_path), cv2.IMREAD_GRAYSCALE)
        scores.append(iou(matte, gt))
    print(f"coco_person mean IoU through `vbg still --model {model}`: {np.mean(scores):.4f}")
    assert len(scores) >= 20
    assert np.mean(scores) >= 0.70
