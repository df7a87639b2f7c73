"""The Python API: `cut_out`, `matte`, `id_photo` and `id_photo_result`, over StillPipeline."""

from __future__ import annotations

import os
import threading
from dataclasses import fields
from typing import Any

import cv2
import numpy as np

from vbg.backgrounds import find_background, parse_color
from vbg.errors import BackgroundError, ConfigError, ImageError
from vbg.imageio import read_image
from vbg.still.idphoto import IdPhoto, IdPhotoRefused
from vbg.still.options import StillOptions
from vbg.still.pipeline import StillPipeline
from vbg.still.segmenter import PhotoMatter, PhotoSegmenter, model_names

ImageInput = np.ndarray | str | os.PathLike[str]
BackgroundChoice = str | os.PathLike[str] | tuple[int, int, int] | np.ndarray | int | None
# The StillOptions fields a caller may pass as **options (the others have their own arguments).
OPTION_NAMES = ("provider", "alpha_threshold", "contrast", "erode", "feather", "matting",
                "foreground")
_PIPELINES_KEPT = 8  # pipelines kept for repeated calls with the same options

_lock = threading.Lock()  # one call at a time: a pipeline's buffers are reused
_segmenters: dict[tuple[str, str], PhotoSegmenter] = {}
_pipelines: dict[tuple[StillOptions, int], StillPipeline] = {}


def cut_out(image: ImageInput, *, background: BackgroundChoice = None,
            model: str | PhotoMatter = "auto", rgb: bool = False, **options: Any) -> np.ndarray:
    """The person cut out of `image`, on a new background or transparent.

    image: HxWx3 BGR or HxWx4 BGRA uint8 (its alpha multiplies the matte), HxW grey, or an
    image file path; with rgb=True arrays are RGB/RGBA and so is the result.
    background: None = transparent: HxWx4 BGRA uint8 out (RGBA with rgb=True), alpha = matte;
    else HxWx3 BGR (RGB) out, the same size as the input, on a colour (a name, "#rrggbb",
    "r,g,b" or a (b, g, r) tuple; (r, g, b) with rgb=True), an image (an array or a file path,
    or the name of a bundled background such as "studio"; cover-fitted) or an int 1-100 (the
    photo's own background, blurred).
    model: "auto", model names joined by commas, or a segmenter (`name`, frame -> alpha).
    options: provider ("auto", "cuda", "cpu"), alpha_threshold, contrast, erode, feather,
    matting ("fine" or "fast"), foreground (False: the photo's own colours at soft edges).
    Raises ImageError, BackgroundError, ConfigError or ModelError (all vbg.errors.VbgError)
    with one line saying what is wrong; the input is never modified.
    """
    bgr, alpha_in = _as_bgr(image, rgb)
    settings = _options(model, options, **_background_fields(background, rgb))
    with _lock:
        result, _ = _pipeline(settings, model).render(bgr, alpha_in)
        result = result.copy()
    if rgb:
        code = cv2.COLOR_BGRA2RGBA if result.shape[2] == 4 else cv2.COLOR_BGR2RGB
        result = cv2.cvtColor(result, code)
    return result


def matte(image: ImageInput, *, model: str | PhotoMatter = "auto", rgb: bool = False,
          **options: Any) -> np.ndarray:
    """The alpha matte of `image`: HxW uint8, 255 = person, the same size as the input.

    Arguments as for `cut_out` (no background); an input alpha channel multiplies the matte.
    """
    bgr, alpha_in = _as_bgr(image, rgb)
    settings = _options(model, options)
    with _lock:
        return _pipeline(settings, model).matte(bgr, alpha_in).copy()


def id_photo(image: ImageInput, preset: str, *, color: str | tuple[int, int, int] = "white",
             allow_multiple: bool = False, model: str | PhotoMatter = "auto", rgb: bool = False,
             size: str | None = None, dpi: int = 300, force: bool = False,
             **options: Any) -> np.ndarray:
    """An ID photo of the one person in `image`: BGR uint8 (RGB with rgb=True) at the preset's
    pixel size (300 dpi), face centred, eyes level, head sized, on `color`.

    preset: a name of vbg.still.idpresets.PRESETS ("1inch", "passport", "us", ...) or "custom"
    with `size` ("WxH" px or "WxHmm" at `dpi`). ImageError when no face is found, or several
    and not allow_multiple (then the largest is used), or (unless force) when the photo cannot
    meet a rule of the preset: the message names it. Other arguments as for `cut_out`.
    """
    result = id_photo_result(image, preset, color=color, allow_multiple=allow_multiple,
                             model=model, rgb=rgb, size=size, dpi=dpi, force=force, **options)
    if not result.ok and not force:
        raise IdPhotoRefused(result.problem, result.report)
    return result.image


def id_photo_result(image: ImageInput, preset: str = "passport", *,
                    color: str | tuple[int, int, int] = "white", size: str | None = None,
                    dpi: int = 300, force: bool = False, allow_multiple: bool = False,
                    model: str | PhotoMatter = "auto", rgb: bool = False,
                    **options: Any) -> IdPhoto:
    """The ID photo and its compliance report: IdPhoto(image, report); .ok, .problem.

    The image is the best effort even when a rule fails (then .ok is False and .problem is
    the one-line reason); .report is JSON-ready. ImageError when there is no face, or several
    without allow_multiple or force. Arguments as for `id_photo`.
    """
    bgr, alpha_in = _as_bgr(image, rgb)
    if rgb and isinstance(color, tuple | list):
        color = tuple(color)[::-1]
    settings = _options(model, options, id_photo=preset, color=color,
                        allow_multiple=allow_multiple, id_size=size,
                        dpi=None if dpi == 300 else dpi, force=force)
    with _lock:
        result = _pipeline(settings, model).id_photo_result(bgr, alpha_in)
        image_out = result.image.copy()
    if rgb:
        image_out = cv2.cvtColor(image_out, cv2.COLOR_BGR2RGB)
    return IdPhoto(image_out, result.report)


def _as_bgr(image: ImageInput, rgb: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """(BGR uint8 HxWx3, alpha uint8 HxW or None) of an array or image file."""
    if isinstance(image, str | os.PathLike):
        bgr, alpha, _ = read_image(image)
        return bgr, alpha
    if not isinstance(image, np.ndarray):
        raise ImageError(f"image: expected a numpy array or a file path, got "
                         f"{type(image).__name__}: pass e.g. cv2.imread(path)")
    if image.dtype != np.uint8:
        raise ImageError(f"image: dtype {image.dtype}, expected uint8 (0-255): convert it, "
                         "e.g. np.clip(img * 255, 0, 255).astype(np.uint8) for floats in 0-1")
    channels = 1 if image.ndim == 2 else image.shape[2] if image.ndim == 3 else 0
    if channels not in (1, 3, 4) or min(image.shape[:2]) < 1:
        raise ImageError(f"image: shape {image.shape}, expected HxWx3 (BGR), HxWx4 (BGRA) or "
                         "HxW (grey), at least 1x1")
    if channels == 1:
        return cv2.cvtColor(np.ascontiguousarray(image.reshape(image.shape[:2])),
                            cv2.COLOR_GRAY2BGR), None
    alpha = np.ascontiguousarray(image[:, :, 3]) if channels == 4 else None
    colour = np.ascontiguousarray(image[:, :, :3])  # the pipeline only reads it
    if rgb:
        colour = cv2.cvtColor(colour, cv2.COLOR_RGB2BGR)
    return colour, alpha


def _background_fields(background: BackgroundChoice, rgb: bool) -> dict[str, Any]:
    """The StillOptions fields (background, color or blur) a background choice stands for."""
    if background is None:
        return {}
    if isinstance(background, bool):
        raise BackgroundError(f"background={background!r}: use None (transparent), a colour, "
                              "an image or a blur strength 1-100")
    if isinstance(background, int | np.integer):
        return {"blur": int(background)}
    if isinstance(background, np.ndarray):
        if rgb and background.ndim == 3 and background.shape[2] in (3, 4):
            background = cv2.cvtColor(np.ascontiguousarray(background[:, :, :3]),
                                      cv2.COLOR_RGB2BGR)
        return {"background": background}
    if isinstance(background, tuple | list):
        return {"color": tuple(background)[::-1] if rgb else tuple(background)}
    if isinstance(background, str):
        try:
            parse_color(background)
            return {"color": background}
        except BackgroundError:
            pass
        path = find_background(background)
        if not path.is_file():
            raise BackgroundError(f"background {background!r} is neither a colour nor an image "
                                  "file: give a colour (white, #rrggbb, r,g,b), an image path "
                                  "or a bundled background name (studio, space, launch)")
        return {"background": path}
    if isinstance(background, os.PathLike):
        return {"background": find_background(background)}
    raise BackgroundError(f"background of type {type(background).__name__}: use None, a colour, "
                          "an image (array or path) or a blur strength 1-100")


def _options(model: str | PhotoMatter, options: dict[str, Any], **chosen: Any) -> StillOptions:
    """StillOptions from the call's arguments; ConfigError naming an unknown option."""
    unknown = sorted(set(options) - set(OPTION_NAMES))
    if unknown:
        known = [f.name for f in fields(StillOptions)]
        hint = [name for name in unknown if name in known]
        raise ConfigError(f"unknown option {', '.join(unknown)}: use "
                          f"{', '.join(OPTION_NAMES)}" + (
                              f" ({', '.join(hint)} has its own argument or function)"
                              if hint else ""))
    name = model if isinstance(model, str) else "auto"
    return StillOptions(model=name, **options, **chosen)


def _pipeline(options: StillOptions, model: str | PhotoMatter) -> StillPipeline:
    """A built pipeline for these options (kept for the next calls when they are hashable)."""
    if isinstance(model, str):
        names = model_names(model)
        key = ("+".join(names), options.provider)
        if key not in _segmenters:  # the networks load once per model set and provider
            _segmenters[key] = PhotoSegmenter(names, options.provider)
        segmenter: PhotoMatter = _segmenters[key]
    else:
        segmenter = model
    try:
        cache_key = (options, id(segmenter))
        hash(cache_key)
    except TypeError:  # an array background: built for this call only
        return StillPipeline(options, segmenter)
    pipeline = _pipelines.get(cache_key)
    if pipeline is None:
        if len(_pipelines) >= _PIPELINES_KEPT:
            _pipelines.pop(next(iter(_pipelines)))
        pipeline = _pipelines[cache_key] = StillPipeline(options, segmenter)
    return pipeline
