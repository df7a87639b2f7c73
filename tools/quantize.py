"""Int8 experiment: static QDQ quantization of the selfie networks, timed against fp32.

Calibrated on the bench clip (the bundled portrait over the bundled scene, moving), never on
../shared/data (the evaluation sets). Needs `onnx` (the `convert` extra). Writes the int8
model next to --out and prints one line per model: fp32 and int8 ms per run on one thread,
and the largest output difference. See docs/decisions.md ("int8 networks") for the result.

    .venv/bin/python tools/quantize.py --out /tmp/vbg-int8
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from vbg.measure.benchclip import make_clip
from vbg.models import verified_path

SIZES = {"selfie": (256, 256), "selfie-landscape": (256, 144)}
OPS = ["Conv", "Mul", "Add", "Relu", "HardSigmoid", "Sigmoid", "GlobalAveragePool",
       "ConvTranspose"]


class ClipFrames(CalibrationDataReader):
    """Network inputs from the bench clip: whole frames, or person-sized crops (zoom pass)."""

    def __init__(self, size: tuple[int, int], crops: bool, count: int = 24) -> None:
        rng = np.random.default_rng(0)
        self._items = []
        for frame in make_clip((1280, 720), count=count, seed=3):
            image = frame
            if crops:
                w = int(rng.uniform(250, 700))
                h = int(min(720, w * rng.uniform(1.0, 2.0)))
                x, y = int(rng.uniform(0, 1280 - w)), int(rng.uniform(0, 720 - h))
                image = frame[y:y + h, x:x + w]
            small = cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)
            rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
            self._items.append({"input_1": rgb[None].astype(np.float32) / 255.0})
        self._next = iter(self._items)

    def get_next(self):
        return next(self._next, None)


def run_ms(path: Path, size: tuple[int, int]) -> tuple[float, np.ndarray]:
    """Median ms of one run on one thread (no spinning), and the output of a fixed input."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).random((1, size[1], size[0], 3), np.float32)
    for _ in range(20):
        session.run(None, {"input_1": x})
    times = []
    for _ in range(100):
        t0 = time.perf_counter()
        session.run(None, {"input_1": x})
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3, session.run(None, {"input_1": x})[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="folder for the int8 models")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, size in SIZES.items():
        source = verified_path(name)
        prepared, int8 = args.out / f"{name}-prepared.onnx", args.out / f"{name}-int8.onnx"
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(int8), ClipFrames(size, crops=name == "selfie"),
                        quant_format=QuantFormat.QDQ, per_channel=True, op_types_to_quantize=OPS,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
        fp32_ms, want = run_ms(source, size)
        int8_ms, got = run_ms(int8, size)
        print(f"{name}: fp32 {fp32_ms:.2f} ms, int8 {int8_ms:.2f} ms per run, "
              f"largest output difference {np.abs(want - got).max():.3f}")


if __name__ == "__main__":
    main()
