"""The zoom pass: both crop passes from one resize equal two resizes and an average."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vbg.segment import new_segmenter
from vbg.segment.zoom import TrackedSegmenter, person_box


@pytest.fixture(scope="module")
def networks():
    return new_segmenter("selfie-landscape", "cpu"), new_segmenter("selfie", "cpu")


@pytest.fixture
def frame(shared_set) -> np.ndarray:
    path = shared_set("davis_parkour") / "images" / "00040.jpg"
    return np.ascontiguousarray(cv2.imread(str(path)))


def test_both_ways_from_one_resize_equals_two_resizes(networks, frame: np.ndarray) -> None:
    inner, square = networks
    seg = TrackedSegmenter(inner, zoom=square)
    seg(frame)  # tracks the runner: the next frame zooms
    seg(frame)
    assert seg.zoomed == 1
    crop = seg._crop
    assert crop is not None
    x0, y0, x1, y1 = crop
    image = frame[y0:y1, x0:x1]
    size = (120, 200)
    got = np.empty((size[1], size[0]), np.float32)
    seg._both_ways(image, size, got)
    plain = cv2.resize(square(image), size, interpolation=cv2.INTER_LINEAR)
    mirrored = cv2.resize(square(image, mirror=True), size, interpolation=cv2.INTER_LINEAR)
    want = 0.5 * (plain + mirrored[:, ::-1])
    assert np.abs(got - want).max() < 0.02
    assert np.abs(got - plain).max() > 0.05  # the mirrored pass really counts


def test_the_zoomed_matte_holds_the_runner(networks, frame: np.ndarray, shared_set) -> None:
    inner, square = networks
    gt = cv2.imread(str(shared_set("davis_parkour") / "alpha" / "00040.png"),
                    cv2.IMREAD_GRAYSCALE) > 127
    seg = TrackedSegmenter(inner, zoom=square)
    for _ in range(3):
        low = seg(frame)
    alpha = cv2.resize(low, (frame.shape[1], frame.shape[0])) > 0.5
    iou = (alpha & gt).sum() / (alpha | gt).sum()
    assert seg.zoomed >= 2 and iou > 0.8
    box = person_box(gt.astype(np.float32))
    assert box is not None and box[2] - box[0] < frame.shape[1] * 0.6


def test_person_box_of_nothing_is_none() -> None:
    assert person_box(np.zeros((10, 10), np.float32)) is None
    alpha = np.zeros((10, 20), np.float32)
    alpha[2:5, 3:9] = 1
    assert person_box(alpha) == (3, 2, 9, 5)


