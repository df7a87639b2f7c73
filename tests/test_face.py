"""BlazeFace short-range detector: anchors, NMS, coordinates, real photos."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from vbg.still.face import Face, FaceDetector, ssd_anchor_centers, weighted_nms

ASTRONAUT = Path(__file__).resolve().parents[1] / "samples" / "astronaut.png"
# Close-ups in coco_person where one face is clearly visible (checked by eye).
CLOSE_UPS = ("000000000428", "000000000370", "000000000436", "000000000459")
# Photos whose faces are too small for the full 128x128 view: only the fallback crops see them.
SMALL_FACES = ("000000000328", "000000000446", "000000000474")


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector(provider="cpu")


@pytest.fixture(scope="module")
def coco(shared_set) -> Path:
    return shared_set("coco_person")


def haar_cascade():
    """OpenCV's frontal-face Haar cascade, or skip: opencv-python 5 ships neither class nor XML."""
    if not hasattr(cv2, "CascadeClassifier"):
        pytest.skip(f"cv2 {cv2.__version__} has no CascadeClassifier (opencv-contrib only in 5.x)")
    name = "haarcascade_frontalface_default.xml"
    folders = [os.environ.get("VBG_HAAR_DIR", ""), getattr(getattr(cv2, "data", None),
               "haarcascades", ""), "/usr/share/opencv4/haarcascades",
               "/usr/share/opencv/haarcascades"]
    for folder in folders:
        if folder and (Path(folder) / name).is_file():
            return cv2.CascadeClassifier(str(Path(folder) / name))
    pytest.skip(f"{name} not found (set VBG_HAAR_DIR or install Debian's opencv-data)")


def haar_faces(cascade, bgr: np.ndarray) -> list[tuple[int, int, int, int]]:
    grey = cv2.equalizeHist(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    side = max(30, min(bgr.shape[:2]) // 12)
    found = cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(side, side))
    return [tuple(int(v) for v in box) for box in found]


def check_face_geometry(face: Face, frontal: bool = True) -> None:
    """Eyes inside the box, person's right eye on the image left, mouth below the eyes."""
    x0, y0, x1, y1 = face.box
    kp = face.keypoints
    for name in ("right_eye", "left_eye", "nose", "mouth"):
        x, y = kp[name]
        assert x0 <= x <= x1 and y0 <= y <= y1, (name, kp[name], face.box)
    assert kp["right_eye"][0] < kp["left_eye"][0]
    assert kp["mouth"][1] > max(kp["right_eye"][1], kp["left_eye"][1])
    if frontal:
        assert kp["right_eye"][0] < kp["nose"][0] < kp["left_eye"][0]


def test_anchors_match_mediapipe_short_range_layout():
    anchors = ssd_anchor_centers()
    assert anchors.shape == (896, 2)
    # Stride 8: 16x16 cells, 2 anchors each; strides 16,16,16: 8x8 cells, 6 anchors each.
    np.testing.assert_allclose(anchors[0], anchors[1])
    np.testing.assert_allclose(anchors[0], (0.5 / 16, 0.5 / 16))
    np.testing.assert_allclose(anchors[2], (1.5 / 16, 0.5 / 16))
    np.testing.assert_allclose(anchors[511], (15.5 / 16, 15.5 / 16))
    np.testing.assert_allclose(anchors[512:518], [(0.5 / 8, 0.5 / 8)] * 6)
    np.testing.assert_allclose(anchors[518], (1.5 / 8, 0.5 / 8))
    np.testing.assert_allclose(anchors[-1], (7.5 / 8, 7.5 / 8))


def test_weighted_nms_blends_overlaps_and_keeps_separate_faces():
    dets = np.zeros((3, 16))
    dets[0, :4] = (0, 0, 10, 10)
    dets[1, :4] = (2, 0, 12, 10)  # IoU 0.67 with the first
    dets[2, :4] = (50, 50, 60, 60)
    kept = weighted_nms(dets, np.array([0.6, 0.9, 0.7]))
    assert len(kept) == 2
    coords, score = kept[0]
    assert score == pytest.approx(0.9)
    assert coords[0] == pytest.approx((0 * 0.6 + 2 * 0.9) / 1.5)
    assert kept[1][1] == pytest.approx(0.7)
    np.testing.assert_allclose(kept[1][0][:4], (50, 50, 60, 60))


def test_blank_image_has_no_face(detector):
    assert detector.detect(np.zeros((720, 1280, 3), np.uint8)) == []
    assert detector.detect(np.full((300, 200, 3), 128, np.uint8)) == []


def test_astronaut_has_exactly_one_face(detector):
    image = cv2.imread(str(ASTRONAUT))
    faces = detector.detect(image)
    assert len(faces) == 1
    face = faces[0]
    assert face.score > 0.8
    check_face_geometry(face)
    # By eye, the face spans about x 180-270, y 80-175 in this 512x512 portrait.
    cx, cy = face.center
    assert abs(cx - 225) < 15 and abs(cy - 128) < 15
    assert 80 < face.width < 110


@pytest.mark.parametrize(("top", "left", "bottom", "right"),
                         [(0, 0, 400, 512), (0, 0, 512, 400), (20, 40, 512, 512)])
def test_letterbox_maps_back_to_original_pixels(detector, top, left, bottom, right):
    # Crops keep the face at about the same scale in the 128x128 input but move the letterbox
    # padding (below, right) and the origin: the result must land on the same pixels.
    image = cv2.imread(str(ASTRONAUT))
    ref = detector.detect(image)[0]
    faces = detector.detect(image[top:bottom, left:right])
    assert len(faces) == 1
    shift = np.array([left, top])
    np.testing.assert_allclose(np.asarray(faces[0].box) + np.tile(shift, 2), ref.box, atol=4)
    for name in ("right_eye", "left_eye", "nose", "mouth"):  # ears hide under her hair: noisy
        # Keypoints move a few px with the input; a letterbox error moves them 20 px or more.
        point = np.add(faces[0].keypoints[name], shift)
        np.testing.assert_allclose(point, ref.keypoints[name], atol=8, err_msg=name)


def test_upscaled_image_gives_scaled_coordinates(detector):
    image = cv2.imread(str(ASTRONAUT))
    ref = detector.detect(image)[0]
    doubled = detector.detect(cv2.resize(image, (1024, 1024), interpolation=cv2.INTER_CUBIC))
    assert len(doubled) == 1
    np.testing.assert_allclose(doubled[0].box, np.multiply(ref.box, 2), atol=6)
    for name, point in doubled[0].keypoints.items():
        np.testing.assert_allclose(point, np.multiply(ref.keypoints[name], 2), atol=6)


@pytest.mark.parametrize("stem", CLOSE_UPS)
def test_close_ups_find_the_face_on_the_person(detector, coco, stem):
    image = cv2.imread(str(coco / "images" / f"{stem}.jpg"))
    person = cv2.imread(str(coco / "alpha" / f"{stem}.png"), cv2.IMREAD_GRAYSCALE) > 127
    faces = detector.detect(image)
    assert len(faces) == 1
    face = faces[0]
    assert face.score > 0.8
    check_face_geometry(face)
    x0, y0, x1, y1 = (round(v) for v in face.box)
    assert person[max(y0, 0):y1, max(x0, 0):x1].mean() > 0.7  # the box is on the person


def test_every_detection_lies_on_a_person(detector, coco):
    found = 0
    for path in sorted((coco / "images").glob("*.jpg")):
        person = cv2.imread(str(coco / "alpha" / f"{path.stem}.png"), cv2.IMREAD_GRAYSCALE)
        for face in detector.detect(cv2.imread(str(path))):
            cx, cy = (round(v) for v in face.center)
            h, w = person.shape
            assert person[min(max(cy, 0), h - 1), min(max(cx, 0), w - 1)] > 127, (path.stem, face)
            found += 1
    assert found >= 20  # 21 photos, one has no visible face, several have two


@pytest.mark.parametrize("stem", SMALL_FACES)
def test_fallback_crops_find_small_faces(coco, detector, stem):
    image = cv2.imread(str(coco / "images" / f"{stem}.jpg"))
    full_view_only = FaceDetector(provider="cpu", fallback_crops=False)
    assert full_view_only.detect(image) == []
    faces = detector.detect(image)
    assert faces
    for face in faces:
        check_face_geometry(face, frontal=False)  # some of these heads are turned


@pytest.mark.parametrize("stem", ["astronaut", "000000000459", "000000000428", "000000000370",
                                  "000000000036", "000000000294"])
def test_agrees_with_opencv_haar_cascade(detector, shared_data, stem):
    cascade = haar_cascade()
    path = ASTRONAUT if stem == "astronaut" else (
        shared_data / "coco_person" / "images" / f"{stem}.jpg")
    image = cv2.imread(str(path))
    face = max(detector.detect(image), key=lambda f: f.area)
    haar = haar_faces(cascade, image)
    assert haar, "Haar found no face"
    cx, cy = face.center
    x, y, w, h = min(haar, key=lambda b: np.hypot(b[0] + b[2] / 2 - cx, b[1] + b[3] / 2 - cy))
    # Haar boxes include the forehead, BlazeFace's sit lower: measured offsets <= 0.25 widths.
    assert np.hypot(x + w / 2 - cx, y + h / 2 - cy) < 0.3 * face.width
    assert 0.7 < w / face.width < 1.4
