"""Measure matte refinement settings on /work/shared/data: IoU@0.5 and MAD per set per model.

Usage: .venv/bin/python tools/tune_refine.py [--data DIR] [--models selfie selfie-landscape]
       [--stage raw|grid|stills|speed|all] [--grid coarse|fine] [--resize product|linear|area]

Every frame is scored on its own (no temporal smoothing). `raw` = model output upsampled
bilinearly vs DEFAULTS; `grid` = a staged grid over RefineParams (guided settings first, then
the curve/erode/feather on the two best); `stills` = test-time tricks for photos (mirror
averaging, letterbox, both models); `speed` = median ms per frame at 720p and 1080p.
`all` = raw + grid + stills (~4 min coarse, ~7 min fine on 2 cores).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numba
import numpy as np

from vbg.matte.refine import DEFAULTS, MatteRefiner, RefineParams, warm_up
from vbg.measure.metrics import iou, load_set, mad
from vbg.models import verified_path
from vbg.models.session import new_session
from vbg.segment import new_segmenter

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SETS = ("coco_person", "davis_parkour")
MODELS = ("selfie", "selfie-landscape")
RAW = RefineParams(guided=False, threshold=0.5, contrast=1.0, erode=0, feather=0)  # identity
Frames = list[tuple[np.ndarray, np.ndarray]]  # (frame BGR, ground truth uint8)


def load_frames(root: Path, name: str) -> Frames:
    out = []
    for _, image_path, alpha_path in load_set(root / name):
        out.append((cv2.imread(str(image_path)), cv2.imread(str(alpha_path), cv2.IMREAD_GRAYSCALE)))
    return out


class RawModel:
    """The bundled network with a chosen input resize (product = vbg.segment as shipped)."""

    def __init__(self, name: str, resize: str) -> None:
        self.product = new_segmenter(name, provider="cpu")
        self.resize = resize
        self.session = new_session(verified_path(name), "cpu")
        self.in_name = self.session.get_inputs()[0].name

    def __call__(self, frame: np.ndarray, flip: bool = False, pad: bool = False) -> np.ndarray:
        if flip:
            return self(np.ascontiguousarray(frame[:, ::-1]), pad=pad)[:, ::-1].copy()
        if pad:  # letterbox to the network's aspect instead of stretching, then crop back
            h, w = frame.shape[:2]
            nw, nh = self.product.input_size
            ph, pw = max(h, round(w * nh / nw)), max(w, round(h * nw / nh))
            top, left = (ph - h) // 2, (pw - w) // 2
            padded = cv2.copyMakeBorder(frame, top, ph - h - top, left, pw - w - left,
                                        cv2.BORDER_REPLICATE)
            alpha = self(padded)
            sy, sx = alpha.shape[0] / ph, alpha.shape[1] / pw
            return alpha[round(top * sy):round((top + h) * sy),
                         round(left * sx):round((left + w) * sx)].copy()
        if self.resize == "product":
            return self.product(frame).copy()
        interp = cv2.INTER_LINEAR if self.resize == "linear" else cv2.INTER_AREA
        small = cv2.resize(frame, self.product.input_size, interpolation=interp)
        x = cv2.cvtColor(small, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
        return self.session.run(None, {self.in_name: x[None]})[0][0, :, :, 0].copy()


def score(params: RefineParams, frames: Frames, alphas: list[np.ndarray]) -> tuple[float, float]:
    """Mean IoU@0.5 and mean MAD over the frames, each frame refined on its own."""
    refiner = MatteRefiner(params)
    ious, mads = [], []
    for (frame, gt), alpha in zip(frames, alphas, strict=True):
        matte = refiner(frame, alpha)
        ious.append(iou(matte, gt))
        mads.append(mad(matte, gt))
    return float(np.mean(ious)), float(np.mean(mads))


def params_label(p: RefineParams) -> str:
    if p == RAW:
        return "raw bilinear"
    guided = f"gf r{p.radius} e{p.eps:g} w{p.guide_width}" if p.guided else "bilinear"
    return f"{guided} t{p.threshold:g} c{p.contrast:g} er{p.erode} f{p.feather}"


class Table:
    """Scores every configuration on every (model, set) and prints one row each."""

    def __init__(self, data: dict[str, Frames], alphas: dict[tuple[str, str], list]) -> None:
        self.data, self.alphas = data, alphas
        self.keys = list(alphas)
        self.rows: dict[RefineParams, list[tuple[float, float]]] = {}
        header = " | ".join(f"{m[:9]:>9} {s[:5]} IoU  MAD" for m, s in self.keys)
        print(f"{'configuration':44} | {header} | mean IoU", flush=True)

    def add(self, p: RefineParams) -> list[tuple[float, float]]:
        if p not in self.rows:
            self.rows[p] = [score(p, self.data[s], self.alphas[m, s]) for m, s in self.keys]
            cells = " | ".join(f"{i:.3f} {d:6.1f}".rjust(20) for i, d in self.rows[p])
            print(f"{params_label(p):44} | {cells} | {self.mean_iou(p):.4f}", flush=True)
        return self.rows[p]

    def mean_iou(self, p: RefineParams) -> float:
        return float(np.mean([i for i, _ in self.rows[p]]))

    def helps_everywhere(self, p: RefineParams) -> bool:
        """IoU and MAD at least as good as raw bilinear on every (model, set)."""
        return all(i >= ri and d <= rd
                   for (i, d), (ri, rd) in zip(self.rows[p], self.rows[RAW], strict=True))

    def best(self, n: int) -> list[RefineParams]:
        return sorted(self.rows, key=self.mean_iou, reverse=True)[:n]


GRIDS = {  # name -> (guided: radius, eps, guide_width; curve: threshold, contrast, erode, feather)
    "coarse": (((1, 2, 3), (1e-4, 1e-3, 1e-2), (240, 320, 480)),
               ((0.4, 0.5, 0.6), (1.0, 2.0, 4.0), (-2, 0, 2), (0, 3))),
    "fine": (((1, 2), (1e-4, 3e-4, 1e-3), (320, 400)),
             ((0.45, 0.5, 0.55), (2.0, 3.0, 4.0, 6.0), (-1, 0, 1), (0, 1, 2))),
}


def guided_grid(axes: tuple) -> list[RefineParams]:
    return [RefineParams(guided=True, radius=r, eps=e, guide_width=w)
            for r, e, w in itertools.product(*axes)]


def curve_grid(base: RefineParams, axes: tuple) -> list[RefineParams]:
    return [replace(base, threshold=t, contrast=c, erode=er, feather=f)
            for t, c, er, f in itertools.product(*axes)]


def run_grid(table: Table, grid: str) -> None:
    guided_axes, curve_axes = GRIDS[grid]
    for p in guided_grid(guided_axes):
        table.add(p)
    bases = [p for p in table.best(2) if p.guided] + [RAW]
    for base in bases:
        for p in curve_grid(base, curve_axes):
            table.add(p)
    print("\nbest 15 by mean IoU (* = IoU and MAD no worse than raw on every model and set):")
    for p in table.best(15):
        mark = "*" if table.helps_everywhere(p) else " "
        print(f"{mark} {params_label(p):44} mean IoU {table.mean_iou(p):.4f}  "
              f"mean MAD {np.mean([d for _, d in table.rows[p]]):.1f}")


def averaged(runs: list[np.ndarray]) -> np.ndarray:
    """Mean of several low-res alphas, resized to the first one's shape."""
    h, w = runs[0].shape
    return np.mean([cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR) for a in runs], axis=0,
                   dtype=np.float32)


def run_stills(models: dict[str, RawModel], frames: Frames, params: RefineParams,
               set_name: str) -> None:
    """Test-time tricks for photos: flip averaging, letterbox, both models averaged."""
    runs: dict[tuple[str, bool, bool], list[np.ndarray]] = {}
    for (name, model), flip, pad in itertools.product(models.items(), (False, True),
                                                      (False, True)):
        runs[name, flip, pad] = [model(f, flip=flip, pad=pad) for f, _ in frames]
    variants: dict[str, list[tuple[str, bool, bool]]] = {}
    for name in models:
        variants[name] = [(name, False, False)]
        variants[f"{name} + flip"] = [(name, False, False), (name, True, False)]
        variants[f"{name} letterbox"] = [(name, False, True)]
        variants[f"{name} letterbox + flip"] = [(name, False, True), (name, True, True)]
        variants[f"{name} stretch + letterbox"] = [(name, False, False), (name, False, True)]
    if len(models) == 2:
        variants["both models"] = [(m, False, False) for m in models]
        variants["both models + flip"] = [(m, f, False) for m in models for f in (False, True)]
        variants["both, stretch + letterbox"] = [(m, False, p) for m in models
                                                 for p in (False, True)]
        variants["both, all 8 runs"] = list(runs)
    print(f"\nstill-image tricks on {set_name}, refine = {params_label(params)} vs raw bilinear:")
    for label, keys in variants.items():
        alphas = [averaged([runs[k][i] for k in keys]) for i in range(len(frames))]
        raw_iou, raw_mad = score(RAW, frames, alphas)
        ref_iou, ref_mad = score(params, frames, alphas)
        print(f"  {label:34} runs {len(keys)} | raw IoU {raw_iou:.3f} MAD {raw_mad:6.1f} | "
              f"refined IoU {ref_iou:.3f} MAD {ref_mad:6.1f}", flush=True)


def run_speed(repeats: int = 300) -> None:
    """Median ms per frame of MatteRefiner (DEFAULTS and variants) on a real frame, rescaled."""
    frame = cv2.imread(str(DATA / "davis_parkour" / "images" / "00050.jpg"))
    alpha = RawModel("selfie-landscape", "product")(frame)
    configs = {"defaults": DEFAULTS, "plain bilinear": replace(DEFAULTS, guided=False),
               "defaults, no feather": replace(DEFAULTS, feather=0),
               "defaults + erode 2": replace(DEFAULTS, erode=2)}
    for w, h in ((1280, 720), (1920, 1080)):
        big = cv2.resize(frame, (w, h), interpolation=cv2.INTER_LINEAR)
        for label, params in configs.items():
            refiner = MatteRefiner(params)
            refiner(big, alpha)
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                refiner(big, alpha)
                times.append(time.perf_counter() - t)
            ms = np.percentile(times, [25, 50, 75]) * 1e3
            print(f"{w}x{h} {label:22} median {ms[1]:.2f} ms (p25 {ms[0]:.2f}, p75 {ms[2]:.2f})",
                  flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    ap.add_argument("--stage", default="all", choices=("raw", "grid", "stills", "speed", "all"))
    ap.add_argument("--grid", default="coarse", choices=tuple(GRIDS))
    ap.add_argument("--resize", default="product", choices=("product", "linear", "area"),
                    help="network input resize: as vbg.segment ships it, or forced")
    args = ap.parse_args(argv)
    if not all((args.data / s / "images").is_dir() for s in SETS):
        print(f"no evaluation data under {args.data} (expected {', '.join(SETS)})")
        return 2
    if args.stage == "speed":
        warm_up()
        run_speed()
        return 0
    numba.set_num_threads(1)  # shared 2-core machine: one thread per process scores fastest
    warm_up()
    t0 = time.perf_counter()
    data = {s: load_frames(args.data, s) for s in SETS}
    models = {m: RawModel(m, args.resize) for m in args.models}
    alphas = {(m, s): [models[m](f) for f, _ in data[s]] for m in args.models for s in SETS}
    print(f"input resize: {args.resize}; model outputs in {time.perf_counter() - t0:.1f} s\n")
    table = Table(data, alphas)
    table.add(RAW)
    table.add(DEFAULTS)
    if args.stage in ("grid", "all"):
        run_grid(table, args.grid)
    if args.stage in ("stills", "all"):
        for s in SETS:
            run_stills(models, data[s], DEFAULTS, s)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
