"""MatteRefiner: buffers, guided edge alignment, matte curve, erode/dilate, feather, real photos."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from vbg.errors import ConfigError
from vbg.matte.refine import DEFAULTS, MatteRefiner, RefineParams, warm_up

DATA = Path(__file__).parents[2] / "shared" / "data"
PLAIN = RefineParams(guided=False, threshold=0.5, contrast=1.0, erode=0, feather=0)  # identity


@pytest.fixture(scope="module", autouse=True)
def compiled() -> None:
    warm_up()


def square_scene(h: int = 240, w: int = 320) -> tuple[np.ndarray, np.ndarray]:
    """A frame with a sharp bright square on a dark background, and its exact mask (0/1)."""
    mask = np.zeros((h, w), np.float32)
    mask[61:181, 83:239] = 1.0  # edges deliberately off the low-res grid
    frame = np.full((h, w, 3), 30, np.uint8)
    frame[mask > 0] = (200, 190, 180)
    return frame, mask


def blurry_lowres(mask: np.ndarray, size: tuple[int, int] = (32, 24)) -> np.ndarray:
    """What a segmenter gives: the mask at low res (10x smaller here) with soft edges."""
    small = cv2.resize(mask, size, interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(small, (0, 0), 0.3)


def test_output_shape_dtype_and_buffer_reuse() -> None:
    frame, mask = square_scene()
    refiner = MatteRefiner()
    first = refiner(frame, blurry_lowres(mask))
    assert first.shape == (240, 320) and first.dtype == np.uint8
    kept = first.copy()
    second = refiner(frame, np.zeros((24, 32), np.float32))
    assert second is first  # the same pre-allocated buffer, overwritten
    assert second.max() == 0 and kept.max() > 0


@pytest.mark.parametrize("params", [DEFAULTS, PLAIN, replace(DEFAULTS, erode=2, feather=3),
                                    replace(PLAIN, erode=-1), replace(PLAIN, feather=2)])
def test_frame_size_change_reallocates(params: RefineParams) -> None:
    refiner = MatteRefiner(params)
    small = refiner(*_scene_with_alpha(120, 160)).copy()
    big = refiner(*_scene_with_alpha(480, 640))
    assert small.shape == (120, 160) and big.shape == (480, 640)
    again = refiner(*_scene_with_alpha(120, 160))
    assert again.shape == (120, 160)
    np.testing.assert_array_equal(again, small)


def test_params_can_change_between_frames() -> None:
    frame, mask = square_scene()
    alpha = blurry_lowres(mask)
    refiner = MatteRefiner(PLAIN)
    refiner(frame, alpha)
    refiner.params = replace(PLAIN, erode=3)
    eroded = refiner(frame, alpha).copy()
    np.testing.assert_array_equal(eroded, MatteRefiner(replace(PLAIN, erode=3))(frame, alpha))
    refiner.params = replace(DEFAULTS, guide_width=100)
    assert refiner(frame, alpha).shape == (240, 320)


def _scene_with_alpha(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    frame, mask = square_scene(h, w)
    return frame, blurry_lowres(mask, (64, 36))


def test_constant_alpha_stays_constant() -> None:
    frame, _ = square_scene()
    refiner = MatteRefiner(DEFAULTS)
    assert np.all(refiner(frame, np.ones((24, 32), np.float32)) == 255)
    assert np.all(refiner(frame, np.zeros((24, 32), np.float32)) == 0)


def test_plain_path_is_bilinear_upsampling() -> None:
    rng = np.random.default_rng(1)
    alpha = rng.random((18, 32)).astype(np.float32)
    frame = np.zeros((90, 160, 3), np.uint8)
    got = MatteRefiner(PLAIN)(frame, alpha).astype(int)
    want = np.round(cv2.resize(alpha, (160, 90), interpolation=cv2.INTER_LINEAR) * 255)
    assert np.abs(got - want).max() <= 1


def edge_error(matte: np.ndarray, mask: np.ndarray, band: int = 12) -> float:
    """Mean |matte - mask| within `band` px of the true edge."""
    edge = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    near = cv2.dilate(edge, np.ones((2 * band + 1, 2 * band + 1), np.uint8)) > 0
    return float(np.abs(matte[near] / 255.0 - mask[near]).mean())


def test_guided_filter_snaps_blurry_alpha_to_the_frame_edge() -> None:
    frame, mask = square_scene()
    alpha = blurry_lowres(mask)
    # One pass moves the edge by about radius/ramp width: the window must span the soft ramp
    # (~12 full-res px = 6 guide px here).
    guided = MatteRefiner(replace(PLAIN, guided=True, radius=6, eps=1e-3, guide_width=160))
    plain = MatteRefiner(PLAIN)
    guided_error = edge_error(guided(frame, alpha), mask)
    plain_error = edge_error(plain(frame, alpha), mask)
    assert guided_error < 0.75 * plain_error, (guided_error, plain_error)


@pytest.mark.parametrize(("alpha", "threshold", "contrast", "want"), [
    (0.6, 0.5, 1.0, 0.6),  # identity
    (0.6, 0.5, 2.0, 0.7),  # steeper around 0.5
    (0.3, 0.4, 3.0, 0.2),  # (0.3 - 0.4) * 3 + 0.5
    (0.5, 0.4, 2.0, 0.7),  # a lower threshold lifts the middle
    (0.9, 0.5, 4.0, 1.0),  # clipped at 1
    (0.1, 0.5, 4.0, 0.0),  # clipped at 0
])
@pytest.mark.parametrize("guided", [False, True])
def test_contrast_curve(alpha: float, threshold: float, contrast: float, want: float,
                        guided: bool) -> None:
    params = RefineParams(guided=guided, threshold=threshold, contrast=contrast)
    frame, _ = square_scene(90, 160)
    out = MatteRefiner(params)(frame, np.full((18, 32), alpha, np.float32))
    assert np.abs(out.astype(int) - round(want * 255)).max() <= 1


def square_side(matte: np.ndarray) -> tuple[int, int]:
    """Height and width of the solid (>= 128) region through the matte's centre."""
    h, w = matte.shape
    return (int(np.count_nonzero(matte[:, w // 2] >= 128)),
            int(np.count_nonzero(matte[h // 2] >= 128)))


def hard_square_alpha() -> tuple[np.ndarray, np.ndarray]:
    """Low-res alpha of an exact square (cells 8..23 x 10..21 of 32x24 = full-res 80..239)."""
    alpha = np.zeros((24, 32), np.float32)
    alpha[6:18, 8:24] = 1.0
    return np.zeros((240, 320, 3), np.uint8), alpha


@pytest.mark.parametrize("pixels", [1, 3, 5])
def test_erode_shrinks_and_dilate_grows_by_n_pixels(pixels: int) -> None:
    frame, alpha = hard_square_alpha()
    sharp = replace(PLAIN, contrast=50.0)
    base_h, base_w = square_side(MatteRefiner(sharp)(frame, alpha))
    eroded = square_side(MatteRefiner(replace(sharp, erode=pixels))(frame, alpha))
    dilated = square_side(MatteRefiner(replace(sharp, erode=-pixels))(frame, alpha))
    assert eroded == (base_h - 2 * pixels, base_w - 2 * pixels)
    assert dilated == (base_h + 2 * pixels, base_w + 2 * pixels)


def test_feather_softens_the_edge_only() -> None:
    frame, alpha = hard_square_alpha()
    sharp = replace(PLAIN, contrast=50.0)
    hard = MatteRefiner(sharp)(frame, alpha).copy()
    soft = MatteRefiner(replace(sharp, feather=6))(frame, alpha)
    partial = lambda m: int(np.count_nonzero((m > 0) & (m < 255)))  # noqa: E731
    assert partial(soft) > 4 * max(partial(hard), 1)
    assert soft[120, 160] == 255 and soft[5, 5] == 0  # far from the edge: unchanged
    assert abs(int(soft.sum(dtype=np.int64)) - int(hard.sum(dtype=np.int64))) < 0.01 * hard.sum()


@pytest.mark.parametrize("guided", [True, False])
@pytest.mark.parametrize("size", [(2, 2), (3, 5), (37, 61), (240, 320)])
def test_one_pass_feather_equals_matte_then_gaussian(guided: bool, size: tuple[int, int]) -> None:
    # feather=1 runs fused into the matte kernel; it must equal the sharp matte + cv2's 3x3.
    rng = np.random.default_rng(size[0] * 7 + size[1])
    frame = rng.integers(0, 256, (*size, 3), np.uint8)
    alpha = rng.random((9, 16)).astype(np.float32)
    params = replace(DEFAULTS, guided=guided)
    fused = MatteRefiner(params)(frame, alpha)
    sharp = MatteRefiner(replace(params, feather=0))(frame, alpha)
    np.testing.assert_array_equal(fused, cv2.GaussianBlur(sharp, (3, 3), 0))


@pytest.mark.parametrize("bad", [dict(radius=0), dict(radius=1.5), dict(eps=0.0),
                                 dict(contrast=0.0), dict(threshold=1.5), dict(feather=-1),
                                 dict(feather=0.5), dict(erode=1.5), dict(guide_width=2)])
def test_bad_params_raise_a_config_error_naming_the_setting(bad: dict) -> None:
    name = next(iter(bad))
    with pytest.raises(ConfigError, match=f"{name}="):
        RefineParams(**bad)


@pytest.mark.skipif(not (DATA / "coco_person" / "images").is_dir(),
                    reason=f"evaluation data not found at {DATA / 'coco_person'}")
def test_default_refiner_on_real_photos_reaches_iou() -> None:
    from vbg.measure.metrics import iou, load_set
    from vbg.segment import new_segmenter

    segmenter = new_segmenter("selfie", provider="cpu")
    refiner = MatteRefiner(DEFAULTS)
    scores = []
    for _, image_path, alpha_path in load_set(DATA / "coco_person"):
        frame = cv2.imread(str(image_path))
        truth = cv2.imread(str(alpha_path), cv2.IMREAD_GRAYSCALE)
        scores.append(iou(refiner(frame, segmenter(frame)), truth))
    assert np.mean(scores) >= 0.70, np.mean(scores)
