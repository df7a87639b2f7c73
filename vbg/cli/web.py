"""`vbg web`: the photo studio page and REST API on http://127.0.0.1:7860/."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

from vbg.errors import ConfigError
from vbg.web.app import DEFAULT_PORT, create_app, default_output_dir, serve
from vbg.web.security import is_loopback
from vbg.web.work import DEFAULT_QUEUE, default_workers, limit_malloc_arenas

TOKEN_ENV = "VBG_WEB_TOKEN"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only); any "
                        "other needs --token")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--token", default=None,
                   help=f"secret every request must carry (header X-Vbg-Token, or open "
                        f"/?token=...); also from ${TOKEN_ENV}")
    p.add_argument("--output", type=Path, default=None, metavar="DIR",
                   help=f"folder for batch results (default {default_output_dir()})")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help=f"photos processed at once (default {default_workers()} here)")
    p.add_argument("--queue", type=int, default=DEFAULT_QUEUE, metavar="N",
                   help=f"photos waiting beyond those; more get 503 (default {DEFAULT_QUEUE})")


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl+C; ConfigError (exit 2) for a bad flag or a taken port."""
    token = args.token or os.environ.get(TOKEN_ENV) or None
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port {args.port}: use 1-65535")
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: use 1 or more")
    if args.queue < 0:
        raise ConfigError(f"--queue {args.queue}: use 0 or more")
    if not is_loopback(args.host):
        print(f"vbg web: warning: --host {args.host} makes the studio reachable from other "
              "machines; every request must carry the token", file=sys.stderr)
    limit_malloc_arenas(max(2, args.workers or default_workers()))
    app = create_app(host=args.host, port=args.port, token=token, output_dir=args.output,
                     workers=args.workers, queue=args.queue)

    def ready(url: str) -> None:
        shown = f"{url}?token=..." if token else url
        print(f"vbg web: studio at {shown} (API docs: {url}docs); Ctrl+C stops it", flush=True)

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C: the way to stop it, not an error
        serve(app, args.host, args.port, on_ready=ready)
    print("vbg web: stopped", flush=True)
    return 0
