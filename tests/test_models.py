"""Model manifest checks, the session factory and the segmenter registry."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from vbg import models
from vbg.errors import ModelError, VbgError
from vbg.models.session import new_session, provider_label
from vbg.segment import Segmenter, available, new_segmenter


@pytest.fixture
def models_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A writable copy of models/ that VBG_MODELS_DIR points at."""
    dst = tmp_path / "models"
    shutil.copytree(models.REPO_MODELS_DIR, dst)
    monkeypatch.setenv("VBG_MODELS_DIR", str(dst))
    models.manifest.cache_clear()
    yield dst
    models.manifest.cache_clear()


def test_manifest_matches_files() -> None:
    for name, entry in models.manifest().items():
        path = models.verified_path(name)
        assert path.name == entry["file"]
        assert models.sha256_file(path) == entry["sha256"]


def test_truncated_model_is_refused_with_both_hashes(models_copy: Path) -> None:
    entry = json.loads((models_copy / "manifest.json").read_text())["selfie-landscape"]
    path = models_copy / entry["file"]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError) as err:
        new_segmenter("selfie-landscape", provider="cpu")
    msg = str(err.value)
    assert str(path) in msg
    assert entry["sha256"] in msg
    assert models.sha256_file(path) in msg
    assert "git checkout" in msg


def test_flipped_byte_is_refused(models_copy: Path) -> None:
    entry = json.loads((models_copy / "manifest.json").read_text())["selfie"]
    path = models_copy / entry["file"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="corrupt"):
        models.verified_path("selfie")


def test_missing_model_names_the_file(models_copy: Path) -> None:
    (models_copy / "selfie_segmentation.onnx").unlink()
    with pytest.raises(ModelError, match=r"selfie_segmentation\.onnx is missing"):
        models.verified_path("selfie")


def test_unknown_model_lists_choices() -> None:
    with pytest.raises(ModelError, match="selfie-landscape"):
        new_segmenter("nope")


def test_unknown_provider() -> None:
    with pytest.raises(VbgError, match="provider"):
        new_session(models.verified_path("selfie"), provider="tpu")


def test_auto_provider_reports_what_really_runs() -> None:
    session = new_session(models.verified_path("selfie"), provider="auto")
    assert provider_label(session) in ("cpu", "cuda")
    assert session.get_providers()[0] in ("CPUExecutionProvider", "CUDAExecutionProvider")


def test_cuda_without_working_cuda_is_a_clear_error() -> None:
    session = new_session(models.verified_path("selfie"), provider="auto")
    if provider_label(session) == "cuda":
        pytest.skip("CUDA really works on this machine")
    with pytest.raises(VbgError, match="CUDA does not really work"):
        new_session(models.verified_path("selfie"), provider="cuda")


@pytest.mark.parametrize("name,size", [("selfie", (256, 256)), ("selfie-landscape", (256, 144))])
def test_segmenter_contract(name: str, size: tuple[int, int]) -> None:
    seg = new_segmenter(name, provider="cpu", threads=1)
    assert isinstance(seg, Segmenter)
    assert seg.name == name and seg.input_size == size and seg.provider == "cpu"
    rng = np.random.default_rng(1)
    for shape in [(480, 854, 3), (1080, 1920, 3), (31, 17, 3)]:
        alpha = seg(rng.integers(0, 256, shape, dtype=np.uint8))
        assert alpha.shape == (size[1], size[0]) and alpha.dtype == np.float32
        assert float(alpha.min()) >= 0.0 and float(alpha.max()) <= 1.0
    seg.reset()
    assert {"selfie", "selfie-landscape"} <= set(available())


def test_segmenter_finds_a_person(shared_data: Path) -> None:
    import cv2

    seg = new_segmenter("selfie-landscape", provider="cpu")
    frame = cv2.imread(str(shared_data / "davis_parkour" / "images" / "00000.jpg"))
    gt = cv2.imread(str(shared_data / "davis_parkour" / "alpha" / "00000.png"), 0)
    alpha = cv2.resize(seg(frame), (gt.shape[1], gt.shape[0]))
    inside = alpha[gt > 127].mean()
    outside = alpha[gt <= 127].mean()
    assert inside > 0.5 > outside


def test_models_remove_deletes_the_downloaded_rvm_only(tmp_path: Path, monkeypatch,
                                                       capsys) -> None:
    from vbg.cli import main
    from vbg.segment.rvm import RVM_FILE, rvm_installed

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = models.user_models_dir()
    folder.mkdir(parents=True)
    (folder / RVM_FILE).write_bytes(b"weights")
    (folder / "rvm_LICENSE.txt").write_text("GPL-3.0")
    (folder / "other.onnx").write_bytes(b"not ours to remove")
    assert rvm_installed()
    assert main(["models", "remove", "rvm"]) == 0
    assert "removed rvm" in capsys.readouterr().out
    assert not rvm_installed() and not (folder / "rvm_LICENSE.txt").exists()
    assert (folder / "other.onnx").exists()
    assert main(["models", "remove", "rvm"]) == 0  # again: says so, nothing else
    assert "not installed" in capsys.readouterr().out
    assert main(["models", "remove", "selfie"]) == 2
    err = capsys.readouterr().err
    assert "bundled models are part of vbg" in err and err.count("\n") == 1
    assert all(p.is_file() for p in models.REPO_MODELS_DIR.glob("*.onnx"))


@pytest.mark.parametrize("argv, words", [
    (["models", "pull"], "(name one)"), (["models", "remove"], "(name one)"),
    (["models", "pull", "foo"], "'foo' is not one of them"),
    (["models", "remove", "selfie"], "'selfie': the bundled models are part of vbg")])
def test_models_without_a_good_name_say_which_names_work(argv, words, capsys) -> None:
    from vbg.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert words in err and "e.g. `vbg models" in err and "None" not in err
