"""LiveSettings: the typed live-mode settings; defaults, TOML file, flags, help and checks."""

from __future__ import annotations

import dataclasses
import difflib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vbg.errors import ConfigError
from vbg.outputs import RULE


@dataclass(frozen=True)
class Spec:
    """What the schema says about one setting besides its default."""

    doc: str  # its comment in the TOML file
    help: str  # its flag's help text
    flag: str = ""  # "" = --key-with-dashes (bools default True: --no-key)
    metavar: str | None = None
    choices: tuple[str, ...] = ()
    range: tuple[float, float, str] | None = None  # (low, high, what the message allows)
    both: bool = False  # bools: the positive flag as well as --no-...
    group: str = ""  # a comment block (and a blank line) before it in the TOML file
    gap: bool = False  # a blank line before it in the TOML file


def setting(default: Any, doc: str, help: str, **spec: Any) -> Any:
    return field(default=default, metadata={"spec": Spec(doc, help, **spec)})


@dataclass(frozen=True)
class Smoothing:
    """[smoothing]: temporal smoothing of the matte."""

    enabled: bool = setting(
        True, "Temporal smoothing of the matte (cuts flicker; adapts per pixel so moving limbs "
        "do not trail).", "turn temporal smoothing off", flag="--no-smoothing")
    tau: float = setting(
        0.25, "Time constant in seconds of the blend with the previous matte where the model is "
        "unsure and\nnothing moved; moving pixels always take the new matte (measured: "
        "docs/decisions.md).", "time constant (seconds) of the temporal smoothing",
        flag="--smoothing-tau", metavar="S", range=(0, 10, "0 to 10 seconds"))


@dataclass(frozen=True)
class Refine:
    """[refine]: edge refinement and the matting knobs."""

    guided: bool = setting(
        True, "Edge refinement guided by the frame, and the usual matting knobs (for the selfie "
        "models;\nRVM's full-resolution matte is used as it is, only erode applies). The live "
        "defaults were\nmeasured with `vbg eval` on real video: a slightly low threshold and "
        "mild contrast keep the\nwhole person (no missing hands) without a visible seam; see "
        "README, matte quality.", "no edge refinement guided by the frame",
        flag="--no-refine-guided")
    alpha_threshold: float = setting(
        0.42, "Alpha threshold: centre of the contrast curve (0-1).",
        "centre of the matte contrast curve (0-1)", flag="--alpha-threshold", metavar="T",
        range=(0, 1, "0 to 1"))
    contrast: float = setting(
        1.5, "Contrast of the matte edge (1 = unchanged, higher = harder edge).",
        "contrast of the matte edge (1 = unchanged)", metavar="C",
        range=(0.01, 100, "more than 0 and at most 100"))
    erode: int = setting(
        0, "Shrink (positive) or grow (negative) the matte by this many pixels.",
        "shrink (positive) or grow (negative) the matte", metavar="PX",
        range=(-50, 50, "-50 to 50 px"))
    feather: int = setting(
        1, "Soften the matte edge by this many pixels (0 = off).",
        "soften the matte edge (0 = off)", metavar="PX", range=(0, 50, "0 (off) to 50 px"))
    foreground: bool = setting(
        False, "Blend the person's estimated colour at soft edges, not the camera pixel with "
        "the room in it.\nOff by default: ~1.9 ms more CPU per 1080p frame for 5% less edge "
        "colour error\n(docs/decisions.md, \"Foreground colour\").",
        "blend the person's estimated colour at soft edges (costs ~1.9 ms per 1080p frame)",
        both=True)


SECTIONS = {"smoothing": Smoothing, "refine": Refine}
TYPE_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}


@dataclass(frozen=True)
class LiveSettings:
    """Every live-mode setting; build one with from_mapping/merged so values are checked."""

    camera: str = setting(
        "0", "Capture source: camera index (\"0\"), a device (\"/dev/video0\"), a video file, "
        "or a URL\n(an IP or phone camera's MJPEG-over-HTTP or RTSP stream).",
        "camera index, /dev/videoN, video file or stream URL", metavar="SRC")
    size: str = setting(
        "1280x720", "Size asked of the camera; the output uses what the camera really delivers.",
        "capture size asked of the camera, e.g. 1280x720", metavar="WxH")
    fps: float = setting(
        30.0, "Frame rate asked of the camera and kept by the output (a lost camera shows a "
        "notice meanwhile).", "frame rate of the camera and the output", metavar="N",
        range=(1e-3, 240, "more than 0 and at most 240"))
    pixel_format: str = setting(
        "mjpg", "Camera pixel format: \"mjpg\" (most webcams reach 720p/1080p at 30 fps only in "
        "MJPG) or \"yuyv\".", "camera format", choices=("mjpg", "yuyv"))
    wait_for_camera: bool = setting(
        False, "Wait for the camera to appear instead of failing at start.",
        "wait for the camera to appear instead of failing")
    mirror: bool = setting(False, "Flip the picture horizontally (a mirror view).",
                           "flip the picture horizontally")
    background: str = setting(
        "", "Background image file.", "background image", metavar="IMG",
        group="Background: pick one. An image file, a looping video file, a blur strength "
        "(1-100),\nor a colour. With none set, the background is blurred with strength 15.")
    video: str = setting("", "Looping background video file.", "looping background video",
                         metavar="FILE")
    blur: int = setting(
        0, "Blur the real background with this strength (1-100; 0 = off).",
        "blur the real background (strength 1-100)", metavar="N", range=(0, 100, "0 (off) to 100"))
    color: str = setting(
        "", "Solid colour: \"#rrggbb\", \"r,g,b\" or white/black/green/blue/red/gray.",
        "solid colour: #rrggbb, r,g,b or a name (white, blue...)", metavar="C")
    blur_refresh: int = setting(
        8, "Blur only: reuse the blurred room for up to this many frames while the room itself "
        "does not\nchange (you moving in front of it does not count; a change in light or a "
        "moved camera\nrecomputes it at once). 1 = recompute every frame.",
        "reuse the blurred room up to N frames while it does not change (1 = every frame)",
        metavar="N", range=(1, 1000, "1 (every frame) to 1000"))
    model: str = setting(
        "auto", "Segmentation model (`vbg models list`): selfie-landscape (fast tier), selfie "
        "(256x256),\nrvm (quality tier, after `vbg models pull rvm`), or auto (rvm when a GPU "
        "really works and\nit is installed, else selfie-landscape).",
        "segmentation model: auto, selfie-landscape, selfie, rvm (`vbg models`)",
        metavar="NAME", gap=True)
    rvm_size: int = setting(
        640, "RVM only: long side in px of the picture the network works on internally (its "
        "downsample\nratio); measured best on DAVIS (docs/decisions.md).",
        "RVM only: long side of the picture the network works on internally", metavar="PX",
        range=(64, 4096, "64 to 4096 px"))
    zoom: bool = setting(
        True, "Zoom on the person: a second network pass on a crop around a small or distant "
        "person.", "no second pass on a crop around a small person")
    zoom_model: str = setting(
        "selfie", "Network for the zoomed crop (\"\" = the same as `model`); the square 256x256 "
        "selfie model fits\na person-shaped crop best. Costs ~5 ms more per frame, only while "
        "the person is small.", "network for the zoomed crop ('' = the same as --model)",
        metavar="NAME")
    provider: str = setting(
        "auto", "Inference provider: auto (CUDA when it really works, else CPU), cuda or cpu.",
        "inference provider", choices=("auto", "cuda", "cpu"))
    threads: int = setting(0, "onnxruntime threads (0 = automatic).",
                           "inference threads (0 = automatic)", metavar="N",
                           range=(0, 1024, "0 (automatic) to 1024"))
    frame_threads: int = setting(
        0, "Threads for the per-frame image work (numba kernels, OpenCV). 0 = automatic: one "
        "thread\nwhile frames take under 45% of the frame period (the least CPU; "
        "docs/decisions.md), every\ncore when they take longer, so latency stays low. N = "
        "always N threads.", "threads for the per-frame image work (default 0: automatic, one "
        "while it keeps up; N: always N)", metavar="N", range=(0, 1024, "0 (automatic) to 1024"))
    output: str = setting(
        "", "Write the composited video to this file instead (.mp4, .avi or .mkv).",
        f"write the composited video to FILE (no virtual camera); {RULE}", metavar="FILE",
        group="Outputs. The virtual camera \"VBG Camera\" is on unless `output` is set.")
    matte_output: str = setting(
        "", "Write the alpha matte as a grey video to this file.",
        "write the alpha matte as a grey video (the same rule as --output)", metavar="FILE")
    virtual_camera: bool = setting(False, "Keep the virtual camera on as well as `output`.",
                                   "keep the virtual camera on as well as --output")
    device: str = setting(
        "", "v4l2loopback device for the virtual camera (\"\" = the one labelled \"VBG Camera\", "
        "else the first).", "v4l2loopback device for the virtual camera", metavar="DEV")
    preview: bool = setting(False, "Show a preview window.", "show a preview window")
    on_demand: bool = setting(
        True, "While no application reads the virtual camera: release the camera (its light goes "
        "off), stop\nthe work, and keep the device fresh with an idle frame about once a second; "
        "start again within\n~0.5 s of an application opening it. Only for the virtual camera on "
        "Linux (v4l2loopback).", "keep the camera and the pipeline running while no application "
        "reads the virtual camera", both=True)
    reuse_still: bool = setting(
        True, "Reuse the last matte while nothing in the picture moves (a cheap check on a "
        "thumbnail);\nsaves most of the CPU when you sit still.",
        "run the network on every frame, even while nothing moves", gap=True)
    stats: bool = setting(False, "Print fps, CPU per frame and latency every few seconds.",
                          "print fps, CPU and latency")
    web: bool = setting(
        True, "Serve the control page (the Live tab: preview, backgrounds, pause) and its API on "
        "127.0.0.1;\n`vbg ctl` talks to it. Choices made there are kept in "
        "~/.config/vbg/config.toml.", "no web control page (and no `vbg ctl`)", gap=True)
    web_port: int = setting(
        7860, "Port of the control page, http://127.0.0.1:PORT/ (taken: live mode runs "
        "without it, saying so).", "port of the web control page on 127.0.0.1", metavar="P",
        range=(1024, 65535, "1024 to 65535"))
    smoothing: Smoothing = field(default_factory=Smoothing)
    refine: Refine = field(default_factory=Refine)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str | Path = "the settings",
                     sources: dict[str, str] | None = None) -> LiveSettings:
        """The defaults overridden by `data` (config-file keys), checked."""
        return cls().merged(data, source, sources)

    def merged(self, changes: Mapping[str, Any], source: str | Path = "the request",
               sources: dict[str, str] | None = None, check: bool = True) -> LiveSettings:
        """A copy with `changes` (nested tables or "section.key") applied and checked."""
        sources = {} if sources is None else sources
        values = self.to_dict()
        for key, value in changes.items():
            section, _, name = key.rpartition(".")
            if section:
                value = {name: value}
                key = section
            _put(values, key, value, source, sources)
        out = _build(values)
        if check:
            out.check(sources)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict with the config file's keys and tables."""
        return dataclasses.asdict(self)

    def check(self, sources: Mapping[str, str] | None = None) -> None:
        """One ConfigError line for a value out of range or not among the choices."""
        sources = sources or {}
        for name, value, spec in self.items():
            where = sources.get(name, "given in the settings")
            if spec.range is not None and not spec.range[0] <= value <= spec.range[1]:
                raise ConfigError(f"{name} = {value:g} ({where}) is out of range: allowed "
                                  f"{spec.range[2]}")
            if spec.choices and value not in spec.choices:
                raise ConfigError(f"{name} = {value!r} ({where}) is not one of "
                                  f"{', '.join(spec.choices)}")

    def items(self) -> Iterator[tuple[str, Any, Spec]]:
        """(dotted name, value, spec) of every setting, in file order."""
        for name, _default, spec in _walk(type(self), ""):
            yield name, self.get(name), spec

    def get(self, name: str) -> Any:
        """The value of a dotted name ("model", "smoothing.tau")."""
        section, _, key = name.rpartition(".")
        return getattr(getattr(self, section) if section else self, key)


def _walk(cls: type, prefix: str) -> Iterator[tuple[str, Any, Spec]]:
    """(dotted name, default, spec) of every field of `cls`, sections included."""
    for f in dataclasses.fields(cls):
        if f.name in SECTIONS and not prefix:
            yield from _walk(SECTIONS[f.name], f.name + ".")
        else:
            yield prefix + f.name, f.default, f.metadata["spec"]


def fields() -> list[tuple[str, Any, Spec]]:
    """(dotted name, default, spec) of every live setting, in file order."""
    return list(_walk(LiveSettings, ""))


def flag_of(name: str, default: Any, spec: Spec) -> str:
    """The flag that sets `name` (for bools defaulting to true: the --no- one)."""
    if spec.flag:
        return spec.flag
    dashed = name.rpartition(".")[2].replace("_", "-")  # [refine] erode: --erode
    return f"--no-{dashed}" if default is True else f"--{dashed}"


def where_in_file(source: str | Path, section: str, key: str) -> str:
    if isinstance(source, Path):
        return f"file {source} key {f'[{section}] ' if section else ''}{key}"
    return f"{source}, key {f'{section}.' if section else ''}{key}"


def _put(values: dict[str, Any], key: str, value: Any, source: str | Path,
         sources: dict[str, str], section: str = "") -> None:
    """Check one key's value against the default's type and store it in `values`."""
    if key not in values:
        close = difflib.get_close_matches(key, list(values), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        where = f" in [{section}]" if section else ""
        raise ConfigError(f"{source}: unknown setting {key!r}{where}{hint}")
    if isinstance(values[key], dict):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{source}: [{key}] must be a table")
        for name, sub in value.items():
            _put(values[key], name, sub, source, sources, key)
        return
    want = type(values[key])
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, want) or (want is int and isinstance(value, bool)):
        raise ConfigError(f"{where_in_file(source, section, key)} = {value!r} should be "
                          f"{TYPE_WORDS.get(want, want.__name__)}")
    values[key] = value
    sources[f"{section}.{key}" if section else key] = where_in_file(source, section, key)


def _build(values: dict[str, Any]) -> LiveSettings:
    top = {k: v for k, v in values.items() if k not in SECTIONS}
    return LiveSettings(**top, **{k: cls(**values[k]) for k, cls in SECTIONS.items()})


def toml_value(value: Any) -> str:
    """A TOML literal for a bool, number or string (JSON string escapes are TOML's too)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)


def default_toml() -> str:
    """The text of vbg/live/default.toml, written from the schema (a test keeps them equal)."""
    lines = ["# vbg live-mode defaults. Precedence: this file < --config FILE < command-line "
             "flags.",
             "# Every key has a flag (vbg --help); this file is written from "
             "vbg/live/settings.py.", ""]
    section = ""
    for name, default, spec in fields():
        head, _, key = name.rpartition(".")
        if head != section:
            section = head
            lines += ["", f"[{head}]"]
        elif spec.group or spec.gap:
            lines.append("")
        if spec.group:
            lines += [f"# {line}" for line in spec.group.splitlines()]
        lines += [f"# {line}" for line in spec.doc.splitlines()]
        lines.append(f"{key} = {toml_value(default)}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m vbg.live.settings > vbg/live/default.toml
    print(default_toml(), end="")
