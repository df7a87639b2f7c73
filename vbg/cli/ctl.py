"""`vbg ctl`: drive the running live mode from scripts and desktop hotkeys."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from vbg.errors import ConfigError
from vbg.live import control

TIMEOUT_S = 5.0
VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v")
NO_DAEMON = 1  # exit status when no live mode answers
BAD_VALUE = 2  # usage errors and values the daemon refused


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("status", help="state of the running live mode")
    sub.add_parser("background", help="an image (or looping video) file as the background"
                   ).add_argument("file", metavar="FILE")
    sub.add_parser("blur", help="blur the real background with strength N (1-100)"
                   ).add_argument("strength", metavar="N", type=int)
    sub.add_parser("color", help="a solid colour background: #rrggbb, r,g,b or a name"
                   ).add_argument("color", metavar="C")
    sub.add_parser("mirror", help="flip the picture horizontally, or not"
                   ).add_argument("on", metavar="on|off", choices=["on", "off"])
    sub.add_parser("pause", help="release the camera (its light goes off); apps see a card")
    sub.add_parser("resume", help="open the camera again")


def changes_for(args: argparse.Namespace) -> dict[str, Any]:
    """The PATCH body for a setting action."""
    if args.action == "background":
        path = Path(args.file).expanduser()
        if not path.is_file():
            raise ConfigError(f"background file {args.file!r} not found: give an image or "
                              "video file")
        key = "video" if path.suffix.lower() in VIDEO_SUFFIXES else "background"
        return {key: str(path.resolve())}
    if args.action == "blur":
        return {"blur": args.strength}
    if args.action == "color":
        return {"color": args.color}
    return {"mirror": args.on == "on"}


def request(url: str, method: str = "GET", body: dict[str, Any] | None = None
            ) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) from the daemon; URLError when nothing answers."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        try:
            payload = json.loads(e.read() or b"{}")
        except ValueError:
            payload = {}
        return e.code, payload if isinstance(payload, dict) else {}


def describe(state: dict[str, Any]) -> list[str]:
    """The state in a few lines for people."""
    def num(value: Any, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    bg = state.get("background") or {}
    chosen = next(((k, v) for k, v in bg.items() if v), None)
    background = "blur 15 (default)" if chosen is None else (
        f"{'colour' if chosen[0] == 'color' else chosen[0]} {chosen[1]}")
    camera = state.get("camera") or {}
    return [
        f"vbg live: {state.get('state', '?')}, {num(state.get('fps'), '.1f')} fps, "
        f"CPU {num(state.get('cpu_ms_per_frame'), '.1f')} ms/frame, "
        f"latency p95 {num(state.get('latency_p95_ms'), '.0f')} ms",
        f"model {state.get('model')} on {str(state.get('provider', '?')).upper()}; camera "
        f"{camera.get('status', '?')} ({camera.get('source') or '-'})",
        f"background {background}; mirror {'on' if state.get('mirror') else 'off'}"
        + (f"; web {state['web']}" if state.get("web") else ""),
    ]


def run(args: argparse.Namespace) -> int:
    changes = None if args.action in ("status", "pause", "resume") else changes_for(args)
    daemon = control.find_daemon()
    if daemon is None:
        print("vbg ctl: no live mode is running (start it with `vbg`; its web control must be "
              "on, not --no-web)", file=sys.stderr)
        return NO_DAEMON
    base = daemon["url"].rstrip("/") + "/api/live"
    try:
        if args.action == "status":
            status, body = request(base)
        elif changes is None:
            status, body = request(f"{base}/{args.action}", "POST", {})
        else:
            status, body = request(base, "PATCH", changes)
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        print(f"vbg ctl: live mode (pid {daemon.get('pid')}) does not answer at "
              f"{daemon['url']}: {reason}", file=sys.stderr)
        return NO_DAEMON
    if status == 409:
        print(f"vbg ctl: {body.get('error', 'live mode is not running')}", file=sys.stderr)
        return NO_DAEMON
    if status != 200:
        print(f"vbg ctl: {body.get('error', f'the daemon answered HTTP {status}')}",
              file=sys.stderr)
        return BAD_VALUE
    lines = describe(body)
    print("\n".join(lines if args.action == "status" else lines[:1] + lines[2:]))
    return 0
