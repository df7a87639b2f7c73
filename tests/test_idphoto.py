"""ID-photo presets and geometry: sizes, head size and position, levelling, padding, real photo."""

from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from vbg.errors import ImageError
from vbg.still.face import Face, FaceDetector
from vbg.still.idphoto import (
    CHIN_BELOW_EYES,
    HAIR_ABOVE_EYES,
    MOUTH_BELOW_EYES,
    PRESETS,
    SKULL_ABOVE_EYES,
    compose_id_photo,
    face_frame,
    get_preset,
    hair_above_eyes,
    id_photo_transform,
    pick_face,
)

ASTRONAUT = Path(__file__).resolve().parents[1] / "samples" / "astronaut.png"
COLOR = (240, 200, 30)  # BGR, a colour no synthetic or real pixel here has
U = 220.0  # face unit of the synthetic face, px


def synthetic_face(eyes=(400.0, 300.0), unit=U, roll_deg=0.0) -> Face:
    """A face with exact keypoints: eyes 0.45 u apart, mouth MOUTH_BELOW_EYES u below them."""
    roll = math.radians(roll_deg)
    across, down = np.array([math.cos(roll), math.sin(roll)]), np.array([-math.sin(roll),
                                                                           math.cos(roll)])
    e = np.asarray(eyes)
    kp = {
        "right_eye": tuple(e - 0.225 * unit * across), "left_eye": tuple(e + 0.225 * unit * across),
        "nose": tuple(e + 0.25 * unit * down), "mouth": tuple(e + MOUTH_BELOW_EYES * unit * down),
        "right_ear": tuple(e - 0.5 * unit * across), "left_ear": tuple(e + 0.5 * unit * across),
    }
    centre = e + 0.2 * unit * down
    box = (centre[0] - unit / 2, centre[1] - unit / 2, centre[0] + unit / 2, centre[1] + unit / 2)
    return Face(box, 0.9, kp)


def apply(matrix: np.ndarray, point) -> np.ndarray:
    return matrix[:, :2] @ np.asarray(point, np.float64) + matrix[:, 2]


def test_presets_have_the_documented_pixel_sizes():
    sizes = {name: (p.width, p.height) for name, p in PRESETS.items()}
    # The original four keep their sizes (and come first); every size HivisionIDPhotos lists
    # (size_list_EN.csv, width x height) has a preset.
    assert list(sizes)[:4] == ["1inch", "2inch", "passport", "us"]
    assert {k: sizes[k] for k in list(sizes)[:4]} == {
        "1inch": (295, 413), "2inch": (413, 626), "passport": (413, 531), "us": (600, 600)}
    hivision = {(295, 413), (413, 626), (260, 378), (413, 531), (390, 567), (1050, 1499),
                (144, 192), (531, 709), (358, 441), (600, 600)}
    assert hivision <= set(sizes.values()) and len(sizes) >= 18
    for p in PRESETS.values():
        assert p.dpi == 300 and p.source


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_output_has_the_preset_size(name):
    image = np.full((600, 800, 3), 128, np.uint8)
    alpha = np.full((600, 800), 255, np.uint8)
    out = compose_id_photo(image, alpha, synthetic_face(), PRESETS[name], COLOR)
    assert out.shape == (PRESETS[name].height, PRESETS[name].width, 3)
    assert out.dtype == np.uint8 and out.flags.c_contiguous


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_head_size_position_and_centring(name):
    preset = PRESETS[name]
    frame = face_frame(synthetic_face())
    assert frame.unit == pytest.approx(U) and frame.roll == pytest.approx(0)
    crown_above = SKULL_ABOVE_EYES if preset.crown == "skull" else HAIR_ABOVE_EYES
    matrix = id_photo_transform(frame, preset, crown_above)
    eyes = apply(matrix, frame.eyes)
    crown = apply(matrix, np.add(frame.eyes, (0, -crown_above * U)))
    chin = apply(matrix, np.add(frame.eyes, (0, CHIN_BELOW_EYES * U)))
    assert abs(eyes[0] - preset.width / 2) < 1
    assert (chin[1] - crown[1]) / preset.height == pytest.approx(preset.head_frac, abs=1e-6)
    assert crown[1] / preset.height == pytest.approx(preset.top_frac, abs=1e-6)
    assert 1 - eyes[1] / preset.height >= preset.eyes_min


def test_presets_meet_their_specs():
    def layout(name, crown_above):
        preset = PRESETS[name]
        frame = face_frame(synthetic_face())
        m = id_photo_transform(frame, preset, crown_above)
        eyes = apply(m, frame.eyes)[1]
        top = apply(m, np.add(frame.eyes, (0, -crown_above * U)))[1]
        chin = apply(m, np.add(frame.eyes, (0, CHIN_BELOW_EYES * U)))[1]
        return (chin - top) / preset.height, 1 - eyes / preset.height, top / preset.height

    head, eyes, _ = layout("passport", SKULL_ABOVE_EYES)  # ICAO: 71-80 %, eyes 56-69 %
    assert 0.71 <= head <= 0.80 and 0.56 <= eyes <= 0.69
    for hair in (SKULL_ABOVE_EYES, HAIR_ABOVE_EYES, 1.0, 1.25):  # US: 50-69 %, eyes 56-69 %
        head, eyes, top = layout("us", hair)
        assert 0.50 <= head <= 0.69 and 0.56 <= eyes <= 0.69 and top >= 0, hair
    for name in ("1inch", "2inch"):  # common practice: head 60-70 %, top margin 8-10 %
        head, _, top = layout(name, HAIR_ABOVE_EYES)
        assert 0.60 <= head <= 0.70 and 0.08 <= top <= 0.10


def draw_synthetic_portrait(roll_deg: float) -> tuple[np.ndarray, np.ndarray, Face]:
    """A 'head' (skin ellipse, red right eye, blue left eye) turned by roll_deg; matte; face."""
    image = np.full((800, 800, 3), 90, np.uint8)
    alpha = np.zeros((800, 800), np.uint8)
    face = synthetic_face((400.0, 380.0))
    cv2.ellipse(alpha, (400, 400), (150, 210), 0, 0, 360, 255, -1)  # top at 190: 0.86 u
    image[alpha > 0] = (150, 180, 220)
    for name, colour in (("right_eye", (0, 0, 255)), ("left_eye", (255, 0, 0))):
        cv2.circle(image, tuple(round(v) for v in face.keypoints[name]), 14, colour, -1)
    rot = cv2.getRotationMatrix2D((400.0, 400.0), roll_deg, 1.0)
    image = cv2.warpAffine(image, rot, (800, 800), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(alpha, rot, (800, 800), flags=cv2.INTER_LINEAR)
    kps = {name: tuple(apply(rot, p)) for name, p in face.keypoints.items()}
    cx, cy = apply(rot, face.center)
    box = (cx - U / 2, cy - U / 2, cx + U / 2, cy + U / 2)
    return image, alpha, Face(box, 0.9, kps)


def centroid(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    assert len(xs) > 20
    return np.array([xs.mean(), ys.mean()])


@pytest.mark.parametrize("name", ["1inch", "passport"])
@pytest.mark.parametrize("roll_deg", [10.0, -10.0])
def test_tilted_head_comes_out_level_and_centred(name, roll_deg):
    image, alpha, face = draw_synthetic_portrait(roll_deg)
    assert abs(math.degrees(face_frame(face).roll)) == pytest.approx(10, abs=1e-6)
    preset = PRESETS[name]
    out = compose_id_photo(image, alpha, face, preset, COLOR).astype(int)
    b, g, r = out[..., 0], out[..., 1], out[..., 2]
    right_eye = centroid((r > 200) & (g < 80) & (b < 80))
    left_eye = centroid((b > 200) & (g < 80) & (r < 80))
    assert right_eye[0] < left_eye[0]
    assert abs(right_eye[1] - left_eye[1]) <= 1.0  # level
    assert abs((right_eye[0] + left_eye[0]) / 2 - preset.width / 2) <= 1.0  # centred
    assert np.all(out[0, 0] == COLOR)  # background outside the head


def test_hair_top_is_read_from_the_matte():
    face = synthetic_face((400.0, 380.0))
    frame = face_frame(face)
    alpha = np.zeros((800, 800), np.uint8)
    cv2.ellipse(alpha, (400, 400), (150, 210), 0, 0, 360, 255, -1)  # top at y=190
    assert hair_above_eyes(alpha, frame) == pytest.approx((380 - 190) / U, abs=0.02)
    assert hair_above_eyes(None, frame) == HAIR_ABOVE_EYES
    full = np.full((800, 800), 255, np.uint8)  # no edge above the head: no information
    assert hair_above_eyes(full, frame) == HAIR_ABOVE_EYES
    cut = alpha[150:]  # the photo's top edge 40 px above the hair: still seen
    shifted = face_frame(synthetic_face((400.0, 230.0)))
    assert hair_above_eyes(cut, shifted) == pytest.approx((380 - 190) / U, abs=0.02)
    cut = alpha[250:]  # the photo ends 0.68 u above the eyes: at least the average
    shifted = face_frame(synthetic_face((400.0, 130.0)))
    assert hair_above_eyes(cut, shifted) == HAIR_ABOVE_EYES
    cv2.ellipse(alpha, (400, 400), (150, 360), 0, 0, 360, 255, -1)  # a tall hat: clamped
    assert hair_above_eyes(alpha, frame) == pytest.approx(1.25)


def test_parts_outside_the_photo_are_background():
    # Face in the top-left corner: the crop reaches past the photo's top and left edges.
    image = np.full((400, 400, 3), 128, np.uint8)
    alpha = np.full((400, 400), 255, np.uint8)
    face = synthetic_face((45.0, 40.0), unit=60.0)
    preset = PRESETS["us"]
    out = compose_id_photo(image, alpha, face, preset, COLOR)
    matrix = id_photo_transform(face_frame(face), preset, HAIR_ABOVE_EYES)
    inverse = cv2.invertAffineTransform(matrix)
    ys, xs = np.mgrid[0:preset.height, 0:preset.width]
    src_x = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
    src_y = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
    outside = (src_x < -2) | (src_y < -2)
    inside = (src_x > 2) & (src_y > 2) & (src_x < 397) & (src_y < 397)
    assert outside.mean() > 0.2 and inside.mean() > 0.2
    assert np.all(out[outside] == COLOR)
    assert np.all(out[inside] == 128)


def test_pick_face_errors_and_largest():
    small = synthetic_face(unit=50.0)
    large = synthetic_face(unit=150.0)
    with pytest.raises(ImageError, match=r"no face found in me\.jpg"):
        pick_face([], allow_multiple=False, source="me.jpg")
    with pytest.raises(ImageError, match=r"2 faces found in me\.jpg.*--allow-multiple"):
        pick_face([small, large], allow_multiple=False, source="me.jpg")
    assert pick_face([small, large], allow_multiple=True) is large
    assert pick_face([small], allow_multiple=False) is small
    with pytest.raises(ImageError, match="passport"):
        get_preset("nope")


@pytest.fixture(scope="module")
def astronaut_matte() -> tuple[np.ndarray, np.ndarray]:
    from vbg.segment import new_segmenter

    image = cv2.imread(str(ASTRONAUT))
    low = new_segmenter("selfie", provider="cpu")(image)
    alpha = cv2.resize(np.clip(low * 255 + 0.5, 0, 255).astype(np.uint8),
                       (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
    return image, alpha


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_astronaut_end_to_end(astronaut_matte, name):
    image, alpha = astronaut_matte
    detector = FaceDetector(provider="cpu")
    preset = PRESETS[name]
    out = compose_id_photo(image, alpha, pick_face(detector.detect(image)), preset, COLOR)
    assert out.shape == (preset.height, preset.width, 3)
    # Top corners are background (the shoulders may fill the bottom ones).
    for corner in (out[0, 0], out[0, -1]):
        assert np.abs(corner.astype(int) - COLOR).max() <= 2
    faces = detector.detect(out)
    assert len(faces) == 1
    assert abs(faces[0].center[0] / preset.width - 0.5) < 0.08
    (rx, ry), (lx, ly) = faces[0].keypoints["right_eye"], faces[0].keypoints["left_eye"]
    assert abs(math.degrees(math.atan2(ly - ry, lx - rx))) < 6  # she tilts ~10 degrees


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_astronaut_result_has_one_haar_face_in_the_middle(astronaut_matte, name):
    if not hasattr(cv2, "CascadeClassifier"):
        pytest.skip(f"cv2 {cv2.__version__} has no CascadeClassifier (opencv-contrib only in 5.x)")
    xml = Path(os.environ.get("VBG_HAAR_DIR") or cv2.data.haarcascades)
    xml /= "haarcascade_frontalface_default.xml"
    if not xml.is_file():
        pytest.skip(f"{xml} not found (set VBG_HAAR_DIR or install Debian's opencv-data)")
    image, alpha = astronaut_matte
    preset = PRESETS[name]
    face = pick_face(FaceDetector(provider="cpu").detect(image))
    out = compose_id_photo(image, alpha, face, preset, COLOR)
    grey = cv2.equalizeHist(cv2.cvtColor(out, cv2.COLOR_BGR2GRAY))
    side = preset.width // 5
    found = cv2.CascadeClassifier(str(xml)).detectMultiScale(grey, 1.1, 5, minSize=(side, side))
    assert len(found) == 1
    x, _, w, _ = found[0]
    assert abs((x + w / 2) / preset.width - 0.5) < 0.08
