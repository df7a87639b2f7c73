"""Sinks: virtual camera (recording backend), video/matte files, preview, null, make_sinks."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import pyvirtualcam

from vbg.errors import ConfigError, SinkError
from vbg.sinks import (
    MatteFileSink,
    NullSink,
    PreviewSink,
    VideoFileSink,
    VirtualCameraSink,
    make_sinks,
    open_all,
    vcam,
)
from vbg.sinks.preview import display_problem
from vbg.sinks.recording import register_recording_backend

DATA = Path(__file__).parents[2] / "shared" / "data"


@pytest.fixture
def recorder():
    return register_recording_backend("recording")


def frames(n: int, width: int = 64, height: int = 48, channels: int = 3) -> list[np.ndarray]:
    """Smooth, distinct frames (a gradient with a moving square) that codecs keep well."""
    x = np.linspace(0, 200, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 50, height, dtype=np.float32)[:, None]
    out = []
    for i in range(n):
        base = np.clip(x + y, 0, 255).astype(np.uint8)
        img = np.dstack([base, np.roll(base, i * 3, axis=1), 255 - base][:3])
        s = min(width, height) // 4
        img[s:2 * s, i * 2 % (width - s):i * 2 % (width - s) + s] = (30, 220, 30)
        if channels == 4:
            img = np.dstack([img, np.full((height, width), 255, np.uint8)])
        out.append(np.ascontiguousarray(img))
    return out


def read_video(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        out.append(frame)
    cap.release()
    return out


def mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


# --- virtual camera -------------------------------------------------------------------------

def test_recording_backend_gets_frames_in_order(recorder):
    sink = VirtualCameraSink(backend="recording")
    sink.open(64, 48, 30.0, 3)
    sent = frames(5)
    for i, f in enumerate(sent):
        sink.write(f, np.zeros((48, 64), np.uint8), float(i))
    assert sink.device == "recording:0"
    sink.close()
    session = recorder.last
    assert (session.width, session.height, session.fmt, session.fps) == (64, 48, "BGR", 30.0)
    assert session.closed
    assert [r.index for r in session.frames] == list(range(5))
    for got, want in zip(session.frames, sent, strict=True):
        assert got.data.shape == (48, 64, 3)
        np.testing.assert_array_equal(got.data, want)
    assert sink.frames_sent == 5
    assert sink.device is None  # closed


def test_recorded_frames_are_copies(recorder):
    sink = VirtualCameraSink(backend="recording")
    sink.open(64, 48, 30.0)
    frame = frames(1)[0]
    sink.write(frame)
    frame[:] = 0  # the pipeline reuses its buffer
    assert recorder.frames[0].data.any()
    sink.close()


def test_odd_size_is_cropped_to_even(recorder, caplog):
    sink = VirtualCameraSink(backend="recording")
    sink.open(65, 49, 30.0)
    frame = frames(1, 65, 49)[0]
    sink.write(frame)
    sink.write(frame)
    sink.close()
    assert (recorder.last.width, recorder.last.height) == (64, 48)
    np.testing.assert_array_equal(recorder.frames[0].data, frame[:48, :64])
    assert sum("odd" in r.message for r in caplog.records) == 1  # said once


def test_bgra_frame_drops_alpha(recorder):
    sink = VirtualCameraSink(backend="recording")
    sink.open(64, 48, 30.0, 4)
    frame = frames(1, channels=4)[0]
    sink.write(frame)
    sink.close()
    np.testing.assert_array_equal(recorder.frames[0].data, frame[:, :, :3])


def test_frame_of_another_size_is_resized_not_dropped(recorder):
    sink = VirtualCameraSink(backend="recording")
    sink.open(64, 48, 30.0)
    sink.write(frames(1, 128, 96)[0])
    sink.close()
    assert recorder.frames[0].data.shape == (48, 64, 3)


def test_loopback_device_is_found_by_label(tmp_path):
    virtual = tmp_path / "devices" / "virtual" / "video4linux"
    for n, label in ((3, "Dummy video device"), (10, "VBG Camera")):
        (virtual / f"video{n}").mkdir(parents=True)
        (virtual / f"video{n}" / "name").write_text(label + "\n")
    assert vcam.find_loopback_device(sys_root=tmp_path) == "/dev/video10"
    assert vcam.find_loopback_device("Other", sys_root=tmp_path) is None
    assert vcam.loopback_devices(tmp_path)[0] == ("/dev/video3", "Dummy video device")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="v4l2loopback is Linux only")
def test_found_device_is_passed_to_pyvirtualcam(monkeypatch):
    monkeypatch.setitem(pyvirtualcam.camera.BACKENDS, "v4l2loopback",
                        pyvirtualcam.camera.BACKENDS["v4l2loopback"])
    recorder = register_recording_backend("v4l2loopback")  # stands in for the real backend
    monkeypatch.setattr(vcam, "find_loopback_device", lambda label: "/dev/video10")
    sink = VirtualCameraSink()
    sink.open(64, 48, 30.0)
    assert sink.device == "/dev/video10"
    assert sink.name == "virtual camera /dev/video10"
    sink.close()
    assert recorder.last.device == "/dev/video10"


@pytest.mark.skipif(not sys.platform.startswith("linux") or bool(vcam.loopback_devices()),
                    reason="needs Linux without any v4l2loopback device")
def test_no_loopback_gives_the_fix(recorder):
    with pytest.raises(SinkError) as err:
        VirtualCameraSink().open(64, 48, 30.0)
    message = str(err.value)
    assert "modprobe v4l2loopback" in message
    assert "vbg doctor" in message
    assert 'card_label="VBG Camera"' in message and "exclusive_caps=1" in message
    assert "/etc/modprobe.d/" in message and "/etc/modules-load.d/" in message
    assert "Secure Boot" in message


def test_backend_failure_becomes_sink_error(recorder):
    recorder.fail_with = RuntimeError("Virtual camera device /dev/video10 could not be "
                                      "configured: Invalid argument")
    with pytest.raises(SinkError, match="refused the format 64x48") as err:
        VirtualCameraSink(backend="recording").open(64, 48, 30.0)
    assert "v4l2loopback" in str(err.value) and "vbg doctor" in str(err.value)


def test_unknown_backend():
    with pytest.raises(SinkError, match="unknown virtual camera backend 'nope'"):
        VirtualCameraSink(backend="nope").open(64, 48, 30.0)


@pytest.mark.parametrize(("message", "platform", "expected"), [
    ("Could not access /dev/video10 due to missing permissions. Did you add...", "linux",
     "usermod -aG video"),
    ("Device /dev/video0 is not a video output device.", "linux", "not a v4l2loopback device"),
    ("Device /dev/video7 does not exist.", "linux", "does not exist"),
    ("'obs' backend: OBS Virtual Camera is not installed", "darwin", "OBS Studio"),
    ("'obs' backend: OBS Virtual Camera device not found!", "win32", "Start Virtual Camera"),
])
def test_open_errors_are_explained(message, platform, expected):
    text = vcam.explain_open_error(message, "/dev/video10", 640, 480, platform)
    assert expected in text
    assert "vbg doctor" in text
    assert message.splitlines()[0][:20] in text  # pyvirtualcam's own words are kept


# --- video and matte files ------------------------------------------------------------------

def partials(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if ".partial" in p.name]


@pytest.mark.parametrize(("suffix", "codec"), [(".mp4", "mp4v"), (".avi", "MJPG"),
                                                (".mkv", "FFV1")])
def test_video_file_round_trip(tmp_path, suffix, codec):
    path = tmp_path / f"out{suffix}"
    sink = VideoFileSink(path)
    sink.open(64, 48, 25.0)
    sent = frames(12)
    for i, f in enumerate(sent):
        sink.write(f, None, float(i))
    assert not path.exists()  # atomic: nothing at the final name before close
    assert len(partials(tmp_path)) == 1
    sink.close()
    sink.close()  # twice is fine
    assert sink.codec == codec
    back = read_video(path)
    assert len(back) == 12
    assert back[0].shape == (48, 64, 3)
    assert max(mad(a, b) for a, b in zip(sent, back, strict=True)) < 10
    assert partials(tmp_path) == []


def test_video_file_odd_and_changing_sizes_keep_every_frame(tmp_path):
    path = tmp_path / "odd.avi"
    sink = VideoFileSink(path)
    sink.open(65, 49, 25.0, 4)
    for f in frames(4, 65, 49, channels=4) + frames(3, 128, 96):
        sink.write(f)
    sink.close()
    back = read_video(path)
    assert len(back) == 7
    assert back[0].shape == (48, 64, 3)


def test_matte_file_round_trip(tmp_path):
    path = tmp_path / "matte.mkv"
    sink = MatteFileSink(path)
    sink.open(64, 48, 25.0)
    mattes = []
    for i in range(9):
        matte = np.zeros((48, 64), np.uint8)
        matte[10:40, i * 4:i * 4 + 20] = 255
        mattes.append(matte)
        sink.write(frames(1)[0], matte, float(i))
    assert not path.exists()
    sink.close()
    back = read_video(path)
    assert len(back) == 9
    assert back[0].shape[:2] == (48, 64)
    for got, want in zip(back, mattes, strict=True):
        assert mad(got[:, :, 0], want) < 1  # FFV1 is lossless
    assert partials(tmp_path) == []


def test_matte_from_bgra_frame(tmp_path):
    path = tmp_path / "matte.avi"
    sink = MatteFileSink(path)
    sink.open(64, 48, 25.0, 4)
    frame = frames(1, channels=4)[0]
    frame[:, :32, 3] = 0
    sink.write(frame)
    sink.close()
    got = read_video(path)[0][:, :, 0]
    assert got[:, :28].mean() < 10 and got[:, 36:].mean() > 245


def test_matte_needs_alpha(tmp_path):
    sink = MatteFileSink(tmp_path / "m.mp4")
    sink.open(64, 48, 25.0)
    with pytest.raises(ValueError, match="needs the alpha matte"):
        sink.write(frames(1)[0])
    sink.close()


def test_missing_folder_is_a_sink_error(tmp_path):
    path = tmp_path / "no" / "such" / "out.mp4"
    with pytest.raises(SinkError, match="does not exist") as err:
        VideoFileSink(path).open(64, 48, 25.0)
    assert str(path) in str(err.value)


def test_bad_extension_and_fourcc(tmp_path):
    with pytest.raises(SinkError, match=r"unknown video extension '\.xyz'"):
        VideoFileSink(tmp_path / "out.xyz").open(64, 48, 25.0)
    with pytest.raises(SinkError, match="cannot encode ZZZZ"):
        VideoFileSink(tmp_path / "out.mp4", fourcc="ZZZZ").open(64, 48, 25.0)
    assert partials(tmp_path) == []


def test_no_frames_no_file(tmp_path):
    path = tmp_path / "empty.mp4"
    sink = VideoFileSink(path)
    sink.open(64, 48, 25.0)
    sink.close()
    assert not path.exists() and partials(tmp_path) == []


@pytest.mark.skipif(not (DATA / "davis_parkour" / "clip.mp4").is_file(),
                    reason="real data ../shared/data/davis_parkour is absent")
@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_person_region_survives_encoding(tmp_path, suffix):
    source = read_video(DATA / "davis_parkour" / "clip.mp4")[:24]
    masks = [cv2.imread(str(DATA / "davis_parkour" / "alpha" / f"{i:05d}.png"), 0)
             for i in range(len(source))]
    path = tmp_path / f"parkour{suffix}"
    sink = VideoFileSink(path)
    sink.open(854, 480, 24.0)
    for f in source:
        sink.write(f)
    sink.close()
    back = read_video(path)
    assert len(back) == len(source)
    errors = [np.abs(a.astype(np.int16) - b.astype(np.int16))[m > 127].mean()
              for a, b, m in zip(source, back, masks, strict=True)]
    assert float(np.mean(errors)) < 6  # measured 3.1 (mp4v) and 2.2 (MJPG)


# --- preview, null, make_sinks -----------------------------------------------------------------

def test_preview_without_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    sink = PreviewSink()
    with pytest.raises(SinkError, match="no display"):
        sink.open(64, 48, 30.0)
    assert sink.stop_requested is False
    sink.close()


def test_display_problem():
    assert display_problem({}, "linux") is not None
    assert display_problem({"DISPLAY": ":987"}, "linux") is not None  # no such X server
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0"}, "linux") is None
    assert display_problem({}, "win32") is None


def test_null_sink_converts_like_the_camera():
    sink = NullSink()
    sink.open(65, 49, 30.0)
    frame = frames(1, 65, 49)[0]
    sink.write(frame)
    buffer = sink.last_i420
    sink.write(frame)
    assert sink.last_i420 is buffer  # one buffer, reused
    want = cv2.cvtColor(np.ascontiguousarray(frame[:48, :64]), cv2.COLOR_BGR2YUV_I420)
    np.testing.assert_array_equal(sink.last_i420, want)
    assert sink.frames_written == 2
    sink.close()


def test_make_sinks(tmp_path):
    kinds = [type(s) for s in make_sinks()]
    assert kinds == [VirtualCameraSink]
    kinds = [type(s) for s in make_sinks(output=tmp_path / "o.mp4",
                                         matte_output=tmp_path / "m.mkv")]
    assert kinds == [VideoFileSink, MatteFileSink]
    kinds = [type(s) for s in make_sinks(output=tmp_path / "o.mp4", virtual_camera=True,
                                         preview=True)]
    assert kinds == [VirtualCameraSink, VideoFileSink, PreviewSink]
    assert make_sinks(device="/dev/video10")[0].requested_device == "/dev/video10"
    with pytest.raises(ConfigError, match="no output"):
        make_sinks(virtual_camera=False)


def test_open_all_closes_what_it_opened(tmp_path, recorder):
    camera = VirtualCameraSink(backend="recording")
    broken = VideoFileSink(tmp_path / "missing" / "o.mp4")
    with pytest.raises(SinkError):
        open_all([camera, broken], 64, 48, 30.0)
    assert recorder.last.closed


def test_virtual_camera_in_i420_takes_planes_as_they_are(recorder):
    sink = VirtualCameraSink(backend="recording", pixel_format="i420")
    sink.open(64, 48, 30)
    assert sink.takes_i420 and recorder.last.fmt == "I420"
    frame = frames(1)[0]
    sink.write(frame)  # a BGR frame (the notice card, the idle frame) is converted here
    np.testing.assert_array_equal(recorder.frames[0].data,
                                  cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420))
    planes = np.random.default_rng(1).integers(0, 256, (72, 64), np.uint8)
    sink.write_i420(planes, timestamp=0.0)
    np.testing.assert_array_equal(recorder.frames[1].data, planes)
    with pytest.raises(SinkError, match="I420 planes"):
        sink.write_i420(planes[:70])
    sink.close()


def test_virtual_camera_pixel_format_is_checked_and_bgr_elsewhere(recorder):
    with pytest.raises(SinkError, match="pixel format"):
        VirtualCameraSink(backend="recording", pixel_format="nv12")
    sink = VirtualCameraSink(backend="recording")  # auto: I420 only on v4l2loopback
    sink.open(64, 48, 30)
    assert not sink.takes_i420 and recorder.last.fmt == "BGR"
    with pytest.raises(SinkError, match="BGR camera"):
        sink.write_i420(np.zeros((72, 64), np.uint8))
    sink.close()


# -- an existing output is replaced only by a complete file (issue 16 item 2) -------------------

def test_an_existing_output_is_replaced_only_when_the_run_stops_cleanly(tmp_path):
    path = tmp_path / "out.mp4"
    path.write_bytes(b"yesterday's good recording")
    sink = VideoFileSink(path)
    sink.open(64, 48, 25.0)
    for frame in frames(5):
        sink.write(frame)
        assert path.read_bytes() == b"yesterday's good recording"  # still the old file
    sink.close()
    assert len(read_video(path)) == 5 and partials(tmp_path) == []


def test_a_run_that_fails_leaves_the_existing_output_as_it_was(tmp_path):
    path = tmp_path / "out.mp4"
    path.write_bytes(b"yesterday's good recording")
    sink = VideoFileSink(path)
    sink.open(64, 48, 25.0)
    sink.write(frames(1)[0])
    with pytest.raises(RuntimeError):
        try:
            raise RuntimeError("the segmenter crashed")
        finally:
            sink.close()  # as Pipeline.close() runs it, while the error unwinds
    assert path.read_bytes() == b"yesterday's good recording"
    assert partials(tmp_path) == []


def test_a_stopped_run_keeps_what_it_wrote(tmp_path):
    path = tmp_path / "out.mp4"
    sink = VideoFileSink(path)
    sink.open(64, 48, 25.0)
    for frame in frames(3):
        sink.write(frame)
    with pytest.raises(KeyboardInterrupt):
        try:
            raise KeyboardInterrupt
        finally:
            sink.close()  # Ctrl-C is a stop, not a failure
    assert len(read_video(path)) == 3


def test_temporary_files_of_killed_runs_are_removed(tmp_path):
    import subprocess

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    stale = tmp_path / f".out.{int(dead.stdout)}.partial.mp4"
    stale.write_bytes(b"half a video")
    unrelated = tmp_path / ".other.123.partial.mp4"
    unrelated.write_bytes(b"not ours")
    sink = VideoFileSink(tmp_path / "out.mp4")
    sink.open(64, 48, 25.0)
    sink.write(frames(1)[0])
    sink.close()
    assert not stale.exists() and unrelated.exists()
