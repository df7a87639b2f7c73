"""`vbg still`: cut people out of photos, new backgrounds, ID photos; files or folders."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from vbg.errors import ConfigError, SinkError, VbgError
from vbg.imageio import WRITE_FORMATS, read_image, write_image
from vbg.still.batch import Progress, WorkerPool, WorkerSpec, summary, threads_per_worker

if TYPE_CHECKING:
    from vbg.still.face import Face
    from vbg.still.idphoto import Preset

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
FOLDER_FORMATS = ("png", "jpg", "webp")  # --format; JPEG only with a background (no alpha)
# RVM's internal long side for photos: 576 scored best on coco_person (384: 0.815, 512: 0.840
# with the old curve, 576: 0.837, 640: 0.832, 768: 0.832); live video uses 640 (DAVIS).
STILL_RVM_SIZE = 576
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
# RVM is a matting network whose alpha is already soft at hair: stills use a gentler alpha curve
# (slope 2) than the refiner's default 3, which is made for the selfie models' blurry edges.
# coco_person, IoU@0.5 / MAD x1000 vs. the binary polygons: slope 1 0.8372 / 77.4, 2 0.8371 /
# 74.3, 3 0.8371 / 73.8. Slope 1 keeps RVM's alpha as it is, but its low, unsure values leave a
# smoky halo around dark hair on ID photos; slope 2 drops those and keeps the hair edge soft.
RVM_CONTRAST = 2.0
# ID photos: the photo is first shrunk (when large) so that the head keeps this many times the
# output's resolution: the matte is then computed at the size that matters, several times faster.
ID_PHOTO_OVERSAMPLE = 2.0
FACE_OUTSIDE_MAX = 0.1  # a face box reaching further out of the photo (x its size) is no use


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="*", type=Path, metavar="INPUT",
                   help="image files or folders (jpg, jpeg, png, webp, bmp, tif, tiff inside)")
    p.add_argument("-o", "--output", type=Path, metavar="OUTPUT",
                   help="output file for one input file (png, webp, jpg with a background), "
                        "else a folder (created) that receives <name>.<format> per input; "
                        "inputs sharing a name stem get their full name: a.jpg.png, a.png.png")
    p.add_argument("-r", "--recursive", action="store_true",
                   help="also take images in sub-folders; outputs keep the relative paths")
    p.add_argument("--format", choices=FOLDER_FORMATS, type=str.lower,
                   help="output format in folder mode (default: png; jpg for --id-photo); "
                        "webp keeps transparency, jpg cannot")
    p.add_argument("--quality", type=int, metavar="Q",
                   help="jpg/webp quality 1-100 (default 95)")
    p.add_argument("--skip-existing", action="store_true",
                   help="skip inputs whose output file already exists")
    p.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                   help="worker processes (default 1); each uses cores/N threads")
    bg = p.add_mutually_exclusive_group()
    bg.add_argument("--background", type=Path, metavar="IMG",
                    help="put the person on this image (default: transparent cut-out)")
    bg.add_argument("--color", metavar="C",
                    help="solid colour: #rrggbb, r,g,b or a name (white, blue, red, ...)")
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
    g.add_argument("--contrast", type=float, metavar="K",
                   help=f"slope of the alpha curve (>0; default {RVM_CONTRAST:g} with rvm, which "
                        "keeps hair soft, else 3)")
    g.add_argument("--erode", type=int, metavar="PX", help="shrink the matte (negative grows it)")
    g.add_argument("--feather", type=int, metavar="PX", help="blur the matte edge (px)")
    i = p.add_argument_group("ID photos")
    i.add_argument("--id-photo", dest="id_photo", metavar="NAME",
                   help="make an ID photo: 1inch, 2inch, passport, us (`--id-photo list`); "
                        "face centred, eyes level, head sized; --color sets the background "
                        "(default white); 300 dpi")
    i.add_argument("--allow-multiple", action="store_true",
                   help="with several faces, use the largest (default: an error)")
    i.add_argument("--list-presets", action="store_true", help="list the ID-photo presets")


# --- planning ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Job:
    """One input and where its results go."""

    source: Path
    output: Path
    matte: Path | None
    label: str = ""  # shown in the progress line: the path relative to its input folder


@dataclass(frozen=True)
class Source:
    """An input file and the folder (relative to OUTPUT) its results go to."""

    path: Path
    rel_dir: Path = Path()

    @property
    def label(self) -> str:
        return str(self.rel_dir / self.path.name)


def _is_folder_target(path: Path) -> bool:
    return path.is_dir() or str(path).endswith((os.sep, "/"))


def _is_image_name(name: str) -> bool:
    return not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES


def _walk(root: Path, exclude: set[Path], problems: list[str]) -> list[Source]:
    """Image files under root (hidden files and folders skipped), folder by folder, sorted."""
    found: list[Source] = []

    def report(e: OSError) -> None:
        problems.append(f"{e.filename}: cannot list folder: {e.strerror or e}")

    for dirpath, dirnames, filenames in os.walk(root, onerror=report):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                             and (here / d).resolve() not in exclude)
        rel = here.relative_to(root)
        found += [Source(here / f, rel) for f in sorted(filenames) if _is_image_name(f)
                  and not (here / f).is_dir()]
    return found


def collect_sources(inputs: list[Path], recursive: bool = False,
                    exclude: tuple[Path, ...] = ()) -> tuple[list[Source], list[str]]:
    """Input files in order (folders expanded, sorted; `exclude`d folders skipped), problems."""
    sources: list[Source] = []
    problems: list[str] = []
    seen: set[Path] = set()
    skip = {p.resolve() for p in exclude}
    for item in inputs:
        if item.is_dir() and recursive:
            found = _walk(item, skip, problems)
            if not found:
                problems.append(f"{item}: no image files in this folder or its sub-folders "
                                f"({' '.join(IMAGE_SUFFIXES)})")
        elif item.is_dir():
            try:
                found = [Source(p) for p in sorted(item.iterdir(), key=lambda p: p.name)
                         if _is_image_name(p.name) and not p.is_dir()]
            except OSError as e:
                problems.append(f"{item}: cannot list folder: {e.strerror or e}")
                continue
            if not found:
                problems.append(f"{item}: no image files in this folder "
                                f"({' '.join(IMAGE_SUFFIXES)})")
        else:
            found = [Source(item)]
        for source in found:
            key = source.path.resolve()
            if key not in seen:
                seen.add(key)
                sources.append(source)
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


def is_single(inputs: list[Path], output: Path) -> bool:
    """One input file to one output file (`-o out` with no extension is a folder)."""
    return (len(inputs) == 1 and not inputs[0].is_dir() and not _is_folder_target(output)
            and output.suffix != "")


def plan_jobs(inputs: list[Path], output: Path, matte: Path | None, cutout: bool,
              ext: str = "png", recursive: bool = False) -> tuple[list[Job], list[str]]:
    """Where each input goes (nothing is created yet); VbgError for unusable targets."""
    if matte is not None and matte.resolve() == output.resolve():
        raise ConfigError(f"--matte {matte} is the same as -o {output}: choose another name")
    if is_single(inputs, output):
        sources, problems = collect_sources(inputs)
        _check_single_output(output, cutout)
        if matte is not None and _is_folder_target(matte):
            matte = matte / f"{sources[0].path.stem}.png"
        elif matte is not None:
            _check_single_output(matte, cutout=False)
        return [Job(sources[0].path, output, matte, sources[0].path.name)], problems
    for folder, what in ((output, "output"), (matte, "matte")):
        if folder is not None and folder.exists() and not folder.is_dir():
            raise ConfigError(f"{what} {folder} is a file; with several inputs it must be a "
                              "folder")
    exclude = tuple(p for p in (output, matte) if p is not None)  # never read our own results
    sources, problems = collect_sources(inputs, recursive, exclude if recursive else ())
    by_folder: dict[str, list[int]] = defaultdict(list)
    for k, source in enumerate(sources):
        by_folder[str(source.rel_dir).casefold()].append(k)
    names = [""] * len(sources)
    for members in by_folder.values():
        for k, name in zip(members, output_names([sources[k].path for k in members]),
                           strict=True):
            names[k] = name
    jobs = [Job(s.path, output / s.rel_dir / f"{name}.{ext}",
                matte / s.rel_dir / f"{name}.png" if matte else None, s.label)
            for s, name in zip(sources, names, strict=True)]
    return jobs, problems


def make_folders(jobs: list[Job]) -> None:
    """Create the folders the outputs go to."""
    folders = {p.parent for job in jobs for p in (job.output, job.matte) if p is not None}
    for folder in sorted(folders):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SinkError(f"cannot create output folder {folder}: {e.strerror or e}") from None


# --- flags ---------------------------------------------------------------------------------------

def _is_cutout(args: argparse.Namespace) -> bool:
    return (args.background is None and args.blur is None and args.color is None
            and not getattr(args, "id_photo", None))


def output_format(args: argparse.Namespace) -> str:
    """The folder-mode output extension: --format, else jpg for ID photos, else png."""
    return args.format or ("jpg" if args.id_photo else "png")


def check_flags(args: argparse.Namespace, single: bool) -> None:
    """Refuse flag combinations that cannot work, before anything is read or created."""
    if args.jobs < 1:
        raise ConfigError(f"--jobs {args.jobs}: use 1 or more worker processes")
    if args.id_photo:
        from vbg.still.idphoto import get_preset

        get_preset(args.id_photo)
        for flag, value in (("--background", args.background), ("--blur", args.blur),
                            ("--matte", args.matte)):
            if value is not None:
                raise ConfigError(f"{flag} cannot be combined with --id-photo (ID photos have "
                                  "a solid background: choose it with --color)")
    elif args.allow_multiple:
        raise ConfigError("--allow-multiple only applies to --id-photo")
    suffix = args.output.suffix.lower() if single else f".{output_format(args)}"
    fmt = WRITE_FORMATS.get(suffix)
    if single and args.format and fmt != WRITE_FORMATS[f".{args.format}"]:
        raise ConfigError(f"--format {args.format} does not match -o {args.output}: the "
                          "extension of a single output file sets its format")
    if not single and _is_cutout(args) and fmt == "JPEG":
        raise ConfigError("--format jpg cannot store the transparent cut-out; use png or webp "
                          "(both keep transparency), or choose --background, --color or --blur")
    if args.quality is not None:
        if not 1 <= args.quality <= 100:
            raise ConfigError(f"--quality {args.quality}: use a value from 1 to 100")
        if fmt not in ("JPEG", "WEBP"):
            raise ConfigError(f"--quality applies to jpg and webp output only, not "
                              f"{suffix.lstrip('.') or 'this output'} (lossless)")


def list_presets() -> str:
    """The ID-photo presets, one per line: name, pixels, print size, what they follow."""
    from vbg.still.idphoto import PRESETS

    lines = []
    for p in PRESETS.values():
        mm = f"{p.width / p.dpi * 25.4:.0f}x{p.height / p.dpi * 25.4:.0f} mm"
        lines.append(f"{p.name:9s} {p.width}x{p.height} px at {p.dpi} dpi ({mm})  {p.source}")
    return "\n".join(lines)


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

    def __init__(self, names: list[str], provider: str, threads: int | None = None) -> None:
        from vbg.segment import new_segmenter

        self.models = [new_segmenter(name, provider=provider, threads=threads) for name in names]
        for model in self.models:
            if model.name == "rvm":
                model.internal = STILL_RVM_SIZE
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
        from vbg.segment.zoom import person_box

        box = person_box(alpha)
        if box is None:
            return None
        h, w = alpha.shape
        x0, y0, x1, y1 = box
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


@dataclass(frozen=True)
class IdPhotoSettings:
    """What --id-photo, --color and --allow-multiple ask for."""

    preset: Preset
    color_bgr: tuple[int, int, int]
    allow_multiple: bool


class StillPipeline:
    """Segmenter + refiner + compositor (or ID-photo layout), built and warmed up once per run."""

    def __init__(self, args: argparse.Namespace, threads: int | None = None) -> None:
        from vbg import backgrounds as background
        from vbg.compose import composite
        from vbg.matte import refine

        id_photo = getattr(args, "id_photo", None)
        self.quality: int | None = getattr(args, "quality", None)
        self.id_photo: IdPhotoSettings | None = None
        names = model_names(args.model)
        self.refiner = refine.MatteRefiner(refine_params(args, soft=names == ["rvm"]))
        if id_photo:
            from vbg.still.face import FaceDetector
            from vbg.still.idphoto import get_preset

            self.id_photo = IdPhotoSettings(get_preset(id_photo), background.parse_color(
                args.color or "white"), bool(args.allow_multiple))
            self.cutout = False
            self.detector = FaceDetector(provider=args.provider, threads=threads)
        else:
            bg = background.make_background(image=args.background, blur=args.blur,
                                            color=args.color, transparent=_is_cutout(args))
            self.cutout = bg.kind == "transparent"
            self.compositor = composite.Compositor(bg)
            composite.warm_up()
            if bg.kind == "blur":
                background.warm_up()
        self.segmenter = PhotoSegmenter(names, args.provider, threads)
        refine.warm_up()
        self.segmenter(np.zeros((64, 64, 3), np.uint8))

    def matte(self, bgr: np.ndarray, alpha_in: np.ndarray | None) -> np.ndarray:
        """Full-res uint8 matte (the refiner's buffer), times the input's own alpha if any."""
        matte = self.refiner(bgr, self.segmenter(bgr))
        if alpha_in is not None:
            cv2.multiply(matte, alpha_in, dst=matte, scale=1.0 / 255.0)
        return matte

    def id_photo_image(self, bgr: np.ndarray, alpha_in: np.ndarray | None) -> np.ndarray:
        """The ID photo (BGR, preset size); ImageError when there is no face or several."""
        from vbg.still.idphoto import compose_id_photo, pick_face

        spec = self.id_photo
        assert spec is not None
        faces = self.detector.detect(bgr)
        if not faces:  # fail before the expensive matte
            pick_face(faces, spec.allow_multiple, source="the photo")
        shrink = max(id_photo_shrink(face, spec.preset) for face in faces)
        if shrink < 0.75:  # matte the photo at the size the output needs, not at full size
            size = (max(1, round(bgr.shape[1] * shrink)), max(1, round(bgr.shape[0] * shrink)))
            faces = [scaled_face(f, size[0] / bgr.shape[1], size[1] / bgr.shape[0])
                     for f in faces]
            bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
            if alpha_in is not None:
                alpha_in = cv2.resize(alpha_in, size, interpolation=cv2.INTER_AREA)
        matte = self.matte(bgr, alpha_in)
        faces = [f for f in faces if usable_face(f, matte)]
        face = pick_face(faces, spec.allow_multiple, source="the photo")
        return compose_id_photo(bgr, matte, face, spec.preset, spec.color_bgr)

    def process(self, job: Job) -> None:
        bgr, alpha_in, info = read_image(job.source)
        if self.id_photo is not None:
            result, matte = self.id_photo_image(bgr, alpha_in), None
            dpi: tuple[float, float] | None = (self.id_photo.preset.dpi,) * 2
        else:
            matte = self.matte(bgr, alpha_in)
            result, dpi = self.compositor(bgr, matte), info.dpi
        written: list[Path] = []
        try:
            written.append(write_image(job.output, result, dpi=dpi, quality=self.quality,
                                       icc_profile=info.icc_profile))
            if job.matte is not None and matte is not None:
                written.append(write_image(job.matte, matte, dpi=dpi))
        except BaseException:
            for path in written:  # a failed input leaves no output behind
                path.unlink(missing_ok=True)
            raise


def id_photo_shrink(face: Face, preset: Preset) -> float:
    """Factor (<= 1) that leaves the head ID_PHOTO_OVERSAMPLE times the output's resolution."""
    from vbg.still.idphoto import CHIN_BELOW_EYES, SKULL_ABOVE_EYES, face_frame

    # The smallest head the preset measures (skull to chin) gives the largest output scale.
    head_px = (SKULL_ABOVE_EYES + CHIN_BELOW_EYES) * face_frame(face).unit
    return min(1.0, ID_PHOTO_OVERSAMPLE * preset.head_frac * preset.height / max(head_px, 1e-6))


def usable_face(face: Face, matte: np.ndarray) -> bool:
    """A face for an ID photo: inside the photo, and the matte says it is on a person.

    Measured false detections: a shoe (coco_person 443, score 0.58; background in the matte)
    and a suit taken for a face three times too big, running off the bottom edge (two portraits
    side by side, score 0.56). Picking the largest face would choose the latter.
    """
    x0, y0, x1, y1 = face.box
    h, w = matte.shape[:2]
    mx, my = FACE_OUTSIDE_MAX * (x1 - x0), FACE_OUTSIDE_MAX * (y1 - y0)
    if x0 < -mx or y0 < -my or x1 > w + mx or y1 > h + my:
        return False
    cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 4, (y1 - y0) / 4
    xa, xb = int(np.clip(cx - hw, 0, w - 1)), int(np.clip(np.ceil(cx + hw), 1, w))
    ya, yb = int(np.clip(cy - hh, 0, h - 1)), int(np.clip(np.ceil(cy + hh), 1, h))
    return bool(matte[ya:max(yb, ya + 1), xa:max(xb, xa + 1)].mean() >= 128)


def scaled_face(face: Face, fx: float, fy: float) -> Face:
    """The same face in the image resized by fx, fy (pixel centres kept, as INTER_AREA does)."""
    from vbg.still.face import Face

    def point(x: float, y: float) -> tuple[float, float]:
        return (x + 0.5) * fx - 0.5, (y + 0.5) * fy - 0.5

    x0, y0 = point(*face.box[:2])
    x1, y1 = point(*face.box[2:])
    return Face((x0, y0, x1, y1), face.score,
                {k: point(x, y) for k, (x, y) in face.keypoints.items()})


def refine_params(args: argparse.Namespace, soft: bool = False):
    """Refiner settings: its defaults at full resolution (soft: RVM's own alpha curve),
    overridden by the flags given."""
    from vbg.matte.refine import DEFAULTS

    base = replace(DEFAULTS, guide_width=STILL_GUIDE_WIDTH,
                   contrast=RVM_CONTRAST if soft else DEFAULTS.contrast)
    flags = {"threshold": args.alpha_threshold, "contrast": args.contrast,
             "erode": args.erode, "feather": args.feather}
    if flags["threshold"] is not None and not 0.0 <= flags["threshold"] <= 1.0:
        raise ConfigError(f"--alpha-threshold {flags['threshold']:g}: use a value from 0 to 1")
    if flags["contrast"] is not None and not flags["contrast"] > 0:
        raise ConfigError(f"--contrast {flags['contrast']:g}: use a value above 0")
    if flags["feather"] is not None and flags["feather"] < 0:
        raise ConfigError(f"--feather {flags['feather']}: use 0 or more pixels")
    try:
        return replace(base, **{k: v for k, v in flags.items() if v is not None})
    except ValueError as e:
        raise ConfigError(f"invalid matte refinement flags: {e}") from None


def failure_line(source: Path, error: BaseException) -> str:
    """`vbg: <input>: <reason>` on one line (many ImageError messages start with the path)."""
    text = " ".join(str(error).split())
    if isinstance(error, MemoryError):
        text = "not enough memory to process this image"
    elif not isinstance(error, VbgError):
        text = f"unexpected error ({type(error).__name__}: {text}); please report this"
    if text.startswith(f"{source}: "):
        return f"vbg: {text}"
    return f"vbg: {source}: {text}"


def crash_line(job: Job, reason: str) -> str:
    """The line for an input whose worker process died."""
    return f"vbg: {job.source}: {reason} while processing this image; please report this"


# --- workers -------------------------------------------------------------------------------------

def _limit_threads(threads: int) -> None:
    """Cap numba's and OpenCV's threads in this worker process."""
    import numba

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    cv2.setNumThreads(threads)


def worker_setup(setup: tuple[argparse.Namespace, int]):
    """In each worker: build the pipeline once; returns the per-job function."""
    args, threads = setup
    _limit_threads(threads)
    return StillPipeline(args, threads=threads).process


def _describe(job: Job, error: BaseException) -> str:
    return failure_line(job.source, error)


def _remove_partial_files(jobs: list[Job]) -> None:
    """Temporary files (write_image's `.NAME.*.part`) that killed workers left next to these
    jobs' outputs; each folder is listed once."""
    names: dict[Path, set[str]] = defaultdict(set)
    for job in jobs:
        for target in (job.output, job.matte):
            if target is not None:
                names[target.parent].add(target.name)
    for folder, targets in names.items():
        try:
            entries = [p for p in folder.iterdir() if p.name.startswith(".")
                       and p.name.endswith(".part")]
        except OSError:
            continue
        for entry in entries:
            if entry.name[1:].rsplit(".", 2)[0] in targets:
                with contextlib.suppress(OSError):
                    entry.unlink()


# --- running -------------------------------------------------------------------------------------

@dataclass
class Tally:
    """Counts for the summary line."""

    done: int = 0
    failed: int = 0
    skipped: int = 0


def _run_here(args: argparse.Namespace, jobs: list[Job], tally: Tally, progress: Progress) -> None:
    """Process the jobs in this process, one after another."""
    pipeline = StillPipeline(args)  # bad model/background: exit 2 here
    make_folders(jobs)
    progress.start = time.monotonic()
    for finished, job in enumerate(jobs):
        progress.show(finished, job.label or job.source.name)
        try:
            pipeline.process(job)
            tally.done += 1
        except Exception as e:  # one line per failed input; the batch goes on
            tally.failed += 1
            progress.message(failure_line(job.source, e))
    progress.show(len(jobs))


def _run_pool(args: argparse.Namespace, jobs: list[Job], tally: Tally, progress: Progress,
              workers: int) -> None:
    """Process the jobs in `workers` processes; results and errors come back here."""
    spec = WorkerSpec(worker_setup, (args, threads_per_worker(workers)), _describe, crash_line)
    pool: WorkerPool | None = None
    interrupted = False
    try:
        pool = WorkerPool(spec, workers)
        pool.wait_ready()  # bad model/background: exit 2 here, before any folder is made
        make_folders(jobs)
        progress.start = time.monotonic()
        finished = 0
        for event in pool.run(jobs):
            job = jobs[event.index]
            if event.kind == "start":
                progress.show(name=job.label or job.source.name)
                continue
            finished += 1
            if event.kind == "done":
                tally.done += 1
            else:
                tally.failed += 1
                progress.message(event.message)
                _remove_partial_files([job])  # in case its worker was killed while writing
            progress.show(finished)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        if pool is not None:
            pool.close(interrupted)
            if interrupted:
                _remove_partial_files(jobs)


def _triage(jobs: list[Job], skip_existing: bool, tally: Tally, quiet: bool) -> list[Job]:
    """The jobs to run: not those that would overwrite an input (failed) or, with
    --skip-existing, whose outputs exist (skipped; said unless quiet)."""
    sources = {job.source.resolve() for job in jobs}
    todo = []
    for job in jobs:
        targets = [job.output] + ([job.matte] if job.matte else [])
        if any(t.resolve() in sources for t in targets):
            print(failure_line(job.source, ConfigError(
                "the output would replace an input file; choose another output name or "
                "folder")), file=sys.stderr)
            tally.failed += 1
        elif skip_existing and all(t.exists() for t in targets):
            tally.skipped += 1
            if not quiet:
                print(f"vbg: {job.output} exists: skipped (--skip-existing)", file=sys.stderr)
        else:
            todo.append(job)
    return todo


def run(args: argparse.Namespace) -> int:
    err = sys.stderr
    if args.list_presets or args.id_photo == "list":
        print(list_presets())
        return 0
    if not args.inputs:
        raise ConfigError("no input: give image files or folders (vbg still IN... -o OUT)")
    if args.output is None:
        raise ConfigError("no output: give -o FILE for one image or -o FOLDER")
    started = time.monotonic()
    single = is_single(args.inputs, args.output)
    check_flags(args, single)
    jobs, problems = plan_jobs(args.inputs, args.output, args.matte, _is_cutout(args),
                               output_format(args), args.recursive)
    batch = len(jobs) + len(problems) > 1 or any(p.is_dir() for p in args.inputs)
    tally = Tally(failed=len(problems))
    for problem in problems:
        print(f"vbg: {problem}", file=err)
    todo = _triage(jobs, args.skip_existing, tally, quiet=batch)
    progress = Progress(len(todo), err, enabled=len(todo) > 1 and err.isatty())
    workers = min(args.jobs, len(todo))
    try:
        if workers > 1:
            _run_pool(args, todo, tally, progress, workers)
        elif todo:
            _run_here(args, todo, tally, progress)
    except KeyboardInterrupt:
        progress.clear()
        left = len(jobs) + len(problems) - tally.done - tally.failed - tally.skipped
        print(f"vbg: interrupted: {summary(tally.done, tally.failed, tally.skipped)}, "
              f"left {left}", file=err)
        return 130
    finally:
        progress.clear()
    if batch:
        elapsed = time.monotonic() - started
        print(f"vbg: {summary(tally.done, tally.failed, tally.skipped, elapsed)}", file=err)
    return 1 if tally.failed else 0
