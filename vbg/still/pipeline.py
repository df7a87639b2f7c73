"""StillPipeline: segmenter + refiner + compositor (or ID-photo layout) for one photo at a time."""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from vbg import backgrounds as background
from vbg.compose import composite
from vbg.imageio import read_image, write_image
from vbg.matte import fine, foreground, refine
from vbg.still.face import Face, FaceDetector
from vbg.still.idphoto import (
    CHIN_BELOW_EYES,
    SKULL_ABOVE_EYES,
    IdPhoto,
    IdPhotoRefused,
    Preset,
    face_frame,
    make_id_photo,
    pick_face,
)
from vbg.still.idreport import summary_line
from vbg.still.idsheet import make_sheet, write_jpeg_max_kb
from vbg.still.jobs import Job
from vbg.still.options import StillOptions
from vbg.still.segmenter import PhotoMatter, PhotoSegmenter, model_names

# ID photos: the photo is first shrunk (when large) so that the head keeps this many times the
# output's resolution: the matte is then computed at the size that matters, several times faster.
ID_PHOTO_OVERSAMPLE = 2.0
FACE_OUTSIDE_MAX = 0.1  # a face box reaching further out of the photo (x its size) is no use
FINE_FEATHER = 0  # default feather (px) after fine matting (docs/decisions.md, "Fine matting")


@dataclass(frozen=True)
class IdPhotoSettings:
    """What --id-photo, --color and --allow-multiple ask for."""

    preset: Preset
    color_bgr: tuple[int, int, int]
    allow_multiple: bool
    force: bool = False
    max_kb: int | None = None
    sheet: str | None = None


class StillPipeline:
    """Segmenter + refiner + compositor (or ID-photo layout), built and warmed up once.

    `segmenter` replaces the one `options.model` names (anything with `name` and a
    frame -> float32 alpha call); `threads` caps the libraries' threads (worker processes).
    Bad options, models or backgrounds raise VbgError here, before any photo is read.
    """

    def __init__(self, options: StillOptions, segmenter: PhotoMatter | None = None,
                 threads: int | None = None) -> None:
        self.options = options
        self.quality: int | None = options.quality
        self.id_photo: IdPhotoSettings | None = None
        names = model_names(options.model) if segmenter is None else [segmenter.name]
        params = options.refine_params(soft=names == ["rvm"])
        # Fine matting re-solves the edge band: erode and feather apply after it, as they would
        # after the refiner (the same meaning in both paths; docs/decisions.md, "Fine matting").
        self.after_fine = (params.erode, options.feather if options.feather is not None
                           else FINE_FEATHER)
        if options.matting == "fine":
            params = replace(params, erode=0, feather=0)
        self.refiner = refine.MatteRefiner(params)
        if options.id_photo:
            self.id_photo = IdPhotoSettings(options.id_preset(), _color_bgr(
                options.color or "white"), options.allow_multiple, options.force,
                options.max_kb, options.sheet)
            self.cutout = False
            self.detector = FaceDetector(provider=options.provider, threads=threads)
        else:
            bg = background.make_background(image=options.background, blur=options.blur,
                                            color=options.color, transparent=options.cutout)
            self.cutout = bg.kind == "transparent"
            self.compositor = composite.Compositor(bg)
            composite.warm_up()
            if bg.kind == "blur":
                background.warm_up()
        self.segmenter = (segmenter if segmenter is not None
                          else PhotoSegmenter(names, options.provider, threads))
        refine.warm_up()
        self.segmenter(np.zeros((64, 64, 3), np.uint8))

    def matte(self, bgr: np.ndarray, alpha_in: np.ndarray | None) -> np.ndarray:
        """Full-res uint8 matte (may be the refiner's buffer: copy it to keep it), its edge band
        re-solved by matting with `matting="fine"`, times the input's own alpha if any."""
        matte = self.refiner(bgr, self.segmenter(bgr))
        if self.options.matting == "fine":
            matte = fine.erode_feather(fine.refine(bgr, matte), *self.after_fine)
        if alpha_in is not None:
            cv2.multiply(matte, alpha_in, dst=matte, scale=1.0 / 255.0)
        return matte

    def id_photo_image(self, bgr: np.ndarray, alpha_in: np.ndarray | None) -> np.ndarray:
        """The ID photo (BGR, preset size); ImageError when there is no face or several, or
        (unless force) when a rule of the preset fails."""
        result = self.id_photo_result(bgr, alpha_in)
        assert self.id_photo is not None
        if not result.ok and not self.id_photo.force:
            raise IdPhotoRefused(result.problem, result.report)
        return result.image

    def id_photo_result(self, bgr: np.ndarray, alpha_in: np.ndarray | None) -> IdPhoto:
        """The ID photo and its compliance report (the best effort when a rule fails);
        ImageError when there is no face, or several without allow_multiple or force."""
        spec = self.id_photo
        assert spec is not None
        faces = self.detector.detect(bgr)
        if not faces:  # fail before the expensive matte
            pick_face(faces, spec.allow_multiple, source="the photo")
        shrink = max(id_photo_shrink(face, spec.preset) for face in faces)
        scale = 1.0
        if shrink < 0.75:  # matte the photo at the size the output needs, not at full size
            size = (max(1, round(bgr.shape[1] * shrink)), max(1, round(bgr.shape[0] * shrink)))
            faces = [scaled_face(f, size[0] / bgr.shape[1], size[1] / bgr.shape[0])
                     for f in faces]
            scale = size[0] / bgr.shape[1]
            bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
            if alpha_in is not None:
                alpha_in = cv2.resize(alpha_in, size, interpolation=cv2.INTER_AREA)
        matte = self.matte(bgr, alpha_in)
        faces = [f for f in faces if usable_face(f, matte)]
        return make_id_photo(bgr, matte, faces, spec.preset, spec.color_bgr,
                             allow_multiple=spec.allow_multiple, force=spec.force,
                             source_scale=scale, detector=self.detector,
                             foreground=self.options.foreground)

    def render(self, bgr: np.ndarray,
               alpha_in: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        """(result, matte) for one photo: BGRA cut-out, BGR composite or ID photo (matte None)."""
        if self.id_photo is not None:
            return self.id_photo_image(bgr, alpha_in), None
        matte = self.matte(bgr, alpha_in)
        fg = foreground.estimate_photo(bgr, matte) if self.options.foreground else None
        return self.compositor(bgr, matte, fg=fg), matte

    def process(self, job: Job) -> dict | None:
        """Read job.source, write job.output (and job.matte); no output left behind on error.
        ID photos: returns the compliance report (IdPhotoRefused carries it when refused)."""
        if self.id_photo is not None:
            return self.process_id_photo(job)
        bgr, alpha_in, info = read_image(job.source, max_pixels=self.options.max_pixels)
        result, matte = self.render(bgr, alpha_in)
        del bgr, alpha_in  # a big photo's own pixels are not needed while the results are written
        dpi: tuple[float, float] | None = info.dpi
        if self.id_photo is not None:
            dpi = (self.id_photo.preset.dpi,) * 2
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


    def process_id_photo(self, job: Job) -> dict:
        """Make, judge and write one ID photo (or its sheet); the report line goes to stdout."""
        spec = self.id_photo
        assert spec is not None
        bgr, alpha_in, _ = read_image(job.source, max_pixels=self.options.max_pixels)
        result = self.id_photo_result(bgr, alpha_in)
        del bgr, alpha_in
        report = {"file": str(job.source), "output": str(job.output), **result.report}
        if not result.ok and not spec.force:
            raise IdPhotoRefused(result.problem, report)
        image, dpi = result.image, spec.preset.dpi
        if spec.sheet:
            image, report["sheet_copies"] = make_sheet(image, spec.sheet, dpi)
            report["sheet"], dpi = spec.sheet, 300
        if spec.max_kb is not None:
            report["jpeg_quality"] = write_jpeg_max_kb(job.output, image, dpi, spec.max_kb)
        else:
            write_image(job.output, image, dpi=(dpi, dpi), quality=self.quality)
        report["kb"] = round(job.output.stat().st_size / 1024, 1)
        print(f"vbg: {job.source}: {summary_line(report)}", flush=True)
        if not result.ok:
            off = result.problem.split("; --force")[0]
            print(f"vbg: {job.source}: written anyway (--force): {off}", file=sys.stderr,
                  flush=True)
        return report


def _color_bgr(color: str | tuple[int, int, int]) -> tuple[int, int, int]:
    """(b, g, r) of a colour string or tuple (checked as the colour background checks it)."""
    return background.ColorBackground(color).color


def id_photo_shrink(face: Face, preset: Preset) -> float:
    """Factor (<= 1) that leaves the head ID_PHOTO_OVERSAMPLE times the output's resolution."""
    # The smallest head the preset measures (skull to chin) gives the largest output scale.
    head_px = (SKULL_ABOVE_EYES + CHIN_BELOW_EYES) * face_frame(face).unit
    return min(1.0, ID_PHOTO_OVERSAMPLE * preset.head_frac * preset.height / max(head_px, 1e-6))


def usable_face(face: Face, matte: np.ndarray) -> bool:
    """A face for an ID photo: inside the photo, and the matte says it is on a person (false
    detections it rejects: docs/decisions.md, "ID-photo face checks")."""
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

    def point(x: float, y: float) -> tuple[float, float]:
        return (x + 0.5) * fx - 0.5, (y + 0.5) * fy - 0.5

    x0, y0 = point(*face.box[:2])
    x1, y1 = point(*face.box[2:])
    return Face((x0, y0, x1, y1), face.score,
                {k: point(x, y) for k, (x, y) in face.keypoints.items()})
