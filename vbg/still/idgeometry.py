"""ID-photo geometry: the head (crown, chin, eye line) and the crop that meets a preset's rules."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from vbg.still.face import Face
from vbg.still.idpresets import Preset

# Head model in "face units" u (about one BlazeFace box height), measured along the face's
# vertical axis from the eye midpoint. Calibrated on 8 upright adult faces: samples/astronaut.png
# and coco_person 459 and 036 (hair top from the ground-truth person mask), 4 frontal portraits
# and one uniformed portrait from other public test images (hair top and chin read off by eye):
#   chin below the eyes      0.66 u (0.57-0.75), median
#   hair top above the eyes  0.74 u (0.71-0.98), median -> hair top to chin 1.40 u
# ICAO's crown (top of the head without hair) is hidden; it lies below every hair top seen
# (0.71 u at the flattest hair) and adult anthropometry puts the pupils about halfway: 0.68 u.
CHIN_BELOW_EYES = 0.66
SKULL_ABOVE_EYES = 0.68
HAIR_ABOVE_EYES = 0.74
HAIR_ABOVE_EYES_RANGE = (SKULL_ABOVE_EYES, 1.25)  # a matte-measured hair top is clamped here
# Eye-midpoint-to-mouth distance per box height: 0.419-0.455 (median 0.440) on the same faces;
# unlike the box it does not shrink when the head is rolled, so u is taken from both.
MOUTH_BELOW_EYES = 0.440
_MAX_ROLL_FOR_BOX = math.radians(20)

# Rules of the crop (docs/decisions.md, "ID-photo rules"):
MAX_UPSCALE = 3.5  # output px per source px; beyond this the print is visibly soft
CUT_TOLERANCE = 0.002  # share of the output where the person may run into the photo's edge
NECK_HALF_WIDTH = 0.2  # u: the band under the chin that must reach the bottom edge
BODY_COVERAGE = 0.9  # share of that band, in the bottom row, that must be person
TOP_ROW_MAX = 0.02  # hair presets: share of the top row the hair may touch
_EVAL_SIDE = 160  # long side of the reduced output on which candidate crops are judged
_GRID = 7  # candidates per axis (head size x eye height)


@dataclass(frozen=True)
class FaceFrame:
    """Eye midpoint, roll angle (radians, image y down) and face unit u in source pixels."""

    eyes: tuple[float, float]
    roll: float
    unit: float

    def up(self) -> tuple[float, float]:
        """Unit vector from chin towards crown."""
        return math.sin(self.roll), -math.cos(self.roll)


def face_frame(face: Face) -> FaceFrame:
    """Eye midpoint, roll and size of a detected face."""
    (rx, ry), (lx, ly) = face.keypoints["right_eye"], face.keypoints["left_eye"]
    ex, ey = (rx + lx) / 2, (ry + ly) / 2
    # The person's right eye is on the image's left in a normal (unmirrored) photo.
    roll = math.atan2(ly - ry, lx - rx)
    mx, my = face.keypoints["mouth"]
    from_mouth = math.hypot(mx - ex, my - ey) / MOUTH_BELOW_EYES
    unit = from_mouth if abs(roll) > _MAX_ROLL_FOR_BOX else (face.height + from_mouth) / 2
    return FaceFrame((ex, ey), roll, unit)


def hair_top(alpha: np.ndarray | None, frame: FaceFrame) -> tuple[float, bool]:
    """(top of the hair above the eyes in face units, whether the photo's edge cuts the head).

    Walks up the face axis from the forehead in a band 0.3 u wide until most of the band is
    background, clamped to HAIR_ABOVE_EYES_RANGE. A matte with no background at all gives the
    calibrated average; a head cut by the photo's edge gives at least that average.
    """
    if alpha is None or alpha.min() >= 128:
        return HAIR_ABOVE_EYES, False
    lo, hi = HAIR_ABOVE_EYES_RANGE
    ux, uy = frame.up()
    steps = np.arange(0.4 * frame.unit, hi * frame.unit, 1.0)
    across = np.linspace(-0.15, 0.15, 7) * frame.unit
    xs = frame.eyes[0] + steps[:, None] * ux + across[None, :] * math.cos(frame.roll)
    ys = frame.eyes[1] + steps[:, None] * uy + across[None, :] * math.sin(frame.roll)
    h, w = alpha.shape[:2]
    xi, yi = np.rint(xs).astype(np.intp), np.rint(ys).astype(np.intp)
    inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
    person = alpha[yi.clip(0, h - 1), xi.clip(0, w - 1)] >= 128
    stop = np.flatnonzero((person.mean(1) <= 0.5) | ~inside.all(1))
    if not len(stop):
        return hi, False
    top = steps[stop[0]] / frame.unit
    cut = not inside[stop[0]].all()
    if cut:  # the photo ends before the head does
        top = max(top, HAIR_ABOVE_EYES)
    return float(np.clip(top, lo, hi)), cut


def hair_above_eyes(alpha: np.ndarray | None, frame: FaceFrame) -> float:
    """Top of the head (hair) above the eyes in face units, read off the matte."""
    return hair_top(alpha, frame)[0]


def crown_above_eyes(preset: Preset, alpha: np.ndarray | None, frame: FaceFrame) -> float:
    """Crown above the eyes in face units, as the preset measures the head."""
    return SKULL_ABOVE_EYES if preset.crown == "skull" else hair_above_eyes(alpha, frame)


def layout_matrix(frame: FaceFrame, preset: Preset, crown_above: float, head: float,
                  eyes_from_top: float) -> np.ndarray:
    """2x3 affine (source -> preset pixels): eyes level and centred, head `head` of the height,
    the eye line `eyes_from_top` of the height below the top edge."""
    head_u = crown_above + CHIN_BELOW_EYES
    scale = head * preset.height / (head_u * frame.unit)
    c, s = math.cos(frame.roll) * scale, math.sin(frame.roll) * scale
    linear = np.array([[c, s], [-s, c]])  # rotating by -roll maps the eye vector onto +x
    dst_eyes = np.array([preset.width / 2, eyes_from_top * preset.height])
    shift = dst_eyes - linear @ np.asarray(frame.eyes)
    return np.hstack([linear, shift[:, None]])


def target_eyes(preset: Preset, crown_above: float) -> float:
    """The preset's target eye line (fraction from the top): top margin plus the crown part of
    the head, raised (into the top margin only) when the eye line would sit too low."""
    head_u = crown_above + CHIN_BELOW_EYES
    eyes_y = preset.top_frac + preset.head_frac * crown_above / head_u
    too_low = eyes_y - (1 - preset.eyes_min)
    return eyes_y - float(np.clip(too_low, 0, preset.top_frac))


def id_photo_transform(frame: FaceFrame, preset: Preset, crown_above: float) -> np.ndarray:
    """2x3 affine (source -> preset pixels) of the preset's target layout."""
    return layout_matrix(frame, preset, crown_above, preset.head_frac,
                         target_eyes(preset, crown_above))


@dataclass
class Layout:
    """One candidate crop and what it gives; fractions are of the output height."""

    matrix: np.ndarray
    head: float  # crown (as the preset measures it) to chin
    eyes: float  # eye line above the bottom edge
    top: float  # top edge to crown
    hair_margin: float  # top edge to the top of the hair
    chin_margin: float  # chin to the bottom edge
    upscale: float  # output px per original source px
    cut: dict[str, float] = field(default_factory=dict)  # photo edge -> share of the output
    body: float = 0.0  # share of the band under the chin that reaches the bottom edge
    outside: float = 0.0  # share of the output that lies outside the photo
    top_row: float = 0.0  # share of the top row that is person (hair cut by the crop)
    rules: dict[str, bool] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Every rule passes."""
        return all(self.rules.values())


@dataclass(frozen=True)
class Head:
    """What the face and matte say about the head, in source pixels and face units."""

    frame: FaceFrame
    hair_above: float
    crown_cut: bool  # the photo's top (or side) edge cuts the hair

    def crown_above(self, preset: Preset) -> float:
        """Crown above the eyes in face units, as the preset measures the head."""
        return SKULL_ABOVE_EYES if preset.crown == "skull" else self.hair_above


def measure_head(face: Face, alpha: np.ndarray | None) -> Head:
    """Eye line, roll, size and crown of the face, the crown read off the matte."""
    frame = face_frame(face)
    above, cut = hair_top(alpha, frame)
    return Head(frame, above, cut)


def judge(head: Head, preset: Preset, alpha: np.ndarray, matrix: np.ndarray,
          source_scale: float = 1.0) -> Layout:
    """Measure one crop: geometry from the head model, edges and body from the matte."""
    crown_above = head.crown_above(preset)
    scale = math.hypot(matrix[0, 0], matrix[0, 1])
    unit_px = head.frame.unit * scale / preset.height  # u as a share of the output height
    eyes_y = float(matrix[1, :2] @ np.asarray(head.frame.eyes) + matrix[1, 2]) / preset.height
    top = eyes_y - crown_above * unit_px
    chin = eyes_y + CHIN_BELOW_EYES * unit_px
    layout = Layout(matrix, head=chin - top, eyes=1 - eyes_y, top=top,
                    hair_margin=eyes_y - head.hair_above * unit_px, chin_margin=1 - chin,
                    upscale=scale * source_scale)
    _judge_edges(layout, head, preset, alpha, unit_px)
    lo, hi = preset.head_range
    eps = 1e-6
    layout.rules = {
        "head_height": lo - eps <= layout.head <= hi + eps,
        "eye_line": preset.eyes_range[0] - eps <= layout.eyes <= preset.eyes_range[1] + eps,
        "top_margin": (preset.top_range[0] - eps <= layout.top <= preset.top_range[1] + eps
                       and (preset.crown == "skull" or layout.top_row <= TOP_ROW_MAX)),
        "crown_in_photo": not head.crown_cut and layout.cut["top"] <= CUT_TOLERANCE,
        "body_to_bottom": layout.cut["bottom"] <= CUT_TOLERANCE and layout.body >= BODY_COVERAGE,
        "photo_edge": layout.cut["left"] + layout.cut["right"] <= CUT_TOLERANCE,
        "resolution": layout.upscale <= MAX_UPSCALE + eps,
    }
    return layout


def _judge_edges(layout: Layout, head: Head, preset: Preset, alpha: np.ndarray,
                 unit_px: float) -> None:
    """Fill layout.cut, .body and .outside from the matte seen through a reduced crop."""
    f = min(1.0, _EVAL_SIDE / max(preset.width, preset.height))
    w, h = max(8, round(preset.width * f)), max(8, round(preset.height * f))
    small = layout.matrix * np.array([[w / preset.width], [h / preset.height]])
    # Replicating the matte's border shows where the person would go on past the photo's edge.
    a = cv2.warpAffine(alpha, small, (w, h), flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE)
    inverse = cv2.invertAffineTransform(small)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    sx = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
    sy = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
    sh, sw = alpha.shape[:2]
    person = a >= 128
    margin = 0.5
    sides = {"top": sy < -margin, "bottom": sy > sh - 1 + margin,
             "left": sx < -margin, "right": sx > sw - 1 + margin}
    outside = sides["top"] | sides["bottom"] | sides["left"] | sides["right"]
    layout.cut = {k: float((v & person).mean()) for k, v in sides.items()}
    layout.outside = float(outside.mean())
    layout.top_row = float(person[0].mean())
    band = max(1.0, NECK_HALF_WIDTH * unit_px * h)
    x0, x1 = max(0, round(w / 2 - band)), min(w, round(w / 2 + band) + 1)
    bottom = person[-1, x0:x1] & ~outside[-1, x0:x1]
    layout.body = float(bottom.mean()) if x1 > x0 else 0.0


def _violation(layout: Layout, preset: Preset) -> float:
    """How far a crop is from passing, summed over the rules (0 = passes)."""

    def off(value: float, rng: tuple[float, float]) -> float:
        return max(rng[0] - value, value - rng[1], 0.0) / max(rng[1] - rng[0], 0.02)

    cut = sum(max(0.0, v - CUT_TOLERANCE) for v in layout.cut.values())
    return (off(layout.head, preset.head_range) + off(layout.eyes, preset.eyes_range)
            + off(layout.top, preset.top_range) + 50 * cut + 5 * layout.top_row
            + 5 * max(0.0, BODY_COVERAGE - layout.body)
            + max(0.0, layout.upscale / MAX_UPSCALE - 1))


def fit_layout(head: Head, preset: Preset, alpha: np.ndarray,
               source_scale: float = 1.0) -> Layout:
    """The crop closest to the preset's target that passes every rule it can pass.

    Candidates span the head-height range and the eye-line range (eyes always centred and
    level); among the passing ones the nearest to the target wins, preferring crops that stay
    inside the photo and need less upscaling; when none passes, the one closest to passing.
    """
    crown_above = head.crown_above(preset)
    h0, e0 = preset.head_frac, target_eyes(preset, crown_above)
    heads = np.unique(np.concatenate([[h0], np.linspace(*preset.head_range, _GRID)]))
    best: tuple[float, Layout] | None = None
    for h in heads:
        e_lo, e_hi = 1 - preset.eyes_range[1], 1 - preset.eyes_range[0]
        for e in np.unique(np.concatenate([[e0], np.linspace(e_lo, e_hi, _GRID)])):
            layout = judge(head, preset, alpha, layout_matrix(head.frame, preset, crown_above,
                                                              float(h), float(e)), source_scale)
            failed = sum(not ok for ok in layout.rules.values())
            distance = (((h - h0) / max(np.ptp(preset.head_range), 0.02)) ** 2
                        + ((e - e0) / max(e_hi - e_lo, 0.02)) ** 2)
            score = distance + 0.5 * layout.outside + 0.2 * max(0.0, math.log(layout.upscale))
            if failed:
                score = 1e3 * failed + 10 * _violation(layout, preset) + distance
            if best is None or score < best[0]:
                best = (score, layout)
    assert best is not None
    return best[1]
