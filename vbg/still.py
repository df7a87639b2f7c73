"""`vbg still`: cut people out of photos (RGBA PNG) or put them on a new background, in batches."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

import cv2
import numpy as np

from vbg.errors import ConfigError, ImageError, SinkError, VbgError
from vbg.imageio import WRITE_FORMATS, read_image, write_image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
# Photos: `--model auto` = RVM when installed (`vbg models pull rvm`), else both bundled selfie
# models averaged, each with its mirror image; then a second pass on a crop around the people.
# Mean IoU@0.5 on coco_person / every 4th davis_parkour frame, each photo on its own:
#   selfie 0.710 / 0.714; both selfie + mirror 0.724 / 0.775; + zoomed pass 0.729 / 0.876
#   rvm 0.832 / 0.920; rvm + mirror 0.831 / 0.925; rvm + zoomed pass 0.839 / 0.931
FALLBACK_MODELS = ("selfie", "selfie-landscape")
MIRROR_AVERAGED = frozenset(FALLBACK_MODELS)  # the mirror pass does not help RVM
ZOOM_MARGIN = 0.15  # margin added around the people's box, as a fraction of its size
ZOOM_MAX_AREA = 0.8  # no zoomed pass when the box covers more of the photo than this
CANVAS = 1280  # long side of the alpha handed to the refiner (photo size if smaller; = RVM's)
# Stills refine near full resolution (live mode shrinks the guide to 320 px wide).
STILL_GUIDE_WIDTH = 2048


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT",
                   help="image files or folders (jpg, jpeg, png, webp, bmp, tif, tiff inside)")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUTPUT",
                   help="output file for one input file (png, webp, jpg with a background), "
                        "else a folder (created) that receives <name>.png per input; inputs "
                        "sharing a name stem get their full name: a.jpg.png, a.png.png")
    bg = p.add_mutually_exclusive_group()
    bg.add_argument("--background", type=Path, metavar="IMG",
                    help="put the person on this image (default: transparent cut-out)")
    bg.add_argument("--color", metavar="C",
                    help="solid colour: #rrggbb, r,g,b or a name (white, blue, ...)")
    bg.add_argument("--blur", type=int, metavar="N", help="blur the real background (1-100)")
    p.add_argument("--matte", type=Path, metavar="FILE_OR_DIR",
                   help="also write the alpha matte (8-bit grey PNG): a file for one input, "
                        "else a folder")
    p.add_argument("--model", default="auto", metavar="NAME[,NAME]",
                   help="segmentation model(s), averaged; auto (default): rvm when installed "
                        f"(`vbg models pull rvm`), else {','.join(FALLBACK_MODELS)}")
    p.add_argument("--provider", choices=["auto", "cuda", "cpu"], default="auto",
                   help="inference provider (default: auto)")
    g = p.add_argument_group("matte refinement (defaults: the refiner's)")
    g.add_argument("--alpha-threshold", dest="alpha_threshold", type=float, metavar="T",
                   help="alpha at which the matte is half transparent (0-1)")
    g.add_argument("--contrast", type=float, metavar="K", help="slope of the alpha curve (>0)")
    g.add_argument("--erode", type=int, metavar="PX", help="shrink the matte (negative grows it)")
    g.add_argument("--feather", type=int, metavar="PX", help="blur the matte edge (px)")


# --- planning ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Job:
    source: Path
    output: Path
    matte: Path | None


def _is_folder_target(path: Path) -> bool:
    return path.is_dir() or str(path).endswith((os.sep, "/"))


def collect_sources(inputs: list[Path]) -> tuple[list[Path], list[str]]:
    """Input files in order (folders expanded: image files directly inside, sorted), problems."""
    sources: list[Path] = []
    problems: list[str] = []
    seen: set[Path] = set()
    for item in inputs:
        if item.is_dir():
            try:
                found = sorted((p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
                                and not p.name.startswith(".") and not p.is_dir()),
                               key=lambda p: p.name)
            except OSError as e:
                problems.append(f"{item}: cannot list folder: {e.strerror or e}")
                continue
            if not found:
                problems.append(f"{item}: no image files in this folder "
                                f"({' '.join(IMAGE_SUFFIXES)})")
        else:
            found = [item]
        for path in found:
            key = path.resolve()
            if key not in seen:
                seen.add(key)
                sources.append(path)
    return sources, problems


def output_names(sources: list[Path]) -> list[str]:
    """Unique output base names: the stem, or the full name where stems collide, then -2, -3."""
    # a.jpg + b.png -> a, b. a.jpg + a.png (stems compared case-insensitively) -> a.jpg, a.png,
    # so out/a.jpg.png and out/a.png.png; x/a.jpg + y/a.jpg -> a.jpg, a.jpg-2. Never overwrites.
    stems = Counter(p.stem.casefold() for p in sources)
    used: set[str] = set()
    names = []
    for p in sources:
        base = p.stem if stems[p.stem.casefold()] == 1 else p.name
        name, n = base, 2
        while name.casefold() in used:
            name, n = f"{base}-{n}", n + 1
        used.add(name.casefold())
        names.append(name)
    return names


def _check_single_output(path: Path, cutout: bool) -> None:
    suffix = path.suffix.lower()
    if suffix not in WRITE_FORMATS:
        raise ConfigError(f"output {path}: unknown image format {path.suffix or '(none)'!r}; "
                          f"end the name with one of {', '.join(WRITE_FORMATS)}")
    if cutout and WRITE_FORMATS[suffix] == "JPEG":
        raise ConfigError(f"output {path}: JPEG cannot store the transparent cut-out; use .png "
                          "or .webp, or choose --background, --color or --blur")


def plan_jobs(inputs: list[Path], output: Path, matte: Path | None,
              cutout: bool) -> tuple[list[Job], list[str]]:
    """Where each input goes (nothing is created yet); VbgError for unusable targets."""
    if matte is not None and matte.resolve() == output.resolve():
        raise ConfigError(f"--matte {matte} is the same as -o {output}: choose another name")
    sources, problems = collect_sources(inputs)
    single = (len(inputs) == 1 and not inputs[0].is_dir() and not _is_folder_target(output)
              and output.suffix != "")  # `-o out` (no extension) is a folder
    if single:
        _check_single_output(output, cutout)
        if matte is not None and _is_folder_target(matte):
            matte = matte / f"{sources[0].stem}.png"
        elif matte is not None:
            _check_single_output(matte, cutout=False)
        return [Job(sources[0], output, matte)], problems
    for folder, what in ((output, "output"), (matte, "matte")):
        if folder is not None and folder.exists() and not folder.is_dir():
            raise ConfigError(f"{what} {folder} is a file; with several inputs it must be a "
                              "folder")
    jobs = [Job(src, output / f"{name}.png", matte / f"{name}.png" if matte else None)
            for src, name in zip(sources, output_names(sources), strict=True)]
    return jobs, problems


def make_folders(jobs: list[Job]) -> None:
    """Create the folders the outputs go to."""
    folders = {p.parent for job in jobs for p in (job.output, job.matte) if p is not None}
    for folder in sorted(folders):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SinkError(f"cannot create output folder {folder}: {e.strerror or e}") from None


# --- processing ----------------------------------------------------------------------------------

def model_names(text: str) -> list[str]:
    """The models `--model` asks for; `auto` = rvm if installed, else the bundled pair."""
    if text.strip() == "auto":
        from vbg.segment.rvm import rvm_installed

        return ["rvm"] if rvm_installed() else list(FALLBACK_MODELS)
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise ConfigError("--model: give auto or at least one model name")
    return names


class PhotoSegmenter:
    """Photo alpha: models averaged (selfie ones with mirror passes), again on the people's box."""

    def __init__(self, names: list[str], provider: str) -> None:
        from vbg.segment import new_segmenter

        self.models = [new_segmenter(name, provider=provider) for name in names]
        self.name = "+".join(names)
        self.provider = self.models[0].provider

    def _average(self, frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """Mean alpha of the models (and mirror passes) on `frame`, resized to size (w, h)."""
        acc = np.zeros((size[1], size[0]), np.float32)
        passes = 0
        mirrored = None
        for model in self.models:
            model.reset()  # each photo on its own: no recurrent state from the last one
            acc += cv2.resize(model(frame), size, interpolation=cv2.INTER_LINEAR)
            passes += 1
            if model.name in MIRROR_AVERAGED:
                if mirrored is None:
                    mirrored = np.ascontiguousarray(frame[:, ::-1])
                acc += cv2.resize(model(mirrored), size, interpolation=cv2.INTER_LINEAR)[:, ::-1]
                passes += 1
        acc *= np.float32(1.0 / passes)
        return acc

    @staticmethod
    def _zoom_box(alpha: np.ndarray) -> tuple[int, int, int, int] | None:
        """(x0, y0, x1, y1) around alpha > 0.5 plus a margin, or None when not worth it."""
        ys, xs = np.nonzero(alpha > 0.5)
        if xs.size == 0:
            return None
        h, w = alpha.shape
        x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
        mx, my = ZOOM_MARGIN * (x1 - x0), ZOOM_MARGIN * (y1 - y0)
        x0, x1 = max(0, int(x0 - mx)), min(w, int(np.ceil(x1 + mx)))
        y0, y1 = max(0, int(y0 - my)), min(h, int(np.ceil(y1 + my)))
        if (x1 - x0) * (y1 - y0) > ZOOM_MAX_AREA * w * h:
            return None
        return x0, y0, x1, y1

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """float32 alpha (1 = person) at the photo's size, long side capped at CANVAS."""
        h, w = frame.shape[:2]
        scale = min(1.0, CANVAS / max(h, w))
        cw, ch = max(1, round(w * scale)), max(1, round(h * scale))
        alpha = self._average(frame, (cw, ch))
        box = self._zoom_box(alpha)
        if box is not None:
            x0, y0, x1, y1 = box
            crop = frame[round(y0 * h / ch):round(y1 * h / ch),
                         round(x0 * w / cw):round(x1 * w / cw)]
            alpha[y0:y1, x0:x1] = self._average(np.ascontiguousarray(crop), (x1 - x0, y1 - y0))
        return alpha


class StillPipeline:
    """Segmenter + refiner + compositor, built and warmed up once per run."""

    def __init__(self, args: argparse.Namespace) -> None:
        from vbg import background, composite, refine

        bg = background.make_background(image=args.background, blur=args.blur,
                                        color=args.color, transparent=_is_cutout(args))
        self.cutout = bg.kind == "transparent"
        self.segmenter = PhotoSegmenter(model_names(args.model), args.provider)
        self.refiner = refine.MatteRefiner(refine_params(args))
        self.compositor = composite.Compositor(bg)
        composite.warm_up()
        refine.warm_up()
        if bg.kind == "blur":
            background.warm_up()
        self.segmenter(np.zeros((64, 64, 3), np.uint8))

    def matte(self, bgr: np.ndarray, alpha_in: np.ndarray | None) -> np.ndarray:
        """Full-res uint8 matte (the refiner's buffer), times the input's own alpha if any."""
        matte = self.refiner(bgr, self.segmenter(bgr))
        if alpha_in is not None:
            cv2.multiply(matte, alpha_in, dst=matte, scale=1.0 / 255.0)
        return matte

    def process(self, job: Job) -> None:
        bgr, alpha_in, info = read_image(job.source)
        matte = self.matte(bgr, alpha_in)
        result = self.compositor(bgr, matte)
        written: list[Path] = []
        try:
            written.append(write_image(job.output, result, dpi=info.dpi,
                                       icc_profile=info.icc_profile))
            if job.matte is not None:
                written.append(write_image(job.matte, matte, dpi=info.dpi))
        except BaseException:
            for path in written:  # a failed input leaves no output behind
                path.unlink(missing_ok=True)
            raise


def refine_params(args: argparse.Namespace):
    """Refiner settings: its defaults at full resolution, overridden by the flags given."""
    from vbg.refine import DEFAULTS

    flags = {"threshold": args.alpha_threshold, "contrast": args.contrast,
             "erode": args.erode, "feather": args.feather}
    if flags["threshold"] is not None and not 0.0 <= flags["threshold"] <= 1.0:
        raise ConfigError(f"--alpha-threshold {flags['threshold']:g}: use a value from 0 to 1")
    if flags["contrast"] is not None and not flags["contrast"] > 0:
        raise ConfigError(f"--contrast {flags['contrast']:g}: use a value above 0")
    if flags["feather"] is not None and flags["feather"] < 0:
        raise ConfigError(f"--feather {flags['feather']}: use 0 or more pixels")
    try:
        return replace(DEFAULTS, guide_width=STILL_GUIDE_WIDTH,
                       **{k: v for k, v in flags.items() if v is not None})
    except ValueError as e:
        raise ConfigError(f"invalid matte refinement flags: {e}") from None


class Progress:
    """One self-rewriting status line on a TTY: count, current file, ETA."""

    def __init__(self, total: int, stream: TextIO, enabled: bool) -> None:
        self.total, self.stream, self.enabled = total, stream, enabled
        self.start = time.monotonic()
        self.width = 0

    def show(self, done: int, name: str) -> None:
        if not self.enabled:
            return
        eta = ""
        if done:
            left = (time.monotonic() - self.start) / done * (self.total - done)
            eta = f"  ETA {int(left // 60)}:{int(left % 60):02d}"
        line = f"[{done + 1}/{self.total}] {name}{eta}"
        self.stream.write("\r" + line.ljust(self.width))
        self.stream.flush()
        self.width = len(line)

    def clear(self) -> None:
        if self.enabled and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
            self.width = 0


def _failure_line(source: Path, error: BaseException) -> str:
    """`vbg: <input>: <reason>` on one line (ImageError messages start with the path)."""
    text = " ".join(str(error).split())
    if isinstance(error, ImageError):
        return f"vbg: {text}"
    if isinstance(error, MemoryError):
        text = "not enough memory to process this image"
    elif not isinstance(error, VbgError):
        text = f"unexpected error ({type(error).__name__}: {text}); please report this"
    return f"vbg: {source}: {text}"


def _is_cutout(args: argparse.Namespace) -> bool:
    return args.background is None and args.blur is None and args.color is None


def run(args: argparse.Namespace) -> int:
    err = sys.stderr
    jobs, problems = plan_jobs(args.inputs, args.output, args.matte, _is_cutout(args))
    pipeline = StillPipeline(args) if jobs else None  # bad model/background: exit 2 here
    make_folders(jobs)
    sources = {job.source.resolve() for job in jobs}
    progress = Progress(len(jobs), err, enabled=len(jobs) > 1 and err.isatty())
    for problem in problems:
        print(f"vbg: {problem}", file=err)
    failed = len(problems)
    try:
        for i, job in enumerate(jobs):
            progress.show(i, job.source.name)
            try:
                targets = [job.output] + ([job.matte] if job.matte else [])
                if any(t.resolve() in sources for t in targets):
                    raise ConfigError("the output would replace an input file; "
                                      "choose another output name or folder")
                pipeline.process(job)  # type: ignore[union-attr]
            except Exception as e:  # one line per failed input; the batch goes on
                progress.clear()
                print(_failure_line(job.source, e), file=err)
                failed += 1
    finally:
        progress.clear()
    if len(jobs) + len(problems) > 1:
        print(f"vbg: {len(jobs) + len(problems) - failed} done, {failed} failed", file=err)
    return 1 if failed else 0
