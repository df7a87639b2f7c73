"""`vbg ctl`: finds the running live mode through its runtime file and drives it; the real
pipeline on a real clip into a recording virtual camera, and the real command line."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from vbg.cli import main
from vbg.live import control
from vbg.live.pause import paused_card

sys.path.insert(0, str(Path(__file__).parent))
import test_web_live as web
from test_web_live import GREEN, free_port, near, steady, wait_for

isolated, running = web.isolated, web.running  # the same fixtures

ROOT = Path(__file__).resolve().parent.parent


def test_runtime_file_is_private_and_names_this_process(isolated: Path) -> None:
    path = control.write_runtime_file("http://127.0.0.1:7861/")
    assert path == isolated / "XDG_RUNTIME_DIR" / "vbg" / "live.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert control.find_daemon() == {"url": "http://127.0.0.1:7861/", "pid": os.getpid()}
    assert not list(path.parent.glob(".*"))  # no temp file left
    control.remove_runtime_file()
    assert not path.exists() and control.find_daemon() is None


def test_a_stale_runtime_file_is_dropped(isolated: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = control.runtime_file()
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"url": "http://127.0.0.1:7862/", "pid": dead.pid}))
    assert control.find_daemon() is None
    assert not path.exists()
    path.write_text(json.dumps({"url": "http://127.0.0.1:7862/", "pid": os.getpid() + 1}))
    control.remove_runtime_file()  # another process's file stays
    assert path.exists()


def test_another_daemons_file_is_left_alone_and_garbage_is_no_daemon(isolated: Path) -> None:
    path = control.runtime_file()
    path.parent.mkdir(parents=True)
    path.write_text("not json")
    assert control.find_daemon() is None


def test_no_daemon_is_one_line_and_exit_1(isolated: Path, capsys) -> None:
    assert main(["ctl", "status"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no live mode is running" in err
    # A file whose daemon does not answer (a live pid, nothing listening): one line too.
    control.write_runtime_file(f"http://127.0.0.1:{free_port()}/")
    assert main(["ctl", "pause"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "does not answer" in err


def test_a_missing_background_file_is_a_usage_error(isolated: Path, capsys) -> None:
    assert main(["ctl", "background", str(isolated / "missing.jpg")]) == 2
    assert "not found" in capsys.readouterr().err


def test_ctl_colour_pause_resume_act_within_a_second_without_a_gap(running, capsys,
                                                                    davis_clip: Path) -> None:
    run = running(color="#0000ff")
    assert main(["ctl", "status"]) == 0
    out = capsys.readouterr().out
    assert "fps" in out and "camera connected" in out and "colour #0000ff" in out

    asked = time.perf_counter()
    assert main(["ctl", "color", "#00ff00"]) == 0
    assert "colour #00ff00" in capsys.readouterr().out
    assert wait_for(lambda: len(run.frames_after(asked)) >= 30)
    first = next(f for f in run.frames_after(asked) if near(f.data, GREEN))
    assert first.sent_at - asked < 1.0

    card = paused_card(854, 480)
    asked = start = time.perf_counter()
    assert main(["ctl", "pause"]) == 0
    assert "paused" in capsys.readouterr().out
    assert wait_for(lambda: sum(np.array_equal(f.data, card)
                                for f in run.frames_after(asked)) >= 24)
    first = next(f for f in run.frames_after(asked) if np.array_equal(f.data, card))
    assert first.sent_at - asked < 1.0
    assert run.live.pipeline.capture.state == "stopped"  # the camera is released
    assert main(["ctl", "status"]) == 0
    assert "camera released" in capsys.readouterr().out

    asked = time.perf_counter()
    assert main(["ctl", "resume"]) == 0
    assert wait_for(lambda: any(near(f.data, GREEN) for f in run.frames_after(asked)))
    first = next(f for f in run.frames_after(asked) if near(f.data, GREEN))
    assert first.sent_at - asked < 1.0
    assert run.live.pipeline.capture.state == "live"

    assert main(["ctl", "mirror", "on"]) == 0 and run.live.pipeline.mirror
    assert main(["ctl", "background", str(davis_clip)]) == 0  # a video: a looping background
    # vbg ctl sends the file's real path (the daemon may run elsewhere): compare real paths.
    assert Path(run.live.settings.video).resolve() == davis_clip.resolve()
    assert run.live.settings.color == ""
    assert run.live.stages.compositor.background.kind == "video"
    assert main(["ctl", "blur", "500"]) == 2
    assert "blur = 500" in capsys.readouterr().err
    assert steady(run.session, start) and len(run.recorder.sessions) == 1


def test_the_real_command_line_serves_ctl_and_cleans_up(isolated: Path,
                                                         davis_clip: Path) -> None:
    port = free_port()
    out = isolated / "out.avi"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = isolated / "log.txt"
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vbg", "--camera", str(davis_clip), "--loop",
             "--color", "#0000ff", "--output", str(out), "--web-port", str(port)],
            cwd=ROOT, stderr=err, stdout=subprocess.DEVNULL, env=env)
    try:
        assert wait_for(lambda: "control page" in log.read_text() or proc.poll() is not None,
                        60), log.read_text()
        assert f"control page http://127.0.0.1:{port}/" in log.read_text()
        runtime = isolated / "XDG_RUNTIME_DIR" / "vbg" / "live.json"
        assert json.loads(runtime.read_text())["pid"] == proc.pid

        def ctl(*words: str) -> subprocess.CompletedProcess:
            return subprocess.run([sys.executable, "-m", "vbg", "ctl", *words], cwd=ROOT,
                                  env=env, capture_output=True, text=True, timeout=30)

        status = ctl("status")
        assert status.returncode == 0 and "fps" in status.stdout, status.stderr
        assert ctl("color", "#00ff00").returncode == 0
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0, log.read_text()
    finally:
        proc.kill()
    assert not runtime.exists()  # removed on exit
    kept = (isolated / "XDG_CONFIG_HOME" / "vbg" / "config.toml").read_text()
    assert 'color = "#00ff00"' in kept
    gone = ctl("status")
    assert gone.returncode == 1 and "no live mode" in gone.stderr
    cap = cv2.VideoCapture(str(out))
    corners = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        corners.append(frame)
    assert near(corners[3], (255, 0, 0)) and near(corners[-1], GREEN)
