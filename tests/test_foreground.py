"""Foreground colour (decontamination): photos and live mode blend F, not the old background."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vbg import backgrounds
from vbg.compose import composite
from vbg.matte import foreground, onepass
from vbg.matte.refine import MatteRefiner, RefineParams

HAIR = np.array([30, 40, 60], np.float64)  # dark hair (BGR)
WALL = np.array([235, 240, 245], np.float64)  # a light wall behind it
NEW = np.array([219, 142, 67], np.float64)  # the new background colour (#438edb)


def _scene(alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(photo of dark hair on a light wall with `alpha` uint8, true F) with texture in F."""
    h, w = alpha.shape
    rng = np.random.default_rng(1)
    fg = np.clip(HAIR + rng.normal(0, 6, (h, w, 3)), 0, 255)
    a = alpha[..., None] / 255.0
    photo = (a * fg + (1 - a) * WALL + 0.5).astype(np.uint8)
    return photo, fg


def _ramp(h: int = 120, w: int = 160, soft: int = 24) -> np.ndarray:
    """Person on the left, a `soft` px wide linear edge, background on the right."""
    x = np.arange(w, dtype=np.float64)
    row = np.clip((w / 2 + soft / 2 - x) / soft, 0, 1)
    return np.repeat((row * 255 + 0.5).astype(np.uint8)[None], h, axis=0)


def _edge_error(result: np.ndarray, fg: np.ndarray, alpha: np.ndarray) -> float:
    """Mean colour error against alpha * F + (1 - alpha) * NEW where 0 < alpha < 255."""
    a = alpha[..., None] / 255.0
    truth = a * fg + (1 - a) * NEW
    soft = (alpha > 0) & (alpha < 255)
    return float(np.abs(result.astype(np.float64) - truth)[soft].mean())


@pytest.mark.parametrize("estimate", [foreground.estimate_photo,
                                      foreground.estimate_blur_fusion])
def test_photo_estimate_removes_the_pale_fringe(estimate) -> None:
    alpha = _ramp()
    photo, fg = _scene(alpha)
    a = alpha[..., None] / 255.0
    old = a * photo + (1 - a) * NEW  # the old path: the photo's own pixel, wall included
    f = estimate(photo, alpha)
    new = a * f + (1 - a) * NEW
    old_err, new_err = _edge_error(old, fg, alpha), _edge_error(new, fg, alpha)
    assert old_err > 20  # the wall shows: a measurable pale fringe
    assert new_err < 0.35 * old_err
    assert f.dtype == np.uint8 and f.shape == photo.shape
    sure = alpha == 255
    assert np.array_equal(f[sure], photo[sure])  # person pixels are kept as they are


def test_cutout_carries_f_in_its_colour_channels() -> None:
    alpha = _ramp()
    photo, fg = _scene(alpha)
    comp = composite.Compositor(backgrounds.TransparentBackground())
    f = foreground.estimate_photo(photo, alpha)
    bgra = comp(photo, alpha, fg=f).copy()  # the buffer is reused by the next call
    assert np.array_equal(bgra[..., 3], alpha)
    assert np.array_equal(bgra[..., :3], f)
    old = comp(photo, alpha).copy()
    a = alpha[..., None] / 255.0
    err_old = _edge_error(a * old[..., :3] + (1 - a) * NEW, fg, alpha)
    err_new = _edge_error(a * bgra[..., :3] + (1 - a) * NEW, fg, alpha)
    assert err_new < 0.35 * err_old


def _live_case(size: tuple[int, int] = (180, 320)) -> tuple:
    """A frame whose true matte is what the refiner draws (guided off: no dependence on the
    frame), so the true F and composite are known exactly."""
    h, w = size
    yy, xx = np.mgrid[0:h // 2, 0:w // 2]  # a grid of half the frame (live: the 320 px guide)
    radius = np.hypot(yy - h // 4, xx - w // 4)
    low = np.clip((h / 5 - radius) / 8.0, 0, 1).astype(np.float32)  # a person, 8-cell soft edge
    refiner = MatteRefiner(RefineParams(guided=False, contrast=1.0, feather=1))
    blank = np.zeros((h, w, 3), np.uint8)
    alpha = refiner(blank, low).copy()
    photo, fg = _scene(alpha)
    fields = refiner.fields(photo, low)
    return photo, fg, alpha, fields


@pytest.mark.parametrize("i420", [False, True])
def test_live_render_blends_f_at_the_edges(i420: bool) -> None:
    photo, fg, alpha, fields = _live_case()
    background = backgrounds.ColorBackground(tuple(int(c) for c in NEW))
    plain = composite.Compositor(background).render(photo, fields).copy()
    planes = np.zeros((photo.shape[0] * 3 // 2, photo.shape[1]), np.uint8) if i420 else None
    matte = np.empty(alpha.shape, np.uint8)
    fixed = composite.Compositor(background, foreground=True).render(
        photo, fields, matte=matte, i420=planes)
    assert np.array_equal(matte, alpha)
    old_err, new_err = _edge_error(plain, fg, alpha), _edge_error(fixed, fg, alpha)
    assert old_err > 15
    assert new_err < 0.5 * old_err
    hard = (alpha == 0) | (alpha == 255)
    assert np.array_equal(fixed[hard], plain[hard])  # only the soft edge changes
    if i420:
        want = cv2.cvtColor(fixed, cv2.COLOR_BGR2YUV_I420)
        assert np.abs(planes.astype(int) - want).max() <= 1


def test_live_decontaminator_leaves_a_plain_background_alone() -> None:
    """Where the frame already is the person's colour, F = I: nothing changes."""
    photo = np.full((90, 160, 3), 80, np.uint8)
    low = np.zeros((9, 16), np.float32)
    low[2:7, 4:12] = 1.0
    refiner = MatteRefiner(RefineParams(guided=False))
    fields = refiner.fields(photo, low)
    background = backgrounds.ColorBackground((200, 10, 10))
    plain = composite.Compositor(background).render(photo, fields).copy()
    fixed = composite.Compositor(background, foreground=True).render(photo, fields)
    assert np.abs(fixed.astype(int) - plain).max() <= 1


def test_warm_up_runs_the_kernel() -> None:
    foreground.warm_up()
    assert onepass.EDGE == 1  # the kernel's edge class


def test_live_blend_with_a_full_res_matte_blends_f_too() -> None:
    """Live with erode or a wide feather composites a full-res matte: the same correction."""
    photo, fg, alpha, _ = _live_case()
    background = backgrounds.ColorBackground(tuple(int(c) for c in NEW))
    plain = composite.Compositor(background)(photo, alpha).copy()
    fixed = composite.Compositor(background, foreground=True)(photo, alpha)
    old_err, new_err = _edge_error(plain, fg, alpha), _edge_error(fixed, fg, alpha)
    assert old_err > 15 and new_err < 0.5 * old_err
    still = composite.Compositor(background, foreground=True)(photo, alpha, fg=photo)
    assert np.array_equal(still, plain)  # photos pass their own F: no second correction
