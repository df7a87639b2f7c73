"""`vbg still` flags: parsed into StillOptions and planned jobs, then run by vbg.still.run."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from vbg.backgrounds import check_blur_flag
from vbg.errors import ConfigError
from vbg.imageio import MAX_PIXELS, WRITE_FORMATS, parse_pixels
from vbg.still.distributed import LOCAL_RAY, ray_runner
from vbg.still.idphoto import PRESETS
from vbg.still.idreport import write_reports
from vbg.still.idsheet import SHEETS
from vbg.still.jobs import FOLDER_FORMATS, is_single, plan_jobs
from vbg.still.options import MATTING, RVM_CONTRAST, StillOptions
from vbg.still.run import run_jobs
from vbg.still.segmenter import FALLBACK_MODELS, PhotoMatter, models_line


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
    p.add_argument("--max-pixels", type=_pixel_count, metavar="N",
                   help="refuse photos larger than this, unread (default "
                        f"{MAX_PIXELS / 1e6:.0f}M, a decompression-bomb guard); e.g. 150M for "
                        "108-megapixel phone photos")
    p.add_argument("--skip-existing", action="store_true",
                   help="skip inputs whose output file already exists")
    p.add_argument("-j", "--jobs", type=int, metavar="N",
                   help="worker processes (default 1); each uses cores/N threads; with --ray: "
                        "Ray workers (default: one per CPU and 2 GB of each node)")
    p.add_argument("--ray", nargs="?", const=LOCAL_RAY, metavar="ADDRESS",
                   help="run on Ray (pip install 'vbg[ray]'): alone, a local Ray on this "
                        "machine's cores; ADDRESS (auto, ray://host:10001) a cluster whose "
                        "nodes all see the inputs and -o (a shared filesystem)")
    bg = p.add_mutually_exclusive_group()
    bg.add_argument("--background", type=Path, metavar="IMG",
                    help="put the person on this image, or on a bundled one: studio, space, "
                         "launch (default: transparent cut-out)")
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
    g.add_argument("--matting", choices=MATTING, default="fine",
                   help="fine (default): re-solve the edge band by closed-form matting (hair, "
                        "several s per 12 MP photo); fast: the network's matte only")
    g.add_argument("--no-foreground", dest="foreground", action="store_false",
                   help="keep the photo's own colours at soft edges (default: the person's "
                        "estimated colour, without the old background in the hair)")
    i = p.add_argument_group("ID photos")
    i.add_argument("--id-photo", dest="id_photo", metavar="NAME",
                   help="make an ID photo: 1inch, 2inch, passport, us, ... (`--id-photo list`); "
                        "face centred, eyes level, head sized; --color sets the background "
                        "(default white); 300 dpi")
    i.add_argument("--allow-multiple", action="store_true",
                   help="with several faces, use the largest (default: an error)")
    i.add_argument("--id-size", dest="id_size", metavar="WxH",
                   help="output size in pixels (600x800) or millimetres (35x45mm, at --dpi); "
                        "with --id-photo NAME that preset's head rules, alone common practice")
    i.add_argument("--dpi", type=int, metavar="N", help="ID-photo print resolution (default 300)")
    i.add_argument("--force", action="store_true",
                   help="write ID photos that break a rule of the preset anyway (best effort; "
                        "says what is off); default: refuse them with the reason")
    i.add_argument("--max-kb", dest="max_kb", type=int, metavar="N",
                   help="ID photos as JPEG of at most N KB (the largest quality that fits)")
    i.add_argument("--sheet", metavar="PAPER",
                   help="write a 300 dpi print sheet of copies with crop lines instead: "
                        + ", ".join(SHEETS))
    i.add_argument("--report", type=Path, metavar="FILE.json",
                   help="write every ID photo's compliance report (all fields, pass/fail per "
                        "rule) to this JSON file")
    i.add_argument("--list-presets", action="store_true", help="list the ID-photo presets")


def _pixel_count(text: str) -> int:
    try:
        return parse_pixels(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give a pixel count such as 150M or "
                                         "150000000") from None


def options_from_args(args: argparse.Namespace) -> StillOptions:
    """The StillOptions the flags ask for (ConfigError for values out of range)."""
    return StillOptions(
        model=args.model, provider=args.provider, background=args.background, color=args.color,
        blur=args.blur, id_photo=args.id_photo or ("custom" if args.id_size else None),
        allow_multiple=bool(args.allow_multiple),
        alpha_threshold=args.alpha_threshold, contrast=args.contrast, erode=args.erode,
        feather=args.feather, quality=args.quality, max_pixels=args.max_pixels,
        matting=args.matting, foreground=args.foreground, id_size=args.id_size,
        dpi=args.dpi, force=bool(args.force), max_kb=args.max_kb, sheet=args.sheet)


def output_format(args: argparse.Namespace) -> str:
    """The folder-mode output extension: --format, else jpg for ID photos, else png."""
    return args.format or ("jpg" if args.id_photo or args.id_size else "png")


def check_flags(args: argparse.Namespace, options: StillOptions, single: bool) -> None:
    """Refuse flag combinations that cannot work, before anything is read or created."""
    check_blur_flag(args.blur)
    suffix = args.output.suffix.lower() if single else f".{output_format(args)}"
    fmt = WRITE_FORMATS.get(suffix)
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(f"--jobs {args.jobs}: use 1 or more worker processes")
    if args.report is not None and not options.id_photo:
        raise ConfigError("--report only applies to --id-photo")
    if options.max_kb is not None and fmt != "JPEG":
        raise ConfigError(f"--max-kb needs jpg output, not {suffix.lstrip('.') or 'this'}")
    if args.id_photo and args.matte is not None:
        raise ConfigError("--matte cannot be combined with --id-photo (ID photos have a solid "
                          "background: choose it with --color)")
    if single and args.format and fmt != WRITE_FORMATS[f".{args.format}"]:
        raise ConfigError(f"--format {args.format} does not match -o {args.output}: the "
                          "extension of a single output file sets its format")
    if not single and options.cutout and fmt == "JPEG":
        raise ConfigError("--format jpg cannot store the transparent cut-out; use png or webp "
                          "(both keep transparency), or choose --background, --color or --blur")
    if args.quality is not None and fmt not in ("JPEG", "WEBP"):
        raise ConfigError(f"--quality applies to jpg and webp output only, not "
                          f"{suffix.lstrip('.') or 'this output'} (lossless)")


def list_presets() -> str:
    """The ID-photo presets, one per line: name, pixels, print size, what they follow."""
    lines = []
    for p in PRESETS.values():
        mm = f"{p.width / p.dpi * 25.4:.0f}x{p.height / p.dpi * 25.4:.0f} mm"
        lines.append(f"{p.name:9s} {p.width}x{p.height} px at {p.dpi} dpi ({mm})  {p.source}")
    return "\n".join(lines)


def run(args: argparse.Namespace, segmenter: PhotoMatter | None = None) -> int:
    """`vbg still`: 0 all done, 1 some inputs failed, ConfigError (exit 2) for unusable flags;
    `segmenter` replaces the one --model names (tests, callers with their own model)."""
    if args.list_presets or args.id_photo == "list":
        print(list_presets())
        return 0
    runner = None if args.ray is None else ray_runner(args.ray, args.jobs)  # Ray importable?
    if not args.inputs:
        raise ConfigError("no input: give image files or folders (vbg still IN... -o OUT)")
    if args.output is None:
        raise ConfigError("no output: give -o FILE for one image or -o FOLDER")
    started = time.monotonic()
    single = is_single(args.inputs, args.output)
    options = options_from_args(args)
    check_flags(args, options, single)
    jobs, problems = plan_jobs(args.inputs, args.output, args.matte, options.cutout,
                               output_format(args), args.recursive)
    batch = len(jobs) + len(problems) > 1 or any(p.is_dir() for p in args.inputs)
    if jobs:
        print(models_line(options.model) if segmenter is None
              else f"vbg: model {segmenter.name}", flush=True)  # stdout: stderr is for problems
    reports: list[dict] = []
    rc = run_jobs(options, jobs, problems, workers=args.jobs or 1,
                  skip_existing=args.skip_existing, batch=batch, started=started,
                  segmenter=segmenter, runner=runner, reports=reports)
    if args.report is not None:
        write_reports(args.report, reports)
    return rc
