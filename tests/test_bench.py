"""`vbg bench`: the report's schema and the sanity of its figures (no timed assertions)."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
from collections import deque

import numpy as np
import pytest

from vbg.cli import main
from vbg.measure import bench, benchclip
from vbg.measure.baseline import TypicalTool
from vbg.segment.base import Capabilities

SMALL = ("--size", "320x240", "--frames", "40", "--warmup", "5")


def run_bench(*flags: str) -> tuple[int, str, str]:
    """`vbg bench FLAGS` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["bench", *flags])
    return code, out.getvalue(), err.getvalue()


def bench_json(*flags: str) -> dict:
    code, out, err = run_bench(*flags, "--json")
    assert code == 0, err
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def with_baseline() -> dict:
    return bench_json(*SMALL, "--baseline")


def check_common(r: dict) -> None:
    assert set(r["stage_ms"]) == set(bench.STAGES)
    assert r["cpu_ms_per_frame"] > 0
    assert r["wall_fps"] > 0
    assert 0 <= r["latency_ms_p50"] <= r["latency_ms_p95"]
    assert r["provider"] in {"cpu", "cuda"}
    assert r["rss_mb"] > 0
    assert isinstance(r["rss_growth_mb"], float)
    assert r["machine"]["cpus"] >= 1 and r["machine"]["cpu_model"]


def test_json_has_every_key_with_sane_values(with_baseline: dict) -> None:
    r = with_baseline
    assert set(r) == set(bench.KEYS) | set(bench.BASELINE_KEYS)
    check_common(r)
    assert (r["size"], r["frames"], r["warmup"], r["mode"]) == ("320x240", 40, 5, "lossless")
    assert r["model"] == "selfie-landscape"
    stages = r["stage_ms"]
    for name in ("preprocess", "inference", "smoothing", "refine", "composite", "sink"):
        assert stages[name] > 0, name
    assert 0 <= stages["decode"] < stages["inference"]  # frames in memory: nothing to decode
    assert stages["composite_background"] <= stages["composite"]


def test_baseline_adds_its_figures_and_the_ratio(with_baseline: dict) -> None:
    r = with_baseline
    assert r["baseline_cpu_ms_per_frame"] > 0 and r["baseline_wall_fps"] > 0
    assert 0 <= r["baseline_latency_ms_p50"] <= r["baseline_latency_ms_p95"]
    assert r["baseline_cpu_ratio"] == pytest.approx(
        r["baseline_cpu_ms_per_frame"] / r["cpu_ms_per_frame"])
    assert set(r["baseline_stage_ms"]) == {"decode", "inference", "postprocess", "background",
                                           "composite", "sink"}


def test_paced_mode_without_baseline() -> None:
    r = bench_json("--size", "160x120", "--frames", "15", "--warmup", "3", "--fps", "60")
    assert set(r) == set(bench.KEYS)
    check_common(r)
    assert r["mode"] == "paced" and r["fps"] == 60


def test_table_says_the_ratio() -> None:
    code, out, _ = run_bench("--size", "160x120", "--frames", "5", "--warmup", "2", "--baseline")
    assert code == 0
    assert "typical tool uses" in out and "machine:" in out
    assert not out.strip().splitlines()[-1].startswith("{")  # JSON only with --json


def test_source_file_reports_decode(shared_set) -> None:
    clip = shared_set("davis_parkour") / "clip.mp4"
    if not clip.is_file():
        pytest.skip(f"{clip} not found")
    r = bench_json("--source", str(clip), "--frames", "20", "--warmup", "3")
    check_common(r)
    assert r["stage_ms"]["decode"] > 0
    assert r["size"] == "854x480" and r["source"] == str(clip)


class _SleepySession:
    """A network run that takes at least 2 ms."""

    def run(self, *_args):
        time.sleep(0.002)


class _TwiceSegmenter(Capabilities):
    """Runs its network twice a frame, as a zoomed frame does (whole frame, then the crop)."""

    name, provider = "twice", "cpu"

    def __init__(self) -> None:
        self.session = _SleepySession()

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        self.session.run(None, {})
        self.session.run(None, {})
        return np.full((18, 32), 0.9, np.float32)

    def reset(self) -> None:
        pass


def test_inference_sums_every_network_run_of_a_frame() -> None:
    from vbg.live import build as live

    args = argparse.ArgumentParser()
    bench.add_arguments(args)
    stages = live.build_stages(bench.live_settings(args.parse_args([])))
    stages.segmenter = _TwiceSegmenter()
    clip = benchclip.make_clip((96, 64), count=4)
    r = bench.run_vbg(stages, lambda decode_ms: benchclip.TimedSource(benchclip.RingSource(clip),
                                                                  decode_ms), None, 3, 12)
    assert r["network_runs_per_frame"] == 2
    # Two runs of >= 2 ms each per frame; pairing frames with single runs gave ~2 ms here.
    assert r["stage_ms"]["inference"] >= 4.0
    assert 0 <= r["stage_ms"]["preprocess"] < r["stage_ms"]["inference"]


@pytest.mark.parametrize("flags, says", [
    (("--frames", "0"), "--frames"),
    (("--source", "/nonexistent/clip.mp4"), "/nonexistent/clip.mp4"),
    (("--size", "12x12"), "12x12"),
    (("--baseline", "--warmup", "0"), "--warmup"),
])
def test_user_errors_exit_2_with_a_message(flags, says) -> None:
    code, _, err = run_bench(*flags)
    assert code == 2
    assert err.startswith("vbg: error:") and says in err


def test_clip_frames_are_distinct_bgr_frames() -> None:
    frames = benchclip.make_clip((96, 64), count=6)
    assert len(frames) == 6
    for i, frame in enumerate(frames):
        assert frame.shape == (64, 96, 3) and frame.dtype == np.uint8
        assert frame.flags.c_contiguous
        following = frames[(i + 1) % len(frames)]
        assert np.abs(frame.astype(int) - following).mean() > 1.0  # the person moved


def test_ring_and_timed_source() -> None:
    frames = [np.full((4, 6, 3), v, np.uint8) for v in (1, 2, 3)]
    decode_ms: deque = deque()
    source = benchclip.TimedSource(benchclip.RingSource(frames), decode_ms, size=(12, 8), fps=25.0)
    got = [int(source.read()[0, 0, 0]) for _ in range(4)]
    assert got == [1, 2, 3, 1]
    assert source.read().shape == (8, 12, 3)
    assert (source.info.width, source.info.height, source.info.fps) == (12, 8, 25.0)
    assert len(decode_ms) == 5


def test_typical_tool_shows_background_where_nobody_is() -> None:
    background = np.zeros((120, 160, 3), np.uint8)
    background[:] = (10, 200, 30)
    tool = TypicalTool(background)
    empty = np.full((120, 160, 3), 128, np.uint8)
    for _ in range(3):
        out = tool(empty)
    assert out.shape == empty.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - background).max() <= 1
    assert all(len(v) == 3 for v in tool.stage_ms.values())


def test_typical_tool_keeps_the_person() -> None:
    frame = benchclip.make_clip((160, 96), count=1)[0]
    tool = TypicalTool(np.zeros_like(frame))
    out = tool(frame)
    face = (slice(22, 34), slice(76, 88))  # the portrait's face, upper middle
    assert np.abs(out[face].astype(int) - frame[face]).mean() < 10
    assert out[:, :10].max() == 0  # the left edge is scene only: replaced by black
