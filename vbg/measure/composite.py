"""Composite benchmark: real people with a soft alpha pasted on real backgrounds, so alpha, F and
B are known exactly; edge-band SAD / MSE / gradient error of alpha and colour error of composites.

Construction and limits: docs/decisions.md, "Composite benchmark".
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from vbg import backgrounds as bgs
from vbg.compose.composite import Compositor
from vbg.live.build import build_stages
from vbg.live.frame import FrameMatter
from vbg.live.settings import LiveSettings
from vbg.measure import metrics
from vbg.still.options import StillOptions
from vbg.still.pipeline import StillPipeline

Runner = Callable[[np.ndarray], dict[str, np.ndarray]]

# The benchmark's colour: the one issue 17 checks `vbg still --color` with (BGR of #438edb).
TEST_COLOR_BGR = (0xDB, 0x8E, 0x43)
MAX_SAMPLES = 6  # people used from a set (kept small for CI)
LONG_SIDE = 640  # samples are made at most this large
BAND_FRACTION = 0.012  # half-width of the truth's unknown band, x the image diagonal
BACKGROUNDS = ("launch.jpg", "space.jpg", "studio.png")  # bundled, public domain / vbg's own
MIN_PERSON, MAX_PERSON = 0.15, 0.7  # fraction of the photo a usable person covers
ONE_PERSON = 0.95  # the largest connected part of the mask holds this much of it


@dataclass(frozen=True)
class Sample:
    """One composite: image = alpha * fg + (1 - alpha) * bg, exactly (before rounding)."""

    name: str
    image: np.ndarray  # BGR uint8, the composite
    alpha: np.ndarray  # float32 HxW in [0, 1]
    fg: np.ndarray  # float32 HxWx3 BGR in [0, 1]
    bg: np.ndarray  # float32 HxWx3 BGR in [0, 1]
    band: np.ndarray  # bool HxW: the edge band the errors are measured in


def band_width(shape: tuple[int, ...]) -> int:
    """Half-width in px of the unknown band for an image of `shape`."""
    return max(3, round(BAND_FRACTION * float(np.hypot(shape[0], shape[1]))))


def trimap_from_mask(mask: np.ndarray, width: int) -> np.ndarray:
    """float64 trimap (0 / 0.5 / 1) from a binary mask: +-width px around its outline unknown."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    binary = (mask >= 128).astype(np.uint8)
    trimap = np.full(mask.shape, 0.5)
    trimap[cv2.erode(binary, kernel) > 0] = 1.0
    trimap[cv2.dilate(binary, kernel) == 0] = 0.0
    return trimap


def truth_matte(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(alpha, F, unknown band) of a photo from its human-drawn binary mask: closed-form matting
    in the band around the mask's outline, F by pymatting's multilevel estimate."""
    from pymatting import estimate_alpha_cf, estimate_foreground_ml  # ~3 s import: used here only

    trimap = trimap_from_mask(mask, band_width(mask.shape))
    rgb = image.astype(np.float64) / 255.0
    with contextlib.redirect_stdout(io.StringIO()):  # pymatting prints solver retries
        alpha = np.clip(estimate_alpha_cf(rgb, trimap), 0.0, 1.0)
    fg = np.clip(estimate_foreground_ml(rgb, alpha), 0.0, 1.0)
    return alpha.astype(np.float32), fg.astype(np.float32), trimap == 0.5


def usable_person(mask: np.ndarray) -> bool:
    """One person of a useful size: MIN_PERSON..MAX_PERSON of the photo, one main part."""
    binary = (mask >= 128).astype(np.uint8)
    share = binary.mean()
    if not MIN_PERSON <= share <= MAX_PERSON:
        return False
    count, _, stats, _ = cv2.connectedComponentsWithStats(binary)
    return count > 1 and stats[1:, cv2.CC_STAT_AREA].max() >= ONE_PERSON * binary.sum()


def _fit(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`image` cover-fitted to size (w, h): scaled to fill, centre-cropped."""
    h, w = image.shape[:2]
    scale = max(size[0] / w, size[1] / h)
    scaled = cv2.resize(image, (max(size[0], round(w * scale)), max(size[1], round(h * scale))),
                        interpolation=cv2.INTER_AREA)
    y0, x0 = (scaled.shape[0] - size[1]) // 2, (scaled.shape[1] - size[0]) // 2
    return scaled[y0:y0 + size[1], x0:x0 + size[0]]


def _shrink(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scale = LONG_SIDE / max(image.shape[:2])
    if scale >= 1.0:
        return image, mask
    size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    return (cv2.resize(image, size, interpolation=cv2.INTER_AREA),
            cv2.resize(mask, size, interpolation=cv2.INTER_AREA))


def build_samples(set_dir: Path, limit: int = MAX_SAMPLES) -> list[Sample]:
    """The benchmark from a still-image set (images/ + alpha/): its first `limit` usable people
    in name order, each over the next bundled background in turn (deterministic)."""
    samples: list[Sample] = []
    folder = resources.files("vbg") / "backgrounds" / "images"
    backgrounds = [cv2.imdecode(np.frombuffer((folder / name).read_bytes(), np.uint8),
                                cv2.IMREAD_COLOR) for name in BACKGROUNDS]
    for stem, image_path, alpha_path in metrics.load_set(set_dir):
        image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
        mask = cv2.imread(str(alpha_path), cv2.IMREAD_GRAYSCALE)
        if image is None or mask is None or image.shape[:2] != mask.shape or not usable_person(
                mask):
            continue
        image, mask = _shrink(image, mask)
        alpha, fg, band = truth_matte(image, mask)
        bg_name = BACKGROUNDS[len(samples) % len(BACKGROUNDS)]
        bg = _fit(backgrounds[len(samples) % len(backgrounds)], image.shape[1::-1])
        bg = bg.astype(np.float32) / 255.0
        comp = alpha[..., None] * fg + (1.0 - alpha[..., None]) * bg
        samples.append(Sample(f"{stem}+{bg_name}", (comp * 255.0 + 0.5).astype(np.uint8), alpha,
                              fg, bg, band))
        if len(samples) == limit:
            break
    return samples


def _gradient(alpha: np.ndarray) -> np.ndarray:
    """Gradient magnitude of alpha after a Gaussian of sigma 1.4 (as Composition-1k)."""
    smooth = cv2.GaussianBlur(alpha.astype(np.float64), (0, 0), 1.4)
    return np.hypot(cv2.Sobel(smooth, cv2.CV_64F, 1, 0, ksize=3),
                    cv2.Sobel(smooth, cv2.CV_64F, 0, 1, ksize=3))


def alpha_errors(pred: np.ndarray, truth: np.ndarray, band: np.ndarray) -> dict[str, float]:
    """SAD (sum |err| / 1000), MSE (x 1000) and gradient error (/ 1000) of alpha in the band."""
    p, t = metrics.as_alpha(pred), truth.astype(np.float64)
    err = (p - t)[band]
    grad = (_gradient(p) - _gradient(t))[band]
    return {"sad": float(np.abs(err).sum() / 1e3), "mse": float(np.mean(err ** 2) * 1e3),
            "grad": float((grad ** 2).sum() / 1e3)}


def truth_on_color(sample: Sample, color_bgr: Sequence[int] = TEST_COLOR_BGR) -> np.ndarray:
    """The true composite of the sample's person on a colour, float 0..255."""
    color = np.asarray(color_bgr, np.float64)
    a = sample.alpha[..., None].astype(np.float64)
    return a * sample.fg * 255.0 + (1.0 - a) * color


def color_error(result: np.ndarray, truth: np.ndarray, band: np.ndarray) -> float:
    """Mean |colour difference| in 0..255 levels over the band's pixels and channels."""
    return float(np.abs(result.astype(np.float64) - truth)[band].mean())


def cutout_on_color(bgra: np.ndarray, color_bgr: Sequence[int] = TEST_COLOR_BGR) -> np.ndarray:
    """A straight-alpha BGRA cut-out composited on a colour, as an editor does (float 0..255)."""
    a = bgra[..., 3:4].astype(np.float64) / 255.0
    return a * bgra[..., :3] + (1.0 - a) * np.asarray(color_bgr, np.float64)


def score(samples: Sequence[Sample], run: Runner) -> dict[str, float]:
    """Mean errors over the samples of `run(image)` -> {"matte": uint8, "color": BGR on
    TEST_COLOR_BGR, "cutout": BGRA} (each key optional)."""
    rows: list[dict[str, float]] = []
    for sample in samples:
        out = run(sample.image)
        row: dict[str, float] = {}
        if "matte" in out:
            row.update(alpha_errors(out["matte"], sample.alpha, sample.band))
        truth = truth_on_color(sample)
        if "color" in out:
            row["color_err"] = color_error(out["color"], truth, sample.band)
        if "cutout" in out:
            row["cutout_err"] = color_error(cutout_on_color(out["cutout"]), truth, sample.band)
        rows.append(row)
    keys = rows[0].keys() if rows else ()
    return {"samples": len(rows), **{k: float(np.mean([r[k] for r in rows])) for k in keys}}


def _hex(color_bgr: Sequence[int]) -> str:
    b, g, r = color_bgr
    return f"#{r:02x}{g:02x}{b:02x}"


def still_runner(provider: str = "auto", **options: object) -> Runner:
    """`vbg still --color TEST --matte` and the cut-out, with StillOptions `options`."""
    on_color = StillPipeline(StillOptions(provider=provider, color=_hex(TEST_COLOR_BGR),
                                          **options))  # type: ignore[arg-type]
    cutout = StillPipeline(StillOptions(provider=provider, **options))  # type: ignore[arg-type]

    def run(image: np.ndarray) -> dict[str, np.ndarray]:
        result, matte = on_color.render(image, None)
        bgra, _ = cutout.render(image, None)
        assert matte is not None
        return {"matte": matte.copy(), "color": result.copy(), "cutout": bgra.copy()}

    return run


def live_runner(settings: LiveSettings, foreground: bool) -> Runner:
    """Live mode on the test colour, each sample a first frame (its matte and composite)."""
    stages = build_stages(settings.merged({"color": _hex(TEST_COLOR_BGR)}, source="eval"))
    frames = FrameMatter(stages)
    compositor = Compositor(bgs.ColorBackground(TEST_COLOR_BGR), foreground=foreground)

    def run(image: np.ndarray) -> dict[str, np.ndarray]:
        frames.reset()
        image = np.ascontiguousarray(image)
        thumb, small = frames.prepare(image)
        matte = frames.matte(image, thumb, small, 0.0)
        if isinstance(matte, np.ndarray):  # not one pass (erode, wide feather): plain blend
            return {"matte": matte.copy(), "color": compositor(image, matte).copy()}
        drawn = np.empty(image.shape[:2], np.uint8)
        out = compositor.render(image, matte, matte=drawn)
        return {"matte": drawn, "color": out.copy()}

    return run


def benchmark_rows(set_dir: Path, settings: LiveSettings, provider: str = "auto",
                   limit: int = MAX_SAMPLES) -> list[dict[str, object]]:
    """The benchmark's rows for a still-image set: `vbg still` as it runs by default and with
    today's fast path (--matting fast --no-foreground), live mode with and without F."""
    samples = build_samples(set_dir, limit)
    if not samples:
        return []
    runs = {
        "still": lambda: still_runner(provider),
        "still-fast": lambda: still_runner(provider, matting="fast", foreground=False),
        "live": lambda: live_runner(settings, True),  # F on (off by default live: its cost)
        "live-plain": lambda: live_runner(settings, False),
    }
    return [{"set": set_dir.name, "kind": "composite", "config": name,
             **score(samples, make())} for name, make in runs.items()]
