"""The page's own API: render one photo to JSON + stored files, batches kept in a folder."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
import threading
import time
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.background import BackgroundTask

from vbg.errors import SinkError, VbgError
from vbg.web import archive as archive_photos
from vbg.web import render
from vbg.web.photo_routes import (
    error_reason,
    errors_text,
    id_photo_options,
    own_background,
    render_upload,
    run_job,
    still_options,
    truthy,
    unique_name,
)

router = APIRouter(prefix="/api/studio", include_in_schema=False)
Text = Annotated[str | None, Form()]
SCRATCH_KEPT = 48  # single-image results kept for the page (older ones are deleted)
BATCHES_KEPT = 32  # batches the page can still zip (their folders stay on disk)


@dataclass
class Batch:
    """A batch the page fills one file at a time: outputs in `folder`, errors listed."""

    id: str
    folder: Path
    errors: list[str] = field(default_factory=list)
    names: set[str] = field(default_factory=set)
    done: int = 0
    inbox: dict[str, Path] = field(default_factory=dict)  # photos unpacked from zips, by name


class Studio:
    """The page's stores: a scratch folder for single results and the batches' folders."""

    def __init__(self, output_dir: Path) -> None:
        self.output_dir = output_dir
        self._scratch = tempfile.TemporaryDirectory(prefix="vbg-studio-")
        self.scratch = Path(self._scratch.name)
        self.batches: OrderedDict[str, Batch] = OrderedDict()
        self._lock = threading.Lock()
        self._scratch_files: list[Path] = []

    def new_batch(self) -> Batch:
        """A batch with a fresh folder under output_dir (created now)."""
        stamp = time.strftime("batch-%Y%m%d-%H%M%S")
        with self._lock:
            for n in range(1, 1000):
                folder = self.output_dir / (stamp if n == 1 else f"{stamp}-{n}")
                try:
                    folder.mkdir(parents=True, exist_ok=False)
                    break
                except FileExistsError:
                    continue
                except OSError as e:
                    raise SinkError(f"cannot create the batch folder {folder}: "
                                    f"{e.strerror or e} (start vbg web with --output DIR)"
                                    ) from None
            batch = Batch(secrets.token_hex(6), folder)
            self.batches[batch.id] = batch
            while len(self.batches) > BATCHES_KEPT:
                self.batches.popitem(last=False)
        return batch

    def batch(self, batch_id: str) -> Batch:
        """The batch of that id, or 404."""
        found = self.batches.get(batch_id)
        if found is None:
            raise HTTPException(404, f"no batch {batch_id!r} (the server was restarted? start "
                                "the batch again)")
        return found

    def keep(self, batch: Batch | None, name: str, data: bytes) -> tuple[str, str]:
        """Store an output atomically: (url, path on disk)."""
        with self._lock:
            if batch is None:
                key = secrets.token_hex(4)
                folder, store, stored = self.scratch, "scratch", f"{key}-{name}"
            else:
                folder, store, stored = batch.folder, batch.id, unique_name(name, batch.names)
        path = folder / stored
        write_atomic(path, data)
        if batch is None:
            with self._lock:
                self._scratch_files.append(path)
                while len(self._scratch_files) > SCRATCH_KEPT:
                    self._scratch_files.pop(0).unlink(missing_ok=True)
        return f"/api/studio/files/{store}/{stored}", str(path)

    def file(self, store: str, name: str) -> Path:
        """A stored output by store and name (no path escapes), or 404."""
        folder = self.scratch if store == "scratch" else self.batch(store).folder
        if "/" in name or "\\" in name or name.startswith("."):
            raise HTTPException(404, "no such file")
        path = folder / name
        if not path.is_file():
            raise HTTPException(404, f"{name}: no longer kept (results are kept for the last "
                                f"{SCRATCH_KEPT} photos)")
        return path

    def close(self) -> None:
        """Delete the scratch folder."""
        self._scratch.cleanup()


def write_atomic(path: Path, data: bytes) -> None:
    """Write bytes through a temporary file in the same folder, then rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise SinkError(f"cannot write {path}: {e.strerror or e}") from None


def studio(request: Request) -> Studio:
    """The app's Studio."""
    return request.app.state.studio


@router.post("/batches")
async def start_batch(request: Request) -> JSONResponse:
    """A new batch: {id, folder}."""
    batch = studio(request).new_batch()
    return JSONResponse({"id": batch.id, "folder": str(batch.folder)})


@router.post("/batches/{batch_id}/unzip")
async def unzip(request: Request, batch_id: str,
                archive: Annotated[UploadFile, File()]) -> JSONResponse:
    """Unpack a zip of photos for the batch: {"members": [names]} to render one by one."""
    batch = studio(request).batch(batch_id)
    folder = studio(request).scratch / f"inbox-{batch.id}"
    folder.mkdir(exist_ok=True)
    members = await run_job(request, unpack, archive, folder)
    for name, path in members:
        batch.inbox[name] = path
    return JSONResponse({"members": [name for name, _ in members]})


def unpack(upload: UploadFile, folder: Path) -> list[tuple[str, Path]]:
    """Worker thread: the zip's photos, extracted into their own folder under `folder`."""
    name = upload.filename or "archive.zip"
    target = Path(tempfile.mkdtemp(dir=folder))
    path = render.save_upload(upload.file, target, name, "archive")
    try:
        members = archive_photos.extract_photos(path, target, name)
    finally:
        path.unlink(missing_ok=True)
    return [(f"{name}/{member}", file) for member, file in members]


def render_member(path: Path, name: str, options: Any, fmt: str | None, with_matte: bool,
                  background_image: UploadFile | None) -> render.Rendered:
    """Worker thread: a photo unpacked from a zip (deleted once done)."""
    try:
        with render.temp_folder() as folder:
            options = own_background(options, background_image, Path(folder))
            return render.render(path, name, options, render.output_format(fmt, options),
                                 with_matte)
    finally:
        path.unlink(missing_ok=True)


@router.post("/render")
async def render_one(request: Request, image: Annotated[UploadFile | None, File()] = None,
                     background_image: Annotated[UploadFile | None, File()] = None,
                     mode: Text = None, batch: Text = None, member: Text = None,
                     matte: Text = None,
                     background: Text = None, format: Text = None, alpha_threshold: Text = None,
                     erode: Text = None, feather: Text = None, contrast: Text = None,
                     matting: Text = None, foreground: Text = None,
                     quality: Text = None, preset: Text = None, color: Text = None,
                     allow_multiple: Text = None, force: Text = None, size: Text = None
                     ) -> JSONResponse:
    """One photo for the page: its outputs stored, their URLs and the checks as JSON."""
    store = studio(request)
    target = store.batch(batch) if batch else None
    started = time.monotonic()
    try:
        if (mode or "cutout") == "id-photo":
            options = id_photo_options(preset, color, allow_multiple, quality, force=force,
                                       size=size)
        else:
            options = still_options(background=background, alpha_threshold=alpha_threshold,
                                    erode=erode, feather=feather, contrast=contrast,
                                    matting=matting, foreground=foreground,
                                    quality=quality)
        if member and target is not None:
            if member not in target.inbox:
                raise HTTPException(404, f"{member}: not unpacked in this batch")
            result = await run_job(request, render_member, target.inbox.pop(member), member,
                                   options, format, truthy(matte), background_image)
        elif image is None:
            raise HTTPException(422, "missing field 'image' (the photo)")
        else:
            result = await run_job(request, render_upload, image, background_image, options,
                                   format, truthy(matte))
    except VbgError as e:
        if target is not None:
            shown = member or (image.filename if image is not None else None) or "image"
            target.errors.append(f"{shown}: {error_reason(e)}")
        raise
    url, path = store.keep(target, result.name, result.data)
    matte_url = None
    if result.matte is not None:
        stem = os.path.splitext(result.name)[0]
        matte_url, _ = store.keep(target, f"{stem}.matte.png", result.matte)
    if target is not None:
        target.done += 1
    return JSONResponse({
        "name": os.path.basename(path), "url": url, "matte_url": matte_url,
        "media_type": result.media_type, "width": result.width, "height": result.height,
        "bytes": len(result.data), "seconds": round(time.monotonic() - started, 3),
        "report": result.report, "saved": path if target is not None else None})


@router.get("/files/{store_id}/{name}")
async def stored_file(request: Request, store_id: str, name: str) -> FileResponse:
    """A stored output (download=1: as an attachment)."""
    path = studio(request).file(store_id, name)
    download = request.query_params.get("download") == "1"
    return FileResponse(str(path), filename=path.name.split("-", 1)[-1]
                        if store_id == "scratch" else path.name,
                        content_disposition_type="attachment" if download else "inline")


@router.get("/batches/{batch_id}/zip")
async def batch_zip(request: Request, batch_id: str) -> Response:
    """Everything of the batch as batch_results.zip: outputs plus errors.txt."""
    batch = studio(request).batch(batch_id)
    fd, zip_name = tempfile.mkstemp(prefix="vbg-batch-", suffix=".zip")
    os.close(fd)
    try:
        with zipfile.ZipFile(zip_name, "w", zipfile.ZIP_STORED) as archive:
            for path in sorted(batch.folder.iterdir()):
                if path.is_file() and not path.name.startswith("."):
                    archive.write(path, path.name)
            archive.writestr("errors.txt", errors_text(batch.errors,
                                                       batch.done + len(batch.errors)))
    except BaseException:
        os.unlink(zip_name)
        raise
    return FileResponse(zip_name, media_type="application/zip", filename="batch_results.zip",
                        background=BackgroundTask(os.unlink, zip_name))
