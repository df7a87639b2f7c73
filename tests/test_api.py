"""The Python API (`import vbg`): cut_out, matte, id_photo, StillOptions, StillPipeline,
new_segmenter, on real photos, with the errors a caller gets for bad input."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_still import LeftHalfPerson

import vbg
from vbg.errors import BackgroundError, ConfigError, ImageError, ModelError, VbgError
from vbg.measure.metrics import iou, load_set
from vbg.segment.rvm import rvm_installed
from vbg.still.idphoto import PRESETS

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO / "vbg" / "data" / "samples" / "astronaut.png"


@pytest.fixture(scope="module")
def coco(shared_set) -> list[tuple[np.ndarray, np.ndarray]]:
    """(BGR photo, ground-truth alpha) for every coco_person image."""
    items = load_set(shared_set("coco_person"))
    return [(cv2.imread(str(image)), cv2.imread(str(alpha), cv2.IMREAD_GRAYSCALE))
            for _stem, image, alpha in items]


@pytest.fixture
def photo() -> np.ndarray:
    return cv2.imread(str(ASTRONAUT))


def test_cut_out_of_real_photos_matches_the_ground_truth(coco):
    scores = []
    for bgr, gt in coco:
        before = bgr.copy()
        out = vbg.cut_out(bgr, foreground=False)  # the photo's own colours at soft edges
        assert out.dtype == np.uint8 and out.shape == (*bgr.shape[:2], 4)
        np.testing.assert_array_equal(bgr, before)  # the input is left alone
        np.testing.assert_array_equal(out[:, :, :3], bgr)  # colour kept, alpha = matte
        scores.append(iou(out[:, :, 3], gt))
    assert len(scores) >= 10
    assert np.mean(scores) >= 0.70, scores


def test_matte_is_the_cut_out_alpha_and_the_still_pipeline_matte(coco):
    bgr, gt = coco[0]
    alpha = vbg.matte(bgr)
    assert alpha.dtype == np.uint8 and alpha.shape == gt.shape
    np.testing.assert_array_equal(alpha, vbg.cut_out(bgr)[:, :, 3])
    pipeline = vbg.StillPipeline(vbg.StillOptions(provider="cpu"))
    np.testing.assert_array_equal(alpha, pipeline.matte(bgr, None))


def test_backgrounds_colour_image_blur_and_bundled(photo):
    seg = LeftHalfPerson()  # matting="fast": its edge stays where the stand-in puts it
    h, w = photo.shape[:2]
    right = (slice(None), slice(w // 2 + 8, None))
    blue = vbg.cut_out(photo, background="#0000ff", model=seg, matting="fast")
    assert blue.shape == (h, w, 3) and np.all(blue[right] == (255, 0, 0))  # BGR
    as_tuple = vbg.cut_out(photo, background=(255, 0, 0), model=seg, matting="fast")
    np.testing.assert_array_equal(as_tuple, blue)
    rgb = vbg.cut_out(photo[:, :, ::-1], background=(0, 0, 255), model=seg, rgb=True,
                      matting="fast")
    np.testing.assert_array_equal(rgb, blue[:, :, ::-1])
    wall = np.full((40, 30, 3), (10, 200, 30), np.uint8)
    on_wall = vbg.cut_out(photo, background=wall, model=seg, matting="fast")
    assert np.all(on_wall[right] == (10, 200, 30))
    left = (slice(None), slice(0, w // 2 - 8))
    np.testing.assert_array_equal(on_wall[left], photo[left])  # the person as it was
    blurred = vbg.cut_out(photo, background=9, model=seg, matting="fast")
    assert blurred.shape == (h, w, 3) and not np.array_equal(blurred[right], photo[right])
    studio = vbg.cut_out(photo, background="studio", model=seg, matting="fast")
    assert studio.shape == (h, w, 3) and studio[right].std() > 0  # an image, not a colour
    np.testing.assert_array_equal(studio, vbg.cut_out(photo, background="studio.png", model=seg,
                                                      matting="fast"))


def test_input_alpha_multiplies_the_matte(photo):
    bgra = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
    bgra[: photo.shape[0] // 2, :, 3] = 0
    out = vbg.cut_out(bgra, model=LeftHalfPerson(), matting="fast")  # the stand-in's edge
    assert out[: photo.shape[0] // 2, :, 3].max() == 0
    assert out[photo.shape[0] // 2:, : photo.shape[1] // 2 - 8, 3].min() == 255


@pytest.mark.parametrize(("image", "error", "text"), [
    ([[1, 2, 3]], ImageError, "expected a numpy array"),
    (np.zeros((8, 8, 3), np.float32), ImageError, "dtype float32, expected uint8"),
    (np.zeros((8, 8, 2), np.uint8), ImageError, "shape (8, 8, 2)"),
    (np.zeros((0, 8, 3), np.uint8), ImageError, "at least 1x1"),
    ("/nonexistent/photo.jpg", ImageError, "/nonexistent/photo.jpg"),
])
def test_bad_images_are_one_line_errors(image, error, text):
    with pytest.raises(error) as caught:
        vbg.cut_out(image)
    message = str(caught.value)
    assert text in message and "\n" not in message


@pytest.mark.parametrize(("kwargs", "error", "text"), [
    ({"background": "no-such-thing"}, BackgroundError, "neither a colour nor an image file"),
    ({"background": True}, BackgroundError, "blur strength 1-100"),
    ({"background": 0}, BackgroundError, "1 to 100"),
    ({"background": np.zeros((4, 4), np.float64)}, BackgroundError, "must be uint8"),
    ({"background": (300, 0, 0)}, BackgroundError, "invalid colour"),
    ({"threshold": 0.5}, ConfigError, "unknown option threshold"),
    ({"alpha_threshold": 2.0}, ConfigError, "use a value from 0 to 1"),
    ({"feather": -1}, ConfigError, "0 or more"),
    ({"provider": "tpu"}, ConfigError, "auto, cuda, cpu"),
    ({"model": "nosuch"}, ModelError, "unknown model 'nosuch'"),
])
def test_bad_arguments_are_one_line_errors(photo, kwargs, error, text):
    with pytest.raises(error) as caught:
        vbg.cut_out(photo, **kwargs)
    assert text in str(caught.value) and "\n" not in str(caught.value)


def test_still_options_check_their_ranges():
    for kwargs, text in (({"contrast": 0}, "--contrast 0"), ({"quality": 101}, "--quality 101"),
                         ({"id_photo": "nope"}, "nope"), ({"allow_multiple": True}, "--id-photo"),
                         ({"id_photo": "us", "blur": 3}, "--blur cannot be combined"),
                         ({"color": "red", "blur": 3}, "cannot be combined")):
        with pytest.raises(VbgError, match=None) as caught:
            vbg.StillOptions(**kwargs)
        assert text in str(caught.value), (kwargs, caught.value)
    assert vbg.StillOptions().cutout and not vbg.StillOptions(color="red").cutout


def test_id_photo_of_a_real_portrait(photo):
    preset = PRESETS["passport"]
    out = vbg.id_photo(photo, "passport", color="blue")
    assert out.dtype == np.uint8 and out.shape == (preset.height, preset.width, 3)
    assert np.abs(out[:8, :8].astype(int) - (219, 142, 67)).max() <= 20  # the ID-photo blue
    with pytest.raises(ImageError, match="no face"):
        vbg.id_photo(np.full((300, 300, 3), 128, np.uint8), "us")
    with pytest.raises(VbgError, match="nope"):
        vbg.id_photo(photo, "nope")


def test_new_segmenter_takes_options_as_constructor_arguments():
    seg = vbg.new_segmenter("selfie", provider="cpu")
    assert seg(np.zeros((64, 64, 3), np.uint8)).dtype == np.float32
    with pytest.raises(ModelError, match="no option internal"):
        vbg.new_segmenter("selfie", provider="cpu", internal=320)
    if not rvm_installed():
        pytest.skip("RVM is not installed (`vbg models pull rvm`)")
    assert vbg.new_segmenter("rvm", provider="cpu", internal=320).internal == 320


def test_import_vbg_is_light_and_the_api_is_listed():
    code = ("import sys, vbg; heavy = [m for m in ('numba', 'onnxruntime', 'cv2') "
            "if m in sys.modules]; print(heavy, set(vbg.__all__) <= set(dir(vbg)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout.split()
    assert out == ["[]", "True"]
    refine = importlib.import_module("vbg.matte.refine")  # rebinds vbg.matte to the package
    assert callable(vbg.matte) and vbg.matte.refine is refine  # both the function and package
