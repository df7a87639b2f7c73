"""ID photos blend the person's estimated colour F at soft edges, not the old wall's colour."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from vbg.measure import composite
from vbg.still import idphoto
from vbg.still.face import Face
from vbg.still.options import StillOptions

COCO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "coco_person"
HAIR = np.array([30.0, 35.0, 45.0])  # dark hair, BGR
WALL = np.array([215.0, 230.0, 240.0])  # a light wall, BGR
BLUE = (219, 142, 67)  # the ID-photo blue, BGR
FACE = Face((100.0, 100.0, 200.0, 200.0), 1.0, {})  # only used when no matrix is given


def preset(width: int, height: int) -> idphoto.Preset:
    """The passport preset at another size."""
    return dataclasses.replace(StillOptions(id_photo="passport").id_preset(), width=width,
                               height=height)


def soft_head(h: int = 300, w: int = 240) -> tuple[np.ndarray, np.ndarray]:
    """(photo uint8, matte float 0..1): a dark head over a light wall, a 16 px soft edge."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    r = np.hypot((xx - w / 2) / 0.8, yy - h * 0.55)
    alpha = np.clip((90.0 - r) / 16.0 + 0.5, 0.0, 1.0)
    photo = alpha[..., None] * HAIR + (1 - alpha[..., None]) * WALL
    return np.clip(photo + 0.5, 0, 255).astype(np.uint8), alpha


def crop(scale: float, dx: float = 10.0, dy: float = 12.0) -> np.ndarray:
    """A crop matrix (source -> output): a scale and a shift."""
    return np.array([[scale, 0.0, -dx * scale], [0.0, scale, -dy * scale]])


@pytest.mark.parametrize("scale", [1.0, 0.5], ids=["one-to-one", "shrunk"])
def test_soft_edge_blends_the_person_colour_not_the_wall(scale: float) -> None:
    photo, alpha = soft_head()
    matte = np.clip(alpha * 255 + 0.5, 0, 255).astype(np.uint8)
    size = preset(round(220 * scale), round(280 * scale))
    matrix = crop(scale)
    on = idphoto.compose_id_photo(photo, matte, FACE, size, BLUE, matrix, foreground=True)
    off = idphoto.compose_id_photo(photo, matte, FACE, size, BLUE, matrix, foreground=False)
    # The truth: the hair colour itself blended over blue, through the same crop and warp.
    hair = np.empty_like(photo)
    hair[:] = np.round(HAIR).astype(np.uint8)
    truth = idphoto.compose_id_photo(hair, matte, FACE, size, BLUE, matrix).astype(np.float64)
    a = idphoto.compose_id_photo(np.full_like(photo, 255), matte, FACE, size, (0, 0, 0),
                                 matrix)[..., 0]
    band = (a > 25) & (a < 230)
    assert band.sum() > 200
    err_on = np.abs(on.astype(np.float64) - truth)[band].mean()
    err_off = np.abs(off.astype(np.float64) - truth)[band].mean()
    assert err_off > 20  # the wall shows in the old blend's edge ...
    assert err_on < 0.2 * err_off  # ... and hardly at all in the new one
    # Away from the edge (beyond the warp's 4 px kernel) nothing changes: the head keeps its
    # own pixels, the rest is the colour.
    kernel = np.ones((9, 9), np.uint8)
    away = (cv2.erode((a == 255).astype(np.uint8), kernel) > 0) | (a == 0)
    assert away.sum() > 0.5 * a.size
    assert np.array_equal(on[away], off[away])


@pytest.mark.parametrize("scale", [2.0, 1.0, 0.5], ids=["enlarged", "one-to-one", "shrunk"])
def test_foreground_off_is_the_old_compose(scale: float) -> None:
    photo, alpha = soft_head()
    matte = np.clip(alpha * 255 + 0.5, 0, 255).astype(np.uint8)
    size = preset(round(220 * scale), round(280 * scale))
    default = idphoto.compose_id_photo(photo, matte, FACE, size, BLUE, crop(scale))
    off = idphoto.compose_id_photo(photo, matte, FACE, size, BLUE, crop(scale), foreground=False)
    assert np.array_equal(default, off)
    if scale == 1.0:  # a whole-pixel shift: the old blend is round(photo a + colour (1 - a))
        a = matte[12:12 + 280, 10:10 + 220, None].astype(np.float32) / 255
        old = photo[12:12 + 280, 10:10 + 220].astype(np.float32) * a + np.float32(BLUE) * (1 - a)
        assert np.array_equal(off, np.clip(old + 0.5, 0, 255).astype(np.uint8))


def test_hard_matte_leaves_the_crop_as_it_is() -> None:
    photo, alpha = soft_head()
    hard = np.where(alpha >= 0.5, 255, 0).astype(np.uint8)
    assert idphoto.crop_foreground(photo, hard) is photo


def test_pipeline_follows_the_foreground_option(monkeypatch) -> None:
    from vbg.still import pipeline as still

    seen: list[bool] = []
    real = idphoto.compose_id_photo

    def spy(*args, **kwargs):
        seen.append(kwargs.get("foreground", False))
        return real(*args, **kwargs)

    monkeypatch.setattr(idphoto, "compose_id_photo", spy)
    photo, alpha = soft_head()
    faces = [Face((80.0, 90.0, 160.0, 200.0), 1.0,
                  {"right_eye": (100.0, 130.0), "left_eye": (140.0, 130.0),
                   "nose": (120.0, 150.0), "mouth": (120.0, 170.0)})]
    matte = np.clip(alpha * 255 + 0.5, 0, 255).astype(np.uint8)
    for on in (True, False):
        idphoto.make_id_photo(photo, matte, faces, preset(110, 140), BLUE, force=True,
                              foreground=on)
    assert seen == [True, False]
    # StillPipeline passes StillOptions.foreground (default on, --no-foreground off) through.
    source = Path(still.__file__).read_text()
    assert "foreground=self.options.foreground" in source.split("def id_photo_result")[1]


@pytest.mark.skipif(not (COCO / "images").is_dir(), reason="../shared/data/coco_person absent")
def test_real_people_edge_colour_error_drops() -> None:
    """Composite-benchmark samples (real people, known soft alpha and F, on real backgrounds):
    with their true matte, the ID photo's edge-band colour error falls by more than half."""
    samples = composite.build_samples(COCO, limit=2)
    assert samples
    errs: dict[bool, list[float]] = {True: [], False: []}
    for sample in samples:
        ys, xs = np.nonzero(sample.alpha > 0.5)
        top, mid = float(ys.min()), float(xs.mean())
        scale = 1.5
        size = preset(360, 460)
        matrix = np.array([[scale, 0.0, 180 - mid * scale], [0.0, scale, 40 - top * scale]])
        matte = np.clip(sample.alpha * 255 + 0.5, 0, 255).astype(np.uint8)
        truth = np.clip(composite.truth_on_color(sample, BLUE) + 0.5, 0, 255).astype(np.uint8)
        opaque = np.full(matte.shape, 255, np.uint8)
        truth_id = idphoto.compose_id_photo(truth, opaque, FACE, size, BLUE, matrix)
        band_src = np.repeat(sample.band.astype(np.uint8)[..., None] * 255, 3, axis=2)
        band = idphoto.compose_id_photo(band_src, opaque, FACE, size, (0, 0, 0),
                                        matrix)[..., 0] > 127
        assert band.sum() > 500
        for on in (True, False):
            out = idphoto.compose_id_photo(sample.image, matte, FACE, size, BLUE, matrix,
                                           foreground=on)
            errs[on].append(float(np.abs(out.astype(np.float64) - truth_id)[band].mean()))
    assert np.mean(errs[True]) < 0.6 * np.mean(errs[False]), errs
