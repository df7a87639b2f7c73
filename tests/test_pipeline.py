"""The pipeline alone, with a fake capture, trivial stages and a recording sink."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from vbg.live.pipeline import Pipeline, Stages
from vbg.segment.base import Capabilities


@dataclass
class FakeFrame:
    image: np.ndarray
    timestamp: float
    index: int


class FakeCapture:
    """Frames on demand; `state` can be flipped to 'lost' to simulate an unplugged camera."""

    def __init__(self, frames: int, period: float = 0.0, size=(64, 48)) -> None:
        self.left = frames
        self.period = period
        self.size = size
        self.index = 0
        self.state = "live"
        self.stopped = False
        self._next = time.monotonic()

    def get(self, timeout: float) -> FakeFrame | None:
        deadline = time.monotonic() + timeout
        if self.state == "lost":
            time.sleep(max(0.0, timeout))
            return None
        if self.left <= 0:
            self.state = "ended"
            return None
        wait = self._next - time.monotonic()
        if wait > deadline - time.monotonic():
            time.sleep(max(0.0, deadline - time.monotonic()))
            return None
        time.sleep(max(0.0, wait))
        self._next = max(self._next + self.period, time.monotonic())
        w, h = self.size
        img = np.full((h, w, 3), (self.index + 40) % 256, np.uint8)
        frame = FakeFrame(img, time.monotonic(), self.index)
        self.index += 1
        self.left -= 1
        return frame

    def stats(self) -> dict:
        return {"dropped": 0, "reconnects": 0}

    def stop(self) -> None:
        self.stopped = True


class RecordingSink:
    name = "recording"

    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []
        self.times: list[float] = []
        self.opened = None
        self.closed = False

    def open(self, w: int, h: int, fps: float, channels: int) -> None:
        self.opened = (w, h, fps, channels)

    def write(self, frame: np.ndarray, alpha: np.ndarray, timestamp: float) -> None:
        self.frames.append(frame.copy())
        self.times.append(time.monotonic())

    def close(self) -> None:
        self.closed = True


def stages() -> Stages:
    out = {}

    def compositor(frame, alpha, same_scene=False):
        buf = out.setdefault(frame.shape, np.empty_like(frame))
        buf[:] = frame
        return buf

    class Ones(Capabilities):
        def __call__(self, frame):
            return np.ones((4, 4), np.float32)

    return Stages(
        segmenter=Ones(),
        smoother=lambda a, f, t: a,
        refiner=lambda f, a: np.full(f.shape[:2], 255, np.uint8),
        compositor=compositor,
    )


def test_every_frame_in_order_without_pacing() -> None:
    cap, sink = FakeCapture(25), RecordingSink()
    stats = Pipeline(cap, stages(), [sink], fps=30, realtime=False).run()
    assert stats.frames_out == 25 == len(sink.frames)
    assert [int(f[0, 0, 0]) for f in sink.frames] == [i + 40 for i in range(25)]
    assert sink.opened == (64, 48, 30.0, 3) and sink.closed and cap.stopped


def test_max_frames_stops_early() -> None:
    cap, sink = FakeCapture(50), RecordingSink()
    Pipeline(cap, stages(), [sink], fps=30, realtime=False, max_frames=10).run()
    assert len(sink.frames) == 10


def test_lost_camera_keeps_frame_rate_with_dimmed_card() -> None:
    cap, sink = FakeCapture(1000, period=1 / 50), RecordingSink()
    p = Pipeline(cap, stages(), [sink], fps=50, realtime=True, max_frames=40)

    def unplug() -> None:
        time.sleep(0.2)
        cap.state = "lost"

    threading.Thread(target=unplug, daemon=True).start()
    t0 = time.monotonic()
    stats = p.run()
    elapsed = time.monotonic() - t0
    assert len(sink.frames) == 40
    assert stats.fillers > 10
    # Fillers keep roughly the target rate (40 frames at 50 fps = 0.8 s), never stall.
    assert elapsed < 2.0
    last_live = sink.frames[stats.frames_processed - 1]
    card = sink.frames[-1]
    assert int(card[0, 0, 0]) == int(last_live[0, 0, 0]) * 3 // 8  # dimmed
    assert card.max() == 255  # with the "camera unavailable" notice


def test_faster_camera_is_dropped_not_queued() -> None:
    cap, sink = FakeCapture(1000, period=1 / 200), RecordingSink()
    stats = Pipeline(cap, stages(), [sink], fps=20, realtime=True, max_frames=10).run()
    assert stats.skipped_fast > 0
    gaps = np.diff(sink.times)
    assert np.median(gaps) > 0.03  # ~50 ms at 20 fps, not 5 ms


def test_stop_from_another_thread() -> None:
    cap, sink = FakeCapture(10**6, period=1 / 100), RecordingSink()
    p = Pipeline(cap, stages(), [sink], fps=100, realtime=True)
    threading.Timer(0.3, p.stop).start()
    t0 = time.monotonic()
    p.run()
    assert time.monotonic() - t0 < 1.0
    assert sink.closed and cap.stopped


def test_still_scene_reuses_the_matte_until_something_moves() -> None:
    from vbg.live.pipeline import StillScene

    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, (360, 640, 3), dtype=np.uint8)
    still = StillScene(refresh=5)
    assert not still.unchanged(base)  # nothing to compare with yet
    noisy = np.clip(base.astype(int) + rng.integers(-1, 2, base.shape), 0, 255).astype(np.uint8)
    assert still.unchanged(noisy)  # sensor noise is not motion
    moved = base.copy()
    moved[100:200, 300:400] = 255 - moved[100:200, 300:400]  # a hand moves in one place
    assert not still.unchanged(moved)
    assert [still.unchanged(moved) for _ in range(6)] == [True] * 5 + [False]  # refresh


def test_pipeline_counts_reused_mattes() -> None:
    cap, sink = FakeCapture(20), RecordingSink()
    cap_frames = []

    class StillCapture(FakeCapture):
        def get(self, timeout):
            f = super().get(timeout)
            if f is not None:
                f.image[:] = 90  # the same picture every time
                cap_frames.append(f)
            return f

    still_cap = StillCapture(20)
    stats = Pipeline(still_cap, stages(), [sink], fps=30, realtime=False).run()
    assert stats.frames_out == 20
    assert stats.mattes_reused == 19
    stats = Pipeline(cap, stages(), [RecordingSink()], fps=30, realtime=False,
                     reuse_still=False).run()
    assert stats.mattes_reused == 0


def test_still_scene_takes_a_grey_guide_too() -> None:
    from vbg.live.pipeline import StillScene

    rng = np.random.default_rng(4)
    base = rng.integers(0, 256, (180, 320), dtype=np.uint8)
    still = StillScene(refresh=5)
    assert not still.unchanged(base)
    noisy = np.clip(base.astype(int) + rng.integers(-2, 3, base.shape), 0, 255).astype(np.uint8)
    assert still.unchanged(noisy)
    moved = base.copy()
    moved[60:90, 150:190] = 255 - moved[60:90, 150:190]
    assert not still.unchanged(moved)


def test_smoother_gives_the_same_from_a_grey_picture_as_from_bgr() -> None:
    import cv2

    from vbg.matte.smoothing import TemporalSmoother

    rng = np.random.default_rng(5)
    first = rng.integers(0, 256, (180, 320, 3), dtype=np.uint8)
    frames = [first, first, 255 - first]  # still, then a new scene
    alphas = [rng.random((180, 320)).astype(np.float32) for _ in range(3)]
    bgr, grey = TemporalSmoother(), TemporalSmoother()
    for i, (frame, alpha) in enumerate(zip(frames, alphas, strict=True)):
        a = bgr(alpha, frame, i / 30).copy()
        b = grey(alpha, cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), i / 30).copy()
        np.testing.assert_allclose(a, b, atol=0.02)
    assert bgr.cuts == grey.cuts == 1
    np.testing.assert_array_equal(b, alphas[2])  # a cut takes the new matte as it is
    # A grey picture of another size is brought to the matte's.
    small = TemporalSmoother()
    small(alphas[0], np.zeros((90, 160), np.uint8), 0.0)
    assert small(alphas[1], np.zeros((90, 160), np.uint8), 1 / 30).shape == (180, 320)
