"""ID-photo compliance report: each rule measured on the result, pass/fail, and the lines said."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vbg.errors import SinkError
from vbg.still.idgeometry import (
    BODY_COVERAGE,
    CHIN_BELOW_EYES,
    CUT_TOLERANCE,
    MAX_UPSCALE,
    TOP_ROW_MAX,
    Head,
    Layout,
)
from vbg.still.idpresets import Preset

# Quality rules measured on the written photo (docs/decisions.md, "ID-photo rules").
BACKGROUND_MIN = 0.95  # share of the area around the head that is the chosen colour
HEAD_HALF_WIDTH = 0.85  # face units from the centre line: the head with its hair is inside
BACKGROUND_TOLERANCE = 16  # max channel difference still counted as the chosen colour
SHARPNESS_MIN = 15.0  # variance of the Laplacian of the face at 128 px wide
EXPOSURE_RANGE = (0.25, 0.85)  # mean luminance of the face
CLIPPED_MAX = 0.10  # share of the face blown out to white
# Nose offset from the eye midpoint per eye distance (BlazeFace keypoints). On coco_person
# OpenCV's frontal Haar cascade misses a face at 0.36 and places its box off-centre from 0.26.
MAX_YAW = 0.25
_FACE_SIDE = 128

RULE_ORDER = ("face_count", "frontal", "crown_in_photo", "body_to_bottom", "photo_edge",
              "resolution", "head_height", "eye_line", "top_margin", "background", "sharpness",
              "exposure")


def _face_region(image: np.ndarray, layout: Layout, head: Head, preset: Preset) -> np.ndarray:
    """The output's face (forehead to chin, cheek to cheek) as grey, resized to 128 px wide."""
    unit = head.frame.unit * math.hypot(layout.matrix[0, 0], layout.matrix[0, 1])
    eyes_y = (1 - layout.eyes) * preset.height
    x0, x1 = round(preset.width / 2 - 0.4 * unit), round(preset.width / 2 + 0.4 * unit)
    y0, y1 = round(eyes_y - 0.35 * unit), round(eyes_y + CHIN_BELOW_EYES * 0.9 * unit)
    x0, y0 = max(0, x0), max(0, y0)
    x1, y1 = min(preset.width, max(x1, x0 + 2)), min(preset.height, max(y1, y0 + 2))
    grey = cv2.cvtColor(np.ascontiguousarray(image[y0:y1, x0:x1]), cv2.COLOR_BGR2GRAY)
    size = (_FACE_SIDE, max(2, round(_FACE_SIDE * grey.shape[0] / max(grey.shape[1], 1))))
    interp = cv2.INTER_AREA if grey.shape[1] > _FACE_SIDE else cv2.INTER_LINEAR
    return cv2.resize(grey, size, interpolation=interp)


def background_uniformity(image: np.ndarray, layout: Layout, head: Head, preset: Preset,
                          color_bgr: tuple[int, int, int]) -> float:
    """Share of the area above the hair and beside the head (down to the chin, beyond
    HEAD_HALF_WIDTH face units from the face's centre line) that is the chosen colour."""
    h, w = image.shape[:2]
    unit = head.frame.unit * math.hypot(layout.matrix[0, 0], layout.matrix[0, 1])
    mask = np.zeros((h, w), bool)
    mask[: max(0, int(layout.hair_margin * h) - 3)] = True
    chin_y = int((1 - layout.chin_margin) * h)
    half = HEAD_HALF_WIDTH * unit
    mask[:chin_y, : max(0, int(w / 2 - half))] = True
    mask[:chin_y, min(w, math.ceil(w / 2 + half)):] = True
    if not mask.any():
        return 1.0
    diff = np.abs(image[mask].astype(np.int16) - np.asarray(color_bgr, np.int16)).max(1)
    return float((diff <= BACKGROUND_TOLERANCE).mean())


def build_report(image: np.ndarray, layout: Layout, head: Head, preset: Preset,
                 color_bgr: tuple[int, int, int], face_count: int,
                 output_faces: int | None = None, allow_multiple: bool = False,
                 yaw: float = 0.0) -> dict[str, Any]:
    """Every field of the compliance report (JSON-ready), with pass/fail per rule."""
    face = _face_region(image, layout, head, preset)
    sharpness = float(cv2.Laplacian(face, cv2.CV_64F).var())
    exposure = float(face.mean() / 255)
    clipped = float((face >= 250).mean())
    background = background_uniformity(image, layout, head, preset, color_bgr)
    rules = dict(layout.rules)
    rules["face_count"] = face_count == 1 or (allow_multiple and face_count > 1)
    rules["frontal"] = abs(yaw) <= MAX_YAW
    rules["background"] = background >= BACKGROUND_MIN
    rules["sharpness"] = sharpness >= SHARPNESS_MIN
    rules["exposure"] = (EXPOSURE_RANGE[0] <= exposure <= EXPOSURE_RANGE[1]
                         and clipped <= CLIPPED_MAX)
    rules = {name: bool(rules[name]) for name in RULE_ORDER}
    r3 = lambda v: round(float(v), 3)  # noqa: E731
    report: dict[str, Any] = {
        "preset": preset.name, "size": [preset.width, preset.height], "dpi": preset.dpi,
        "face_count": face_count,
        "head_height": {"value": r3(layout.head), "range": list(preset.head_range),
                        "crown": preset.crown, "ok": rules["head_height"]},
        "eye_line": {"value": r3(layout.eyes), "range": list(preset.eyes_range),
                     "from": "bottom", "ok": rules["eye_line"]},
        "top_margin": {"value": r3(layout.top), "range": list(preset.top_range),
                       "hair_at_top_edge": r3(layout.top_row), "ok": rules["top_margin"]},
        "crown_margin": r3(layout.hair_margin), "chin_margin": r3(layout.chin_margin),
        "tilt_deg": round(math.degrees(head.frame.roll), 1),
        "frontal": {"yaw": round(float(yaw), 3), "max": MAX_YAW, "ok": rules["frontal"]},
        "upscale": {"value": round(layout.upscale, 2), "max": MAX_UPSCALE,
                    "ok": rules["resolution"]},
        "crown_in_photo": {"cut_in_source": head.crown_cut, "cut": r3(layout.cut["top"]),
                           "ok": rules["crown_in_photo"]},
        "body_to_bottom": {"value": r3(layout.body), "min": BODY_COVERAGE,
                           "cut": r3(layout.cut["bottom"]), "ok": rules["body_to_bottom"]},
        "photo_edge": {"cut": r3(layout.cut["left"] + layout.cut["right"]),
                       "max": CUT_TOLERANCE, "ok": rules["photo_edge"]},
        "outside_photo": r3(layout.outside),
        "background": {"value": r3(background), "min": BACKGROUND_MIN,
                       "ok": rules["background"]},
        "sharpness": {"value": round(sharpness, 1), "min": SHARPNESS_MIN,
                      "ok": rules["sharpness"]},
        "exposure": {"value": r3(exposure), "range": list(EXPOSURE_RANGE),
                     "clipped": r3(clipped), "ok": rules["exposure"]},
        "output_faces": output_faces,
        "rules": rules,
        "failed": [name for name, ok in rules.items() if not ok],
    }
    report["ok"] = not report["failed"]
    report["problem"] = refusal(report)
    return report


def _pct(value: float) -> str:
    return f"{100 * value:.0f} %"


def _range(rng: list[float]) -> str:
    return f"{100 * rng[0]:.0f}-{100 * rng[1]:.0f} %"


def rule_message(report: dict[str, Any], rule: str) -> str:
    """Why `rule` fails on this photo and what photo would pass it."""
    r = report
    if rule == "face_count":
        return (f"{r['face_count']} faces in the photo; use a photo of one person "
                "(--allow-multiple takes the largest)")
    if rule == "frontal":
        return ("the face is turned to the side (nose off the middle by "
                f"{_pct(abs(r['frontal']['yaw']))} of the eye distance, at most "
                f"{_pct(MAX_YAW)}); use a photo looking straight into the camera")
    if rule == "crown_in_photo":
        return ("the top of the head is cut off in the photo; use a photo with some space above "
                "the hair")
    if rule == "body_to_bottom":
        if r["body_to_bottom"]["cut"] > CUT_TOLERANCE:
            return ("the photo ends above the bottom of the ID photo, so the body would stop "
                    "short; use a photo that shows the shoulders and upper chest")
        return ("the person ends above the bottom edge of the ID photo; use a photo that shows "
                "the neck and shoulders")
    if rule == "photo_edge":
        return ("the photo's side edge cuts the person inside the ID photo; use a photo with "
                "more room beside the head and shoulders")
    if rule == "resolution":
        up = r["upscale"]["value"]
        return (f"the face is too small: it would be enlarged {up:.1f}x (at most "
                f"{MAX_UPSCALE:.1f}x); use a photo where the face is about {up / MAX_UPSCALE:.1f}"
                f" times larger (closer, or a higher resolution), or a smaller --id-size")
    if rule == "top_margin" and r["top_margin"]["hair_at_top_edge"] > TOP_ROW_MAX:
        return ("the hair would touch the top edge of the ID photo (the head is too tall for "
                "this frame); use a photo with the whole head and space above the hair")
    if rule in ("head_height", "eye_line", "top_margin"):
        item, what = r[rule], {"head_height": "head height", "eye_line": "eye line",
                               "top_margin": "margin above the head"}[rule]
        return (f"{what} {_pct(item['value'])} is outside {_range(item['range'])} (this photo "
                "cannot be framed otherwise); use a photo with the whole head and shoulders "
                "and space around them")
    if rule == "background":
        return (f"only {_pct(r['background']['value'])} of the background around the head is "
                "the chosen colour (part of the old background was kept); use a photo against "
                "a plain wall")
    if rule == "sharpness":
        return (f"the face is blurred (sharpness {r['sharpness']['value']:.0f}, at least "
                f"{SHARPNESS_MIN:.0f}); use a sharp, focused photo")
    e = r["exposure"]
    word = "dark" if e["value"] < EXPOSURE_RANGE[0] else "bright"
    return (f"the face is too {word} (mean {e['value']:.2f} of white, {_pct(e['clipped'])} blown "
            "out); use an evenly lit photo")


def refusal(report: dict[str, Any]) -> str:
    """One line: the first failed rule, why, what photo would work, and how many more failed."""
    failed = report["failed"]
    if not failed:
        return ""
    more = f" (also failed: {', '.join(failed[1:])})" if len(failed) > 1 else ""
    return (f"not a valid {report['preset']} photo: {failed[0]}: "
            f"{rule_message(report, failed[0])}{more}; --force writes it anyway")


def summary_line(report: dict[str, Any]) -> str:
    """The terminal line for one ID photo: the measured values and which rules fail."""
    r = report
    state = "ok" if r["ok"] else "off: " + ", ".join(r["failed"])
    return (f"{r['preset']} {r['size'][0]}x{r['size'][1]} {state}; head "
            f"{_pct(r['head_height']['value'])} ({_range(r['head_height']['range'])}), eyes "
            f"{_pct(r['eye_line']['value'])} ({_range(r['eye_line']['range'])}), top "
            f"{_pct(r['top_margin']['value'])}, chin margin {_pct(r['chin_margin'])}, tilt "
            f"{r['tilt_deg']:+.1f} deg, upscale {r['upscale']['value']:.2f}x, background "
            f"{_pct(r['background']['value'])}, sharpness {r['sharpness']['value']:.0f}, "
            f"exposure {r['exposure']['value']:.2f}")


def write_reports(path: Path, reports: list[dict[str, Any]]) -> None:
    """Write the reports as one JSON file atomically (temp file + rename); SinkError."""
    path = Path(path)
    body = {"ok": sum(bool(r.get("ok")) for r in reports),
            "failed": sum(not r.get("ok") for r in reports), "files": reports}
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(body, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise SinkError(f"{path}: cannot write the report: {e.strerror or e}") from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
