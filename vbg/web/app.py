"""The studio's FastAPI app (page, REST API, live routes) and how to serve it on loopback."""

from __future__ import annotations

import contextlib
import errno
import inspect
import json
import logging
import os
import socket
import threading
import time
import urllib.request
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from vbg import __version__
from vbg.errors import ConfigError, ImageError, ModelError, SinkError, VbgError
from vbg.web import photo_routes, render, studio_routes
from vbg.web.live_routes import router as live_router
from vbg.web.security import MAX_BATCH_BODY_BYTES, MAX_BODY_BYTES, RequestGuard, is_loopback
from vbg.web.work import DEFAULT_QUEUE, Busy, WorkPool

if TYPE_CHECKING:
    from vbg.live.session import LivePipeline

DEFAULT_PORT = 7860
# No telemetry: FastAPI >= 0.160 has OpenTelemetry hooks (no-ops unless a provider is set up);
# switched off outright where the argument exists.
NO_TELEMETRY = ({"telemetry": {"tracing": False, "metrics": False, "logs": False,
                               "auto_configure": False}}
                if "telemetry" in inspect.signature(FastAPI).parameters else {})
STATIC = files("vbg.web") / "static"
_log = logging.getLogger("vbg.web")


def default_output_dir() -> Path:
    """Where batch results are written: ~/Pictures/vbg (a folder the user sees)."""
    return Path.home() / "Pictures" / "vbg"


def create_app(*, live: LivePipeline | Any = None, host: str = "127.0.0.1",
               port: int = DEFAULT_PORT, token: str | None = None,
               output_dir: Path | None = None, workers: int | None = None,
               queue: int = DEFAULT_QUEUE, max_body: int = MAX_BODY_BYTES) -> FastAPI:
    """The app: the page at /, the REST API under /api, its docs at /docs; `live` is the
    running live mode (None: photo studio only); max_body caps a request (batches: more)."""
    if not is_loopback(host) and not token:
        raise ConfigError(f"--host {host}: serving beyond this machine needs a token: add "
                          "--token SECRET (anyone who can reach the port could use it)")
    app = FastAPI(**NO_TELEMETRY, title="vbg studio", version=__version__, docs_url=None,
                  redoc_url=None,
                  description="Cut-outs, mattes, ID photos and live-camera control, all "
                  "local. Errors are JSON {\"error\": \"...\"}.")
    pool = WorkPool(workers, queue)
    render.set_threads(max(1, (os.cpu_count() or 2) // pool.workers))
    app.state.live, app.state.pool, app.state.token = live, pool, token
    app.state.host, app.state.port, app.state.max_body = host, port, max_body
    app.state.output_dir = Path(output_dir) if output_dir else default_output_dir()
    app.state.studio = studio_routes.Studio(app.state.output_dir)
    install_error_handlers(app)
    app.include_router(photo_routes.router)
    app.include_router(studio_routes.router)
    app.include_router(live_router)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"), headers=NO_STORE)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> FileResponse:
        return FileResponse(str(STATIC / "docs.html"), headers=NO_STORE)

    app.add_middleware(RequestGuard, host=host, port=port, token=token, max_body=max_body,
                       max_batch_body=max(max_body, MAX_BATCH_BODY_BYTES))
    app.router.add_event_handler("shutdown", pool.shutdown)
    app.router.add_event_handler("shutdown", app.state.studio.close)
    return app


NO_STORE = {"Cache-Control": "no-store"}


def status_of(error: VbgError) -> int:
    """HTTP status for a VbgError: 413 too large, 415 not an image, 422 other bad input."""
    text = str(getattr(error, "reason", error)).lower()
    if isinstance(error, ImageError):
        if "too large" in text:
            return 413
        if "not an image" in text or "unsupported format" in text or "svg" in text:
            return 415
        return 422
    if isinstance(error, ModelError):
        return 503
    if isinstance(error, SinkError):
        return 500
    return 422


def install_error_handlers(app: FastAPI) -> None:
    """Every error becomes JSON {"error": "..."}; no traceback ever reaches a client."""

    @app.exception_handler(VbgError)
    async def vbg_error(request: Request, error: VbgError) -> JSONResponse:
        body: dict[str, Any] = {"error": in_web_words(str(error))}
        if isinstance(getattr(error, "report", None), dict):  # a refused ID photo: why
            body["report"] = error.report  # type: ignore[attr-defined]
        return JSONResponse(body, status_code=status_of(error))

    @app.exception_handler(Busy)
    async def busy(request: Request, error: Busy) -> JSONResponse:
        return JSONResponse({"error": f"busy: {request.app.state.pool.pending} photos are "
                             f"being processed or waiting; retry in {error.retry_after} s"},
                            status_code=503, headers={"Retry-After": str(error.retry_after)})

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": validation_message(error)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        detail = error.detail if isinstance(error.detail, str) else json.dumps(error.detail)
        if error.status_code == 400 and "parsing the body" in detail:
            detail = ("the request body could not be read: send the fields as multipart "
                      "form data, e.g. curl -F image=@photo.jpg")
        return JSONResponse({"error": detail}, status_code=error.status_code,
                            headers=getattr(error, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        _log.error("vbg web: %s %s failed: %s: %s", request.method, request.url.path,
                   type(error).__name__, error)
        return JSONResponse({"error": f"internal error ({type(error).__name__}: {error}); "
                             "the server keeps running"}, status_code=500)


# The command-line flags named in library messages, as the API's fields and the page's words.
WEB_WORDS = (("use --allow-multiple to take the largest", "send allow_multiple=1 (the page: "
              "\"several people: use the largest face\") to take the largest"),
             ("; --force writes it anyway", "; force=1 makes it anyway (the page: \"Make it "
              "anyway\")"),
             ("raise the limit with --max-pixels, e.g. --max-pixels 150M",
              "use `vbg still --max-pixels 150M` for it"))


def in_web_words(message: str) -> str:
    """A library message with its command-line advice turned into the API's fields."""
    for flag, field in WEB_WORDS:
        message = message.replace(flag, field)
    return message


def validation_message(error: RequestValidationError) -> str:
    """One line for FastAPI's validation errors: which field, what is wrong."""
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item.get("loc", ()) if p not in ("body", "query"))
        if item.get("type") == "missing":
            hint = " (send the photo as multipart, e.g. curl -F image=@photo.jpg)" \
                if where in ("image", "images") else ""
            parts.append(f"missing field {where!r}{hint}")
        else:
            parts.append(f"{where or 'request'}: {item.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port; ConfigError naming who holds the port when taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise ConfigError(port_taken(host, port)) from None
        if e.errno == errno.EADDRNOTAVAIL:
            raise ConfigError(f"--host {host}: no such address on this machine") from None
        if e.errno == errno.EACCES:
            raise ConfigError(f"port {port}: permission denied (ports below 1024 need root; "
                              "choose --port 7860 or another above 1024)") from None
        raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def port_taken(host: str, port: int) -> str:
    """The one line for a port in use: vbg itself (from its /api/about) or another program."""
    probe = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    url = f"http://{probe if ':' not in probe else f'[{probe}]'}:{port}/api/about"
    try:
        with urllib.request.urlopen(url, timeout=1.0) as reply:  # loopback only, no network
            about = json.loads(reply.read(65536))
        if about.get("app") == "vbg":
            what = "live mode" if about.get("live") else "vbg web"
            return (f"port {port} is in use by vbg itself ({what}, pid {about.get('pid')}): "
                    f"open http://127.0.0.1:{port}/ or choose another with --port")
    except Exception:  # not vbg, or not HTTP at all
        pass
    return f"port {port} is in use by another program: choose another with --port"


class ServerHandle:
    """A uvicorn server running in a background thread; stop() ends it."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, url: str) -> None:
        self.server, self.thread, self.url = server, thread, url

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the server to exit and wait for its thread."""
        self.server.should_exit = True
        self.thread.join(timeout)


def _server(app: FastAPI, quiet: bool) -> uvicorn.Server:
    config = uvicorn.Config(app, log_level="warning" if quiet else "info", access_log=False,
                            lifespan="on", server_header=False, date_header=False,
                            timeout_graceful_shutdown=2)
    return uvicorn.Server(config)


def serve_in_thread(app: FastAPI, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                    timeout: float = 10.0) -> ServerHandle:
    """Serve `app` on host:port from a daemon thread (live mode); ConfigError when the port is
    taken; returns once the server answers."""
    sock = bind(host, port)
    app.state.port = sock.getsockname()[1]
    server = _server(app, quiet=True)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name="vbg-web", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    if not server.started:
        server.should_exit = True
        with contextlib.suppress(OSError):
            sock.close()
        raise ConfigError(f"the web server on {host}:{port} did not start")
    return ServerHandle(server, thread, url_of(host, sock.getsockname()[1]))


def serve(app: FastAPI, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
          on_ready: Any = None) -> None:
    """Serve `app` until Ctrl+C (blocking, for `vbg web`)."""
    sock = bind(host, port)
    app.state.port = sock.getsockname()[1]
    if on_ready is not None:
        on_ready(url_of(host, sock.getsockname()[1]))
    _server(app, quiet=True).run(sockets=[sock])


def url_of(host: str, port: int) -> str:
    """The address to open in a browser."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"http://{shown if ':' not in shown else f'[{shown}]'}:{port}/"
