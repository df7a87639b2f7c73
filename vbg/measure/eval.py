"""`vbg eval`: score mattes of each configuration against ground truth (IoU, MAD, dtSSD, ms)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vbg.errors import ConfigError
from vbg.live.build import build_stages, choose_model
from vbg.live.frame import FrameMatter
from vbg.live.settings import LiveSettings
from vbg.measure import composite, metrics
from vbg.segment import new_segmenter
from vbg.segment.rvm import rvm_installed
from vbg.still.options import StillOptions
from vbg.still.pipeline import StillPipeline

CONFIGS = {
    "live": "the live pipeline as `vbg` runs it (zoom, smoothing, refinement)",
    "raw": "the model alone, bilinear upsampling (no zoom, smoothing or refinement)",
    "still": "the still-image pipeline as `vbg still` runs it",
    "rvm": "the live pipeline with --model rvm (if installed)",
    "composite": "still and live edges on the composite benchmark built from a still set "
                 "(vbg.measure.composite: edge-band alpha SAD/MSE/gradient, colour error)",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, required=True,
                   help="a set (images/ + alpha/) or a folder of sets")
    p.add_argument("--config", dest="configs", action="append", choices=sorted(CONFIGS),
                   help="configuration to run (repeatable; default: live, raw, and still on "
                   "still-image sets, plus rvm when installed)")
    p.add_argument("--model", help="model for live/raw (default: the live default)")
    p.add_argument("--fps", type=float, default=24.0,
                   help="frame rate of sequences, for the temporal smoothing timestamps")
    p.add_argument("--provider", default="auto", choices=["auto", "cuda", "cpu"])
    p.add_argument("--json", action="store_true", help="one JSON object on the last line")


def find_sets(root: Path) -> list[Path]:
    if not root.exists():
        raise ConfigError(f"--data {root}: no such folder; give a set (a folder with images/ "
                          "and alpha/) or a folder of sets")
    if not root.is_dir():
        raise ConfigError(f"--data {root} is a file, not a folder: give a set (a folder with "
                          "images/ and alpha/) or a folder of sets")
    if (root / "images").is_dir() and (root / "alpha").is_dir():
        return [root]
    sets = sorted(p for p in root.iterdir() if (p / "images").is_dir() and (p / "alpha").is_dir())
    if not sets:
        raise ConfigError(f"{root}: no evaluation set (a folder with images/ and alpha/) found")
    return sets


def is_sequence(items: list[tuple[str, Path, Path]]) -> bool:
    """Numbered consecutive stems (00000, 00001, ...) are frames of one video, else stills."""
    stems = [s for s, _, _ in items]
    if len(stems) < 2 or not all(s.isdigit() for s in stems):
        return False
    nums = [int(s) for s in stems]
    return nums == list(range(nums[0], nums[0] + len(nums)))


def _live_settings(model: str | None, provider: str, rvm: bool = False) -> LiveSettings:
    return LiveSettings().merged({"provider": provider,
                                  "model": "rvm" if rvm else model or "auto"})


def live_matter(model: str | None, provider: str, rvm: bool = False) -> Callable:
    """A function (frame, t, first) -> uint8 matte: live mode's own per-frame matte."""
    frames = FrameMatter(build_stages(_live_settings(model, provider, rvm)))

    def matte(frame: np.ndarray, t: float, first: bool) -> np.ndarray:
        if first:
            frames.reset()
        frame = np.ascontiguousarray(frame)
        thumb, small = frames.prepare(frame)
        return frames.as_image(frame, frames.matte(frame, thumb, small, t))

    return matte


def raw_matter(model: str | None, provider: str) -> Callable:
    name = choose_model(_live_settings(model, provider))
    seg = new_segmenter(name, provider)

    def matte(frame: np.ndarray, t: float, first: bool) -> np.ndarray:
        if first:
            seg.reset()
        a = cv2.resize(seg(frame), (frame.shape[1], frame.shape[0]),
                       interpolation=cv2.INTER_LINEAR)
        return (np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)

    return matte


def still_matter(provider: str) -> Callable:
    pipe = StillPipeline(StillOptions(provider=provider))

    def matte(frame: np.ndarray, t: float, first: bool) -> np.ndarray:
        return pipe.matte(frame, None)

    return matte


def usable_items(set_dir: Path, items: list) -> tuple[list, list[str]]:
    """The pairs that can be scored, and one line per image left out (no ground truth, an
    unreadable file, or ground truth of another size than its image)."""
    skipped = [f"{p.relative_to(set_dir)}: no ground truth alpha/{p.stem}.png"
               for p in sorted((set_dir / "images").iterdir())
               if p.suffix.lower() in metrics.IMAGE_SUFFIXES
               and p.stem not in {stem for stem, _, _ in items}]
    kept = []
    for item in items:
        _stem, image_path, alpha_path = item
        frame = cv2.imread(str(image_path), cv2.IMREAD_UNCHANGED)
        gt = cv2.imread(str(alpha_path), cv2.IMREAD_UNCHANGED)
        if frame is None or gt is None:
            bad = image_path if frame is None else alpha_path
            skipped.append(f"{bad.relative_to(set_dir)}: not a readable image")
        elif frame.shape[:2] != gt.shape[:2]:
            skipped.append(f"{image_path.relative_to(set_dir)}: ground truth "
                           f"{alpha_path.relative_to(set_dir)} is {gt.shape[1]}x{gt.shape[0]}, "
                           f"the image {frame.shape[1]}x{frame.shape[0]}")
        else:
            kept.append(item)
    return kept, skipped


def evaluate_set(matte: Callable, items: list, sequence: bool, fps: float) -> dict[str, Any]:
    preds, gts, times = [], [], []
    for k, (_stem, image_path, alpha_path) in enumerate(items):
        frame = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
        gt = cv2.imread(str(alpha_path), cv2.IMREAD_GRAYSCALE)
        if frame is None or gt is None:
            raise ConfigError(f"cannot read {image_path} or {alpha_path}")
        t0 = time.perf_counter()
        pred = matte(frame, k / fps, k == 0 or not sequence).copy()
        times.append((time.perf_counter() - t0) * 1e3)
        if pred.shape != gt.shape:
            pred = cv2.resize(pred, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_LINEAR)
        preds.append(pred)
        gts.append(gt)
    return {
        "frames": len(items),
        "iou": float(np.mean([metrics.iou(p, g) for p, g in zip(preds, gts, strict=True)])),
        "mad": float(np.mean([metrics.mad(p, g) for p, g in zip(preds, gts, strict=True)])),
        "dtssd": metrics.dtssd(preds, gts) if sequence and len(preds) > 1 else None,
        "ms_per_frame": float(np.median(times)),
    }


def print_composite(rows: list[dict[str, Any]]) -> None:
    """One line per composite-benchmark row."""
    for row in rows:
        cut = f"  cut-out {row['cutout_err']:5.2f}" if "cutout_err" in row else ""
        print(f"{row['set']:16s} composite {row['config']:10s} samples {row['samples']:2d}  "
              f"band SAD {row['sad']:6.2f}  MSEx1000 {row['mse']:6.1f}  grad {row['grad']:6.2f}"
              f"  colour err {row['color_err']:5.2f}{cut}", flush=True)


def run(args: argparse.Namespace) -> int:
    sets = find_sets(args.data)
    results = []
    for set_dir in sets:
        items, skipped = usable_items(set_dir, metrics.load_set(set_dir))
        for line in skipped:
            print(f"vbg eval: skipping {set_dir.name}/{line}", file=sys.stderr)
        if not items:
            raise ConfigError(f"{set_dir}: no image/alpha pairs with matching names")
        sequence = is_sequence(items)
        configs = args.configs or (["live", "raw"] + ([] if sequence else ["still"])
                                   + (["rvm"] if rvm_installed() else [])
                                   + ([] if sequence else ["composite"]))
        for name in configs:
            if name == "composite":
                if not sequence:
                    rows = composite.benchmark_rows(
                        set_dir, _live_settings(args.model, args.provider), args.provider)
                    results.extend(rows)
                    if not args.json:
                        print_composite(rows)
                continue
            if name == "rvm" and not rvm_installed():
                print("vbg: skipping rvm: not installed (`vbg models pull rvm`)", file=sys.stderr)
                continue
            matte = {
                "live": lambda: live_matter(args.model, args.provider),
                "raw": lambda: raw_matter(args.model, args.provider),
                "still": lambda: still_matter(args.provider),
                "rvm": lambda: live_matter(None, args.provider, rvm=True),
            }[name]()
            row = {"set": set_dir.name, "kind": "sequence" if sequence else "stills",
                   "config": name, **evaluate_set(matte, items, sequence, args.fps)}
            results.append(row)
            if not args.json:
                dt = "-" if row["dtssd"] is None else f"{row['dtssd']:.2f}"
                print(f"{row['set']:16s} {row['kind']:8s} {name:6s} frames {row['frames']:4d}  "
                      f"IoU {row['iou']:.4f}  MADx1000 {row['mad']:6.1f}  dtSSDx100 {dt:>6s}  "
                      f"{row['ms_per_frame']:6.1f} ms/frame", flush=True)
    if args.json:
        print(json.dumps({"results": results, "machine": {
            "cpus": os.cpu_count(), "platform": platform.platform()}}))
    return 0
