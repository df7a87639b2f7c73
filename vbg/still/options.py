"""Typed settings for still mode: what to make of each photo, checked when they are built."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import numpy as np

from vbg.errors import ConfigError
from vbg.matte.refine import DEFAULTS, RefineParams
from vbg.still.idpresets import Preset, sized_preset
from vbg.still.idsheet import get_sheet

PROVIDERS = ("auto", "cuda", "cpu")
MATTING = ("fine", "fast")  # docs/decisions.md, "Fine matting"
# Stills refine near full resolution (live mode shrinks the guide to 320 px wide).
STILL_GUIDE_WIDTH = 2048
# RVM's alpha is already soft at hair: a gentler curve than the refiner's default 3, which suits
# the selfie models' blurry edges (see docs/decisions.md, "Still RVM contrast").
RVM_CONTRAST = 2.0

ImageSource = str | os.PathLike[str] | np.ndarray  # a file, or a BGR uint8 image


@dataclass(frozen=True)
class StillOptions:
    """How `vbg still` treats each photo; the fields are its flags of the same names.

    At most one of `background` (an image file or a BGR uint8 array), `color` (a colour string
    or (b, g, r)) and `blur` (1-100); none of them = a transparent cut-out; `id_photo` (a preset
    name) makes ID photos on `color` (default white). The matte refinement fields left None keep
    the refiner's defaults. Out-of-range values raise ConfigError (one line naming the flag).
    """

    model: str = "auto"  # auto, or model names joined by commas (averaged)
    provider: str = "auto"  # auto, cuda or cpu
    background: ImageSource | None = None
    color: str | tuple[int, int, int] | None = None
    blur: int | None = None
    id_photo: str | None = None
    allow_multiple: bool = False  # ID photos: with several faces, use the largest
    alpha_threshold: float | None = None  # 0-1: alpha at which the matte is half transparent
    contrast: float | None = None  # > 0: slope of the alpha curve
    erode: int | None = None  # px; negative grows the matte
    feather: int | None = None  # >= 0 px: blur of the matte edge
    quality: int | None = None  # 1-100, jpg/webp output
    max_pixels: int | None = None  # larger photos are refused unread (None: imageio.MAX_PIXELS)
    matting: str = "fine"  # fine: edge band re-solved by matting (vbg.matte.fine); fast: not
    foreground: bool = True  # blend / cut out the estimated person colour F at soft edges
    id_size: str | None = None  # ID photos: "WxH" px or "WxHmm" instead of the preset's size
    dpi: int | None = None  # ID photos: print resolution (default 300)
    force: bool = False  # ID photos: write the best effort when a rule fails (and say so)
    max_kb: int | None = None  # ID photos: the largest JPEG quality within this many KB
    sheet: str | None = None  # ID photos: write a print sheet (idsheet.SHEETS) of copies

    def __post_init__(self) -> None:
        if self.provider not in PROVIDERS:
            raise ConfigError(f"--provider {self.provider!r}: use one of {', '.join(PROVIDERS)}")
        if not isinstance(self.model, str) or not self.model.strip():
            raise ConfigError("--model: give auto or at least one model name")
        chosen = [flag for flag, value in (("--background", self.background),
                                           ("--color", self.color), ("--blur", self.blur))
                  if value is not None]
        id_flags = [flag for flag, value in (
            ("--id-size", self.id_size), ("--dpi", self.dpi), ("--force", self.force),
            ("--max-kb", self.max_kb), ("--sheet", self.sheet)) if value]
        if id_flags and not self.id_photo:
            raise ConfigError(f"{id_flags[0]} only applies to --id-photo")
        if self.id_photo:
            if self.id_photo == "custom" and not self.id_size:
                raise ConfigError("--id-photo custom needs --id-size WxH (px) or WxHmm")
            self.id_preset()
            if self.sheet:
                get_sheet(self.sheet)
            if self.max_kb is not None and self.max_kb < 1:
                raise ConfigError(f"--max-kb {self.max_kb}: use 1 or more KB")
            for flag in chosen:
                if flag != "--color":
                    raise ConfigError(f"{flag} cannot be combined with --id-photo (ID photos "
                                      "have a solid background: choose it with --color)")
        elif self.allow_multiple:
            raise ConfigError("--allow-multiple only applies to --id-photo")
        if len(chosen) > 1:
            raise ConfigError(f"{chosen[0]} and {chosen[1]} cannot be combined: choose one "
                              "background")
        if self.matting not in MATTING:
            raise ConfigError(f"--matting {self.matting!r}: use one of {', '.join(MATTING)}")
        if self.max_pixels is not None and self.max_pixels < 1:
            raise ConfigError(f"--max-pixels {self.max_pixels}: use a positive pixel count")
        if self.quality is not None and not 1 <= self.quality <= 100:
            raise ConfigError(f"--quality {self.quality}: use a value from 1 to 100")
        self.refine_params()  # the matte refinement flags, checked now

    def id_preset(self) -> Preset:
        """The ID-photo preset at --id-size and --dpi (ConfigError when they are unusable)."""
        name = None if self.id_photo == "custom" else self.id_photo
        return sized_preset(name, self.id_size, self.dpi or 300)

    @property
    def cutout(self) -> bool:
        """A transparent cut-out: no background, colour, blur or ID photo chosen."""
        return (self.background is None and self.blur is None and self.color is None
                and not self.id_photo)

    def refine_params(self, soft: bool = False) -> RefineParams:
        """Refiner settings: its defaults at full resolution (soft: RVM's own alpha curve),
        overridden by the fields given."""
        base = replace(DEFAULTS, guide_width=STILL_GUIDE_WIDTH,
                       contrast=RVM_CONTRAST if soft else DEFAULTS.contrast)
        flags = {"threshold": self.alpha_threshold, "contrast": self.contrast,
                 "erode": self.erode, "feather": self.feather}
        if flags["threshold"] is not None and not 0.0 <= flags["threshold"] <= 1.0:
            raise ConfigError(f"--alpha-threshold {flags['threshold']:g}: use a value from 0 "
                              "to 1")
        if flags["contrast"] is not None and not flags["contrast"] > 0:
            raise ConfigError(f"--contrast {flags['contrast']:g}: use a value above 0")
        if flags["feather"] is not None and flags["feather"] < 0:
            raise ConfigError(f"--feather {flags['feather']}: use 0 or more pixels")
        try:
            return replace(base, **{k: v for k, v in flags.items() if v is not None})
        except ValueError as e:
            raise ConfigError(f"invalid matte refinement flags: {e}") from None
