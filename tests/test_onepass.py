"""One pass: skipping sure cells changes nothing; the blend equals matte-then-blend."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from vbg.backgrounds import BlurBackground, ColorBackground, Enlarger, ImageBackground
from vbg.compose.composite import Compositor, blend, blend_color, blend_enlarged
from vbg.matte import onepass
from vbg.matte.refine import DEFAULTS, MatteRefiner, RefineParams
from vbg.segment.thumbs import Thumbnailer

ROOT = Path(__file__).resolve().parents[1]
PORTRAIT = ROOT / "samples" / "astronaut.png"
BACKGROUND = ROOT / "vbg" / "backgrounds" / "images" / "launch.jpg"


def scene(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """A real portrait stretched to the size, and a blob-shaped low-res alpha over it."""
    frame = cv2.resize(cv2.imread(str(PORTRAIT)), (width, height), interpolation=cv2.INTER_AREA)
    yy, xx = np.mgrid[0:36, 0:64].astype(np.float32)
    blob = np.exp(-(((xx - 30) / 14) ** 2 + ((yy - 22) / 12) ** 2) ** 2)
    return np.ascontiguousarray(frame), np.clip(blob * 1.2, 0, 1).astype(np.float32)


def everything_edge(fields: onepass.MatteFields) -> onepass.MatteFields:
    """The same fields with no cell skipped: every pixel computed the long way."""
    return onepass.with_classes(fields, np.full_like(fields.classes, onepass.EDGE),
                                np.ones_like(fields.need))


PARAMS = [DEFAULTS, RefineParams(feather=0), RefineParams(guided=False),
          RefineParams(contrast=1.5, threshold=0.42)]


@pytest.mark.parametrize("params", PARAMS, ids=["default", "feather0", "bilinear", "live"])
@pytest.mark.parametrize("size", [(640, 360), (333, 197)])
def test_skipping_sure_cells_changes_no_pixel(params: RefineParams, size: tuple[int, int]) -> None:
    frame, low = scene(*size)
    fields = MatteRefiner(params).fields(frame, low)
    kinds = set(np.unique(fields.classes))
    assert {onepass.SURE_BG, onepass.EDGE, onepass.SURE_PERSON} <= kinds  # all paths run
    height, width = frame.shape[:2]
    fast, slow = np.empty((height, width), np.uint8), np.empty((height, width), np.uint8)
    onepass.draw(fields, frame, matte=fast)
    onepass.draw(everything_edge(fields), frame, matte=slow)
    np.testing.assert_array_equal(fast, slow)
    assert fast.min() == 0 and fast.max() == 255 and ((fast > 0) & (fast < 255)).any()


@pytest.mark.parametrize("kind", ["color", "image", "blur"])
@pytest.mark.parametrize("feather", [0, 1])
def test_render_equals_matte_then_blend(kind: str, feather: int, tmp_path: Path) -> None:
    frame, low = scene(320, 180)
    refiner = MatteRefiner(RefineParams(feather=feather))
    fields = refiner.fields(frame, low)
    matte = refiner(frame, low).copy()
    if kind == "image":
        path = tmp_path / "bg.png"
        cv2.imwrite(str(path), np.random.default_rng(3).integers(0, 256, (90, 120, 3), np.uint8))
        background = ImageBackground(path)
    else:
        background = ColorBackground("#3366cc") if kind == "color" else BlurBackground(15)
    compositor = Compositor(background)
    drawn = np.empty_like(matte)
    got = compositor.render(frame, fields, matte=drawn).copy()
    np.testing.assert_array_equal(drawn, matte)
    if kind == "color":
        want = blend_color(frame, np.array(background.color, np.uint8), matte,
                           np.empty_like(frame))
    elif kind == "image":
        want = blend(frame, background.prepare(frame, matte), matte, np.empty_like(frame))
    else:
        small = BlurBackground(15).prepare(frame, fields.small, thumb=fields.thumb)
        want = blend_enlarged(frame, small, matte, np.empty_like(frame), Enlarger())
    np.testing.assert_array_equal(got, want)


def test_transparent_render_carries_the_matte() -> None:
    from vbg.backgrounds import TransparentBackground

    frame, low = scene(160, 90)
    refiner = MatteRefiner()
    out = Compositor(TransparentBackground()).render(frame, refiner.fields(frame, low))
    assert out.shape == (90, 160, 4)
    np.testing.assert_array_equal(out[..., :3], frame)
    np.testing.assert_array_equal(out[..., 3], refiner(frame, low))


def test_fields_reject_another_frame_size() -> None:
    frame, low = scene(160, 90)
    fields = MatteRefiner().fields(frame, low)
    with pytest.raises(ValueError, match="fields for"):
        onepass.draw(fields, np.zeros((90, 161, 3), np.uint8), matte=np.empty((90, 161), np.uint8))


def test_fields_from_a_thumbnail_match_fields_from_the_frame() -> None:
    frame, low = scene(1920, 1080)
    thumb = Thumbnailer()(frame).copy()
    assert thumb.shape == (360, 640, 3)
    np.testing.assert_array_equal(thumb, frame[1::3, 1::3])  # pixel centres at ratio 3
    a = MatteRefiner().fields(frame, low)
    b = MatteRefiner().fields(frame, low, thumb=thumb)
    np.testing.assert_array_equal(a.b, b.b)
    np.testing.assert_array_equal(a.classes, b.classes)


def test_a_guide_made_first_gives_the_same_fields() -> None:
    frame, low = scene(1920, 1080)
    thumb = Thumbnailer()(frame)
    refiner = MatteRefiner()
    guide = refiner.guide(frame, thumb)
    assert guide.shape == (180, 320) and guide.dtype == np.uint8
    np.testing.assert_array_equal(guide, cv2.cvtColor(
        cv2.resize(thumb, (320, 180), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY))
    a = refiner.fields(frame, low, thumb=thumb, guide_ready=True)
    a_b, a_classes = a.b.copy(), a.classes.copy()
    b = MatteRefiner().fields(frame, low, thumb=thumb)
    np.testing.assert_array_equal(a_b, b.b)
    np.testing.assert_array_equal(a_classes, b.classes)
    # A guide made for another frame size is not used: the fields are of this frame.
    small_frame, small_low = scene(640, 360)
    c = refiner.fields(small_frame, small_low, guide_ready=True)
    d = MatteRefiner().fields(small_frame, small_low)
    np.testing.assert_array_equal(c.b, d.b)


def test_thumbnails_at_whole_ratios_are_frame_pixels() -> None:
    rng = np.random.default_rng(7)
    # ratios 3, 5, 3 and 2; 360, 366, 401 and 360 rows
    for width, height, thumb_width in ((1920, 1080, 640), (3200, 1830, 640), (1599, 1203, 533),
                                       (1280, 720, 640)):
        frame = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        thumbs = Thumbnailer(thumb_width)
        thumb = thumbs(frame)
        ratio = width // thumb.shape[1]
        assert thumbs.exact
        np.testing.assert_array_equal(thumb, frame[ratio // 2::ratio, ratio // 2::ratio])
        np.testing.assert_array_equal(thumb, cv2.resize(
            frame, thumb.shape[1::-1], interpolation=cv2.INTER_NEAREST_EXACT))


def test_thumbnails_at_other_ratios_are_averaged() -> None:
    frame = np.random.default_rng(8).integers(0, 256, (480, 854, 3), dtype=np.uint8)
    thumbs = Thumbnailer()
    thumb = thumbs(frame)
    assert not thumbs.exact
    np.testing.assert_array_equal(thumb, cv2.resize(frame, (640, 360),
                                                    interpolation=cv2.INTER_LINEAR))


def test_thumbnailer_keeps_small_frames_and_aspect() -> None:
    thumbs = Thumbnailer()
    small = np.zeros((240, 320, 3), np.uint8)
    assert thumbs(small) is small
    assert thumbs(np.zeros((720, 1280, 3), np.uint8)).shape == (360, 640, 3)
    assert thumbs(np.zeros((480, 854, 3), np.uint8)).shape == (360, 640, 3)


class ListCapture:
    """The given frames in order, then 'ended'."""

    def __init__(self, frames: list[np.ndarray]) -> None:
        self.frames, self.state, self.index = frames, "live", 0

    def get(self, timeout: float):
        from vbg.capture.thread import Frame

        if self.index >= len(self.frames):
            self.state = "ended"
            return None
        self.index += 1
        return Frame(self.frames[self.index - 1], float(self.index), self.index - 1)

    def stats(self) -> dict:
        return {}

    def stop(self) -> None:
        pass


class Keep:
    """Records frames and mattes; `needs_matte` as given (None: attribute absent)."""

    def __init__(self, needs_matte: bool | None) -> None:
        if needs_matte is not None:
            self.needs_matte = needs_matte
        self.name, self.frames, self.mattes = "keep", [], []

    def open(self, *args) -> None:
        pass

    def write(self, frame, alpha=None, timestamp=None) -> None:
        self.frames.append(frame.copy())
        self.mattes.append(None if alpha is None else alpha.copy())

    def close(self) -> None:
        pass


def test_pipeline_draws_the_matte_only_for_sinks_that_want_it() -> None:
    from vbg.live import build as live
    from vbg.live import config
    from vbg.live.pipeline import Pipeline

    # The plain blend (no foreground colour estimate) is what `want` below reproduces.
    s = config.load(None).merged({"background": "", "color": "#20a040",
                                  "refine.foreground": False})
    frames = [np.roll(scene(320, 180)[0], 8 * k, axis=1) for k in range(4)]
    for wants in (True, None, False):
        sink = Keep(wants)
        stats = Pipeline(ListCapture(frames), live.build_stages(s), [sink], fps=30,
                         realtime=False).run()
        assert stats.frames_out == 4
        if wants is False:
            assert all(m is None for m in sink.mattes)
            continue
        for frame, out, matte in zip(frames, sink.frames, sink.mattes, strict=True):
            assert matte.shape == (180, 320) and matte.max() == 255 and matte.min() == 0
            want = blend_color(frame, np.array((0x40, 0xA0, 0x20), np.uint8), matte,
                               np.empty_like(frame))
            np.testing.assert_array_equal(out, want)


def test_still_scene_redraws_the_last_matte_over_the_new_frame() -> None:
    frame, low = scene(320, 180)
    fields = MatteRefiner().fields(frame, low)
    compositor = Compositor(ColorBackground("#102030"))
    first = np.empty((180, 320), np.uint8)
    compositor.render(frame, fields, matte=first)
    noisy = cv2.add(frame, np.random.default_rng(5).integers(0, 6, frame.shape, np.uint8))
    again = np.empty_like(first)
    out = compositor.render(noisy, fields, same_scene=True, matte=again)
    np.testing.assert_array_equal(again, first)  # the matte is not recomputed
    np.testing.assert_array_equal(out, blend_color(noisy, np.array((0x30, 0x20, 0x10), np.uint8),
                                                   first, np.empty_like(noisy)))
    fresh = np.empty_like(first)
    compositor.render(noisy, fields, matte=fresh)  # not the same scene: guided by the new frame
    assert (fresh != first).any()


def sure_background(fields: onepass.MatteFields) -> np.ndarray:
    """The frame pixels in the sure background runs of `fields`."""
    runs, counts = fields.plan[0], fields.plan[1]
    y0 = fields.taps[1]
    width, height = fields.size
    mask = np.zeros((height, width), bool)
    for y in range(height):
        for xs, xe, kind in runs[y0[y], :counts[y0[y]]]:
            mask[y, xs:xe] = kind == onepass.SURE_BG
    return mask


@pytest.mark.parametrize("kind", ["image", "blur", "color"])
def test_still_scene_leaves_the_unchanged_background_as_it_is(kind: str) -> None:
    frame, low = scene(640, 360)
    fields = MatteRefiner().fields(frame, low)
    noisy = cv2.add(frame, np.random.default_rng(6).integers(0, 6, frame.shape, np.uint8))

    def background():
        return {"image": lambda: ImageBackground(BACKGROUND), "color": lambda: ColorBackground(
            "#102030"), "blur": lambda: BlurBackground(15, refresh=8)}[kind]()

    def two_frames(keep: bool) -> np.ndarray:
        compositor = Compositor(background())
        compositor.keep_still_background = keep
        first = compositor.render(frame, fields)
        sure_bg = sure_background(fields)
        assert sure_bg.mean() > 0.3
        first[sure_bg] = 7  # what a still scene must not overwrite
        out = compositor.render(noisy, fields, same_scene=True)
        assert (out[sure_bg] == 7).all() == keep
        out[sure_bg] = 0
        return out.copy()

    np.testing.assert_array_equal(two_frames(True), two_frames(False))


def test_a_new_background_on_a_still_scene_is_drawn_whole() -> None:
    frame, low = scene(640, 360)
    fields = MatteRefiner().fields(frame, low)
    compositor = Compositor(ImageBackground(BACKGROUND))
    compositor.render(frame, fields)
    compositor.background = ColorBackground("#102030")
    out = compositor.render(frame, fields, same_scene=True).copy()
    fresh = Compositor(ColorBackground("#102030")).render(frame, fields)
    np.testing.assert_array_equal(out, fresh)


@pytest.mark.parametrize("kind", ["color", "image", "blur"])
def test_the_final_pass_writes_i420_as_cv2_converts_its_output(kind: str) -> None:
    frame, low = scene(640, 360)
    fields = MatteRefiner().fields(frame, low)
    noisy = cv2.add(frame, np.random.default_rng(7).integers(0, 6, frame.shape, np.uint8))
    background = {"image": lambda: ImageBackground(BACKGROUND),
                  "color": lambda: ColorBackground("#3366cc"),
                  "blur": lambda: BlurBackground(15, refresh=8)}[kind]()
    compositor = Compositor(background)
    i420 = np.full((540, 640), 7, np.uint8)
    out = compositor.render(frame, fields, i420=i420)
    assert np.abs(i420.astype(np.int16) - cv2.cvtColor(out, cv2.COLOR_BGR2YUV_I420)).max() <= 1
    assert len(np.unique(i420[360:])) > 10  # chroma written, not left at the fill value
    # A still scene keeps the background in the BGR buffer: the planes follow it all the same.
    out = compositor.render(noisy, fields, same_scene=True, i420=i420)
    assert np.abs(i420.astype(np.int16) - cv2.cvtColor(out, cv2.COLOR_BGR2YUV_I420)).max() <= 1


def test_i420_needs_an_even_frame() -> None:
    frame, low = scene(333, 197)
    fields = MatteRefiner().fields(frame, low)
    with pytest.raises(ValueError, match="even size"):
        Compositor(ColorBackground("#3366cc")).render(frame, fields,
                                                      i420=np.empty((295, 333), np.uint8))
