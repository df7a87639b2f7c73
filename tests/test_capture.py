"""Capture sources and the capture thread: files, MJPEG over HTTP, faults, latest-frame-wins."""

from __future__ import annotations

import hashlib
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from vbg.capture import CaptureThread, Source, SourceInfo, open_source
from vbg.capture.mjpeg import JpegStreamParser, jpeg_end
from vbg.errors import CameraError, ConfigError

sys.path.insert(0, str(Path(__file__).parent))
from mjpeg_server import MjpegServer, generated_frames

DATA = Path(__file__).parents[2] / "shared" / "data"
CLIP = DATA / "davis_parkour" / "clip.mp4"
needs_clip = pytest.mark.skipif(not CLIP.is_file(), reason=f"evaluation data absent: {CLIP}")


class FakeSource(Source):
    """Generated frames whose pixel value is the frame number; can end, fail or block."""

    def __init__(self, count: int | None = None, is_file: bool = False, fail_at: int | None = None,
                 none_at: int | None = None, block_at: int | None = None,
                 delay: float = 0.0) -> None:
        self.info = SourceInfo("fake", 64, 48, 1000.0, "BGR", count)
        self.is_file, self.is_live = is_file, not is_file
        self.count, self.fail_at, self.none_at, self.block_at = count, fail_at, none_at, block_at
        self.delay, self.n, self.closed = delay, 0, False
        self.unblock = threading.Event()

    def read(self) -> np.ndarray | None:
        i = self.n
        self.n += 1
        if self.delay:
            time.sleep(self.delay)
        if i == self.block_at:
            self.unblock.wait()
        if i == self.fail_at:
            raise CameraError("fake device unplugged")
        if i == self.none_at or (self.count is not None and i >= self.count):
            return None
        return np.full((48, 64, 3), i % 256, np.uint8)

    def close(self) -> None:
        self.closed = True


def wait_until(condition: Callable[[], bool], limit: float = 5.0) -> bool:
    """Poll a condition (a guard against hanging, not a speed check)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def drain(thread: CaptureThread, timeout: float = 5.0) -> list:
    """Every frame until the source has ended."""
    frames = []
    while (frame := thread.get(timeout)) is not None:
        frames.append(frame)
    return frames


@pytest.fixture
def server():
    srv = MjpegServer(generated_frames(30), fps=30).start()
    yield srv
    srv.stop()


# -- files -------------------------------------------------------------------------------------

@pytest.fixture
def small_video(tmp_path) -> Path:
    """Five 64x48 frames at 50 fps, grey level 40 * frame number."""
    path = tmp_path / "five.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 50, (64, 48))
    for i in range(5):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    return path


@needs_clip
def test_file_source_reports_native_size_and_fps():
    with open_source(str(CLIP), size=(1280, 720)) as src:
        assert (src.info.width, src.info.height, src.info.fps) == (854, 480, 24.0)
        assert src.info.frame_count == 100
        assert src.is_file and not src.is_live
        assert src.read().shape == (480, 854, 3)


def test_file_source_reads_in_order_then_returns_none(small_video):
    with open_source(str(small_video)) as src:
        frames = [src.read() for _ in range(6)]
    assert [round(f.mean() / 40) for f in frames[:5]] == [0, 1, 2, 3, 4]
    assert all(f.dtype == np.uint8 and f.flags.c_contiguous for f in frames[:5])
    assert frames[5] is None


@needs_clip
def test_lossless_file_mode_delivers_all_100_frames_in_order():
    cap = cv2.VideoCapture(str(CLIP))
    expected = []
    while (got := cap.read())[0]:
        expected.append(hashlib.md5(got[1].tobytes()).hexdigest())
    cap.release()
    thread = CaptureThread(lambda: open_source(str(CLIP)), realtime=False).start()
    try:
        frames = drain(thread)
    finally:
        thread.stop()
    assert len(expected) == 100
    assert [f.index for f in frames] == list(range(100))
    assert all(f.image.shape == (480, 854, 3) for f in frames)
    assert [hashlib.md5(f.image.tobytes()).hexdigest() for f in frames] == expected
    assert thread.stats()["dropped"] == 0
    assert thread.stats()["state"] == "stopped"


def test_lossless_mode_applies_backpressure_to_a_fast_source():
    source = FakeSource(count=40, is_file=True)
    thread = CaptureThread(lambda: source, realtime=False).start()
    seen = []
    while (frame := thread.get(5)) is not None:
        seen.append(int(frame.image[0, 0, 0]))
        assert len(thread._queue) <= 4
        time.sleep(0.002)  # a consumer slower than the source
    assert seen == list(range(40))
    assert thread.dropped == 0 and thread.state == "ended"
    assert source.closed


def test_realtime_file_is_paced_and_loops_without_counting_reconnects(small_video):
    path = small_video
    thread = CaptureThread(lambda: open_source(str(path)), loop=True).start()
    try:
        assert thread.info.fps == 50
        indices = []
        while len(indices) < 12:
            frame = thread.get(2)
            assert frame is not None
            indices.append(frame.index)
    finally:
        thread.stop()
    assert indices == sorted(set(indices)) and indices[-1] >= 11  # past the end of the file
    assert thread.reconnects == 0


# -- errors -----------------------------------------------------------------------------------

def test_missing_file_is_a_camera_error_naming_the_path(tmp_path):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(CameraError, match=r"nope\.mp4"):
        open_source(str(missing))
    thread = CaptureThread(lambda: open_source(str(missing)))
    with pytest.raises(CameraError, match=r"nope\.mp4"):
        thread.start()
    assert thread.state == "ended"


def test_unreadable_file_is_a_camera_error_naming_the_path(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 100)
    with pytest.raises(CameraError, match=r"junk\.mp4.*could not be read"):
        open_source(str(junk))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="device nodes are Linux-only")
@pytest.mark.parametrize("spec", ["/dev/video57", "57"])
def test_missing_camera_is_a_camera_error_with_hints(spec):
    if Path("/dev/video57").exists():
        pytest.skip("/dev/video57 exists on this machine")
    with pytest.raises(CameraError, match="/dev/video57") as err:
        open_source(spec)
    assert "video' group" in str(err.value) and "vbg doctor" in str(err.value)


def test_unknown_pixel_format_is_a_config_error():
    with pytest.raises(ConfigError, match="mjpg, yuyv"):
        open_source("0", pixel_format="h264")


def test_url_that_is_not_a_camera_is_a_camera_error(server):
    with pytest.raises(CameraError, match="text/html"):
        open_source(server.url_for("/page"), open_timeout=2, read_timeout=1)
    with pytest.raises(CameraError, match="HTTP 404"):
        open_source(server.url_for("/missing"))


def test_refused_connection_is_a_camera_error(server):
    url = server.url
    server.stop()
    with pytest.raises(CameraError, match="connection refused"):
        open_source(url, open_timeout=1)


# -- MJPEG ------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/stream", "/stream-nolength", "/snapshot.jpg"])
def test_mjpeg_source_delivers_frames(server, path):
    src = open_source(server.url_for(path), fps=60)
    try:
        assert (src.info.width, src.info.height) == server.size
        assert src.is_live and not src.is_file
        frames = [src.read() for _ in range(5)]
    finally:
        src.close()
    levels = [int(f[:32, :32].mean()) for f in frames]
    for f in frames:
        assert f.shape == (240, 320, 3) and f.dtype == np.uint8 and f.flags.c_contiguous
    # frames carry their number (x8) in the corner block: they advance through the video
    assert all(level % 8 in (0, 1, 7) for level in levels)
    assert len(set(levels)) == len(levels)


def _jpegs() -> list[bytes]:
    return [cv2.imencode(".jpg", f)[1].tobytes() for f in generated_frames(3, (96, 64))]


@pytest.mark.parametrize("with_length", [True, False])
def test_parser_splits_a_stream_fed_in_small_pieces(with_length):
    jpegs = _jpegs()
    stream = b""
    for jpeg in jpegs:
        length = f"Content-Length: {len(jpeg)}\r\n" if with_length else ""
        stream += f"--xx\r\nContent-Type: image/jpeg\r\n{length}\r\n".encode() + jpeg + b"\r\n"
    parser, found = JpegStreamParser(b"xx"), []
    for i in range(0, len(stream), 7):
        parser.feed(stream[i:i + 7])
        while (jpeg := parser.next_jpeg()) is not None:
            found.append(jpeg)
    assert found == jpegs


def test_jpeg_end_skips_an_embedded_exif_thumbnail():
    big, thumb = _jpegs()[0], _jpegs()[1]
    payload = b"Exif\x00\x00" + thumb
    app1 = b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload
    jpeg = big[:2] + app1 + big[2:]
    assert jpeg_end(jpeg, 0) == len(jpeg)
    assert jpeg_end(jpeg[:-1], 0) == -1
    parser = JpegStreamParser()
    parser.feed(jpeg + jpeg[:100])
    assert parser.next_jpeg() == jpeg
    assert parser.next_jpeg() is None


# -- capture thread ---------------------------------------------------------------------------

def test_latest_frame_wins_under_a_slow_consumer():
    thread = CaptureThread(lambda: FakeSource(delay=0.001)).start()
    try:
        first = thread.get(2)
        assert first is not None
        assert wait_until(lambda: thread.frames >= first.index + 20)
        newest = thread.get(2)
        assert newest is not None and newest.index >= first.index + 19
        assert thread.stats()["dropped"] >= 18
        assert int(newest.image[0, 0, 0]) == newest.index % 256
        again = thread.get(0.5)
        assert again is None or again.index > newest.index  # never the same frame twice
    finally:
        thread.stop()


def test_live_source_that_fails_is_reopened_by_itself():
    sources = [FakeSource(fail_at=3), FakeSource(none_at=2), FakeSource()]
    opened = iter(sources)
    thread = CaptureThread(lambda: next(opened)).start()
    try:
        assert wait_until(lambda: thread.reconnects == 2 and thread.state == "live")
        assert thread.get(2) is not None
    finally:
        thread.stop()
    assert all(s.closed for s in sources)


def test_wait_for_camera_keeps_retrying_until_it_appears():
    attempts = []

    def opener() -> Source:
        attempts.append(1)
        if len(attempts) < 3:
            raise CameraError("camera /dev/video0 could not be opened")
        return FakeSource()

    thread = CaptureThread(opener, wait_for_camera=True).start()
    try:
        assert thread.state != "live"
        assert thread.get(5) is not None
        assert thread.state == "live" and thread.reconnects == 0 and len(attempts) == 3
    finally:
        thread.stop()


def test_stop_returns_while_a_read_is_blocked():
    source = FakeSource(block_at=2)
    thread = CaptureThread(lambda: source).start()
    assert wait_until(lambda: source.n >= 3)
    stopper = threading.Thread(target=thread.stop)
    stopper.start()
    stopper.join(5)
    assert not stopper.is_alive()
    assert thread.state == "stopped" and thread.get(0.1) is None
    source.unblock.set()  # the read returns: the thread releases the device and exits
    assert wait_until(lambda: source.closed)


def test_stop_interrupts_a_blocked_mjpeg_read_and_releases_it():
    srv = MjpegServer(generated_frames(2), fps=0.2).start()  # next frame only after 5 s
    try:
        thread = CaptureThread(lambda: open_source(srv.url, read_timeout=30)).start()
        assert thread.get(2) is not None
        thread.stop()
        assert not thread._thread.is_alive()
        assert thread._source is None
    finally:
        srv.stop()


def test_stalled_mjpeg_stream_times_out_and_reconnects():
    srv = MjpegServer(generated_frames(2), fps=0.2).start()  # one frame, then 5 s of silence
    try:
        thread = CaptureThread(lambda: open_source(srv.url, read_timeout=0.3)).start()
        assert thread.get(2) is not None
        assert wait_until(lambda: thread.reconnects >= 1)
        assert thread.get(2) is not None  # the new connection's first frame
    finally:
        thread.stop()
        srv.stop()


def test_mjpeg_outage_goes_lost_then_live_again_by_itself(server):
    thread = CaptureThread(lambda: open_source(server.url, open_timeout=1, read_timeout=1))
    thread.start()
    try:
        assert thread.get(2) is not None
        server.stop()
        assert wait_until(lambda: thread.state == "lost")
        assert thread.get(0.2) is None  # the consumer is never blocked while lost
        time.sleep(1.5)
        server.restart()
        back = time.monotonic()
        frame = None
        assert wait_until(lambda: thread.state == "live")
        while frame is None or frame.timestamp < back:
            frame = thread.get(2)
            assert frame is not None
        stats = thread.stats()
        assert stats["reconnects"] >= 1 and stats["error"] is None
        assert stats["info"].width == 320
    finally:
        thread.stop()


def test_on_demand_reading_never_runs_ahead() -> None:
    source = FakeSource(count=50, is_file=True)
    with CaptureThread(lambda: source, realtime=False, read_ahead=0) as thread:
        first = thread.get(2.0)
        time.sleep(0.3)  # a read-ahead reader would have filled its queue by now
        assert source.n <= 2  # the test read at open, plus the frame handed out
        second = thread.get(2.0)
        assert (first.index, second.index) == (0, 1)
        assert time.monotonic() - second.timestamp < 0.25  # read when asked, not 0.3 s ago


# -- start-up clock and camera event lines ------------------------------------------------------

@needs_clip
def test_a_file_camera_plays_from_when_the_pipeline_first_asks():
    """Start-up work (models, kernels, sinks) between start() and the first get() must not
    cost frames: the old thread paced the file from open, so the first frame taken after a
    0.5 s start-up was about the 12th and a dozen were dropped."""
    thread = CaptureThread(lambda: open_source(str(CLIP))).start()  # realtime, 24 fps
    try:
        time.sleep(0.5)
        first = thread.get(2)
        assert first is not None and first.index == 0
        taken = [first.index]
        for _ in range(9):
            frame = thread.get(2)
            assert frame is not None
            taken.append(frame.index)
        assert taken == list(range(10))
        assert thread.stats()["dropped"] == 0
    finally:
        thread.stop()


def test_a_camera_that_drops_and_comes_back_is_logged_with_the_reason():
    lines: list[str] = []
    sources = iter([FakeSource(fail_at=3), FakeSource()])
    thread = CaptureThread(lambda: next(sources), log=lines.append).start()
    try:
        assert wait_until(lambda: thread.reconnects == 1 and len(lines) >= 2)
    finally:
        thread.stop()
    lost = [ln for ln in lines if "camera lost" in ln]
    back = [ln for ln in lines if "camera back" in ln]
    assert len(lost) == 1 and "fake device unplugged" in lost[0] and "reconnecting" in lost[0]
    assert len(back) == 1 and "fake 64x48" in back[0]
    assert lines.index(lost[0]) < lines.index(back[0])


def test_wait_for_camera_says_what_it_waits_for_once_not_per_attempt():
    lines: list[str] = []
    attempts = []

    def opener() -> Source:
        attempts.append(1)
        if len(attempts) < 4:
            raise CameraError("camera /dev/video0 could not be opened")
        return FakeSource()

    thread = CaptureThread(opener, wait_for_camera=True, log=lines.append).start()
    try:
        assert thread.get(10) is not None
    finally:
        thread.stop()
    waiting = [ln for ln in lines if "waiting for the camera" in ln]
    assert len(waiting) == 1 and "/dev/video0 could not be opened" in waiting[0]
    assert any("camera found after" in ln for ln in lines)


def test_event_lines_are_rate_limited_and_count_what_was_held_back():
    from vbg.capture.thread import EventLog

    now = [0.0]
    lines: list[str] = []
    events = EventLog(lines.append, {"lost": 10.0}, clock=lambda: now[0])
    assert events("lost", "a")
    for t in (1.0, 2.0, 3.0):
        now[0] = t
        assert not events("lost", "b")
    now[0] = 12.0
    assert events("lost", "c")
    assert lines == ["a", "c (3 similar lines held back)"]
