"""`vbg` command line: live mode by default, subcommands for stills, doctor, eval, bench, models."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from vbg import __version__, jit
from vbg.errors import VbgError

# subcommand -> module exposing add_arguments(parser) and run(args) -> int
SUBCOMMANDS = {
    "still": ("vbg.cli.still", "photos: cut-outs, new backgrounds, ID photos; files, folders"),
    "doctor": ("vbg.doctor", "check cameras, v4l2loopback, providers and models"),
    "eval": ("vbg.measure.eval", "score mattes against ground truth"),
    "bench": ("vbg.measure.bench", "measure CPU, fps and latency of the live pipeline"),
    "models": ("vbg.cli.models", "list or install models"),
    "web": ("vbg.cli.web", "photo studio page and REST API on http://127.0.0.1:7860/"),
    "ctl": ("vbg.cli.ctl", "control the running live mode: status, background, blur, pause..."),
}
LIVE_MODULE = "vbg.cli.live"


def _available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _module(name: str):
    return importlib.import_module(name)


def build_parser(live_module: str | None = LIVE_MODULE) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vbg",
        description="Virtual background camera. With no subcommand, runs live mode "
        "(camera -> matte -> background -> 'VBG Camera').",
    )
    parser.add_argument("--version", action="version", version=f"vbg {__version__}")
    if live_module and _available(live_module):
        _module(live_module).add_arguments(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in SUBCOMMANDS.items():
        if _available(module):
            p = sub.add_parser(name, help=help_, description=help_)
            _module(module).add_arguments(p)
    return parser


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # First run: compile the image kernels (one line saying so) before any module needs them.
    if argv[:1] != ["ctl"]:  # ctl only talks to the daemon: no kernels, answers at once
        jit.ensure_kernels(_log)
    parser = build_parser()
    args = parser.parse_args(argv)
    module = SUBCOMMANDS[args.command][0] if args.command else LIVE_MODULE
    if not _available(module):
        parser.error(f"'{args.command or 'live'}' is not available in this build")
    try:
        return int(_module(module).run(args) or 0)
    except VbgError as e:
        print(f"vbg: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
