"""`vbg models`: list the bundled models and check their integrity."""

from __future__ import annotations

import argparse

from vbg import models
from vbg.errors import ModelError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", nargs="?", default="list", choices=["list"],
                   help="list: bundled models, their licence and sha256 check")


def run(args: argparse.Namespace) -> int:
    from vbg.segment import available

    segmenters = set(available())
    bad = 0
    for name, entry in sorted(models.manifest().items()):
        try:
            models.verified_path(name)
            state = "ok"
        except ModelError as e:
            state, bad = f"BAD: {e}", bad + 1
        use = "segmenter" if name in segmenters else "helper"
        print(f"{name:18s} {use:9s} {entry['licence']:10s} {entry['file']:38s} {state}")
    return 1 if bad else 0
