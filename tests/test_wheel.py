"""A built wheel works outside the source tree: live mode from a video file with --output,
`vbg still` on a real photo and `vbg doctor` (bundled models found), from another directory.

The wheel is built offline from a copy of the package (pip wheel --no-build-isolation, with the
venv's setuptools), installed with `pip install --no-deps --target`, and run by the venv's
Python with PYTHONPATH at that target only, so the checkout is never imported. The target is
kept in .cache/wheel-test/ and updated file by file (unchanged files keep their mtimes), so
numba's kernel cache for it stays valid from run to run: only the first run, or one after a
kernel's source changed, compiles the kernels (about a minute).
"""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from vbg.data import SYSTEM_FILES, data_path
from vbg.measure.metrics import iou

REPO = Path(__file__).resolve().parents[1]
KEPT = REPO / ".cache" / "wheel-test"  # the installed wheel, reused between runs
SOURCE_FILES = ("pyproject.toml", "README.md", "LICENSE")
COCO_PHOTO = "000000000459"


def _build_wheel(tmp: Path) -> Path:
    """The wheel of a clean copy of the package (no build/ or egg-info from the checkout)."""
    src = tmp / "src"
    shutil.copytree(REPO / "vbg", src / "vbg",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in SOURCE_FILES:
        shutil.copy2(REPO / name, src / name)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps",
                           "--no-build-isolation", "--no-index", "-q", "-w", str(tmp / "dist")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = (tmp / "dist").glob("vbg-*.whl")
    return wheel


def _sync(staged: Path, kept: Path) -> None:
    """Make `kept` hold exactly the files of `staged`, rewriting only the files that differ."""
    wanted = {p.relative_to(staged) for p in staged.rglob("*")
              if p.is_file() and "__pycache__" not in p.parts}
    if kept.is_dir():
        for path in sorted(kept.rglob("*"), reverse=True):
            rel = path.relative_to(kept)
            if path.is_file() and "__pycache__" not in rel.parts and rel not in wanted:
                path.unlink()
    for rel in sorted(wanted):
        target = kept / rel
        if target.is_file() and filecmp.cmp(staged / rel, target, shallow=False):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(staged / rel, target)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """(target folder, environment) of the installed wheel."""
    tmp = tmp_path_factory.mktemp("wheel")
    wheel = _build_wheel(tmp)
    staged = tmp / "staged"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
                           "--no-compile", "-q", "--target", str(staged), str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    site = KEPT / "site"
    _sync(staged, site)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VBG_", "PYTHON"))}
    env.update(PYTHONPATH=str(site), NUMBA_CACHE_DIR=str(KEPT / "numba"))
    return site, env


def _vbg(installed, cwd: Path, *argv: str, timeout: int = 600) -> subprocess.CompletedProcess:
    _site, env = installed
    return subprocess.run([sys.executable, "-m", "vbg", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_the_wheel_is_what_runs(installed, tmp_path):
    site, env = installed
    code = "import vbg, vbg.models as m; print(vbg.__file__); print(m.models_dir())"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == str(site / "vbg" / "__init__.py")
    assert out[1] == str(site / "vbg" / "models" / "bundled")
    for rel in ("vbg/models/bundled/manifest.json", "vbg/models/bundled/NOTICE",
                "vbg/backgrounds/images/studio.png", "vbg/data/samples/astronaut.png",
                "vbg/live/default.toml"):
        assert (site / rel).is_file(), rel


def test_doctor_finds_the_bundled_models(installed, tmp_path):
    proc = _vbg(installed, tmp_path, "doctor")
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = (proc.stdout + proc.stderr).splitlines()
    for name in ("selfie", "selfie-landscape", "face-short-range"):
        assert any(line.startswith(f"[ok] model {name}: ") for line in lines), lines
    assert not [line for line in lines if "manifest" in line or "[!!] model" in line], lines


def test_still_mode_on_a_real_photo(installed, tmp_path, shared_set):
    root = shared_set("coco_person")
    photo = root / "images" / f"{COCO_PHOTO}.jpg"
    proc = _vbg(installed, tmp_path, "still", str(photo), "-o", "cut.png")
    assert proc.returncode == 0, proc.stderr
    with Image.open(tmp_path / "cut.png") as im:
        rgba = np.asarray(im)
    gt = cv2.imread(str(root / "alpha" / f"{COCO_PHOTO}.png"), cv2.IMREAD_GRAYSCALE)
    assert rgba.shape == (*gt.shape, 4)
    assert iou(rgba[:, :, 3], gt) > 0.7
    proc = _vbg(installed, tmp_path, "still", str(photo), "--background", "studio",
                "-o", "studio.jpg")  # a bundled background by name
    assert proc.returncode == 0, proc.stderr
    assert cv2.imread(str(tmp_path / "studio.jpg")).shape == (*gt.shape, 3)


def test_live_mode_from_a_video_file(installed, tmp_path, shared_set):
    clip = shared_set("davis_parkour") / "clip.mp4"
    proc = _vbg(installed, tmp_path, "--camera", str(clip), "--no-realtime", "--frames", "12",
                "--background", "backgrounds/studio.png", "--output", "live.mp4")
    assert proc.returncode == 0, proc.stderr
    cap = cv2.VideoCapture(str(tmp_path / "live.mp4"))
    frames = 0
    while cap.read()[0]:
        frames += 1
    assert frames == 12


def test_shipped_system_files_equal_configs():
    for name in SYSTEM_FILES:
        assert filecmp.cmp(REPO / "configs" / name, data_path("system", name), shallow=False)
