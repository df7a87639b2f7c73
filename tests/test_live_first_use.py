"""Live mode as a new user meets it: a picture given as --video, the video background's thread
at exit, and a model too slow for the camera."""

from __future__ import annotations

import shutil
import threading
import time

from vbg.backgrounds import bundled_background
from vbg.cli import main


def test_a_still_image_as_video_is_refused_in_one_line(davis_clip, tmp_path, capsys):
    picture = bundled_background("space")
    assert main(["--camera", str(davis_clip), "--video", str(picture), "--frames", "5",
                 "--output", str(tmp_path / "v.mp4")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "still image" in err and "--background" in err
    assert not (tmp_path / "v.mp4").exists()


def test_the_video_backgrounds_thread_is_joined_before_the_run_returns(davis_clip, tmp_path):
    video = tmp_path / "beach.mp4"
    shutil.copyfile(davis_clip, video)
    assert main(["--camera", str(davis_clip), "--video", str(video), "--frames", "20",
                 "--no-realtime", "--output", str(tmp_path / "v.mp4")]) == 0
    alive = [t.name for t in threading.enumerate() if t.name == "vbg-video-bg" and t.is_alive()]
    assert alive == []  # a daemon decoder left running crashed the interpreter at exit


def test_a_model_too_slow_for_the_camera_is_named_once(davis_clip, tmp_path, capsys, monkeypatch):
    from vbg.live import build

    real_build = build.build_stages

    def slow_build(*args, **kwargs):
        stages = real_build(*args, **kwargs)
        segment = stages.segmenter

        class Slow:
            """The real segmenter, 80 ms slower per frame (a CPU running RVM, in effect)."""

            name, provider = segment.name, segment.provider

            def __call__(self, *a, **k):
                time.sleep(0.08)
                return segment(*a, **k)

            def __getattr__(self, attr):
                return getattr(segment, attr)

        stages.segmenter = Slow()
        return stages

    monkeypatch.setattr(build, "build_stages", slow_build)
    assert main(["--camera", str(davis_clip), "--frames", "40", "--output",
                 str(tmp_path / "v.mp4")]) == 0
    lines = [ln for ln in capsys.readouterr().err.splitlines() if "reaches only" in ln]
    assert len(lines) == 1, lines
    assert "fps on this machine" in lines[0] and "the output runs at 30" in lines[0]
