"""Matte quality metrics (IoU, MAD, dtSSD as in Robust Video Matting's evaluation) and data sets."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vbg.errors import ImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def as_alpha(a: np.ndarray) -> np.ndarray:
    """Alpha as float64 in [0,1]; uint8 input (0..255) is scaled, floats are taken as they are."""
    a = np.asarray(a)
    if a.dtype == np.uint8:
        return a.astype(np.float64) / 255.0
    if a.dtype == np.bool_:
        return a.astype(np.float64)
    return a.astype(np.float64, copy=False)


def _check_shapes(pred: np.ndarray, gt: np.ndarray) -> None:
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground truth {gt.shape}")


def _mask(a: np.ndarray, thr: float) -> np.ndarray:
    """a >= thr on the [0,1] scale; uint8 compared as integers (exact and fast)."""
    a = np.asarray(a)
    if a.dtype == np.uint8:
        passes = np.arange(256) / 255.0 >= thr  # monotonic: the first passing level is the cut
        return a >= int(np.argmax(passes)) if passes.any() else np.zeros(a.shape, bool)
    return as_alpha(a) >= thr


def iou(pred: np.ndarray, gt: np.ndarray, thr: float = 0.5) -> float:
    """IoU of (pred >= thr) against (gt >= 0.5); an empty union scores 1.0."""
    pm, gm = _mask(pred, thr), _mask(gt, 0.5)
    _check_shapes(pm, gm)
    union = np.count_nonzero(pm | gm)
    if union == 0:
        return 1.0
    return float(np.count_nonzero(pm & gm) / union)


def mad(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean absolute difference of alphas x 1000."""
    pred, gt = np.asarray(pred), np.asarray(gt)
    _check_shapes(pred, gt)
    if pred.dtype == np.uint8 and gt.dtype == np.uint8:  # integer sum: exact and fast
        total = int(np.abs(pred.astype(np.int16) - gt).sum(dtype=np.int64))
        return total / 255.0 / max(pred.size, 1) * 1e3
    return float(np.mean(np.abs(as_alpha(pred) - as_alpha(gt))) * 1e3)


def dtssd(preds: Sequence[np.ndarray], gts: Sequence[np.ndarray]) -> float:
    """Temporal error: mean over t >= 1 of sqrt(sum((dp_t - dg_t)^2) / N) x 100."""
    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} predictions for {len(gts)} ground-truth frames")
    if len(preds) < 2:
        raise ValueError("dtSSD needs at least two frames")
    errors = []
    prev_p, prev_g = as_alpha(preds[0]), as_alpha(gts[0])
    _check_shapes(prev_p, prev_g)
    for p_raw, g_raw in zip(preds[1:], gts[1:], strict=True):
        p, g = as_alpha(p_raw), as_alpha(g_raw)
        _check_shapes(p, g)
        diff = (p - prev_p) - (g - prev_g)
        errors.append(np.sqrt(np.sum(diff * diff) / diff.size))
        prev_p, prev_g = p, g
    return float(np.mean(errors) * 1e2)


def load_set(directory: str | Path) -> list[tuple[str, Path, Path]]:
    """(stem, image_path, alpha_path) for `images/` + `alpha/` with matching stems, sorted."""
    root = Path(directory)
    images_dir, alpha_dir = root / "images", root / "alpha"
    if not images_dir.is_dir() or not alpha_dir.is_dir():
        raise ImageError(f"evaluation set {root}: folders images/ and alpha/ not found; "
                         "give a folder with images/<stem>.jpg|png and alpha/<stem>.png")
    images = {p.stem: p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    alphas = {p.stem: p for p in alpha_dir.iterdir() if p.suffix.lower() == ".png"}
    stems = sorted(images.keys() & alphas.keys())
    if not stems:
        raise ImageError(f"evaluation set {root}: no image in images/ has an alpha/<stem>.png "
                         "with the same stem; name each ground-truth mask after its image")
    return [(stem, images[stem], alphas[stem]) for stem in stems]
