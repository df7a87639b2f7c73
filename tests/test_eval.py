"""`vbg eval`: sets found, sequences told from stills, and scores that agree with an
independent computation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from vbg.cli import main
from vbg.measure.eval import find_sets, is_sequence


def _subset(src: Path, dst: Path, stems: list[str]) -> Path:
    (dst / "images").mkdir(parents=True)
    (dst / "alpha").mkdir()
    for stem in stems:
        shutil.copy(src / "images" / f"{stem}.jpg", dst / "images")
        shutil.copy(src / "alpha" / f"{stem}.png", dst / "alpha")
    return dst


def test_sequence_detection(tmp_path: Path) -> None:
    def items(stems):
        return [(s, tmp_path / s, tmp_path / s) for s in stems]

    assert is_sequence(items(["00000", "00001", "00002"]))
    assert not is_sequence(items(["00000", "00002"]))
    assert not is_sequence(items(["000000000036", "000000000110"]))
    assert not is_sequence(items(["a", "b"]))


def test_no_sets_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["eval", "--data", str(tmp_path)]) == 2
    assert "no evaluation set" in capsys.readouterr().err


def test_json_agrees_with_an_independent_scorer(shared_set, tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    davis = shared_set("davis_parkour")
    data = tmp_path / "data"
    _subset(davis, data / "clip", [f"{k:05d}" for k in range(6)])
    assert [p.name for p in find_sets(data)] == ["clip"]
    assert main(["eval", "--data", str(data), "--config", "raw", "--config", "live",
                 "--provider", "cpu", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = {r["config"]: r for r in report["results"]}
    assert rows["raw"]["kind"] == "sequence" and rows["raw"]["frames"] == 6
    assert rows["live"]["dtssd"] is not None

    # Independent scorer: the bundled ONNX model through onnxruntime directly, plain numpy IoU.
    import onnxruntime as ort

    sess = ort.InferenceSession("vbg/models/bundled/selfie_segmentation_landscape.onnx",
                                providers=["CPUExecutionProvider"])
    ious = []
    for k in range(6):
        frame = cv2.imread(str(davis / "images" / f"{k:05d}.jpg"))
        gt = cv2.imread(str(davis / "alpha" / f"{k:05d}.png"), cv2.IMREAD_GRAYSCALE) >= 128
        x = cv2.resize(frame, (256, 144), interpolation=cv2.INTER_CUBIC)
        x = cv2.cvtColor(x, cv2.COLOR_BGR2RGB)[None].astype(np.float32) / 255
        prob = sess.run(None, {sess.get_inputs()[0].name: x})[0][0, :, :, 0]
        pred = cv2.resize(prob, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_LINEAR)
        pred = (np.clip(pred, 0, 1) * 255 + 0.5).astype(np.uint8) >= 128
        ious.append((pred & gt).sum() / (pred | gt).sum())
    assert abs(rows["raw"]["iou"] - float(np.mean(ious))) < 0.01
