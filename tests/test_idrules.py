"""ID-photo rules on synthetic people: each rule measured on the output, refusals and --force."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from test_idphoto import synthetic_face

from vbg.errors import ImageError
from vbg.still.face import Face
from vbg.still.idgeometry import CHIN_BELOW_EYES, HAIR_ABOVE_EYES, MAX_UPSCALE
from vbg.still.idphoto import PRESETS, make_id_photo

COLOR = (240, 200, 30)  # BGR background of the ID photo
SKIN, NECK, WALL = (150, 180, 220), (60, 90, 140), (90, 90, 90)
RED, BLUE = (0, 0, 255), (255, 0, 0)


def synthetic_person(unit: float = 200.0, eyes=(500.0, 420.0), size=(1000, 1200),
                     roll_deg: float = 0.0, body: bool = True
                     ) -> tuple[np.ndarray, np.ndarray, Face]:
    """A drawn person (head ellipse from hair top to chin, eye dots, neck and shoulders to the
    bottom edge) on a grey wall; its exact matte; its face (keypoints rotated with it)."""
    w, h = size
    image = np.full((h, w, 3), WALL, np.uint8)
    alpha = np.zeros((h, w), np.uint8)
    ex, ey = eyes
    top, chin = ey - HAIR_ABOVE_EYES * unit, ey + CHIN_BELOW_EYES * unit
    centre = (round(ex), round((top + chin) / 2))
    axes = (round(0.5 * unit), round((chin - top) / 2))
    if body:
        u = unit
        neck = np.array([[ex - 0.25 * u, chin - 0.2 * u], [ex + 0.25 * u, chin - 0.2 * u],
                         [ex + 0.3 * u, chin + 0.3 * u], [ex + 1.4 * u, chin + 0.6 * u],
                         [ex + 1.6 * u, h], [ex - 1.6 * u, h], [ex - 1.4 * u, chin + 0.6 * u],
                         [ex - 0.3 * u, chin + 0.3 * u]], np.int32)
        cv2.fillPoly(image, [neck], NECK)
        cv2.fillPoly(alpha, [neck], 255)
    cv2.ellipse(image, centre, axes, 0, 0, 360, SKIN, -1)
    cv2.ellipse(alpha, centre, axes, 0, 0, 360, 255, -1)
    face = synthetic_face((ex, ey), unit=unit)
    for name, colour in (("right_eye", RED), ("left_eye", BLUE)):
        cv2.circle(image, tuple(round(v) for v in face.keypoints[name]), round(0.06 * unit),
                   colour, -1)
    if roll_deg:
        rot = cv2.getRotationMatrix2D((ex, ey), roll_deg, 1.0)
        image = cv2.warpAffine(image, rot, (w, h), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
        alpha = cv2.warpAffine(alpha, rot, (w, h), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)

        def move(p):
            return tuple(rot[:, :2] @ np.asarray(p) + rot[:, 2])

        kps = {k: move(p) for k, p in face.keypoints.items()}
        cx, cy = move(face.center)
        face = Face((cx - unit / 2, cy - unit / 2, cx + unit / 2, cy + unit / 2), 0.9, kps)
    return image, alpha, face


def near(image: np.ndarray, colour, tol: int = 40) -> np.ndarray:
    return np.abs(image.astype(int) - colour).max(2) <= tol


def measure(out: np.ndarray) -> dict[str, float]:
    """Eye line, hair top and chin read off the drawn colours of an output, as fractions."""
    h = out.shape[0]
    eyes = [np.argwhere(near(out, c, 60)).mean(0) for c in (RED, BLUE)]
    skin_rows = np.flatnonzero(near(out, SKIN).any(1))
    return {"eyes": 1 - (eyes[0][0] + eyes[1][0]) / 2 / h, "level": abs(eyes[0][0] - eyes[1][0]),
            "centre": (eyes[0][1] + eyes[1][1]) / 2 / out.shape[1],
            "top": skin_rows[0] / h, "chin": (skin_rows[-1] + 1) / h}


@pytest.mark.parametrize("name", ["passport", "us", "1inch", "2inch", "5inch", "cet"])
@pytest.mark.parametrize("roll", [0.0, 8.0])
def test_each_rule_holds_on_the_output(name, roll):
    preset = PRESETS[name]
    unit = 200.0 if name != "5inch" else 420.0  # 5inch needs a big face (resolution rule)
    size = (1000, 1200) if name != "5inch" else (2000, 2600)
    eyes = (500.0, 420.0) if name != "5inch" else (1000.0, 800.0)
    image, alpha, face = synthetic_person(unit, eyes, size, roll)
    result = make_id_photo(image, alpha, [face], preset, COLOR)
    assert result.ok, result.problem
    out, report = result.image, result.report
    assert out.shape == (preset.height, preset.width, 3)
    m = measure(out)
    assert m["level"] <= 1.5 and abs(m["centre"] - 0.5) < 0.01  # levelled, centred
    lo, hi = preset.eyes_range
    assert lo - 0.005 <= m["eyes"] <= hi + 0.005
    assert m["eyes"] == pytest.approx(report["eye_line"]["value"], abs=0.01)
    assert m["top"] == pytest.approx(report["crown_margin"], abs=0.01)  # hair top
    assert 1 - m["chin"] == pytest.approx(report["chin_margin"], abs=0.01)
    if preset.crown == "hair":  # the head as drawn: hair top to chin
        assert preset.head_range[0] - 0.01 <= m["chin"] - m["top"] <= preset.head_range[1] + 0.01
        assert preset.top_range[0] - 0.01 <= m["top"] <= preset.top_range[1] + 0.01
    assert np.all(out[0, 0] == COLOR) and np.all(out[0, -1] == COLOR)
    assert near(out[-1:, preset.width // 2 - 2:preset.width // 2 + 3], NECK).all()  # body
    assert report["rules"] == {k: True for k in report["rules"]}


def test_floating_head_is_refused_for_its_body():
    image, alpha, face = synthetic_person(body=False)
    result = make_id_photo(image, alpha, [face], PRESETS["us"], COLOR)
    assert not result.ok and result.report["failed"][0] == "body_to_bottom"
    assert result.problem.startswith("not a valid us photo: body_to_bottom: the person ends "
                                     "above the bottom edge of the ID photo; use a photo that "
                                     "shows the neck and shoulders")
    assert "--force writes it anyway" in result.problem and "\n" not in result.problem


def test_photo_ending_under_the_chin_is_refused():
    image, alpha, face = synthetic_person()
    chin = round(420 + CHIN_BELOW_EYES * 200 + 40)
    result = make_id_photo(image[:chin], alpha[:chin], [face], PRESETS["1inch"], COLOR)
    assert result.report["failed"][0] == "body_to_bottom"
    assert "the photo ends above the bottom of the ID photo" in result.problem


def test_crown_cut_off_in_the_source_is_refused():
    image, alpha, face = synthetic_person(eyes=(500.0, 100.0))  # hair top 48 px above the edge
    result = make_id_photo(image, alpha, [face], PRESETS["us"], COLOR)
    assert not result.ok and "crown_in_photo" in result.report["failed"]
    assert result.report["crown_in_photo"]["cut_in_source"] is True
    assert result.problem.startswith("not a valid us photo: crown_in_photo: the top of the head "
                                     "is cut off in the photo")


def test_small_face_is_refused_beyond_the_upscale_limit():
    image, alpha, face = synthetic_person(unit=200.0)
    small = 0.2  # face 40 px: the 600x600 US photo would need ~7x
    size = (round(image.shape[1] * small), round(image.shape[0] * small))
    s_img, s_alpha = cv2.resize(image, size), cv2.resize(alpha, size)
    s_face = Face(tuple(v * small for v in face.box), 0.9,
                  {k: (x * small, y * small) for k, (x, y) in face.keypoints.items()})
    result = make_id_photo(s_img, s_alpha, [s_face], PRESETS["us"], COLOR)
    assert result.report["failed"] == ["resolution"] or "resolution" in result.report["failed"]
    assert result.report["upscale"]["value"] > MAX_UPSCALE
    assert f"at most {MAX_UPSCALE:.1f}x" in result.problem
    # The same photo fits a preset small enough: CET's 144x192.
    assert make_id_photo(s_img, s_alpha, [s_face], PRESETS["cet"], COLOR).ok


def test_several_faces_and_no_face():
    image, alpha, face = synthetic_person()
    with pytest.raises(ImageError, match="2 faces found in the photo"):
        make_id_photo(image, alpha, [face, face], PRESETS["us"], COLOR)
    forced = make_id_photo(image, alpha, [face, face], PRESETS["us"], COLOR, force=True)
    assert forced.report["rules"]["face_count"] is False and forced.report["face_count"] == 2
    with pytest.raises(ImageError, match="no face found"):
        make_id_photo(image, alpha, [], PRESETS["us"], COLOR)


def test_report_has_every_field_and_is_json():
    image, alpha, face = synthetic_person(roll_deg=-6.0)
    report = make_id_photo(image, alpha, [face], PRESETS["passport"], COLOR).report
    for key in ("face_count", "head_height", "eye_line", "top_margin", "crown_margin",
                "chin_margin", "tilt_deg", "upscale", "background", "sharpness", "exposure",
                "rules", "failed", "ok", "problem", "transform"):
        assert key in report, key
    assert report["tilt_deg"] == pytest.approx(6.0, abs=0.5)  # measured before levelling
    assert report["head_height"]["range"] == [0.71, 0.80]
    json.dumps(report)
