"""The Live tab's API: state, changes, pause/resume, preview stream, background gallery."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from vbg.errors import BackgroundError, ModelError
from vbg.live.control import LiveControl
from vbg.segment import available
from vbg.segment.rvm import rvm_installed
from vbg.web import gallery

router = APIRouter(tags=["live"])
MAX_PREVIEW_WATCHERS = 4  # pages streaming the preview at once
NO_STORE = {"Cache-Control": "no-store"}
BOUNDARY = "vbgframe"
EXAMPLES = {
    "colour": {"summary": "a green background", "value": {"color": "#00ff00"}},
    "blur": {"summary": "blur the room", "value": {"blur": 30}},
    "image": {"summary": "a picture", "value": {"background": "/home/me/Pictures/beach.jpg"}},
    "mirror": {"summary": "mirror view", "value": {"mirror": True}},
    "table": {"summary": "a nested table", "value": {"smoothing": {"tau": 0.2}}},
}


def control_of(request: Request) -> LiveControl:
    """The running live mode, or 409 when this server has none (or it has ended)."""
    live = request.app.state.live
    if live is None:
        raise HTTPException(409, "live mode is not running here: this is `vbg web`, the photo "
                            "studio; start live mode with `vbg` (it serves this page too)")
    if not isinstance(live, LiveControl):  # a bare LivePipeline: nothing remembered
        control = getattr(request.app.state, "live_control", None)
        if control is None or control.live is not live:
            control = request.app.state.live_control = LiveControl(live)
        live = control
    if not live.running:
        raise HTTPException(409, "live mode has ended")
    return live


def found(kind: str, name: str) -> Path:
    """A gallery file, or 404."""
    try:
        return gallery.find(kind, name)
    except BackgroundError as e:
        raise HTTPException(404, str(e)) from None


@router.get("/api/live", summary="The live state")
async def live_state(request: Request) -> JSONResponse:
    """fps, CPU ms per frame, latency p95, model, provider, camera, background, paused."""
    control = control_of(request)
    state = await run_in_threadpool(control.state)
    state["models"] = ["auto", *(m for m in available() if m != "rvm" or rvm_installed())]
    return JSONResponse(state, headers=NO_STORE)


@router.patch("/api/live", summary="Change the running live mode")
async def live_update(request: Request, changes: Annotated[
        dict[str, Any], Body(openapi_examples=EXAMPLES)]) -> JSONResponse:
    """The same keys as the config file (nested tables or "smoothing.tau"); applied before
    the next frame; remembered in ~/.config/vbg/config.toml. 422 with the reason when a key or
    value is bad."""
    control = control_of(request)
    if not changes:
        raise HTTPException(422, "nothing to change: send config-file keys, e.g. "
                            '{"color": "#00ff00"}')
    try:
        state = await run_in_threadpool(control.update, changes)
    except ModelError as e:  # a model name is the request's fault here, not the server's
        raise HTTPException(422, str(e)) from None
    return JSONResponse(state, headers=NO_STORE)


@router.post("/api/live/pause", summary="Pause: release the camera, show a still card")
async def live_pause(request: Request) -> JSONResponse:
    control = control_of(request)
    return JSONResponse(await run_in_threadpool(control.pause), headers=NO_STORE)


@router.post("/api/live/resume", summary="Resume: open the camera again")
async def live_resume(request: Request) -> JSONResponse:
    control = control_of(request)
    return JSONResponse(await run_in_threadpool(control.resume), headers=NO_STORE)


@router.get("/api/live/preview.jpg", summary="The next output frame as a JPEG")
async def live_preview_frame(request: Request) -> Response:
    tap = control_of(request).live.tap

    def grab() -> tuple[int, bytes] | None:
        with tap.watching():
            return tap.next_jpeg(tap.seq, 2.0)

    got = await run_in_threadpool(grab)
    if got is None:
        raise HTTPException(503, "no frame in 2 s (live mode is idle or starting); retry",
                            headers={"Retry-After": "1"})
    return Response(got[1], media_type="image/jpeg", headers=NO_STORE)


@router.get("/api/live/preview.mjpg", summary="The output as the apps see it (MJPEG)")
async def live_preview_stream(request: Request) -> StreamingResponse:
    """multipart/x-mixed-replace JPEGs, ~12 fps; frames are only copied while a page watches."""
    tap = control_of(request).live.tap
    if tap.watchers >= MAX_PREVIEW_WATCHERS:
        raise HTTPException(503, f"{tap.watchers} previews are open already; close one",
                            headers={"Retry-After": "5"})

    async def parts():
        with tap.watching():
            seq = 0
            while not await request.is_disconnected():
                got = await run_in_threadpool(tap.next_jpeg, seq, 1.0)
                if got is None:
                    continue
                seq, jpeg = got
                yield (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: "
                       f"{len(jpeg)}\r\n\r\n").encode() + jpeg + b"\r\n"

    return StreamingResponse(parts(), headers=NO_STORE,
                             media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}")


@router.get("/api/live/backgrounds", summary="The background gallery")
async def backgrounds() -> JSONResponse:
    """The bundled backgrounds and yours; PATCH /api/live with an entry's {key: path}."""
    items = await run_in_threadpool(gallery.listing)
    return JSONResponse({"backgrounds": items, "folder": str(gallery.user_dir())},
                        headers=NO_STORE)


@router.post("/api/live/backgrounds", status_code=201, summary="Add a background")
async def add_background(request: Request, file: Annotated[UploadFile, File()],
                         use: Annotated[bool, Form()] = False) -> JSONResponse:
    """An image (JPEG, PNG, WebP, BMP, TIFF) or a looping video (MP4, MKV, AVI, MOV, WebM),
    checked and kept under ~/.local/share/vbg/backgrounds; `use=true` applies it now."""
    data = await file.read()
    item = await run_in_threadpool(gallery.save_upload, data, file.filename or "")
    body: dict[str, Any] = {"background": item}
    if use:
        control = control_of(request)
        body["state"] = await run_in_threadpool(control.update, {item["key"]: item["path"]})
    return JSONResponse(body, status_code=201)


@router.get("/api/live/backgrounds/{kind}/{name}/thumb.jpg", include_in_schema=False)
async def background_thumb(kind: str, name: str) -> Response:
    path = found(kind, name)
    data = await run_in_threadpool(gallery.thumbnail, path)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})


@router.delete("/api/live/backgrounds/yours/{name}", summary="Remove one of your backgrounds")
async def remove_background(name: str) -> JSONResponse:
    await run_in_threadpool(found("yours", name).unlink)
    return JSONResponse({"removed": name})
