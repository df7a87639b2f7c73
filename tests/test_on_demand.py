"""On-demand: the real live pipeline on a real clip idles while nobody reads the (stand-in)
virtual camera, releases the camera, keeps the device fresh, and comes back for a reader."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from waiting import wait_for

from vbg.capture import CaptureThread, open_source
from vbg.cli import main
from vbg.doctor.ondemand import check_on_demand
from vbg.live import config
from vbg.live.build import build_stages
from vbg.live.pipeline import Pipeline
from vbg.measure.benchclip import RingSource
from vbg.measure.idle import CountedSource, OpenCounter, measure
from vbg.sinks import VideoFileSink, VirtualCameraSink
from vbg.sinks.ondemand import IDLE_STATE, OnDemand, idle_card, watch_path
from vbg.sinks.recording import register_recording_backend

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify: Linux")


@pytest.fixture(scope="module")
def stages():
    return build_stages(config.load().merged({"provider": "cpu"}))


@pytest.fixture
def clip(shared_set) -> Path:
    return shared_set("davis_parkour") / "clip.mp4"


def test_idle_without_reader_and_back_for_one(stages, clip: Path, tmp_path: Path) -> None:
    recorder = register_recording_backend("recording-on-demand")
    stand_in = tmp_path / "video10"
    stand_in.touch()
    counter = OpenCounter()

    def opener():
        source = CountedSource(open_source(str(clip)), counter)
        counter.opened()
        return source

    def reopen():
        return CaptureThread(opener, realtime=True, wait_for_camera=True, loop=True).start()

    on_demand = OnDemand(reopen, log=lambda _: None, idle_after_s=0.3, idle_frame_s=0.1)
    sink = VirtualCameraSink(backend="recording-on-demand", stand_in=str(stand_in))
    pipeline = Pipeline(CaptureThread(opener, realtime=True, loop=True).start(), stages,
                        [sink], fps=24, realtime=True, log=lambda _: None, on_demand=on_demand)
    runner = threading.Thread(target=pipeline.run, daemon=True)
    runner.start()
    try:
        assert wait_for(lambda: pipeline.state == IDLE_STATE)
        assert counter.open_now == 0  # the camera is released
        shown = len(recorder.last.frames)
        assert wait_for(lambda: len(recorder.last.frames) >= shown + 3)  # idle frames go on
        card = idle_card(854, 480)
        np.testing.assert_array_equal(recorder.last.frames[-1].data, card)
        processed = pipeline.stats.frames_processed
        time.sleep(0.3)
        assert pipeline.stats.frames_processed == processed  # no work while idle
        opens = counter.opens
        fd = os.open(stand_in, os.O_RDONLY)  # an application opens the camera
        try:
            assert wait_for(lambda: pipeline.stats.frames_processed > processed + 5)
            assert pipeline.state != IDLE_STATE
            assert counter.opens == opens + 1 and counter.open_now == 1
            assert not np.array_equal(recorder.last.frames[-1].data, card)
        finally:
            os.close(fd)
        assert wait_for(lambda: pipeline.state == IDLE_STATE)  # gone again: idle again
        assert counter.open_now == 0
    finally:
        pipeline.stop()
        runner.join(5.0)
    assert not runner.is_alive()
    assert recorder.last.closed


def test_no_idling_when_a_file_is_written_too(tmp_path: Path) -> None:
    camera = VirtualCameraSink(backend="recording", stand_in=str(tmp_path / "video10"))
    assert watch_path([camera]) == str(tmp_path / "video10")
    assert watch_path([camera, VideoFileSink(tmp_path / "out.mp4")]) is None
    on_demand = OnDemand(lambda: None, log=lambda _: None)
    assert not on_demand.begin([camera, VideoFileSink(tmp_path / "out.mp4")])
    assert not on_demand.no_reader()  # never idle


def test_an_unwatchable_device_keeps_running_and_says_why(tmp_path: Path) -> None:
    said: list[str] = []
    camera = VirtualCameraSink(backend="recording", stand_in=str(tmp_path / "missing"))
    on_demand = OnDemand(lambda: None, log=said.append, idle_after_s=0.0)
    assert not on_demand.begin([camera])
    assert not on_demand.no_reader()
    assert said and "on-demand off" in said[0] and "missing" in said[0]


def test_bench_no_reader_figures(stages) -> None:
    clip = [np.full((120, 160, 3), 90, np.uint8)]
    figures = measure(stages, lambda: RingSource(clip, 30.0), seconds=1.0)
    assert figures["camera_open_while_idle"] is False
    assert figures["idle_frames"] >= 1
    assert 0 < figures["resume_ms"] <= figures["resume_ms_max"]
    assert figures["camera_opens"] >= 4  # the first open, then one per resume
    assert 0 <= figures["idle_cpu_cores"] < 1


def fake_loopback(root: Path, n: int = 10) -> Path:
    """sysfs + /dev for one v4l2loopback node labelled 'VBG Camera' (a plain file)."""
    node = root / "devices" / "virtual" / "video4linux" / f"video{n}"
    node.mkdir(parents=True)
    (node / "name").write_text("VBG Camera\n")
    dev = root / "dev"
    dev.mkdir()
    (dev / f"video{n}").write_bytes(b"")
    return dev


def test_doctor_says_whether_on_demand_works(tmp_path: Path) -> None:
    dev = fake_loopback(tmp_path)
    [check] = check_on_demand(tmp_path, dev)
    assert check.status == "ok" and f"{dev}/video10" in check.found
    [none] = check_on_demand(tmp_path / "nothing", tmp_path / "nodev")
    assert none.status == "info" and "no loopback device" in none.found
    [other] = check_on_demand(platform="win32")
    assert other.status == "info"


def test_vbg_bench_no_reader_prints_the_figures(capsys) -> None:
    assert main(["bench", "--no-reader", "--seconds", "0.5", "--size", "320x180", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["camera_open_while_idle"] is False
    assert {"idle_cpu_cores", "resume_ms", "resume_ms_max", "machine"} <= set(figures)
