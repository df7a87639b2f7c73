"""ID photos: pick the face, fit the crop to the preset's rules, compose, report."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from vbg.errors import ImageError
from vbg.matte.foreground import ml_foreground
from vbg.still.face import Face, FaceDetector
from vbg.still.idgeometry import (  # noqa: F401  (re-exported: the ID-photo API lives here)
    CHIN_BELOW_EYES,
    HAIR_ABOVE_EYES,
    HAIR_ABOVE_EYES_RANGE,
    MOUTH_BELOW_EYES,
    SKULL_ABOVE_EYES,
    FaceFrame,
    crown_above_eyes,
    face_frame,
    fit_layout,
    hair_above_eyes,
    id_photo_transform,
    measure_head,
)
from vbg.still.idpresets import PRESETS, Preset, get_preset  # noqa: F401
from vbg.still.idreport import build_report
from vbg.still.idsheet import encode_image


class IdPhotoRefused(ImageError):
    """The photo cannot meet the preset's rules; `report` says which and why."""

    def __init__(self, message: str, report: dict[str, Any]) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class IdPhoto:
    """An ID photo (BGR uint8, the best effort even when not ok) and its compliance report."""

    image: np.ndarray
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Every rule passes."""
        return bool(self.report.get("ok"))

    @property
    def problem(self) -> str:
        """The one-line refusal ("" when ok)."""
        return str(self.report.get("problem", ""))

    def encode(self, fmt: str = "jpg", max_kb: int | None = None) -> bytes:
        """The photo as a file's bytes with its dpi (jpg: the best quality within max_kb)."""
        return encode_image(self.image, fmt, int(self.report.get("dpi", 300)), max_kb)[0]


def make_id_photo(image_bgr: np.ndarray, alpha_u8: np.ndarray, faces: list[Face],
                  preset: Preset, color_bgr: tuple[int, int, int], *,
                  allow_multiple: bool = False, force: bool = False, source_scale: float = 1.0,
                  detector: FaceDetector | None = None, foreground: bool = False) -> IdPhoto:
    """Fit, compose and judge the ID photo of the largest face; ImageError when there is no
    face, or several without allow_multiple or force (foreground: blend the estimated F)."""
    face = pick_face(faces, allow_multiple or force, source="the photo")
    head = measure_head(face, alpha_u8)
    layout = fit_layout(head, preset, alpha_u8, source_scale)
    out = compose_id_photo(image_bgr, alpha_u8, face, preset, color_bgr, matrix=layout.matrix,
                           foreground=foreground)
    seen = None if detector is None else len(detector.detect(out))
    report = build_report(out, layout, head, preset, color_bgr, len(faces), seen,
                          allow_multiple=allow_multiple, yaw=face_yaw(face))
    # The crop as an affine map from the caller's photo (before any shrink) to the output.
    f = source_scale
    unshrink = np.array([[f, 0, 0.5 * f - 0.5], [0, f, 0.5 * f - 0.5], [0, 0, 1]])
    report["transform"] = np.round(layout.matrix @ unshrink, 5).tolist()
    return IdPhoto(out, report)


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


def face_yaw(face: Face) -> float:
    """How far the face is turned: nose offset from the eye midpoint per eye distance."""
    (rx, ry), (lx, ly) = face.keypoints["right_eye"], face.keypoints["left_eye"]
    nx, ny = face.keypoints["nose"]
    dx, dy = lx - rx, ly - ry
    dist2 = max(dx * dx + dy * dy, 1e-9)
    return float(((nx - (rx + lx) / 2) * dx + (ny - (ry + ly) / 2) * dy) / dist2)


def compose_id_photo(image_bgr: np.ndarray, alpha_u8: np.ndarray, face: Face, preset: Preset,
                     color_bgr: tuple[int, int, int], matrix: np.ndarray | None = None, *,
                     foreground: bool = False) -> np.ndarray:
    """The ID photo: warped person over a solid colour, preset size, BGR uint8 (matrix: the
    crop, source -> output pixels; default the preset's target layout; foreground: blend the
    person's estimated colour F, made on the crop only, instead of the photo's pixels)."""
    if matrix is None:
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
    if foreground:  # on the crop as the warp sees it: the cost follows the ID photo's size
        img = crop_foreground(img, alpha)
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


def crop_foreground(bgr: np.ndarray, alpha_u8: np.ndarray) -> np.ndarray:
    """BGR uint8 F of a crop: pymatting's estimate_foreground_ml where the matte is below 255
    (extrapolated where it is 0, so the warp's kernel reads no old background), the crop's own
    pixels where it is 255 (docs/decisions.md, "ID photos: foreground colour")."""
    if not ((alpha_u8 > 0) & (alpha_u8 < 255)).any():
        return bgr
    out = ml_foreground(bgr, alpha_u8)
    opaque = alpha_u8 == 255
    out[opaque] = bgr[opaque]
    return out


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
