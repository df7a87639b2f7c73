"""A model too slow for the frame rate is named once, with the measured fps and what is faster."""

from __future__ import annotations

from vbg.live.keepup import MEASURE_FRAMES, KeepUp


def test_a_slow_model_is_said_once_with_its_fps_and_the_faster_choice():
    lines: list[str] = []
    check = KeepUp(30, "rvm", lines.append)
    check.add(2000.0)  # the first frame allocates: not counted
    for _ in range(MEASURE_FRAMES):
        check.add(385.0)
    for _ in range(100):
        check.add(385.0)
    assert len(lines) == 1 and check.verdict is False
    assert "rvm reaches only 2.6 fps" in lines[0] and "the output runs at 30" in lines[0]
    assert "--model selfie-landscape" in lines[0]


def test_a_model_that_keeps_up_is_not_mentioned():
    lines: list[str] = []
    check = KeepUp(30, "selfie-landscape", lines.append)
    for _ in range(MEASURE_FRAMES + 1):
        check.add(9.0)
    assert lines == [] and check.verdict is True


def test_the_fastest_model_suggests_a_smaller_load():
    lines: list[str] = []
    check = KeepUp(60, "selfie-landscape", lines.append)
    for _ in range(MEASURE_FRAMES + 1):
        check.add(25.0)
    assert len(lines) == 1 and "--size" in lines[0] and "40.0 fps" in lines[0]
