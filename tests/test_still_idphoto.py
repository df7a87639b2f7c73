"""`vbg still --id-photo`: preset sizes, 300 dpi, colours, face placement, errors, padding."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from test_still import is_summary

from vbg import cli
from vbg.backgrounds import parse_color
from vbg.still import pipeline as still
from vbg.still import segmenter
from vbg.still.face import Face, FaceDetector
from vbg.still.idphoto import PRESETS
from vbg.still.options import StillOptions

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO / "samples" / "astronaut.png"
COCO = REPO.parent / "shared" / "data" / "coco_person" / "images"  # real photos, if present
# Real portraits with one clear face (coco_person close-ups; checked by eye) that meet every
# rule of the four presets below (113 is refused for passport and us: another person's sleeve
# is kept beside the head).
PORTRAITS = ("000000000294", "000000000370", "000000000459")
PRESET_COLOURS = {"1inch": "blue", "2inch": "red", "passport": "white", "us": "blue"}  # tested


def vbg(capsys, *argv: str | Path) -> tuple[int, str]:
    rc = cli.main(["still", *(str(a) for a in argv)])
    return rc, capsys.readouterr().err


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector(provider="cpu")


def haar_cascade():
    """OpenCV's own frontal-face Haar cascade, or skip (opencv-python 5 ships neither)."""
    if not hasattr(cv2, "CascadeClassifier"):
        pytest.skip(f"cv2 {cv2.__version__} has no CascadeClassifier (opencv-contrib only in 5.x)")
    name = "haarcascade_frontalface_default.xml"
    for folder in (os.environ.get("VBG_HAAR_DIR", ""), cv2.data.haarcascades,
                   "/usr/share/opencv4/haarcascades",
                   "/usr/share/opencv/haarcascades"):
        if folder and (Path(folder) / name).is_file():
            return cv2.CascadeClassifier(str(Path(folder) / name))
    pytest.skip(f"{name} not found (set VBG_HAAR_DIR or install Debian's opencv-data)")


@pytest.fixture(scope="module")
def portraits(tmp_path_factory) -> tuple[Path, list[str]]:
    """A folder with the astronaut and, when the shared data is there, real coco portraits."""
    folder = tmp_path_factory.mktemp("portraits")
    shutil.copy(ASTRONAUT, folder / "astronaut.png")
    stems = ["astronaut"]
    for stem in PORTRAITS if COCO.is_dir() else ():
        shutil.copy(COCO / f"{stem}.jpg", folder / f"{stem}.jpg")
        stems.append(stem)
    return folder, stems


@pytest.fixture(scope="module")
def id_photos(portraits, tmp_path_factory) -> dict[str, tuple[int, str, Path]]:
    """Every preset made from every portrait: one batch per preset, the first as a separate
    process with 2 workers, the others in this process."""
    runs = {}
    for k, name in enumerate(PRESET_COLOURS):
        out = tmp_path_factory.mktemp(name)
        argv = ["still", str(portraits[0]), "-o", str(out), "--id-photo", name,
                "--color", PRESET_COLOURS[name]]
        if k == 0:
            proc = subprocess.run([sys.executable, "-m", "vbg", *argv, "--jobs", "2"], cwd=REPO,
                                  capture_output=True, text=True, timeout=300)
            runs[name] = (proc.returncode, proc.stderr, out)
        else:
            with contextlib.redirect_stderr(io.StringIO()) as err:
                rc = cli.main(argv)
            runs[name] = (rc, err.getvalue(), out)
    return runs


def rgb_of(colour: str) -> np.ndarray:
    return np.array(parse_color(colour)[::-1])


@pytest.mark.parametrize("name", sorted(PRESET_COLOURS))
def test_preset_size_dpi_and_background(id_photos, portraits, name):
    rc, err, out = id_photos[name]
    stems = portraits[1]
    assert rc == 0 and len(err.splitlines()) == 1 and is_summary(err.strip(), len(stems), 0), err
    preset = PRESETS[name]
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{s}.jpg" for s in stems)
    for stem in stems:
        with Image.open(out / f"{stem}.jpg") as im:
            assert im.format == "JPEG" and im.mode == "RGB"
            assert im.size == (preset.width, preset.height)
            assert im.info["dpi"] == pytest.approx((300, 300), abs=0.01)
            rgb = np.asarray(im).astype(int)
        for corner in (rgb[0, 0], rgb[0, -1]):  # shoulders may fill the bottom corners
            assert np.abs(corner - rgb_of(PRESET_COLOURS[name])).max() <= 20, (stem, corner)


@pytest.mark.parametrize("name", sorted(PRESET_COLOURS))
def test_one_level_face_in_the_middle(id_photos, portraits, detector, name):
    _, _, out = id_photos[name]
    preset = PRESETS[name]
    for stem in portraits[1]:
        faces = detector.detect(cv2.imread(str(out / f"{stem}.jpg")))
        assert len(faces) == 1, stem
        face = faces[0]
        assert abs(face.center[0] / preset.width - 0.5) < 0.08, stem
        (rx, ry), (lx, ly) = face.keypoints["right_eye"], face.keypoints["left_eye"]
        assert abs(math.degrees(math.atan2(ly - ry, lx - rx))) < 6, stem
        # The head (about 1.4 face boxes with hair) takes roughly the preset's share.
        assert 0.6 < 1.4 * face.height / (preset.head_frac * preset.height) < 1.5, stem


@pytest.mark.parametrize("name", sorted(PRESET_COLOURS))
def test_haar_finds_one_face_in_the_middle(id_photos, portraits, name):
    cascade = haar_cascade()
    _, _, out = id_photos[name]
    preset = PRESETS[name]
    for stem in portraits[1]:
        grey = cv2.cvtColor(cv2.imread(str(out / f"{stem}.jpg")), cv2.COLOR_BGR2GRAY)
        # The usual call. Measured on 6 portraits x 4 presets x 3 colours: 72 of 72 pass; with
        # equalizeHist 70, with scaleFactor 1.3 57 (Haar then misses the face: found nothing).
        found = cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5)
        assert len(found) == 1, (stem, found)
        x, _, w, _ = found[0]
        assert abs((x + w / 2) / preset.width - 0.5) < 0.08, stem


def test_acceptance_command(tmp_path):
    out = tmp_path / "id.jpg"
    proc = subprocess.run([sys.executable, "-m", "vbg", "still", str(ASTRONAUT), "--id-photo",
                           "1inch", "--color", "blue", "-o", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert (proc.returncode, proc.stderr) == (0, "")
    with Image.open(out) as im:
        assert im.size == (295, 413) and im.info["dpi"] == pytest.approx((300, 300), abs=0.01)
        rgb = np.asarray(im).astype(int)
    assert np.abs(rgb[:8, :8] - (67, 142, 219)).max() <= 20
    assert np.abs(rgb[:8, -8:] - (67, 142, 219)).max() <= 20


@pytest.fixture(scope="module")
def pipeline() -> still.StillPipeline:
    return still.StillPipeline(StillOptions(id_photo="1inch", color="#ff00ff"))


def test_crop_past_the_photo_edge_is_refused_then_forced_with_the_colour(tmp_path, capsys,
                                                                         detector):
    # The face 5 px from the left edge: the left part of the ID photo lies outside the photo,
    # and the photo's edge cuts her hair and shoulder there: refused, unless --force.
    image = np.ascontiguousarray(cv2.imread(str(ASTRONAUT))[:, 175:])
    src = tmp_path / "edge.png"
    cv2.imwrite(str(src), image)
    rc, err = vbg(capsys, src, "--id-photo", "us", "--color", "#ff00ff", "-o",
                  tmp_path / "id.png")
    assert rc == 1 and not (tmp_path / "id.png").exists()
    assert err.startswith(f"vbg: {src}: not a valid us photo: photo_edge: the photo's side edge "
                          "cuts the person") and len(err.splitlines()) == 1, err
    rc, err = vbg(capsys, src, "--id-photo", "us", "--color", "#ff00ff", "-o",
                  tmp_path / "id.png", "--force", "--report", tmp_path / "r.json")
    assert rc == 0 and err.startswith(f"vbg: {src}: written anyway (--force): not a valid us "
                                      "photo: photo_edge"), err
    out = cv2.imread(str(tmp_path / "id.png"))
    preset = PRESETS["us"]
    assert out.shape == (preset.height, preset.width, 3)
    faces = detector.detect(out)
    assert len(faces) == 1 and abs(faces[0].center[0] / preset.width - 0.5) < 0.08
    # Where each output pixel comes from: the crop the report gives.
    report = json.loads((tmp_path / "r.json").read_text())["files"][0]
    assert report["rules"]["photo_edge"] is False and report["ok"] is False
    inverse = cv2.invertAffineTransform(np.array(report["transform"]))
    ys, xs = np.mgrid[0:preset.height, 0:preset.width]
    src_x = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
    outside = src_x < -2
    assert outside.mean() > 0.15  # a good part of the ID photo lies left of the photo
    assert np.all(out[outside] == (255, 0, 255))  # exactly the colour: no smear of the edge


def test_big_photo_is_matted_at_the_size_the_output_needs(pipeline, monkeypatch):
    small = cv2.imread(str(ASTRONAUT))
    big = cv2.resize(small, (2048, 2048), interpolation=cv2.INTER_CUBIC)
    reference = pipeline.id_photo_image(small, None).astype(int)
    shrinks = []
    real_resize = cv2.resize

    def resize(src, size, *args, **kw):
        if src.shape[:2] == (2048, 2048):
            shrinks.append(size)
        return real_resize(src, size, *args, **kw)

    monkeypatch.setattr(still.cv2, "resize", resize)
    out = pipeline.id_photo_image(big, None).astype(int)
    assert shrinks and shrinks[0][0] < 1100  # shrunk to about twice the output's head size
    assert np.abs(out - reference).mean() < 6  # same place, same size


def test_scaled_face_matches_detection_on_the_resized_photo(detector):
    image = cv2.imread(str(ASTRONAUT))
    face = detector.detect(image)[0]
    half = cv2.resize(image, (256, 256), interpolation=cv2.INTER_AREA)
    expected = detector.detect(half)[0]
    scaled = still.scaled_face(face, 0.5, 0.5)
    np.testing.assert_allclose(scaled.box, expected.box, atol=4)
    for name in ("right_eye", "left_eye", "nose", "mouth"):
        np.testing.assert_allclose(scaled.keypoints[name], expected.keypoints[name], atol=4)


def test_no_face_is_one_clear_line(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "wall.png"), np.full((400, 300, 3), 180, np.uint8))
    no_face = ["wall.png"]
    # Real photos: a person seen from behind; a cat on a lap, where BlazeFace takes a shoe for
    # a face (score 0.58) that RVM's matte shows is no person (the selfie models keep the leg).
    rvm = segmenter.model_names("auto") == ["rvm"]
    for name in ("000000000572.jpg", "000000000443.jpg"):
        if (COCO / name).is_file() and (rvm or name != "000000000443.jpg"):
            shutil.copy(COCO / name, folder)
            no_face.append(name)
    shutil.copy(ASTRONAUT, folder)
    rc, err = vbg(capsys, folder, "--id-photo", "passport", "-o", tmp_path / "out")
    assert rc == 1 and "Traceback" not in err
    lines = err.splitlines()
    for name in no_face:
        assert sum(line.startswith(f"vbg: {folder / name}: no face found in the photo; use ")
                   for line in lines) == 1, err
    assert is_summary(lines[-1], 1, len(no_face)) and len(lines) == len(no_face) + 1
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["astronaut.jpg"]


def test_several_faces_need_allow_multiple(tmp_path, capsys, detector):
    big = cv2.imread(str(ASTRONAUT))
    small = np.full_like(big, 200)
    small[32:480, 32:480] = cv2.resize(big[:, ::-1], (448, 448), interpolation=cv2.INTER_AREA)
    group = tmp_path / "group.png"
    cv2.imwrite(str(group), np.hstack([small, big]))  # two faces (and a false third, the suit)
    rc, err = vbg(capsys, group, "--id-photo", "1inch", "-o", tmp_path / "id.jpg")
    assert rc == 1 and not (tmp_path / "id.jpg").exists()
    assert err == (f"vbg: {group}: 2 faces found in the photo; use --allow-multiple to take the "
                   "largest, or crop the photo to one person\n")
    rc, err = vbg(capsys, group, "--id-photo", "1inch", "-o", tmp_path / "id.jpg",
                  "--allow-multiple")
    assert (rc, err) == (0, "")
    faces = detector.detect(cv2.imread(str(tmp_path / "id.jpg")))
    assert len(faces) == 1 and abs(faces[0].center[0] / 295 - 0.5) < 0.08
    (rx, _), (lx, _) = faces[0].keypoints["right_eye"], faces[0].keypoints["left_eye"]
    assert rx < lx and faces[0].width > 100  # a face at ID-photo size, not the suit


def test_usable_face_rejects_false_detections():
    matte = np.zeros((400, 300), np.uint8)
    matte[100:, 50:250] = 255
    on_person = Face((100, 120, 200, 220), 0.9, {})
    assert still.usable_face(on_person, matte)
    assert not still.usable_face(Face((100, 0, 200, 90), 0.9, {}), matte)  # on background
    assert not still.usable_face(Face((60, 250, 240, 430), 0.6, {}), matte)  # runs off the edge
    assert still.usable_face(Face((60, 220, 240, 405), 0.6, {}), matte)  # a little off: fine


def test_white_is_the_default_and_png_output_works(tmp_path, capsys):
    rc, err = vbg(capsys, ASTRONAUT, "--id-photo", "2inch", "-o", tmp_path / "id.png")
    assert (rc, err) == (0, "")
    with Image.open(tmp_path / "id.png") as im:
        assert im.format == "PNG" and im.mode == "RGB" and im.size == (413, 626)
        assert im.info["dpi"] == pytest.approx((300, 300), abs=0.01)
        assert im.getpixel((0, 0)) == (255, 255, 255)


@pytest.mark.parametrize(("flags", "message"), [
    (["--id-photo", "a4"], "unknown ID-photo preset 'a4'; choose one of 1inch, 2inch, passport"),
    (["--id-photo", "us", "--blur", "5"], "--blur cannot be combined with --id-photo"),
    (["--id-photo", "us", "--matte", "m.png"], "--matte cannot be combined with --id-photo"),
    (["--id-photo", "us", "--color", "nope"], "invalid colour 'nope'"),
])
def test_bad_id_photo_flags(tmp_path, capsys, flags, message):
    rc, err = vbg(capsys, ASTRONAUT, "-o", tmp_path / "id.jpg", *flags)
    assert rc == 2 and err.startswith("vbg: error: ") and message in err, err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", [["--list-presets"], ["--id-photo", "list"]])
def test_list_presets(capsys, argv):
    assert cli.main(["still", *argv]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines][:4] == [
        ["1inch", "295x413"], ["2inch", "413x626"], ["passport", "413x531"], ["us", "600x600"]]
    assert [line.split()[0] for line in lines] == list(PRESETS)  # one line per preset
    assert "(35x45 mm)" in lines[2] and "(51x51 mm)" in lines[3]
