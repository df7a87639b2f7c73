"""Matte metrics against hand-computed small cases, and the evaluation-set loader."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from vbg.errors import ImageError, VbgError
from vbg.measure.metrics import dtssd, iou, load_set, mad


def test_iou_hand_computed() -> None:
    pred = np.array([[0.9, 0.6, 0.2], [0.1, 0.5, 0.0]])
    gt = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    # pred >= .5 at (0,0) (0,1) (1,1); gt at (0,0) (0,2) (1,1): 2 shared, 4 in the union
    assert iou(pred, gt) == pytest.approx(0.5)
    # thr 0.7 keeps only (0,0): 1 shared, union (0,0) (0,2) (1,1) = 3
    assert iou(pred, gt, thr=0.7) == pytest.approx(1 / 3)


def test_iou_accepts_uint8_and_empty_union() -> None:
    pred = np.array([[255, 128], [127, 0]], np.uint8)  # 128/255 >= .5, 127/255 < .5
    gt = np.array([[255, 0], [255, 0]], np.uint8)
    assert iou(pred, gt) == pytest.approx(1 / 3)
    zeros = np.zeros((4, 4), np.uint8)
    assert iou(zeros, zeros) == 1.0
    assert iou(zeros, np.full((4, 4), 255, np.uint8)) == 0.0


def test_mad_hand_computed_and_uint8() -> None:
    pred = np.array([[0.5, 1.0], [0.0, 0.25]])
    gt = np.array([[1.0, 1.0], [0.0, 0.0]])
    assert mad(pred, gt) == pytest.approx((0.5 + 0.25) / 4 * 1000)
    pred8 = np.array([[51, 255]], np.uint8)  # 0.2, 1.0
    gt8 = np.array([[0, 0]], np.uint8)
    assert mad(pred8, gt8) == pytest.approx((0.2 + 1.0) / 2 * 1000)


def test_metrics_reject_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="shape"):
        mad(np.zeros((2, 2)), np.zeros((2, 3)))


def test_dtssd_hand_computed() -> None:
    g = [np.zeros((2, 2)), np.zeros((2, 2)), np.zeros((2, 2))]
    p0 = np.zeros((2, 2))
    p1 = np.array([[0.4, 0.0], [0.0, 0.0]])  # step 1 error: sqrt(0.16 / 4) = 0.2
    p2 = np.array([[0.4, 0.0], [0.0, 0.6]])  # step 2 error: sqrt(0.36 / 4) = 0.3
    assert dtssd([p0, p1, p2], g) == pytest.approx((0.2 + 0.3) / 2 * 100)


def test_dtssd_ignores_motion_shared_with_ground_truth() -> None:
    a = np.zeros((3, 3))
    b = np.zeros((3, 3))
    b[1, 1] = 1.0
    assert dtssd([a, b, a], [a, b, a]) == 0.0
    # the same change, lagging one frame behind: each step misses a 1.0 change on 1 of 9 pixels
    assert dtssd([a, a, b], [a, b, b]) == pytest.approx((1 / 3 + 1 / 3) / 2 * 100)
    assert math.isclose(dtssd([a, a], [a, a]), 0.0)


def test_dtssd_needs_two_matching_frames() -> None:
    with pytest.raises(ValueError):
        dtssd([np.zeros((2, 2))], [np.zeros((2, 2))])
    with pytest.raises(ValueError):
        dtssd([np.zeros((2, 2))] * 3, [np.zeros((2, 2))] * 2)


def test_load_set_pairs_stems_sorted(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "alpha").mkdir()
    for name in ("b.jpg", "a.png", "c.jpg", "notes.txt"):
        (tmp_path / "images" / name).write_bytes(b"x")
    for name in ("a.png", "b.png", "d.png"):
        (tmp_path / "alpha" / name).write_bytes(b"x")
    got = load_set(tmp_path)
    assert [stem for stem, _, _ in got] == ["a", "b"]
    assert got[1] == ("b", tmp_path / "images" / "b.jpg", tmp_path / "alpha" / "b.png")


def test_load_set_errors_name_the_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=str(tmp_path)):
        load_set(tmp_path)
    (tmp_path / "images").mkdir()
    (tmp_path / "alpha").mkdir()
    with pytest.raises(VbgError, match="same stem"):
        load_set(tmp_path)
