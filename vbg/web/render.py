"""What the worker threads do: decode an upload, run StillPipeline as `vbg still` does, encode."""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

import numpy as np
import onnxruntime as ort

from vbg.backgrounds.color import parse_color
from vbg.backgrounds.image import bundled_background
from vbg.errors import BackgroundError, ConfigError, ImageError
from vbg.imageio import read_image, write_image
from vbg.still.idphoto import IdPhotoRefused
from vbg.still.idreport import rule_message
from vbg.still.idsheet import encode_image
from vbg.still.options import StillOptions
from vbg.still.pipeline import StillPipeline
from vbg.still.segmenter import PhotoSegmenter, model_names

# Output formats the API writes: name -> (file extension, media type).
FORMATS = {"png": (".png", "image/png"), "jpeg": (".jpg", "image/jpeg"),
           "jpg": (".jpg", "image/jpeg"), "webp": (".webp", "image/webp")}
_PIPELINES_KEPT = 6  # per worker thread, for repeated requests with the same options
_local = threading.local()
_THREADS: dict[str, int | None] = {"value": None}  # library threads per worker (set_threads)
_RUNNING: dict[str, str] = {}  # model name -> provider that really runs it (for /api/about)


@dataclass(frozen=True)
class Rendered:
    """One photo's outputs, encoded."""

    name: str  # output file name (the upload's stem + the format's extension)
    data: bytes
    media_type: str
    matte: bytes | None = None  # 8-bit grey PNG when asked for
    width: int = 0
    height: int = 0
    report: dict = field(default_factory=dict)  # ID photos: what was checked


def parse_background(text: str | None) -> dict:
    """StillOptions fields for the form's `background`: "", "transparent", a colour,
    "blur:N" or a bundled background name (never a server path)."""
    value = (text or "").strip()
    if value.lower() in ("", "none", "transparent"):
        return {}
    if value.lower().startswith("blur"):
        strength = value[4:].lstrip(":= ") or "15"
        if not strength.isdigit() or not 1 <= int(strength) <= 100:
            raise ConfigError(f"background {value!r}: blur strength must be 1-100, "
                              "e.g. blur:15")
        return {"blur": int(strength)}
    try:
        parse_color(value)
        return {"color": value}
    except BackgroundError:
        pass
    try:
        return {"background": bundled_background(value)}
    except BackgroundError:
        raise BackgroundError(f"background {value!r} is not a colour (white, #rrggbb, r,g,b), "
                              "blur:N or a bundled background (studio, space, launch); send "
                              "your own image as the background_image file") from None


def output_format(fmt: str | None, options: StillOptions) -> str:
    """The checked format name (png default; jpeg for ID photos); ConfigError when it cannot
    hold the result."""
    name = (fmt or ("jpeg" if options.id_photo else "png")).strip().lower()
    if name not in FORMATS:
        raise ConfigError(f"format {fmt!r}: use png, jpeg or webp")
    if name in ("jpeg", "jpg") and options.cutout:
        raise ConfigError("format jpeg cannot store the transparent cut-out: use png or webp, "
                          "or choose a background (a colour, blur:N or an image)")
    return name


def save_upload(stream: BinaryIO, folder: Path, name: str, stem: str = "upload") -> Path:
    """Copy an uploaded file into `folder` (the decoder reads files) under a safe name."""
    suffix = Path(name).suffix.lower()[:8] if name else ""
    path = folder / f"{stem}{suffix if suffix.isascii() else ''}"
    stream.seek(0)
    with open(path, "wb") as f:
        shutil.copyfileobj(stream, f, 1 << 20)
    return path


def output_name(upload_name: str, extension: str) -> str:
    """A safe output name from the upload's: its stem (no folders) + the extension."""
    stem = Path(upload_name.replace("\\", "/")).stem.strip() or "image"
    safe = "".join(c if c.isalnum() or c in "-_. " else "_" for c in stem).strip(". ")
    return f"{safe[:100] or 'image'}{extension}"


def decode(path: Path, shown_name: str, max_pixels: int | None = None
           ) -> tuple[np.ndarray, np.ndarray | None, object]:
    """read_image, with the upload's name (not the temporary path) in any error."""
    try:
        return read_image(path, max_pixels=max_pixels)
    except ImageError as e:
        reason = getattr(e, "reason", str(e))
        err = ImageError(f"{shown_name or 'the upload'}: {' '.join(str(reason).split())}")
        err.reason = reason  # type: ignore[attr-defined]
        raise err from None


def pipeline_for(options: StillOptions) -> StillPipeline:
    """This thread's pipeline for `options` (its own networks: pipelines reuse buffers)."""
    segmenters: dict[tuple[str, str], PhotoSegmenter] = _local.__dict__.setdefault(
        "segmenters", {})
    pipelines: OrderedDict = _local.__dict__.setdefault("pipelines", OrderedDict())
    names = model_names(options.model)
    key = ("+".join(names), options.provider)
    if key not in segmenters:
        segmenters[key] = PhotoSegmenter(names, options.provider, threads=_THREADS["value"])
        for model in segmenters[key].models:
            _RUNNING[model.name] = getattr(model, "provider", "cpu")
    if isinstance(options.background, np.ndarray):  # an uploaded image: this call only
        return StillPipeline(options, segmenters[key], _THREADS["value"])
    pipeline = pipelines.get(options)
    if pipeline is None:
        if len(pipelines) >= _PIPELINES_KEPT:
            pipelines.popitem(last=False)
        pipeline = pipelines[options] = StillPipeline(options, segmenters[key], _THREADS["value"])
    pipelines.move_to_end(options)
    return pipeline


def set_threads(threads: int | None) -> None:
    """Threads each worker's networks use (cores divided among the workers)."""
    _THREADS["value"] = threads


def provider_info() -> dict:
    """Providers onnxruntime offers, and the one each model loaded so far really runs on."""
    try:
        available = ort.get_available_providers()
    except Exception as e:  # a broken onnxruntime: say so, the page still works
        available = [f"onnxruntime unusable: {e}"]
    return {"available": available, "running": dict(_RUNNING),
            "note": "" if _RUNNING else "no photo processed yet: models load on first use"}


def report_header(report: dict) -> str:
    """A report as one-line ASCII JSON (an HTTP header value)."""
    return json.dumps(report, ensure_ascii=True, separators=(",", ":"))


def encode(image: np.ndarray, extension: str, dpi: tuple[float, float] | None,
           quality: int | None, icc: bytes | None) -> bytes:
    """The file `vbg still` would write, as bytes (written by the same writer)."""
    with tempfile.TemporaryDirectory(prefix="vbg-web-") as folder:
        path = write_image(Path(folder) / f"out{extension}", image, dpi=dpi, quality=quality,
                           icc_profile=icc)
        return path.read_bytes()


def render(upload: Path, upload_name: str, options: StillOptions, fmt: str,
           with_matte: bool = False) -> Rendered:
    """Cut-out or new background of one uploaded photo (ID photos: render_id_photo)."""
    if options.id_photo:
        return render_id_photo(upload, upload_name, options, fmt)
    extension, media_type = FORMATS[fmt]
    bgr, alpha_in, info = decode(upload, upload_name, options.max_pixels)
    pipeline = pipeline_for(options)
    result, matte = pipeline.render(bgr, alpha_in)
    del bgr, alpha_in
    dpi = info.dpi  # type: ignore[attr-defined]
    data = encode(result, extension, dpi, options.quality,
                  info.icc_profile)  # type: ignore[attr-defined]
    matte_png = encode(matte, ".png", dpi, None, None) if with_matte and matte is not None \
        else None
    height, width = result.shape[:2]
    return Rendered(output_name(upload_name, extension), data, media_type, matte_png, width,
                    height)


def render_id_photo(upload: Path, upload_name: str, options: StillOptions, fmt: str
                    ) -> Rendered:
    """An ID photo and its compliance report, as `vbg still --id-photo` judges and writes it;
    IdPhotoRefused (422, with the report) when a rule fails and options.force is off."""
    extension, media_type = FORMATS[fmt]
    bgr, alpha_in, _ = decode(upload, upload_name, options.max_pixels)
    try:
        result = pipeline_for(options).id_photo_result(bgr, alpha_in)
    except IdPhotoRefused:
        raise
    except ImageError as e:  # no face, several faces: say which upload
        raise ImageError(f"{upload_name}: {e}") from None
    del bgr, alpha_in
    report = {"file": upload_name, **result.report, "checks": checks(result.report)}
    if not result.ok and not options.force:
        raise IdPhotoRefused(f"{upload_name}: {result.problem}", report)
    dpi = int(report.get("dpi", 300))
    if options.max_kb is not None:
        data, report["jpeg_quality"] = encode_image(result.image, fmt, dpi, options.max_kb)
    else:
        data = encode(result.image, extension, (dpi, dpi), options.quality, None)
    report["kb"] = round(len(data) / 1024, 1)
    height, width = result.image.shape[:2]
    return Rendered(output_name(upload_name, extension), data, media_type, None, width, height,
                    report)


def checks(report: dict) -> list[dict]:
    """The report's rules as lines for people: name, ok, and why when it fails."""
    lines = []
    for rule, ok in report.get("rules", {}).items():
        detail = report.get(rule if rule != "resolution" else "upscale")
        if ok:
            value = detail.get("value") if isinstance(detail, dict) else None
            shown = f" ({value:g})" if isinstance(value, int | float) else ""
            message = f"{rule.replace('_', ' ')}: ok{shown}"
        else:
            message = rule_message(report, rule)
        lines.append({"name": rule, "ok": bool(ok), "message": message})
    return lines


def render_matte(upload: Path, upload_name: str, options: StillOptions) -> Rendered:
    """The alpha matte alone: 8-bit grey PNG."""
    bgr, alpha_in, info = decode(upload, upload_name, options.max_pixels)
    matte = pipeline_for(options).matte(bgr, alpha_in)
    data = encode(matte, ".png", info.dpi, None, None)  # type: ignore[attr-defined]
    return Rendered(output_name(upload_name, ".png"), data, "image/png",
                    width=matte.shape[1], height=matte.shape[0])


def with_background_image(options: StillOptions, path: Path, name: str) -> StillOptions:
    """The options with an uploaded background image (checked as an image first)."""
    bgr, _, _ = decode(path, f"background_image {name}".strip())
    return replace(options, background=np.ascontiguousarray(bgr), color=None, blur=None)


def temp_folder() -> tempfile.TemporaryDirectory:
    """A private temporary folder for one request's files."""
    return tempfile.TemporaryDirectory(prefix="vbg-web-")
