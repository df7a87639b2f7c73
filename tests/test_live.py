"""Live mode end to end: the real pipeline on a real clip into a recording virtual camera,
a network camera that dies and comes back, and signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

import vbg
import vbg.errors
from vbg.cli import main
from vbg.live import build as live_build
from vbg.live import config as live_config
from vbg.live.pipeline import Pipeline
from vbg.live.reload import apply_settings
from vbg.measure.metrics import iou
from vbg.sinks.recording import register_recording_backend

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))
from mjpeg_server import MjpegServer  # noqa: E402
from test_pipeline import FakeCapture, RecordingSink  # noqa: E402


@pytest.fixture(scope="module")
def recorder():
    return register_recording_backend("recording")


@pytest.fixture
def clip(shared_set) -> Path:
    return shared_set("davis_parkour") / "clip.mp4"


def test_every_frame_in_order_to_the_virtual_camera(recorder, clip: Path, tmp_path: Path) -> None:
    recorder.clear()
    matte = tmp_path / "matte.mp4"
    rc = main(["--camera", str(clip), "--no-realtime", "--color", "#00ff00",
               "--vcam-backend", "recording", "--virtual-camera", "--output",
               str(tmp_path / "out.mp4"), "--matte-output", str(matte)])
    assert rc == 0
    session = recorder.last
    assert (session.width, session.height, session.fmt) == (854, 480, "BGR")
    assert session.closed
    assert len(session.frames) == 100
    assert [f.index for f in session.frames] == list(range(100))
    # Frames are the clip's frames in order: person pixels match the source, background green.
    cap = cv2.VideoCapture(str(clip))
    gt_dir = clip.parent / "alpha"
    ious = []
    for k, rec in enumerate(session.frames):
        ok, src = cap.read()
        assert ok
        gt = cv2.imread(str(gt_dir / f"{k:05d}.png"), cv2.IMREAD_GRAYSCALE) > 127
        out = rec.data
        far_bg = cv2.dilate(gt.astype(np.uint8), np.ones((41, 41), np.uint8)) == 0
        green = np.abs(out[far_bg].astype(int) - [0, 255, 0]).mean()
        assert green < 20, f"frame {k}: background not green ({green:.1f})"
        keep = (out.astype(int) - src.astype(int))[gt]
        ious.append(np.abs(keep).mean())
    assert np.mean(ious) < 15  # person pixels unchanged
    # The matte stream has the same frame count and overlaps the ground truth.
    mcap = cv2.VideoCapture(str(matte))
    scores = []
    for k in range(100):
        ok, m = mcap.read()
        assert ok, f"matte frame {k} missing"
        gt = cv2.imread(str(gt_dir / f"{k:05d}.png"), cv2.IMREAD_GRAYSCALE)
        scores.append(iou(cv2.cvtColor(m, cv2.COLOR_BGR2GRAY), gt))
    assert not mcap.read()[0]
    assert np.mean(scores) >= 0.70


def test_file_source_is_paced_like_a_camera(recorder, clip: Path) -> None:
    recorder.clear()
    rc = main(["--camera", str(clip), "--blur", "9", "--vcam-backend", "recording",
               "--frames", "30"])
    assert rc == 0
    sent = np.array([f.sent_at for f in recorder.last.frames])
    assert len(sent) == 30
    gaps = np.diff(sent)
    assert 0.030 < np.median(gaps) < 0.12  # paced at the clip's 24 fps (~42 ms), not flat out


def test_network_camera_outage_keeps_frame_rate_and_recovers(recorder, clip: Path) -> None:
    recorder.clear()
    from mjpeg_server import video_frames

    server = MjpegServer(video_frames(str(clip)), fps=30).start()
    try:
        def outage() -> None:
            time.sleep(1.5)
            server.stop()
            time.sleep(1.5)
            server.restart()

        import threading

        threading.Thread(target=outage, daemon=True).start()
        t0 = time.monotonic()
        rc = main(["--camera", server.url, "--fps", "30", "--blur", "15",
                   "--vcam-backend", "recording", "--frames", "150"])
        elapsed = time.monotonic() - t0
    finally:
        server.stop()
    assert rc == 0
    frames = recorder.last.frames
    assert len(frames) == 150
    assert elapsed < 9.0  # 150 frames at 30 fps plus start-up, outage included
    means = np.array([f.data.mean() for f in frames])
    # A dimmed "camera unavailable" stretch, then live frames again at the end.
    dim = means < 0.6 * np.median(means)
    assert dim.sum() >= 20
    assert not dim[-10:].any()


def _wait_for(path: Path, proc: subprocess.Popen, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"vbg exited early: {proc.stderr.read()}")
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {text!r}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly_within_a_second(clip: Path, tmp_path: Path, signum: int) -> None:
    out = tmp_path / "out.mp4"
    log = tmp_path / "log.txt"
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vbg", "--camera", str(clip), "--loop", "--blur", "9",
             "--output", str(out)], cwd=ROOT, stderr=err, stdout=subprocess.DEVNULL,
            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        _wait_for(log, proc, "output ->")
        time.sleep(1.0)
        t0 = time.monotonic()
        proc.send_signal(signum)
        rc = proc.wait(timeout=5)
        assert time.monotonic() - t0 < 1.0
    finally:
        proc.kill()
    assert rc == 0, log.read_text()
    assert out.is_file()
    assert not list(tmp_path.glob(".*"))  # no temp file left
    assert "frames in" in log.read_text()  # the run summary: it stopped, it was not killed
    cap = cv2.VideoCapture(str(out))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) > 10


def test_sighup_reloads_background_without_stopping(clip: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "vbg.toml"
    cfg.write_text('color = "#0000ff"\n')
    out = tmp_path / "out.avi"
    log = tmp_path / "log.txt"
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vbg", "--config", str(cfg), "--camera", str(clip), "--loop",
             "--output", str(out), "--frames", "150"],
            cwd=ROOT, stderr=err, stdout=subprocess.DEVNULL,
            env=dict(os.environ, PYTHONUNBUFFERED="1"))
        try:
            _wait_for(log, proc, "output ->")
            time.sleep(1.5)
            cfg.write_text('color = "#ff0000"\n')
            proc.send_signal(signal.SIGHUP)
            _wait_for(log, proc, "reloaded")
            assert proc.wait(timeout=30) == 0
        finally:
            proc.kill()
    cap = cv2.VideoCapture(str(out))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f[:20, :20].reshape(-1, 3).mean(axis=0))  # a background corner
    assert len(frames) == 150  # one run, never restarted
    first, last = frames[5], frames[-1]  # BGR means
    assert first[0] > 150 and first[2] < 80  # "#0000ff": blue before the reload
    assert last[2] > 150 and last[0] < 80  # "#ff0000": red after it


def test_reload_swaps_background_smoothing_refine_and_mirror_between_frames() -> None:
    """SIGHUP's apply_settings: every changed setting reaches the stages on the next frame."""
    old = live_config.load(None).merged({"color": "#20a040"})
    sink = RecordingSink()
    pipeline = Pipeline(FakeCapture(6, size=(96, 64)), live_build.build_stages(old), [sink],
                        fps=30, realtime=False)
    new = old.merged({"color": "#0000ff", "mirror": True, "smoothing": {"tau": 0.5},
                      "refine": {"alpha_threshold": 0.3, "contrast": 2.0}})
    said: list[str] = []
    seen: list[tuple] = []

    def rebuild(p) -> None:
        apply_settings(p, old, new, said.append)
        st = p.stages
        seen.append((list(st.compositor.background.color), st.smoother.tau,
                     st.refiner.params.threshold, st.refiner.params.contrast, p.mirror))

    pipeline.request_reload(rebuild)
    assert pipeline.run().frames_out == 6
    assert seen == [([255, 0, 0], 0.5, 0.3, 2.0, True)]
    assert said == []


def test_build_live_without_argparse_runs_reloads_and_reports_state(recorder, clip: Path
                                                                     ) -> None:
    recorder.clear()
    s = vbg.LiveSettings.from_mapping(dict(camera=str(clip), color="#00ff00",
                                           virtual_camera=True, on_demand=False))
    said: list[str] = []
    live = vbg.build_live(s, realtime=False, max_frames=12, vcam_backend="recording",
                          log=said.append)
    live.reload(s.merged({"color": "#0000ff", "smoothing.tau": 0.5}))
    stats = live.run()
    assert stats.frames_out == 12 and len(recorder.last.frames) == 12
    state = live.state()
    assert state["frames_out"] == 12 and state["model"] == "selfie-landscape"
    assert state["background"]["color"] == "#0000ff" and live.stages.smoother.tau == 0.5
    assert "vbg: reloaded configuration" in said
    with pytest.raises(vbg.errors.ConfigError, match=r"smoothing.tau = -1"):
        vbg.build_live({**s.to_dict(), "smoothing": {"tau": -1.0}})


def test_reload_swaps_the_model_and_the_still_check_between_frames() -> None:
    old = live_config.load(None).merged({"color": "#20a040", "provider": "cpu",
                                         "model": "selfie-landscape"})
    pipeline = Pipeline(FakeCapture(4, size=(96, 64)), live_build.build_stages(old),
                        [RecordingSink()], fps=30, realtime=False)
    new = old.merged({"model": "selfie", "zoom": False, "reuse_still": False})
    seen: list[tuple] = []

    def rebuild(p) -> None:
        apply_settings(p, old, new, print)
        seen.append((p.stages.segmenter.name, type(p.stages.segmenter).__name__, p.still,
                     p.stages.gpu))

    pipeline.request_reload(rebuild)
    assert pipeline.run().frames_out == 4
    assert seen == [("selfie", "SelfieSegmenter", None, None)]


def test_a_new_model_is_built_off_the_pipeline_thread(recorder, clip: Path, monkeypatch) -> None:
    """A model change from the page or `vbg ctl` loads the network on the caller's thread,
    so the frames go on meanwhile; the pipeline thread only swaps it in."""
    import threading

    from waiting import wait_for

    recorder.clear()
    s = vbg.LiveSettings.from_mapping(dict(camera=str(clip), color="#00ff00", provider="cpu",
                                           virtual_camera=True, on_demand=False, web=False))
    live = vbg.build_live(s, realtime=True, loop=True, vcam_backend="recording",
                          log=lambda _line: None)
    built_on: list[str] = []
    real = live_build.build_segmenter

    def build_segmenter(settings):
        built_on.append(threading.current_thread().name)
        return real(settings)

    monkeypatch.setattr(live_build, "build_segmenter", build_segmenter)
    runner = threading.Thread(target=live.run, name="vbg-test-pipeline", daemon=True)
    runner.start()
    try:
        assert wait_for(lambda: live.state()["frames_out"] >= 3)
        live.update({"model": "selfie", "zoom": False})
        assert live.stages.segmenter.name == "selfie"
        before = live.state()["frames_out"]
        assert wait_for(lambda: live.state()["frames_out"] >= before + 3)
    finally:
        live.stop()
        runner.join(10)
    assert built_on == [threading.current_thread().name]
