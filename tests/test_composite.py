"""Compositing kernels against a float64 reference, and the Compositor with every background."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from vbg.backgrounds import (
    BlurBackground,
    ColorBackground,
    Enlarger,
    ImageBackground,
    TransparentBackground,
    VideoBackground,
)
from vbg.compose.composite import Compositor, blend, blend_color, blend_enlarged, to_bgra, warm_up

SIZES = [(1, 1), (3, 5), (17, 31), (97, 131), (240, 320)]


def reference_blend(fg: np.ndarray, bg: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """round(a/255*fg + (1-a/255)*bg) in float64."""
    a = alpha.astype(np.float64)[..., None] / 255
    return np.round(a * fg.astype(np.float64) + (1 - a) * bg.astype(np.float64))


def random_inputs(rng: np.random.Generator, height: int, width: int):
    """Random fg, bg and an alpha with a share of exact 0 and 255."""
    fg = rng.integers(0, 256, (height, width, 3), np.uint8)
    bg = rng.integers(0, 256, (height, width, 3), np.uint8)
    alpha = rng.integers(0, 256, (height, width), np.uint8)
    alpha[rng.random((height, width)) < 0.2] = 0
    alpha[rng.random((height, width)) < 0.2] = 255
    return fg, bg, alpha


@pytest.fixture(scope="module", autouse=True)
def compiled() -> None:
    warm_up()


def max_error(result: np.ndarray, reference: np.ndarray) -> float:
    return float(np.abs(result.astype(np.float64) - reference).max())


@pytest.mark.parametrize("height,width", SIZES)
def test_blend_matches_float_reference(height: int, width: int) -> None:
    fg, bg, alpha = random_inputs(np.random.default_rng(height * 1000 + width), height, width)
    out = np.empty_like(fg)
    assert blend(fg, bg, alpha, out) is out
    assert max_error(out, reference_blend(fg, bg, alpha)) <= 1


@pytest.mark.parametrize("height,width", SIZES)
@pytest.mark.parametrize("shrink", [1, 4, 9])
def test_blend_enlarged_matches_float_reference(height: int, width: int, shrink: int) -> None:
    fg, _, alpha = random_inputs(np.random.default_rng(height + width + shrink), height, width)
    small = np.random.default_rng(shrink).integers(
        0, 256, (max(1, height // shrink), max(1, width // shrink), 3), np.uint8)
    out = np.empty_like(fg)
    assert blend_enlarged(fg, small, alpha, out, Enlarger()) is out
    full = Enlarger()(small, (width, height))  # the background it stands for
    assert max_error(out, reference_blend(fg, full, alpha)) <= 1
    want = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    assert np.abs(full.astype(int) - want).max() <= 1  # bilinear, as cv2 enlarges


def test_blend_is_exact_on_every_value_pair() -> None:
    # Every (alpha, fg) pair with bg at both extremes and in the middle: 0 LSB expected.
    alpha, fg = np.meshgrid(np.arange(256, dtype=np.uint8), np.arange(256, dtype=np.uint8))
    fg3 = np.repeat(fg[..., None], 3, axis=2)
    for value in (0, 77, 255):
        bg = np.full_like(fg3, value)
        out = blend(fg3, bg, alpha, np.empty_like(fg3))
        assert max_error(out, reference_blend(fg3, bg, alpha)) == 0


def test_blend_alpha_extremes_select_one_input() -> None:
    fg, bg, _ = random_inputs(np.random.default_rng(1), 9, 11)
    out = np.empty_like(fg)
    np.testing.assert_array_equal(blend(fg, bg, np.full((9, 11), 255, np.uint8), out), fg)
    np.testing.assert_array_equal(blend(fg, bg, np.zeros((9, 11), np.uint8), out), bg)


@pytest.mark.parametrize("height,width", SIZES)
def test_blend_color_matches_float_reference(height: int, width: int) -> None:
    fg, _, alpha = random_inputs(np.random.default_rng(width), height, width)
    color = np.array([255, 0, 97], np.uint8)
    out = np.empty_like(fg)
    assert blend_color(fg, color, alpha, out) is out
    expected = reference_blend(fg, np.broadcast_to(color, fg.shape), alpha)
    assert max_error(out, expected) <= 1


@pytest.mark.parametrize("height,width", SIZES)
def test_to_bgra_is_frame_plus_matte(height: int, width: int) -> None:
    fg, _, alpha = random_inputs(np.random.default_rng(7), height, width)
    out = np.empty((height, width, 4), np.uint8)
    assert to_bgra(fg, alpha, out) is out
    np.testing.assert_array_equal(out[..., :3], fg)
    np.testing.assert_array_equal(out[..., 3], alpha)


def test_non_contiguous_inputs_are_handled() -> None:
    fg, bg, alpha = random_inputs(np.random.default_rng(3), 40, 60)
    fg_view, bg_view, alpha_view = fg[::2, ::2], bg[::2, ::2], alpha[::2, ::2]
    assert not fg_view.flags.c_contiguous
    out = np.empty((20, 30, 3), np.uint8)
    blend(fg_view, bg_view, alpha_view, out)
    assert max_error(out, reference_blend(fg_view, bg_view, alpha_view)) <= 1
    blend_color(fg_view, np.array([1, 2, 3], np.uint8), alpha_view, out)
    to_bgra(fg_view, alpha_view, np.empty((20, 30, 4), np.uint8))


def test_read_only_inputs_are_accepted() -> None:
    fg, bg, alpha = random_inputs(np.random.default_rng(9), 6, 7)
    for array in (fg, bg, alpha):
        array.flags.writeable = False
    out = blend(fg, bg, alpha, np.empty((6, 7, 3), np.uint8))
    assert max_error(out, reference_blend(fg, bg, alpha)) == 0


def test_bad_output_and_shapes_are_rejected() -> None:
    fg, bg, alpha = random_inputs(np.random.default_rng(4), 8, 10)
    with pytest.raises(ValueError, match="out"):
        blend(fg, bg, alpha, np.empty((16, 10, 3), np.uint8)[::2])
    with pytest.raises(ValueError, match="out"):
        blend(fg, bg, alpha, np.empty((8, 10, 3), np.float32))
    with pytest.raises(ValueError, match="bg"):
        blend(fg, bg[:4], alpha, np.empty_like(fg))
    with pytest.raises(ValueError, match="fg"):
        to_bgra(fg.astype(np.float32), alpha, np.empty((8, 10, 4), np.uint8))


@pytest.fixture
def scene_image(tmp_path: Path) -> Path:
    path = tmp_path / "scene.png"
    image = np.random.default_rng(5).integers(0, 256, (50, 80, 3), np.uint8)
    assert cv2.imwrite(str(path), image)
    return path


@pytest.fixture
def scene_video(tmp_path: Path) -> Path:
    path = tmp_path / "scene.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    for value in (0, 128, 255):
        writer.write(np.full((48, 64, 3), value, np.uint8))
    writer.release()
    return path


def backgrounds(image: Path, video: Path) -> dict[str, object]:
    return {
        "image": ImageBackground(image),
        "video": VideoBackground(video),
        "color": ColorBackground("#102030"),
        "blur": BlurBackground(9),
        "transparent": TransparentBackground(),
    }


@pytest.mark.parametrize("kind", ["image", "video", "color", "blur", "transparent"])
def test_compositor_output_per_background(kind: str, scene_image: Path, scene_video: Path) -> None:
    background = backgrounds(scene_image, scene_video)[kind]
    compositor = Compositor(background)
    channels = 4 if kind == "transparent" else 3
    assert compositor.channels == channels
    frame, _, alpha = random_inputs(np.random.default_rng(6), 72, 96)
    try:
        out = compositor(frame, alpha)
        assert out.shape == (72, 96, channels) and out.dtype == np.uint8
        if kind == "transparent":
            np.testing.assert_array_equal(out[..., 3], alpha)
        elif kind == "color":
            color = np.broadcast_to([0x30, 0x20, 0x10], frame.shape)
            expected = reference_blend(frame, color, alpha)
            assert max_error(out, expected) <= 1
        else:
            full = getattr(background, "full", background.prepare)  # blur: enlarged, as blended
            bg = full(frame, alpha)
            assert max_error(out, reference_blend(frame, bg, alpha)) <= 1
        assert compositor(frame, alpha) is out  # buffer reused
        small = compositor(frame[:41, :53].copy(), alpha[:41, :53].copy())  # odd size
        assert small.shape == (41, 53, channels)
        assert small is not out
    finally:
        background.close()


def test_compositor_background_swap(scene_image: Path) -> None:
    compositor = Compositor(ColorBackground("black"))
    frame, _, alpha = random_inputs(np.random.default_rng(8), 30, 40)
    out = compositor(frame, alpha)
    np.testing.assert_array_equal(out[alpha == 255], frame[alpha == 255])
    np.testing.assert_array_equal(out[alpha == 0], 0)
    compositor.background = TransparentBackground()
    assert compositor.channels == 4
    assert compositor(frame, alpha).shape == (30, 40, 4)
    image = ImageBackground(scene_image)
    compositor.background = image
    assert compositor.background is image
    out = compositor(frame, alpha)
    bg = image.prepare(frame, alpha)
    np.testing.assert_array_equal(out[alpha == 0], bg[alpha == 0])


def test_still_scene_reuses_the_blurred_background() -> None:
    from vbg.backgrounds import BlurBackground
    from vbg.compose.composite import Compositor

    rng = np.random.default_rng(5)
    frame = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    alpha = np.zeros((64, 96), np.uint8)
    comp = Compositor(BlurBackground(9))
    first = comp(frame, alpha).copy()
    other = np.zeros_like(frame)  # a very different frame: a fresh blur would change
    reused = comp(other, alpha, same_scene=True).copy()
    np.testing.assert_array_equal(reused, first)  # background kept, alpha 0 shows only it
    fresh = comp(other, alpha)
    assert fresh.max() == 0
