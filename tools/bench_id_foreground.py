"""ID photos with and without the estimated foreground colour F: edge-band colour error against
the truth on the composite benchmark's samples (real people with known soft alpha and F pasted on
real backgrounds), the same matte in every row; and the time F adds per photo.

    .venv/bin/python tools/bench_id_foreground.py --set ../shared/data/coco_person --limit 6
    .venv/bin/python tools/bench_id_foreground.py --time-only --rounds 5
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from vbg.matte import foreground
from vbg.measure import composite
from vbg.still import idphoto
from vbg.still.face import Face
from vbg.still.options import StillOptions
from vbg.still.pipeline import StillPipeline, id_photo_shrink, scaled_face

ID_COLORS = {"white": (255, 255, 255), "blue": (219, 142, 67)}
SMALL = 0.3  # the "shrink" preset: passport at this fraction, so the crop is shrunk before F


def _warp_truth(sample: composite.Sample, face: Face, preset: idphoto.Preset,
                color: tuple[int, int, int], matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(truth ID photo, band) through the same crop, shrink and warp as compose_id_photo."""
    truth = np.clip(composite.truth_on_color(sample, color) + 0.5, 0, 255).astype(np.uint8)
    opaque = np.full(truth.shape[:2], 255, np.uint8)
    out = idphoto.compose_id_photo(truth, opaque, face, preset, color, matrix)
    band = np.repeat(sample.band.astype(np.uint8)[..., None] * 255, 3, axis=2)
    band = idphoto.compose_id_photo(band, opaque, face, preset, (0, 0, 0), matrix)[..., 0] > 127
    return out.astype(np.float64), band


def errors(samples: list[composite.Sample], pipeline: StillPipeline,
           presets: dict[str, idphoto.Preset]) -> dict[str, dict[str, float]]:
    """Mean edge-band colour error per (preset, colour, matte, variant) over the samples."""
    rows: dict[str, list[float]] = {}
    used = 0
    for sample in samples:
        faces = pipeline.detector.detect(sample.image)
        if not faces:
            continue
        used += 1
        face = idphoto.pick_face(faces, allow_multiple=True)
        mattes = {"pipeline": pipeline.matte(sample.image, None).copy(),
                  "truth": np.clip(sample.alpha * 255 + 0.5, 0, 255).astype(np.uint8)}
        true_f = np.clip(sample.fg * 255 + 0.5, 0, 255).astype(np.uint8)
        for pname, preset in presets.items():
            layout = idphoto.fit_layout(idphoto.measure_head(face, mattes["pipeline"]), preset,
                                        mattes["pipeline"])
            for cname, color in ID_COLORS.items():
                truth, band = _warp_truth(sample, face, preset, color, layout.matrix)
                for mname, matte in mattes.items():
                    variants = {
                        "photo pixels (off)": (sample.image, False),
                        "F on the crop (new)": (sample.image, True),
                        "F at source res (estimate_photo)": (
                            foreground.estimate_photo(sample.image, matte), False),
                        "true F": (true_f, False),
                    }
                    for vname, (image, on) in variants.items():
                        out = idphoto.compose_id_photo(image, matte, face, preset, color,
                                                       layout.matrix, foreground=on)
                        err = float(np.abs(out.astype(np.float64) - truth)[band].mean())
                        rows.setdefault(f"{pname} | {cname} | {mname} matte | {vname}",
                                        []).append(err)
    print(f"samples with a face: {used} of {len(samples)}")
    return {k: {"mean": round(float(np.mean(v)), 2), "n": len(v)} for k, v in rows.items()}


def times(set_dir: Path, rounds: int) -> dict[str, float]:
    """Median s per photo: compose off / on (a COCO photo enlarged to 12 MP, as the ID path
    shrinks it), and estimate_photo on that whole shrunk photo (the alternative design)."""
    pipeline = StillPipeline(StillOptions(id_photo="passport", allow_multiple=True,
                                          force=True))
    image = cv2.imread(str(sorted((set_dir / "images").glob("*.jpg"))[0]))
    big = cv2.resize(image, (4000, 3000), interpolation=cv2.INTER_CUBIC)
    pipeline.id_photo_result(big, None)  # warm-up
    faces = pipeline.detector.detect(big)
    spec = pipeline.id_photo
    assert spec is not None
    f = max(id_photo_shrink(face, spec.preset) for face in faces)
    f = f if f < 0.75 else 1.0  # as StillPipeline.id_photo_result
    size = (round(big.shape[1] * f), round(big.shape[0] * f))
    small = cv2.resize(big, size, interpolation=cv2.INTER_AREA)
    faces = [scaled_face(x, size[0] / big.shape[1], size[1] / big.shape[0]) for x in faces]
    matte = pipeline.matte(small, None).copy()
    face = idphoto.pick_face(faces, allow_multiple=True)
    layout = idphoto.fit_layout(idphoto.measure_head(face, matte), spec.preset, matte)
    runs: dict[str, list[float]] = {"off": [], "on": [], "estimate_photo": []}
    for _ in range(rounds):
        for name in runs:
            t = time.perf_counter()
            if name == "estimate_photo":
                foreground.estimate_photo(small, matte)
            else:
                idphoto.compose_id_photo(small, matte, face, spec.preset, (255, 255, 255),
                                         layout.matrix, foreground=name == "on")
            runs[name].append(time.perf_counter() - t)
    return {"shrunk_photo": f"{size[0]}x{size[1]}",
            **{k: round(statistics.median(v), 3) for k, v in runs.items()}}


def main() -> None:
    """Print the error table and the timings as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--set", type=Path, default=Path("../shared/data/coco_person"))
    parser.add_argument("--limit", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--time-only", action="store_true")
    args = parser.parse_args()
    if not args.time_only:
        passport = StillOptions(id_photo="passport").id_preset()
        small = dataclasses.replace(passport, width=round(passport.width * SMALL),
                                    height=round(passport.height * SMALL))
        pipeline = StillPipeline(StillOptions(id_photo="passport"))
        samples = composite.build_samples(args.set, args.limit)
        table = errors(samples, pipeline, {"passport": passport, f"passport x{SMALL}": small})
        for key, value in table.items():
            print(f"{value['mean']:7.2f}  {key}  (n={value['n']})")
    print(json.dumps(times(args.set, args.rounds)))


if __name__ == "__main__":
    main()
