"""The final pass written only as I420 (vbg.matte.planar): the same picture as the BGR pass,
within 1 level of cv2's conversion, and the pipeline skips BGR only when nothing needs it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from vbg.backgrounds import BlurBackground, ColorBackground, ImageBackground
from vbg.compose.composite import Compositor
from vbg.matte import planar
from vbg.matte.refine import MatteRefiner, RefineParams

ROOT = Path(__file__).resolve().parents[1]
PORTRAIT = ROOT / "samples" / "astronaut.png"
BACKGROUND = ROOT / "vbg" / "backgrounds" / "images" / "launch.jpg"
SIZES = [(640, 360), (334, 198)]  # the second: cells and runs start at odd pixels


def scene(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """A real portrait stretched to the size, and a blob-shaped low-res alpha over it."""
    frame = cv2.resize(cv2.imread(str(PORTRAIT)), (width, height), interpolation=cv2.INTER_AREA)
    yy, xx = np.mgrid[0:36, 0:64].astype(np.float32)
    blob = np.exp(-(((xx - 30) / 14) ** 2 + ((yy - 22) / 12) ** 2) ** 2)
    return np.ascontiguousarray(frame), np.clip(blob * 1.2, 0, 1).astype(np.float32)


def background_of(kind: str):
    return {"image": lambda: ImageBackground(BACKGROUND),
            "color": lambda: ColorBackground("#3366cc"),
            "blur": lambda: BlurBackground(15, refresh=8)}[kind]()


def worst(i420: np.ndarray, bgr: np.ndarray) -> int:
    return int(np.abs(i420.astype(np.int16) - cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)).max())


@pytest.mark.parametrize("kind", ["color", "image", "blur"])
@pytest.mark.parametrize("params", [RefineParams(), RefineParams(feather=0),
                                    RefineParams(guided=False)],
                         ids=["default", "feather0", "bilinear"])
@pytest.mark.parametrize("size", SIZES)
def test_i420_only_is_the_bgr_pass_converted(kind: str, params: RefineParams,
                                             size: tuple[int, int]) -> None:
    frame, low = scene(*size)
    fields = MatteRefiner(params).fields(frame, low)
    width, height = size
    bgr_path, planar_path = Compositor(background_of(kind)), Compositor(background_of(kind))
    want_matte, got_matte = (np.empty((height, width), np.uint8) for _ in range(2))
    want = bgr_path.render(frame, fields, matte=want_matte).copy()
    i420 = np.full((height * 3 // 2, width), 7, np.uint8)
    planar_path.render(frame, fields, matte=got_matte, i420=i420, bgr=False)
    assert not planar_path.wrote_bgr
    np.testing.assert_array_equal(got_matte, want_matte)
    assert worst(i420, want) <= 1
    # Most pixels are exact: the background rows are interpolated in Y, U, V, rounded once.
    exact = (i420 == cv2.cvtColor(want, cv2.COLOR_BGR2YUV_I420)).mean()
    assert exact > 0.9


@pytest.mark.parametrize("kind", ["color", "image", "blur"])
def test_a_still_scene_keeps_the_planes_right(kind: str) -> None:
    frame, low = scene(640, 360)
    noisy = cv2.add(frame, np.random.default_rng(7).integers(0, 6, frame.shape, np.uint8))
    fields = MatteRefiner().fields(frame, low)
    compositor, reference = Compositor(background_of(kind)), Compositor(background_of(kind))
    i420 = np.empty((540, 640), np.uint8)
    compositor.render(frame, fields, i420=i420, bgr=False)
    reference.render(frame, fields)
    compositor.render(noisy, fields, same_scene=True, i420=i420, bgr=False)
    want = reference.render(noisy, fields, same_scene=True)
    assert worst(i420, want) <= 1
    # A BGR render in between and back: the planes still follow the picture.
    compositor.render(frame, fields, i420=i420)
    compositor.render(noisy, fields, same_scene=True, i420=i420, bgr=False)
    assert worst(i420, want) <= 1


def test_a_background_swap_is_seen_by_the_i420_pass() -> None:
    frame, low = scene(640, 360)
    fields = MatteRefiner().fields(frame, low)
    compositor = Compositor(ImageBackground(BACKGROUND))
    i420 = np.empty((540, 640), np.uint8)
    compositor.render(frame, fields, i420=i420, bgr=False)
    compositor.background = ColorBackground("#102030")
    compositor.render(frame, fields, same_scene=True, i420=i420, bgr=False)
    want = Compositor(ColorBackground("#102030")).render(frame, fields)
    assert worst(i420, want) <= 1


def test_yuv_rows_are_the_rows_luma_and_chroma() -> None:
    rows = np.random.default_rng(1).integers(0, 256, (4, 64, 3), np.uint8)
    y, u, v = planar.yuv_rows(rows)
    # Two copies of each row stacked make a frame whose I420 cv2 computes.
    frame = np.repeat(rows, 2, axis=0)
    ref = cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420)
    got_y = np.round(y / planar.FIXED)
    assert np.abs(got_y - ref[:8][::2]).max() <= 1
    quarter = ref[8:].reshape(-1)
    ref_u, ref_v = quarter[:4 * 32].reshape(4, 32), quarter[4 * 32:].reshape(4, 32)
    assert np.abs(np.round(u / planar.FIXED) - ref_u).max() <= 1
    assert np.abs(np.round(v / planar.FIXED) - ref_v).max() <= 1


def test_foreground_and_transparent_renders_still_write_bgr() -> None:
    frame, low = scene(640, 360)
    fields = MatteRefiner().fields(frame, low)
    compositor = Compositor(ColorBackground("#3366cc"), foreground=True)
    i420 = np.empty((540, 640), np.uint8)
    out = compositor.render(frame, fields, i420=i420, bgr=False)
    assert compositor.wrote_bgr
    assert worst(i420, out) <= 1


class Planes:
    """A sink that takes I420 (as the v4l2loopback camera): keeps what it was given."""

    takes_i420 = True

    def __init__(self) -> None:
        self.name, self.planes, self.frames = "planes", [], []

    def open(self, *args) -> None:
        pass

    def write(self, frame, alpha=None, timestamp=None) -> None:
        self.frames.append(frame.copy())

    def write_i420(self, planes, timestamp=None) -> None:
        self.planes.append(planes.copy())

    def close(self) -> None:
        pass


class Watched:
    """A preview tap with a page watching."""

    watchers = 1

    def __init__(self) -> None:
        self.offered = []

    def offer(self, frame) -> None:
        self.offered.append(frame.copy())


@pytest.mark.parametrize("watched", [False, True])
def test_the_pipeline_writes_bgr_only_when_something_needs_it(watched: bool) -> None:
    from test_onepass import ListCapture

    from vbg.live import build as live
    from vbg.live import config
    from vbg.live.pipeline import Pipeline

    s = config.load(None).merged({"background": "", "color": "#20a040",
                                  "refine.foreground": False})
    frames = [np.roll(scene(320, 180)[0], 8 * k, axis=1) for k in range(4)]
    reference = Pipeline(ListCapture(frames), live.build_stages(s), [Keep()], fps=30,
                         realtime=False)
    reference.run()
    sink = Planes()
    stages = live.build_stages(s)
    pipeline = Pipeline(ListCapture(frames), stages, [sink], fps=30, realtime=False)
    if watched:
        pipeline.tap = Watched()
    pipeline.run()
    # The first frame opens the outputs (BGR); every later one comes as planes.
    assert len(sink.frames) == 1 and len(sink.planes) == 3
    for planes, want in zip(sink.planes, reference.sinks[0].frames[1:], strict=True):
        assert worst(planes, want) <= 1
    assert stages.compositor.wrote_bgr is watched
    if watched:  # the page sees the picture the camera gets
        for seen, want in zip(pipeline.tap.offered, reference.sinks[0].frames, strict=True):
            np.testing.assert_array_equal(seen, want)
    else:  # the BGR picture, when asked for later (a card), comes from the planes
        last = pipeline.last_output()
        np.testing.assert_array_equal(last, cv2.cvtColor(sink.planes[-1],
                                                         cv2.COLOR_YUV2BGR_I420))
        assert pipeline.last_output() is last  # converted once


class Keep:
    """A BGR sink: keeps the frames."""

    def __init__(self) -> None:
        self.name, self.frames = "keep", []

    def open(self, *args) -> None:
        pass

    def write(self, frame, alpha=None, timestamp=None) -> None:
        self.frames.append(frame.copy())

    def close(self) -> None:
        pass
