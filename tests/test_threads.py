"""Frame threads: one while frames are cheap, every core when they are not."""

from __future__ import annotations

import pytest

from vbg.errors import ConfigError
from vbg.live import threads


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    made: list[int] = []
    monkeypatch.setattr(threads, "most", lambda: 4)
    monkeypatch.setattr(threads, "set_frame_threads", lambda n: made.append(n) or n)
    return made


def test_auto_adds_threads_when_frames_get_slow_and_drops_them_again(calls: list[int]) -> None:
    governor = threads.FrameThreads(0, fps=30)  # 33 ms per frame
    assert governor.count == 1 and calls == [1]
    for _ in range(threads.FrameThreads.WINDOW):
        governor.update(12.0)  # well inside the period: stays at one
    assert governor.count == 1
    for _ in range(threads.FrameThreads.WINDOW):
        governor.update(20.0)  # over 45% of the period
    assert governor.count == 4 and calls[-1] == 4
    for _ in range(threads.FrameThreads.WINDOW - 1):
        governor.update(15.0)  # faster than on one thread
    assert governor.count == 4  # decides on a whole window only
    governor.update(15.0)
    assert governor.count == 4  # kept: it helped
    for _ in range(threads.FrameThreads.WINDOW):
        governor.update(5.0)  # under 25% of the period: one is enough again
    assert governor.count == 1 and calls[-1] == 1


def test_more_threads_that_do_not_help_are_dropped_for_a_while(calls: list[int]) -> None:
    governor = threads.FrameThreads(0, fps=30)
    window = threads.FrameThreads.WINDOW
    for _ in range(window):
        governor.update(20.0)
    assert governor.count == 4
    for _ in range(window):
        governor.update(19.0)  # a busy machine: barely faster
    assert governor.count == 1
    for _ in range(5 * window):
        governor.update(20.0)  # still slow, but no new try yet
    assert governor.count == 1
    for _ in range(6 * window):
        governor.update(20.0)  # the wait is over: tried again (and dropped again)
    assert calls.count(4) == 2


def test_a_fixed_number_stays(calls: list[int]) -> None:
    governor = threads.FrameThreads(2, fps=30)
    for _ in range(3 * threads.FrameThreads.WINDOW):
        governor.update(30.0)
    assert governor.count == 2 and calls == [2]


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
def test_a_bad_setting_is_refused(bad: object) -> None:
    with pytest.raises(ConfigError, match="frame_threads"):
        threads.FrameThreads(bad, fps=30)  # type: ignore[arg-type]
