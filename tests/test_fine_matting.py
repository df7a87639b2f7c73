"""Fine matting: the network matte's edge band re-solved by closed-form matting."""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import pytest

from vbg.cli import still as still_cli
from vbg.errors import ConfigError
from vbg.matte import fine
from vbg.still.options import StillOptions


def _hairy_scene(h: int = 400, w: int = 480) -> tuple[np.ndarray, np.ndarray]:
    """(photo, true alpha float) of a dark head with a soft edge and thin strands sticking out
    of it, on a light, smoothly varying wall."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    r = np.hypot(yy - h / 2, xx - w / 2)
    alpha = np.clip((120 - r) / 4.0, 0, 1)
    rng = np.random.default_rng(3)
    for angle in rng.uniform(0, 2 * np.pi, 14):  # strands: 1 px lines, half opaque
        strand = np.zeros((h, w), np.uint8)
        start = (int(w / 2 + 115 * np.cos(angle)), int(h / 2 + 115 * np.sin(angle)))
        end = (int(w / 2 + 130 * np.cos(angle)), int(h / 2 + 130 * np.sin(angle)))
        cv2.line(strand, start, end, 255, 1, cv2.LINE_AA)
        alpha = np.maximum(alpha, 0.7 * strand / 255.0)
    fg = np.stack([np.full((h, w), 25.0), np.full((h, w), 35.0), np.full((h, w), 55.0)], -1)
    bg = np.stack([180 + 40 * xx / w, 200 + 30 * yy / h, np.full((h, w), 230.0)], -1)
    a = alpha[..., None]
    return (a * fg + (1 - a) * bg + 0.5).astype(np.uint8), alpha


def _network_like(alpha: np.ndarray) -> np.ndarray:
    """What a segmentation network gives: the outline of the hairstyle, smooth, no strands."""
    core = cv2.morphologyEx((alpha > 0.95).astype(np.uint8), cv2.MORPH_OPEN, np.ones((5, 5)))
    soft = cv2.GaussianBlur(core.astype(np.float32), (0, 0), 3.0)
    return (soft * 255 + 0.5).astype(np.uint8)


def _band_sad(pred: np.ndarray, alpha: np.ndarray) -> float:
    band = cv2.dilate(((alpha > 0) & (alpha < 1)).astype(np.uint8), np.ones((7, 7))) > 0
    return float(np.abs(pred / 255.0 - alpha)[band].sum())


def test_fine_matting_recovers_strands_the_network_misses() -> None:
    photo, alpha = _hairy_scene()
    network = _network_like(alpha)
    refined = fine.refine(photo, network)
    assert refined.dtype == np.uint8 and refined.shape == network.shape
    before, after = _band_sad(network, alpha), _band_sad(refined, alpha)
    assert after < 0.5 * before
    strands = alpha > 0.3  # strand pixels the network lost, within the band fine matting solves
    strands &= cv2.dilate((network > 10).astype(np.uint8), np.ones((3, 3))) == 0
    strands &= fine.trimap(network, fine.FineParams()) == 0.5
    assert strands.sum() > 50
    assert network[strands].mean() < 0.05 * 255 * alpha[strands].mean()
    assert refined[strands].mean() > 0.25 * 255 * alpha[strands].mean()


def test_trimap_band_widths_follow_the_photo_size() -> None:
    matte = np.zeros((300, 400), np.uint8)
    matte[100:200, 150:250] = 255
    params = fine.FineParams(inner=0.01, outer=0.02)
    tri = fine.trimap(matte, params)
    diag = np.hypot(300, 400)  # 500: inner 5 px, outer 10 px
    assert tri[150, 200] == 1.0 and tri[10, 10] == 0.0
    assert tri[150, 150 + round(0.01 * diag) - 1] == 0.5  # inside, within the band
    assert tri[150, 150 + round(0.01 * diag) + 1] == 1.0
    assert tri[150, 150 - round(0.02 * diag)] == 0.5
    assert tri[150, 150 - round(0.02 * diag) - 2] == 0.0


def test_large_photos_are_solved_shrunken_and_keep_their_size() -> None:
    photo, alpha = _hairy_scene()
    network = _network_like(alpha)
    small = fine.refine(photo, network, fine.FineParams(max_pixels=50_000))
    assert small.shape == network.shape and small.dtype == np.uint8
    assert _band_sad(small, alpha) < _band_sad(network, alpha)
    assert np.array_equal(small[fine.trimap(network, fine.FineParams()) == 1.0], np.full(
        int((fine.trimap(network, fine.FineParams()) == 1.0).sum()), 255, np.uint8))


def test_matting_option_and_flags() -> None:
    assert StillOptions().matting == "fine" and StillOptions().foreground is True
    with pytest.raises(ConfigError, match="--matting"):
        StillOptions(matting="best")
    p = argparse.ArgumentParser()
    still_cli.add_arguments(p)
    args = p.parse_args(["in.jpg", "-o", "out.png", "--matting", "fast", "--no-foreground"])
    options = still_cli.options_from_args(args)
    assert options.matting == "fast" and options.foreground is False
    with pytest.raises(ValueError, match="method"):
        fine.refine(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8),
                    fine.FineParams(method="magic"))


class _DiskSegmenter:
    """A stand-in network: a smooth disk (what the still pipeline refines), any size."""

    name = "disk"

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w]
        r = np.hypot(yy - h / 2, xx - w / 2) / min(h, w)
        return np.clip((0.3 - r) * 20, 0, 1).astype(np.float32)


@pytest.mark.parametrize("matting", ["fast", "fine"])
def test_erode_and_feather_keep_their_meaning_with_fine_matting(matting: str) -> None:
    from vbg.still.pipeline import StillPipeline

    photo, _ = _hairy_scene()
    areas, soft = {}, {}
    for erode, feather in ((0, 0), (6, 0), (0, 4)):
        pipe = StillPipeline(StillOptions(matting=matting, erode=erode, feather=feather),
                             segmenter=_DiskSegmenter())
        matte = pipe.matte(photo, None).copy()
        areas[erode, feather] = matte.sum() / 255.0
        soft[erode, feather] = int(((matte > 5) & (matte < 250)).sum())
    perimeter = 2 * np.pi * 0.3 * min(photo.shape[:2])
    shrink = (areas[0, 0] - areas[6, 0]) / perimeter  # px the outline moved in
    assert 4.5 < shrink < 7.5
    assert soft[0, 4] > 1.5 * soft[0, 0]  # feathering softens the edge


def test_outward_feathering_keeps_the_person_opaque() -> None:
    """`--erode -N --feather N` (live and stills): the soft rim lies outside the person."""
    from vbg.matte.refine import MatteRefiner, RefineParams

    low = np.zeros((90, 160), np.float32)
    low[20:70, 50:110] = 1.0
    frame = np.zeros((180, 320, 3), np.uint8)
    sharp = MatteRefiner(RefineParams(guided=False, feather=0))(frame, low).copy()
    outward = MatteRefiner(RefineParams(guided=False, erode=-4, feather=4))(frame, low)
    both = MatteRefiner(RefineParams(guided=False, feather=4))(frame, low)
    inside = sharp == 255
    assert outward[inside].min() >= 250  # nothing eaten inward
    assert both[inside].min() < 200  # a plain feather softens inward too
    rim = (sharp == 0) & (outward > 0)
    assert rim.sum() > 0 and outward[rim].mean() < 200  # the soft rim is outside
