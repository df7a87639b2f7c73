"""Still-mode jobs: the input files (folders walked), their output names and targets."""

from __future__ import annotations

import contextlib
import os
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from vbg.errors import ConfigError, SinkError
from vbg.imageio import WRITE_FORMATS, written_by_vbg

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
FOLDER_FORMATS = ("png", "jpg", "webp")  # --format; JPEG only with a background (no alpha)


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
    sources = _without_own_results(sources, exclude)
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


def _without_own_results(sources: list[Source], folders: tuple[Path, ...]) -> list[Source]:
    """Leave out the files vbg wrote in the output folders (a run of `photos/ -o photos/`
    again), with one note naming them."""
    roots = [f.resolve() for f in folders]
    own = [s for s in sources if any(s.path.resolve().is_relative_to(r) for r in roots)
           and written_by_vbg(s.path)]
    if not own:
        return sources
    names = ", ".join(s.label for s in own[:3]) + (f" and {len(own) - 3} more" if len(own) > 3
                                                   else "")
    print(f"vbg: skipping {len(own)} file{'s' * (len(own) > 1)} vbg wrote earlier in the "
          f"output folder ({names})", file=sys.stderr)
    skip = {id(s) for s in own}
    return [s for s in sources if id(s) not in skip]


def make_folders(jobs: list[Job]) -> None:
    """Create the folders the outputs go to."""
    folders = {p.parent for job in jobs for p in (job.output, job.matte) if p is not None}
    for folder in sorted(folders):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SinkError(f"cannot create output folder {folder}: {e.strerror or e}") from None


def remove_partial_files(jobs: list[Job]) -> None:
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
