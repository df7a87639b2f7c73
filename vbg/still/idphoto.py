"""ID-photo presets and geometry: level the eyes, size the head, centre, fill the background."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from vbg.errors import ImageError
from vbg.still.face import Face

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


@dataclass(frozen=True)
class Preset:
    """Output size and where the head goes; fractions are of the output height."""

    name: str
    width: int
    height: int
    dpi: int = 300
    head_frac: float = 0.62  # crown to chin
    top_frac: float = 0.09  # image top to crown
    crown: str = "hair"  # "hair": top of the hair (from the matte), "skull": ICAO's crown
    eyes_min: float = 0.0  # lowest allowed eye line, as a fraction of the height from the bottom
    source: str = ""


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        # Chinese 1-inch: 25x35 mm at 300 dpi. Common practice: the head with hair ~2/3 of the
        # height, a small margin above the hair.
        Preset("1inch", 295, 413, head_frac=0.62, top_frac=0.09, crown="hair",
               source="25x35 mm; head incl. hair ~60-70 %, top margin ~8-10 % (common practice)"),
        # Chinese 2-inch: 35x53 mm at 300 dpi; taller frame, more shoulders.
        Preset("2inch", 413, 626, head_frac=0.60, top_frac=0.08, crown="hair",
               source="35x53 mm; head incl. hair ~60-70 %, top margin ~8-10 % (common practice)"),
        # ICAO Doc 9303 passport: 35x45 mm, chin to crown 32-36 mm = 71-80 % of the height,
        # where the crown is the top of the head *without* hair. Eye line 56-69 % from the
        # bottom as specified for this project (ISO/IEC 19794-5 is usually quoted as 50-70 %).
        # 0.73 and 0.055 put the eyes ~57 % from the bottom and the chin ~21 % above it. Very
        # full hair (more than ~0.1 u above the skull) is cut by the top edge, as ICAO allows.
        Preset("passport", 413, 531, head_frac=0.73, top_frac=0.055, crown="skull", eyes_min=0.56,
               source="ICAO 9303: 35x45 mm, chin-crown 32-36 mm (71-80 %), eyes 56-69 %"),
        # US passport/visa (travel.state.gov): 2x2 in, head from top of hair to chin 1-1 3/8 in
        # (50-69 %), eyes 1 1/8-1 3/8 in from the bottom (56-69 %).
        # Very full hair would push the eyes below 56 %: the margin above the hair then shrinks.
        Preset("us", 600, 600, head_frac=0.60, top_frac=0.06, crown="hair", eyes_min=0.56,
               source="US DoS: 2x2 in, head 1-1 3/8 in (50-69 %), eyes 56-69 % from bottom"),
    )
}


def get_preset(name: str) -> Preset:
    """The preset called `name`, or an ImageError that lists them."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ImageError(
            f"unknown ID-photo preset {name!r}; choose one of {', '.join(PRESETS)}"
        ) from None


def pick_face(faces: list[Face], allow_multiple: bool = False, source: str = "the image") -> Face:
    """The one face to use; several only with allow_multiple (then the largest)."""
    if not faces:
        raise ImageError(
            f"no face found in {source}; use a photo with one frontal face, eyes visible, "
            "the face at least ~1/10 of the image"
        )
    if len(faces) > 1 and not allow_multiple:
        raise ImageError(
            f"{len(faces)} faces found in {source}; use --allow-multiple to take the largest, "
            "or crop the photo to one person"
        )
    return max(faces, key=lambda f: f.area)


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


def hair_above_eyes(alpha: np.ndarray | None, frame: FaceFrame) -> float:
    """Top of the head (hair) above the eyes in face units, read off the matte.

    Walks up the face axis from the forehead in a band 0.3 u wide until most of the band is
    background, clamped to HAIR_ABOVE_EYES_RANGE. A matte with no background at all gives the
    calibrated average; a head cut by the photo's edge gives at least that average.
    """
    if alpha is None or alpha.min() >= 128:
        return HAIR_ABOVE_EYES
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
        return hi
    top = steps[stop[0]] / frame.unit
    if not inside[stop[0]].all():  # the photo ends before the head does
        top = max(top, HAIR_ABOVE_EYES)
    return float(np.clip(top, lo, hi))


def crown_above_eyes(preset: Preset, alpha: np.ndarray | None, frame: FaceFrame) -> float:
    """Crown above the eyes in face units, as the preset measures the head."""
    return SKULL_ABOVE_EYES if preset.crown == "skull" else hair_above_eyes(alpha, frame)


def id_photo_transform(frame: FaceFrame, preset: Preset, crown_above: float) -> np.ndarray:
    """2x3 affine (source -> preset pixels): eyes level, head sized, eyes centred horizontally."""
    head_u = crown_above + CHIN_BELOW_EYES
    scale = preset.head_frac * preset.height / (head_u * frame.unit)
    c, s = math.cos(frame.roll) * scale, math.sin(frame.roll) * scale
    # Rotating by -roll maps the eye vector (cos, sin) onto +x.
    linear = np.array([[c, s], [-s, c]])
    eyes_y = (preset.top_frac + preset.head_frac * crown_above / head_u) * preset.height
    # Raise the head (eating into the top margin only) when the eye line sits too low.
    too_low = eyes_y - (1 - preset.eyes_min) * preset.height
    eyes_y -= float(np.clip(too_low, 0, preset.top_frac * preset.height))
    dst_eyes = np.array([preset.width / 2, eyes_y])
    shift = dst_eyes - linear @ np.asarray(frame.eyes)
    return np.hstack([linear, shift[:, None]])


def compose_id_photo(image_bgr: np.ndarray, alpha_u8: np.ndarray, face: Face, preset: Preset,
                     color_bgr: tuple[int, int, int]) -> np.ndarray:
    """The ID photo: warped person over a solid colour, preset size, BGR uint8."""
    frame = face_frame(face)
    matrix = id_photo_transform(frame, preset, crown_above_eyes(preset, alpha_u8, frame))
    roi, matrix = _source_roi(image_bgr.shape, matrix, preset)
    x0, y0, x1, y1 = roi
    img, alpha = image_bgr[y0:y1, x0:x1], alpha_u8[y0:y1, x0:x1]
    scale = math.hypot(matrix[0, 0], matrix[0, 1])
    if scale < 0.8:
        # Strong shrink: warpAffine does not low-pass, so area-average first (antialiasing),
        # leaving the warp a rotation at about 1:1.
        size = (max(1, round(img.shape[1] * scale)), max(1, round(img.shape[0] * scale)))
        fx, fy = size[0] / img.shape[1], size[1] / img.shape[0]
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
        # INTER_AREA maps pixel centres as shrunk = f * (src + 0.5) - 0.5; undo that exactly.
        unshrink = np.array([[1 / fx, 0, 0.5 / fx - 0.5], [0, 1 / fy, 0.5 / fy - 0.5], [0, 0, 1]])
        matrix = matrix @ unshrink
    out_size = (preset.width, preset.height)
    # Outside the photo the matte is 0 (constant border), so the output there is exactly the
    # background colour; the image itself replicates its edge so that no colour rings into it.
    fg = cv2.warpAffine(img, matrix, out_size, flags=cv2.INTER_LANCZOS4,
                        borderMode=cv2.BORDER_REPLICATE)
    a = cv2.warpAffine(alpha, matrix, out_size, flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    a = a.astype(np.float32)[..., None] * np.float32(1 / 255)
    bg = np.asarray(color_bgr, np.float32)
    out = fg.astype(np.float32) * a + bg * (1 - a)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _source_roi(shape: tuple[int, ...], matrix: np.ndarray,
                preset: Preset) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """Source rectangle that the output can see (plus a kernel margin), and the matrix for it."""
    h, w = shape[:2]
    inverse = cv2.invertAffineTransform(matrix)
    corners = np.array([[0, 0, 1], [preset.width, 0, 1], [0, preset.height, 1],
                        [preset.width, preset.height, 1]], np.float64)
    src = corners @ inverse.T
    margin = 8 / min(1.0, math.hypot(matrix[0, 0], matrix[0, 1]))
    x0 = int(np.clip(math.floor(src[:, 0].min() - margin), 0, w - 1))
    y0 = int(np.clip(math.floor(src[:, 1].min() - margin), 0, h - 1))
    x1 = int(np.clip(math.ceil(src[:, 0].max() + margin), x0 + 1, w))
    y1 = int(np.clip(math.ceil(src[:, 1].max() + margin), y0 + 1, h))
    shifted = matrix.copy()
    shifted[:, 2] += matrix[:, :2] @ np.array([x0, y0], np.float64)
    return (x0, y0, x1, y1), shifted
