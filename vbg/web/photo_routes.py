"""REST API for photos: /api/cutout, /api/matte, /api/id-photo, /api/batch, /api/about."""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import platform
import tempfile
import zipfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.background import BackgroundTask

from vbg import __version__, models
from vbg.backgrounds.color import parse_color
from vbg.errors import ConfigError, VbgError
from vbg.segment.rvm import RVM_FILE, rvm_installed
from vbg.still.idpresets import preset_table
from vbg.still.options import StillOptions
from vbg.web import archive, render
from vbg.web.work import Busy, WorkPool

router = APIRouter()
ImageFile = Annotated[UploadFile, File(description="the photo (JPEG, PNG, WebP, BMP, TIFF)")]
Text = Annotated[str | None, Form()]
_VERSIONS = ("numpy", "opencv-python", "onnxruntime", "onnxruntime-gpu", "pillow", "numba",
             "fastapi", "uvicorn")
IMAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}},
          "description": "the image"},
    413: {"description": "upload or image too large"}, 415: {"description": "not an image"},
    422: {"description": "bad field, truncated or corrupt image, no face"},
    503: {"description": "busy: retry after the Retry-After header's seconds"}}


def number(name: str, text: str | None, kind: type = float) -> Any:
    """A form field as a number, None when empty; ConfigError naming the field."""
    if text is None or not str(text).strip():
        return None
    try:
        return kind(str(text).strip())
    except ValueError:
        expected = "an integer" if kind is int else "a number"
        raise ConfigError(f"{name} {text!r}: expected {expected}") from None


def still_options(*, background: str | None = None, alpha_threshold: str | None = None,
                  erode: str | None = None, feather: str | None = None,
                  contrast: str | None = None, quality: str | None = None,
                  model: str | None = None, matting: str | None = None,
                  foreground: str | None = None, **fields: Any) -> StillOptions:
    """StillOptions from form fields with the meaning of `vbg still`'s flags."""
    if foreground is not None and foreground.strip():
        fields["foreground"] = truthy(foreground)
    return StillOptions(
        model=(model or "auto").strip() or "auto", **render.parse_background(background),
        matting=(matting or "fine").strip().lower() or "fine",
        alpha_threshold=number("alpha_threshold", alpha_threshold),
        erode=number("erode", erode, int), feather=number("feather", feather, int),
        contrast=number("contrast", contrast), quality=number("quality", quality, int),
        **fields)


def pool_of(request: Request) -> WorkPool:
    """The app's worker pool."""
    return request.app.state.pool


async def run_job(request: Request, fn: Any, *args: Any) -> Any:
    """fn(*args) in the worker pool (Busy -> 503 via the app's handler)."""
    return await pool_of(request).run(fn, *args)


def render_upload(image: UploadFile, background_image: UploadFile | None,
                  options: StillOptions, fmt: str | None, with_matte: bool
                  ) -> render.Rendered:
    """Worker thread: save the upload(s), render, encode."""
    name = image.filename or "image"
    with render.temp_folder() as folder:
        options = own_background(options, background_image, Path(folder))
        chosen = render.output_format(fmt, options)
        upload = render.save_upload(image.file, Path(folder), name)
        return render.render(upload, name, options, chosen, with_matte)


def own_background(options: StillOptions, background_image: UploadFile | None,
                   folder: Path) -> StillOptions:
    """The options with the uploaded background image, when one was sent."""
    if background_image is None or not background_image.filename:
        return options
    path = render.save_upload(background_image.file, folder, background_image.filename, "bg")
    return render.with_background_image(options, path, background_image.filename)


def render_file(path: Path, name: str, options: StillOptions, fmt: str) -> render.Rendered:
    """Worker thread: one photo already on disk."""
    return render.render(path, name, options, fmt)


def prepare_batch(uploads: list[UploadFile], background_image: UploadFile | None,
                  options: StillOptions, folder: Path
                  ) -> tuple[StillOptions, list[tuple[str, Path]], list[str]]:
    """Worker thread: the uploads saved (zips unpacked): (options, [(name, path)], errors)."""
    options = own_background(options, background_image, folder)
    items: list[tuple[str, Path]] = []
    errors: list[str] = []
    for n, upload in enumerate(uploads):
        name = upload.filename or f"image-{n + 1}"
        path = render.save_upload(upload.file, folder, name, f"in{n:05d}")
        if not archive.is_zip(path):
            items.append((name, path))
            continue
        unpacked = folder / f"zip{n:05d}"
        unpacked.mkdir()
        try:
            items += [(f"{name}/{member}", file) for member, file
                      in archive.extract_photos(path, unpacked, name)]
        except VbgError as e:
            errors.append(str(e))
        path.unlink()
    return options, items, errors


def matte_upload(image: UploadFile, options: StillOptions) -> render.Rendered:
    """Worker thread: the matte of the upload."""
    name = image.filename or "image"
    with render.temp_folder() as folder:
        return render.render_matte(render.save_upload(image.file, Path(folder), name), name,
                                   options)


def image_response(result: render.Rendered, **headers: str) -> Response:
    """The encoded image, named for download."""
    return Response(result.data, media_type=result.media_type, headers={
        "Content-Disposition": f'inline; filename="{result.name}"', **headers})


@router.post("/api/cutout", responses=IMAGE_RESPONSES, summary="Cut out the person")
async def cutout(request: Request, image: ImageFile, background: Text = None,
                 background_image: Annotated[UploadFile | None, File()] = None,
                 format: Text = None, alpha_threshold: Text = None, erode: Text = None,
                 feather: Text = None, contrast: Text = None,
                 matting: Text = None, foreground: Text = None, quality: Text = None
                 ) -> Response:
    """The cut-out of `image`: a transparent RGBA PNG by default, as `vbg still` makes.

    background: empty (transparent), a colour (white, #rrggbb, r,g,b), blur:N (the photo's own
    background blurred, 1-100) or a bundled background (studio, space, launch);
    background_image: your own background file; format: png (default), jpeg (needs a
    background) or webp; alpha_threshold (0-1), erode (px, negative grows), feather (px),
    contrast (> 0), quality (1-100), matting (fine, the default, or fast) and foreground
    (false: keep the photo's own edge colours) as `vbg still`'s flags.
    """
    options = still_options(background=background, alpha_threshold=alpha_threshold,
                            erode=erode, feather=feather, contrast=contrast,
                            matting=matting, foreground=foreground, quality=quality)
    result = await run_job(request, render_upload, image, background_image, options, format,
                           False)
    return image_response(result)


@router.post("/api/matte", responses=IMAGE_RESPONSES, summary="The alpha matte")
async def matte(request: Request, image: ImageFile, alpha_threshold: Text = None,
                erode: Text = None, feather: Text = None, contrast: Text = None,
                matting: Text = None, foreground: Text = None) -> Response:
    """The alpha matte of `image` as an 8-bit grey PNG (255 = person), the photo's size."""
    options = still_options(alpha_threshold=alpha_threshold, erode=erode, feather=feather,
                            contrast=contrast,
                            matting=matting, foreground=foreground)
    return image_response(await run_job(request, matte_upload, image, options))


@router.post("/api/id-photo", responses=IMAGE_RESPONSES, summary="An ID photo")
async def id_photo(request: Request, image: ImageFile, preset: Text = None, color: Text = None,
                   allow_multiple: Text = None, force: Text = None, size: Text = None,
                   dpi: Text = None, max_kb: Text = None, format: Text = None,
                   quality: Text = None) -> Response:
    """An ID photo of the one person in `image`, judged as `vbg still --id-photo` judges it:
    JPEG at 300 dpi by default.

    preset: passport (default), 1inch, 2inch, us... (GET /api/presets); color: white
    (default), blue, red or any colour; allow_multiple: true takes the largest of several
    faces; size: "WxH" px or "35x45mm" instead of the preset's; dpi; max_kb: the best JPEG
    quality within that many KB; force: true returns the best effort when a rule fails
    (else 422 with the report). The compliance report comes back as JSON in the
    X-Vbg-Report header.
    """
    options = id_photo_options(preset, color, allow_multiple, quality, force=force, size=size,
                               dpi=dpi, max_kb=max_kb)
    result = await run_job(request, render_upload, image, None, options, format, False)
    return image_response(result, **{"X-Vbg-Report": render.report_header(result.report)})


def id_photo_options(preset: str | None, color: str | None, allow_multiple: str | None,
                     quality: str | None, *, force: str | None = None, size: str | None = None,
                     dpi: str | None = None, max_kb: str | None = None) -> StillOptions:
    """StillOptions for an ID photo from the form fields."""
    name = (preset or "passport").strip().lower()
    chosen = (color or "white").strip() or "white"
    parse_color(chosen)  # a bad colour fails before the photo is read
    return StillOptions(id_photo=name, color=chosen, allow_multiple=truthy(allow_multiple),
                        quality=number("quality", quality, int), force=truthy(force),
                        id_size=(size or "").strip() or None, dpi=number("dpi", dpi, int),
                        max_kb=number("max_kb", max_kb, int))


def truthy(text: str | None) -> bool:
    """A form checkbox or flag: 1, true, on, yes."""
    return (text or "").strip().lower() in ("1", "true", "on", "yes")


@router.post("/api/batch", responses={200: {"content": {"application/zip": {}}}},
             summary="Many photos, one zip")
async def batch(request: Request,
                images: Annotated[list[UploadFile], File(description="several photos, or "
                                                         "zips of photos")],
                background_image: Annotated[UploadFile | None, File()] = None,
                background: Text = None, format: Text = None, alpha_threshold: Text = None,
                erode: Text = None, feather: Text = None, contrast: Text = None,
                matting: Text = None, foreground: Text = None,
                quality: Text = None) -> Response:
    """The same cut-out for every file in `images` (a zip among them: every photo in it): a
    zip with one output per good file and errors.txt naming each file that failed and why
    (the others go on). Fields as for /api/cutout."""
    options = still_options(background=background, alpha_threshold=alpha_threshold,
                            erode=erode, feather=feather, contrast=contrast,
                            matting=matting, foreground=foreground, quality=quality)
    render.output_format(format, options)  # a bad format fails the request, not every file
    chosen = render.output_format(format, options)  # a bad format fails the request
    fd, zip_name = tempfile.mkstemp(prefix="vbg-batch-", suffix=".zip")
    os.close(fd)
    taken: set[str] = set()
    try:
        with render.temp_folder() as folder, \
                zipfile.ZipFile(zip_name, "w", zipfile.ZIP_STORED) as result_zip:
            options, items, errors = await run_patiently(
                request, prepare_batch, images, background_image, options, Path(folder))
            for name, path in items:
                try:
                    result = await run_patiently(request, render_file, path, name, options,
                                                 chosen)
                except VbgError as e:
                    errors.append(f"{name}: {error_reason(e)}")
                    continue
                finally:
                    path.unlink(missing_ok=True)
                result_zip.writestr(unique_name(result.name, taken), result.data)
            result_zip.writestr("errors.txt", errors_text(errors, len(items)))
    except BaseException:
        os.unlink(zip_name)
        raise
    return FileResponse(zip_name, media_type="application/zip", filename="batch_results.zip",
                        headers={"X-Vbg-Errors": str(len(errors))},
                        background=BackgroundTask(os.unlink, zip_name))


async def run_patiently(request: Request, fn: Any, *args: Any) -> Any:
    """run_job, waiting for a free worker instead of failing (an accepted batch goes on)."""
    while True:
        try:
            return await run_job(request, fn, *args)
        except Busy as busy:
            await asyncio.sleep(min(busy.retry_after, 2))


def error_reason(error: VbgError) -> str:
    """The reason part of an error (the name is said separately)."""
    text = str(error)
    reason = getattr(error, "reason", None)
    return " ".join(str(reason).split()) if reason else text.split(": ", 1)[-1]


def errors_text(errors: list[str], total: int) -> str:
    """errors.txt: one line per failed file, or a line saying all went well."""
    if not errors:
        return f"all {total} files done, no errors\n"
    return "".join(f"{line}\n" for line in errors)


def unique_name(name: str, taken: set[str]) -> str:
    """`name`, or name-2, name-3... when an earlier file took it."""
    stem, suffix = os.path.splitext(name)
    candidate, n = name, 1
    while candidate.lower() in taken or candidate.lower() == "errors.txt":
        n += 1
        candidate = f"{stem}-{n}{suffix}"
    taken.add(candidate.lower())
    return candidate


@router.get("/api/presets", summary="ID-photo presets")
async def presets() -> JSONResponse:
    """The ID-photo presets: pixel size, dpi, print size, head/eye/top ranges, the rule."""
    return JSONResponse(preset_table())


@router.get("/api/about", summary="Versions, models, provider")
async def about(request: Request) -> JSONResponse:
    """Versions, models and their licences, the provider that runs, the server's state."""
    state = request.app.state
    return JSONResponse({
        "app": "vbg", "version": __version__, "pid": os.getpid(),
        "python": platform.python_version(), "platform": platform.platform(terse=True),
        "versions": versions(), "models": model_list(), "provider": render.provider_info(),
        "live": state.live is not None, "server": {
            "host": state.host, "port": state.port, "token": state.token is not None,
            "output_dir": str(state.output_dir), "max_upload_bytes": state.max_body},
        "work": pool_of(request).stats()})


def versions() -> dict[str, str]:
    """Installed versions of the libraries vbg runs on."""
    found = {}
    for name in _VERSIONS:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def model_list() -> list[dict[str, Any]]:
    """Bundled models and RVM: name, file, licence, installed."""
    listed = []
    try:
        entries = models.manifest()
    except VbgError as e:
        return [{"name": "manifest", "error": str(e)}]
    for name, entry in sorted(entries.items()):
        listed.append({"name": name, "file": entry.get("file"), "licence": entry.get("licence"),
                       "installed": (models.models_dir() / entry["file"]).is_file()})
    listed.append({"name": "rvm", "file": RVM_FILE, "licence": "GPL-3.0",
                   "installed": rvm_installed(), "pull": "vbg models pull rvm"})
    return listed
