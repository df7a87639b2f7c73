"""The composite benchmark: its construction (truth alpha, F, B exact) and its measures."""

from __future__ import annotations

import numpy as np
import pytest

from vbg.live.settings import LiveSettings
from vbg.measure import composite


def test_alpha_errors_measure_the_band_only() -> None:
    truth = np.zeros((40, 50), np.float32)
    truth[:, 25:] = 1.0
    band = np.zeros_like(truth, bool)
    band[:, 20:30] = True
    assert composite.alpha_errors((truth * 255).astype(np.uint8), truth, band) == {
        "sad": 0.0, "mse": 0.0, "grad": 0.0}
    pred = truth.copy()
    pred[band] = np.clip(pred[band] + 0.1, 0, 1)  # 0.1 off where truth is 0, 0 where it is 1
    pred[:, :5] = 1.0  # outside the band: not counted
    errors = composite.alpha_errors(pred, truth, band)
    assert errors["sad"] == pytest.approx(0.1 * 40 * 5 / 1e3, rel=1e-5)
    assert errors["mse"] == pytest.approx(0.01 * 0.5 * 1e3, rel=1e-4)
    assert errors["grad"] > 0


def test_trimap_from_a_mask() -> None:
    mask = np.zeros((100, 100), np.uint8)
    mask[30:70, 30:70] = 255
    tri = composite.trimap_from_mask(mask, 5)
    assert tri[50, 50] == 1.0 and tri[5, 5] == 0.0
    assert tri[50, 30] == 0.5 and tri[50, 26] == 0.5 and tri[50, 24] == 0.0


@pytest.fixture(scope="module")
def sample(request) -> composite.Sample:
    root = request.getfixturevalue("shared_set")("coco_person")
    samples = composite.build_samples(root, limit=1)
    assert samples, "no usable person in coco_person"
    return samples[0]


def test_samples_are_exact_composites_of_real_photos(sample: composite.Sample) -> None:
    a = sample.alpha[..., None].astype(np.float64)
    truth = (a * sample.fg + (1 - a) * sample.bg) * 255.0
    assert np.abs(sample.image - truth).max() <= 0.5 + 1e-3  # uint8 rounding only
    soft = sample.alpha[sample.band]
    assert ((soft > 0.05) & (soft < 0.95)).mean() > 0.05  # a soft matte, not a mask
    assert set(np.unique(sample.alpha[~sample.band])) <= {0.0, 1.0}
    assert sample.fg.min() >= 0 and sample.fg.max() <= 1
    assert max(sample.image.shape[:2]) <= composite.LONG_SIDE


def test_score_is_zero_for_the_truth_and_not_for_the_photo(sample: composite.Sample) -> None:
    truth = composite.truth_on_color(sample)

    def oracle(image: np.ndarray) -> dict[str, np.ndarray]:
        a = (sample.alpha * 255 + 0.5).astype(np.uint8)
        bgra = np.dstack([(sample.fg * 255 + 0.5).astype(np.uint8), a])
        return {"matte": a, "color": (truth + 0.5).astype(np.uint8), "cutout": bgra}

    def old_way(image: np.ndarray) -> dict[str, np.ndarray]:
        a = (sample.alpha * 255 + 0.5).astype(np.uint8)  # the right alpha, the photo's colours
        return {"cutout": np.dstack([image, a])}

    best = composite.score([sample], oracle)
    assert best["sad"] < 0.2 and best["color_err"] < 0.6 and best["cutout_err"] < 1.5
    assert composite.score([sample], old_way)["cutout_err"] > 3 * best["cutout_err"]


def test_benchmark_rows_rank_the_new_edges_above_the_old(shared_set) -> None:
    rows = {r["config"]: r for r in composite.benchmark_rows(shared_set("coco_person"),
                                                             LiveSettings(), limit=1)}
    assert set(rows) == {"still", "still-fast", "live", "live-plain"}
    assert rows["still"]["sad"] < rows["still-fast"]["sad"]
    assert rows["still"]["color_err"] < rows["still-fast"]["color_err"]
    assert rows["live"]["color_err"] < rows["live-plain"]["color_err"]
    assert rows["live"]["sad"] == rows["live-plain"]["sad"]  # F changes colours, not alpha
