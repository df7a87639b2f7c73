"""Backgrounds: colour parsing, cover-fit, file errors, halo-free blur, looping video."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from vbg.backgrounds import (
    DEFAULT_BLUR,
    BlurBackground,
    ColorBackground,
    Enlarger,
    ImageBackground,
    TransparentBackground,
    VideoBackground,
    cover_crop,
    cover_fit,
    make_background,
    parse_color,
)
from vbg.errors import BackgroundError, ConfigError


@pytest.mark.parametrize(
    "text,bgr",
    [
        ("#ff0000", (0, 0, 255)),
        ("00FF00", (0, 255, 0)),
        ("#00f", (255, 0, 0)),
        ("#1a2B3c", (0x3C, 0x2B, 0x1A)),
        ("10, 20,30", (30, 20, 10)),
        ("white", (255, 255, 255)),
        ("black", (0, 0, 0)),
        ("green", (0, 255, 0)),
        ("Blue", (219, 142, 67)),
        ("red", (0, 0, 255)),
        ("gray", (128, 128, 128)),
        (" grey ", (128, 128, 128)),
    ],
)
def test_parse_color(text: str, bgr: tuple[int, int, int]) -> None:
    assert parse_color(text) == bgr


@pytest.mark.parametrize("text", ["", "#ff00", "#gggggg", "300,0,0", "1,2", "purple", "-1,0,0"])
def test_parse_color_rejects_with_value_and_forms(text: str) -> None:
    with pytest.raises(BackgroundError) as info:
        parse_color(text)
    assert repr(text) in str(info.value)
    assert "#rrggbb" in str(info.value) and "r,g,b" in str(info.value)


def test_cover_crop_geometry() -> None:
    assert cover_crop((400, 100), (100, 100)) == (150, 0, 100, 100)
    assert cover_crop((100, 400), (200, 100)) == (0, 175, 100, 50)
    assert cover_crop((1920, 1080), (1280, 720)) == (0, 0, 1920, 1080)


def striped(width: int, height: int) -> np.ndarray:
    """Left third blue, middle third green, right third red (BGR)."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 3] = (255, 0, 0)
    image[:, width // 3 : 2 * width // 3] = (0, 255, 0)
    image[:, 2 * width // 3 :] = (0, 0, 255)
    return image


def test_cover_fit_keeps_aspect_and_centre() -> None:
    fitted = cover_fit(striped(300, 100), (50, 50))  # wide source into a square: middle only
    assert fitted.shape == (50, 50, 3)
    assert (fitted[:, 5:-5, 1] > 200).all() and (fitted[:, 5:-5, [0, 2]] < 50).all()
    tall = np.rot90(striped(300, 100)).copy()  # 100 wide, 300 tall
    fitted = cover_fit(tall, (200, 100))  # enlarged, crop keeps the middle rows
    assert fitted.shape == (100, 200, 3)
    assert (fitted[5:-5, :, 1] > 200).all()
    same = cover_fit(striped(60, 30), (120, 60))  # same aspect: nothing cropped
    assert (same[:, :30, 0] > 200).all() and (same[:, -30:, 2] > 200).all()


def test_image_background_reads_and_caches(tmp_path: Path) -> None:
    path = tmp_path / "fond é.png"  # non-ASCII name
    ok, encoded = cv2.imencode(".png", striped(90, 30))
    assert ok
    encoded.tofile(path)
    background = ImageBackground(path)
    frame = np.zeros((40, 40, 3), np.uint8)
    first = background.prepare(frame, np.zeros((40, 40), np.uint8))
    assert first.shape == (40, 40, 3)
    assert (first[:, 8:-8, 1] > 200).all()
    assert background.prepare(frame, np.zeros((40, 40), np.uint8)) is first
    assert background.prepare(np.zeros((20, 60, 3), np.uint8), None).shape == (20, 60, 3)


def test_image_background_converts_grey_alpha_16bit_and_exif(tmp_path: Path) -> None:
    grey = tmp_path / "grey.png"
    cv2.imwrite(str(grey), np.full((10, 12), 77, np.uint8))
    rgba = tmp_path / "rgba.png"
    cv2.imwrite(str(rgba), np.full((10, 12, 4), 200, np.uint8))
    deep = tmp_path / "deep.png"
    cv2.imwrite(str(deep), np.full((10, 12, 3), 65535, np.uint16))
    frame = np.zeros((10, 12, 3), np.uint8)
    for path, value in ((grey, 77), (rgba, 200), (deep, 255)):
        fitted = ImageBackground(path).prepare(frame, None)
        assert fitted.dtype == np.uint8 and fitted.shape == (10, 12, 3)
        assert abs(int(fitted[5, 5, 0]) - value) <= 1
    rotated = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    Image.new("RGB", (40, 20), (0, 0, 255)).save(rotated, exif=exif)
    tall = ImageBackground(rotated)._image
    assert tall.shape == (40, 20, 3)


def test_image_background_errors_name_the_path(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8 not really a jpeg" * 10)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    cases = [
        (tmp_path / "missing.png", "not found"),
        (corrupt, "not an image"),
        (empty, "not an image"),
        (tmp_path, "cannot be read"),
    ]
    for path, reason in cases:
        with pytest.raises(BackgroundError) as info:
            ImageBackground(path)
        assert str(path) in str(info.value) and reason in str(info.value)


@pytest.mark.parametrize("strength", [6, 30, 100])
@pytest.mark.parametrize("left", [120, 123])  # block-aligned and not
def test_blur_has_no_halo(strength: int, left: int) -> None:
    height, width, right = 180, 320, left + 80
    frame = np.zeros((height, width, 3), np.uint8)
    frame[:] = (255, 0, 0)  # blue scene
    alpha = np.zeros((height, width), np.uint8)
    frame[40:, left:right] = (0, 0, 255)  # red person
    alpha[40:, left:right] = 255
    background = BlurBackground(strength)
    blurred = background.full(frame, alpha)
    assert blurred.shape == frame.shape
    plain = cv2.GaussianBlur(frame, (0, 0), background.sigma)
    rows = slice(100, 170)
    for cols in (slice(left - 10, left - 2), slice(right + 2, right + 10)):  # 2-10 px outside
        assert blurred[rows, cols, 2].max() < 0.1 * 255  # little red
        assert blurred[rows, cols, 0].min() > 0.9 * 255  # still blue
        assert plain[rows, cols, 2].max() > 0.15 * 255  # an unweighted blur bleeds
    assert (blurred[:, :60, 0] > 250).all() and (blurred[:, :60, 1:] < 5).all()


def test_blur_inside_person_falls_back_to_plain_blur() -> None:
    frame = np.full((64, 64, 3), 90, np.uint8)
    alpha = np.full((64, 64), 255, np.uint8)  # all person: no scene pixel to use
    blurred = BlurBackground(10).full(frame, alpha)
    assert np.abs(blurred.astype(int) - 90).max() <= 1


def test_blur_reuses_buffer_and_follows_size() -> None:
    background = BlurBackground(DEFAULT_BLUR)
    frame = np.random.default_rng(0).integers(0, 256, (72, 128, 3), np.uint8)
    alpha = np.zeros((72, 128), np.uint8)
    first = background.prepare(frame, alpha)
    assert background.shrink == 8  # strength 15: sigma 7.5 px leaves ~0.9 px at 1/8
    assert first.shape == (9, 16, 3)  # left small: the compositor enlarges it while blending
    assert background.prepare(frame, alpha) is first
    assert background.prepare(frame[:50, :70].copy(), alpha[:50, :70].copy()).shape == (12, 17, 3)
    assert background.full(frame[:50, :70].copy(), alpha[:50, :70].copy()).shape == (50, 70, 3)
    for height, width in ((3, 5), (5, 9), (4, 4)):  # tiny frames do not break it
        tiny = background.full(frame[:height, :width].copy(), alpha[:height, :width].copy())
        assert tiny.shape == (height, width, 3)


@pytest.mark.parametrize("size", [(72, 128), (41, 53), (1080, 1920)])
def test_enlarger_is_bilinear_like_cv2(size: tuple[int, int]) -> None:
    height, width = size
    small = np.random.default_rng(1).integers(0, 256, (height // 4, width // 4, 3), np.uint8)
    got = Enlarger()(small, (width, height))
    want = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    assert got.shape == want.shape
    assert np.abs(got.astype(int) - want).max() <= 1


@pytest.mark.parametrize("strength", [0, -3, 101, 2.5, True, "15"])
def test_blur_strength_is_checked(strength: object) -> None:
    with pytest.raises(BackgroundError, match="blur strength"):
        BlurBackground(strength)  # type: ignore[arg-type]


def write_video(path: Path, values: tuple[int, ...], fps: float = 25) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (64, 48))
    assert writer.isOpened()
    for value in values:
        writer.write(np.full((48, 64, 3), value, np.uint8))
    writer.release()
    return path


def test_video_decoder_rewinds_at_end(tmp_path: Path) -> None:
    background = VideoBackground(write_video(tmp_path / "bg.avi", (0, 128, 255)))
    try:
        values = [int(background._raw[0].mean())]
        for i in range(1, 7):
            assert background._read_raw(i % 2)
            values.append(int(background._raw[i % 2].mean()))
        assert [round(v / 128) for v in values] == [0, 1, 2, 0, 1, 2, 0]
        assert background.rewinds == 2
    finally:
        background.close()


def test_video_background_plays_and_loops(tmp_path: Path) -> None:
    background = VideoBackground(write_video(tmp_path / "bg.avi", (0, 128, 255), fps=30))
    frame = np.zeros((30, 40, 3), np.uint8)
    seen: list[int] = []
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (2 in seen and seen[-1] == 0):
            shown = background.prepare(frame, None)
            assert shown.shape == (30, 40, 3)
            level = round(float(shown.mean()) / 128)
            if not seen or seen[-1] != level:
                seen.append(level)
            time.sleep(0.003)
    finally:
        background.close()
    assert seen[0] == 0 and 2 in seen and seen[-1] == 0, seen  # played through and wrapped
    assert background.rewinds >= 1


def test_video_background_follows_frame_size(tmp_path: Path) -> None:
    background = VideoBackground(write_video(tmp_path / "bg.avi", (50, 100, 150, 200)))
    try:
        first = background.prepare(np.zeros((30, 40, 3), np.uint8), None)
        assert first.shape == (30, 40, 3)
        assert background.prepare(np.zeros((90, 60, 3), np.uint8), None).shape == (90, 60, 3)
        time.sleep(0.1)  # let the decoder publish a few frames at the new size
        assert background.prepare(np.zeros((90, 60, 3), np.uint8), None).shape == (90, 60, 3)
    finally:
        background.close()
    background.close()  # closing twice is harmless


def test_video_errors_name_the_path(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x01junk" * 100)
    for path in (tmp_path / "missing.mp4", corrupt):
        with pytest.raises(BackgroundError) as info:
            VideoBackground(path)
        assert str(path) in str(info.value)


def test_make_background(tmp_path: Path) -> None:
    default = make_background()
    assert isinstance(default, BlurBackground) and default.strength == DEFAULT_BLUR
    assert make_background(blur=40).strength == 40
    assert make_background(color="red").color == (0, 0, 255)
    assert make_background(color=(1, 2, 3)).color == (1, 2, 3)
    assert isinstance(make_background(transparent=True), TransparentBackground)
    image = tmp_path / "bg.png"
    cv2.imwrite(str(image), np.zeros((4, 4, 3), np.uint8))
    assert make_background(image=image).kind == "image"
    video = make_background(video=write_video(tmp_path / "bg.avi", (10, 20)))
    assert video.kind == "video"
    video.close()
    with pytest.raises(ConfigError, match="image, color"):
        make_background(image=image, color="red")
    with pytest.raises(BackgroundError):
        make_background(color="nope")
    with pytest.raises(BackgroundError, match="256"):
        ColorBackground((0, 256, 0))
    assert ColorBackground((5, 6, 7)).prepare(np.zeros((2, 2, 3), np.uint8), None) is None


def _room() -> np.ndarray:
    rng = np.random.default_rng(7)
    return cv2.GaussianBlur(rng.integers(0, 256, (180, 320, 3), np.uint8), (0, 0), 4)


def _room_and_person(shift: int) -> tuple[np.ndarray, np.ndarray]:
    """A textured room (fixed) with a red block 'person' at a horizontal offset."""
    frame, alpha = _room(), np.zeros((180, 320), np.uint8)
    frame[40:, 100 + shift:180 + shift] = (0, 0, 255)
    alpha[40:, 100 + shift:180 + shift] = 255
    return frame, alpha


def test_live_blur_reuses_the_room_while_only_the_person_moves() -> None:
    background = BlurBackground(15, refresh=8)
    reused = []
    for shift in (0, 4, 8, 12, 16, 20, 24, 28, 32):
        frame, alpha = _room_and_person(shift)
        background.prepare(frame, alpha)
        reused.append(background.reused)
    assert reused == [False] + [True] * 7 + [False]  # re-blurred every 8th frame at least
    # The plate knows the room where the person stood at first (seen since): behind the
    # person the blur is nearer the blurred empty room than a blur that only masks them out.
    frame, alpha = _room_and_person(32)
    ideal = BlurBackground(15).full(_room(), np.zeros_like(alpha)).astype(int)
    behind = (slice(60, 170), slice(185, 205))  # seen at first, now behind the person
    plate = np.abs(background.full(frame, alpha).astype(int) - ideal)[behind].mean()
    masked = np.abs(BlurBackground(15).full(frame, alpha).astype(int) - ideal)[behind].mean()
    assert plate < masked


def test_live_blur_recomputes_at_once_when_the_room_changes() -> None:
    background = BlurBackground(15, refresh=8)
    frame, alpha = _room_and_person(0)
    first = background.prepare(frame, alpha).copy()
    background.prepare(frame, alpha)
    assert background.reused
    brighter = cv2.add(frame, np.full_like(frame, 20))
    second = background.prepare(brighter, alpha)
    assert not background.reused
    assert second.mean() > first.mean() + 10
    never = BlurBackground(15)  # still images and refresh=1: every call recomputes
    never.prepare(frame, alpha)
    never.prepare(frame, alpha)
    assert not never.reused


def test_bundled_backgrounds_by_name_and_old_checkout_path(tmp_path: Path, monkeypatch) -> None:
    from vbg.backgrounds import BUNDLED_DIR, bundled_background, bundled_names, find_background

    assert bundled_names() == ["launch.jpg", "space.jpg", "studio.png"]
    studio = BUNDLED_DIR / "studio.png"
    assert bundled_background("studio") == bundled_background("studio.png") == studio
    monkeypatch.chdir(tmp_path)  # no backgrounds/ folder here: the bundled one is found
    assert find_background("backgrounds/studio.png") == studio
    own = tmp_path / "studio.png"
    own.write_bytes(studio.read_bytes())
    assert find_background("studio.png") == Path("studio.png")  # an existing file comes first
    reference = ImageBackground(studio).prepare(np.zeros((90, 160, 3), np.uint8), None)
    for given in ("studio", "backgrounds/studio.png"):
        fitted = ImageBackground(given).prepare(np.zeros((90, 160, 3), np.uint8), None)
        np.testing.assert_array_equal(fitted, reference)
    with pytest.raises(BackgroundError, match=r"not found: check the path, or name a bundled"):
        ImageBackground("nope.jpg")
    with pytest.raises(BackgroundError, match="no bundled background 'nope'"):
        bundled_background("nope")


def test_image_background_from_an_array() -> None:
    picture = np.zeros((20, 40, 3), np.uint8)
    picture[:, 20:] = (0, 0, 255)
    fitted = ImageBackground(picture).prepare(np.zeros((10, 20, 3), np.uint8), None)
    assert fitted.shape == (10, 20, 3) and tuple(fitted[5, 15]) == (0, 0, 255)
    grey = ImageBackground(np.full((4, 4), 7, np.uint8)).prepare(np.zeros((4, 4, 3), np.uint8),
                                                                 None)
    assert np.all(grey == 7)
    for bad in (np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 2), np.uint8)):
        with pytest.raises(BackgroundError, match="background image array"):
            ImageBackground(bad)
