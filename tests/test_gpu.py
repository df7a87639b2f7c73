"""The CUDA path (vbg.gpu): kernels, IOBindings and the per-frame work, checked against the
CPU path. `make test` runs this file a second time under numba's CUDA simulator
(NUMBA_ENABLE_CUDASIM=1); on a machine with a working GPU it runs on the GPU."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vbg.gpu import cuda_status

WORKS, WHAT = cuda_status()
pytestmark = pytest.mark.skipif(not WORKS, reason=f"no CUDA here: {WHAT}")

if WORKS:
    from numba import cuda

    from vbg.gpu import kernels
    from vbg.gpu.device import DeviceBuffers
    from vbg.gpu.frames import GpuFrameWork

RNG = np.random.default_rng(3)


def _curve(a: np.ndarray, threshold: float, contrast: float) -> np.ndarray:
    return np.clip((a - threshold) * contrast + 0.5, 0, 1)


def _alpha_full(alpha: np.ndarray, size: tuple[int, int], threshold=0.5, contrast=1.0):
    """The low-res matte at frame size as the kernels draw it: bilinear, then the curve."""
    return _curve(cv2.resize(alpha, size, interpolation=cv2.INTER_LINEAR), threshold, contrast)


def _blend(fg, bg, a):
    return np.floor(bg + a[..., None] * (fg.astype(np.float32) - bg) + 0.5).astype(np.uint8)


def test_blends_match_the_reference() -> None:
    h, w = 16, 24
    fg = RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)
    bg = RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)
    alpha = RNG.random((4, 6), dtype=np.float32)
    grid, block = kernels.launch(w, h)
    out = cuda.device_array((h, w, 3), np.uint8)
    args = (cuda.to_device(fg), cuda.to_device(alpha), np.float32(0.5), np.float32(3.0))
    a = _alpha_full(alpha, (w, h), 0.5, 3.0).astype(np.float32)

    kernels.blend[grid, block](*args, cuda.to_device(bg), out)
    assert np.abs(out.copy_to_host().astype(int) - _blend(fg, bg, a)).max() <= 1

    color = np.array([10, 200, 30], np.uint8)
    kernels.blend[grid, block](*args, cuda.to_device(color.reshape(1, 1, 3)), out)
    want = _blend(fg, np.broadcast_to(color, fg.shape).astype(np.float32), a)
    assert np.abs(out.copy_to_host().astype(int) - want).max() <= 1

    bgra = cuda.device_array((h, w, 4), np.uint8)
    kernels.to_bgra[grid, block](*args, bgra)
    got = bgra.copy_to_host()
    assert np.array_equal(got[..., :3], fg)
    assert np.abs(got[..., 3].astype(int) - np.round(a * 255)).max() <= 1

    matte = cuda.device_array((h, w), np.uint8)
    kernels.matte[grid, block](args[1], args[2], args[3], matte)
    assert np.array_equal(matte.copy_to_host(), got[..., 3])


def test_network_inputs_match_the_cpu_segmenters() -> None:
    frame = RNG.integers(0, 256, (18, 30, 3), dtype=np.uint8)
    # Selfie models: bicubic to the network size, RGB, 0..1 (the CPU path rounds to uint8).
    nhwc = cuda.device_array((1, 6, 10, 3), np.float32)
    grid, block = kernels.launch(10, 6)
    kernels.to_nhwc_cubic[grid, block](cuda.to_device(frame), nhwc)
    small = cv2.resize(frame, (10, 6), interpolation=cv2.INTER_CUBIC)[..., ::-1] / 255.0
    assert np.abs(nhwc.copy_to_host()[0] - small).max() <= 0.6 / 255
    # RVM at the frame's own size: exact; smaller: bilinear.
    same = cuda.device_array((1, 3, 18, 30), np.float32)
    grid, block = kernels.launch(30, 18)
    kernels.to_nchw[grid, block](cuda.to_device(frame), same)
    assert np.allclose(same.copy_to_host()[0], frame[..., ::-1].transpose(2, 0, 1) / 255.0)
    half = cuda.device_array((1, 3, 9, 15), np.float32)
    grid, block = kernels.launch(15, 9)
    kernels.to_nchw[grid, block](cuda.to_device(frame), half)
    want = cv2.resize(frame, (15, 9), interpolation=cv2.INTER_LINEAR)[..., ::-1] / 255.0
    assert np.abs(half.copy_to_host()[0] - want.transpose(2, 0, 1)).max() <= 0.6 / 255


def test_smoothing_follows_the_cpu_rule() -> None:
    from vbg.matte.smoothing import _blend as cpu_blend

    shape = (6, 8)
    alpha, prev, grey, prev_grey = (RNG.random(shape, dtype=np.float32) for _ in range(4))
    grey[:, :4] = prev_grey[:, :4]  # half of it still: there the past counts
    want = np.empty(shape, np.float32)
    cpu_blend(alpha, prev, grey, prev_grey, 0.8, 6.0, want)
    out = cuda.device_array(shape, np.float32)
    grid, block = kernels.launch(8, 6)
    kernels.smooth[grid, block](*(cuda.to_device(x) for x in (alpha, prev, grey, prev_grey)),
                                np.float32(0.8), np.float32(6.0), out)
    got = out.copy_to_host()
    assert np.allclose(got, want, atol=1e-5)
    assert not np.allclose(got[:, :4], alpha[:, :4], atol=1e-3)  # smoothing did something


class TinyMatter:
    """A stand-in network: its 'matte' is the person on the right half (a fixed map)."""

    name, provider, temporal, layout = "tiny", "cpu", False, "nhwc"
    threshold, contrast = 0.5, 1.0

    def __init__(self, buffers: DeviceBuffers) -> None:
        self.input_size = (4, 3)
        self._input = buffers.empty((1, 3, 4, 3))
        alpha = np.zeros((3, 4), np.float32)
        alpha[:, 2:] = 1.0
        self._alpha = cuda.to_device(alpha)
        self.runs = self.resets = 0

    def input_tensor(self, width: int, height: int):
        return self._input

    def run(self):
        self.runs += 1
        return self._alpha

    def reset(self) -> None:
        self.resets += 1


def _work(**kwargs) -> GpuFrameWork:
    buffers = DeviceBuffers()
    return GpuFrameWork(TinyMatter(buffers), buffers, smoothing=False, **kwargs)


def test_frame_work_blends_over_each_kind_of_background(tmp_path) -> None:
    from vbg.backgrounds import ColorBackground, ImageBackground, TransparentBackground

    frame = RNG.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    work = _work()
    a = _alpha_full(np.repeat(np.array([[0, 0, 1, 1]], np.float32), 3, 0), (16, 12))
    out, matte = work(frame, ColorBackground((0, 0, 255)), 0.0, want_matte=True)
    want = _blend(frame, np.broadcast_to(np.array([0, 0, 255], np.float32), frame.shape), a)
    assert np.abs(out.astype(int) - want).max() <= 1
    assert np.abs(matte.astype(int) - np.round(a * 255)).max() <= 1
    assert set(work.last_ms) == {"preprocess", "inference", "smoothing", "composite"}

    picture = RNG.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "bg.png"), picture)
    out, matte = work(frame, ImageBackground(tmp_path / "bg.png"), 0.0)
    assert matte is None
    assert np.abs(out.astype(int) - _blend(frame, picture, a)).max() <= 1

    out, _ = work(frame, TransparentBackground(), 0.0)
    assert out.shape == (12, 16, 4) and np.array_equal(out[..., :3], frame)


def test_blurred_room_leaves_the_person_out() -> None:
    from vbg.backgrounds import BlurBackground

    # The room is blue, the person (right half, alpha 1) red: the room blurred behind and
    # around the person must stay blue, with no red halo.
    frame = np.zeros((24, 32, 3), np.uint8)
    frame[:, :16] = (255, 0, 0)
    frame[:, 16:] = (0, 0, 255)
    out, _ = _work(threshold=0.5, contrast=50.0)(frame, BlurBackground(15), 0.0)
    room = out[:, :14]  # background pixels next to the person
    assert room[..., 0].min() >= 250 and room[..., 2].max() <= 5
    assert np.array_equal(out[:, 18:], frame[:, 18:])  # the person itself is kept


def test_selfie_network_through_iobinding_matches_session_run() -> None:
    from vbg.gpu.matters import GpuSelfie

    buffers = DeviceBuffers()
    matter = GpuSelfie("selfie-landscape", buffers, provider="auto")
    w, h = matter.input_size
    tensor = RNG.random((1, h, w, 3), dtype=np.float32)
    matter.input_tensor(640, 360).copy_to_device(tensor)
    got = matter.run().copy_to_host()
    want = matter._session.run(None, {matter._session.get_inputs()[0].name: tensor})[0]
    assert got.shape == (h, w)
    assert np.allclose(got, want[0, :, :, 0], atol=1e-5)
    assert 0.0 < got.mean() < 1.0 and matter.runs == 1


def test_rvm_recurrent_state_on_the_device_matches_the_cpu_segmenter() -> None:
    from vbg.gpu.matters import GpuRvm
    from vbg.segment.rvm import RvmSegmenter, rvm_installed

    if not rvm_installed():
        pytest.skip("RVM is not installed (vbg models pull rvm)")
    from vbg.measure.benchclip import make_clip

    w, h = 64, 48
    frames = make_clip((w, h), count=3)  # a real portrait moving: the state matters
    cpu = RvmSegmenter(provider="cpu", threads=1, internal=640, max_side=4096)
    buffers = DeviceBuffers()
    gpu = GpuRvm(buffers, provider="auto", threads=1, internal=640)
    grid, block = kernels.launch(w, h)
    device_frame = buffers.empty((h, w, 3), np.uint8)

    def on_gpu(frame):
        device_frame.copy_to_device(frame)
        kernels.to_nchw[grid, block](device_frame, gpu.input_tensor(w, h))
        return gpu.run().copy_to_host()

    first = on_gpu(frames[0])
    for frame in frames:  # the same frames, state carried from frame to frame
        got = first if frame is frames[0] else on_gpu(frame)
        assert np.allclose(got, cpu(frame), atol=1e-4)
    gpu.reset()
    cpu.reset()
    again = on_gpu(frames[1])  # after a reset: frame 1 as a first frame
    assert np.allclose(again, cpu(frames[1]), atol=1e-4)
    assert np.abs(again - cpu(frames[2])).max() > 0.05  # the state did change the matte


def test_pipeline_runs_whole_frames_on_the_gpu() -> None:
    from test_pipeline import FakeCapture, RecordingSink

    from vbg.backgrounds import ColorBackground
    from vbg.compose.composite import Compositor
    from vbg.live.pipeline import Pipeline, Stages

    work = _work()
    stages = Stages(work.matter, None, None, Compositor(ColorBackground((0, 255, 0))), gpu=work)
    cap, sink = FakeCapture(3, size=(16, 12)), RecordingSink()
    stats = Pipeline(cap, stages, [sink], fps=30, realtime=False).run()
    assert stats.frames_out == 3 and work.matter.runs == 3
    assert np.array_equal(sink.frames[0][:, -2:], cap_frame(40, (12, 2)))  # the person kept
    assert np.all(sink.frames[0][:, :2] == (0, 255, 0))  # green where nobody is
    assert set(stats.stage_ms) >= {"preprocess", "inference", "composite", "sink"}


def cap_frame(level: int, shape: tuple[int, int]) -> np.ndarray:
    return np.full((*shape, 3), level, np.uint8)


def test_live_falls_back_to_the_cpu_when_the_gpu_blends_wrong(monkeypatch) -> None:
    from vbg.gpu import frames, matters
    from vbg.live import build as live
    from vbg.live import config

    monkeypatch.setattr(matters, "new_gpu_matter", lambda *a, **k: TinyMatter(a[1]))
    monkeypatch.setattr(frames.GpuFrameWork, "warm_up", lambda self: None)
    s = config.load(None)
    said: list[str] = []
    assert live.build_gpu(s, said.append) is not None
    monkeypatch.setattr(frames.GpuFrameWork, "self_check", lambda self: "off by 9 levels")
    assert live.build_gpu(s, said.append) is None
    assert said == ["vbg: frames stay on the CPU: off by 9 levels"]
    assert live.build_gpu(s.merged({"provider": "cpu"}), said.append) is None


def test_bench_reports_the_gpu_stages_and_runs() -> None:
    from vbg.backgrounds import ColorBackground
    from vbg.compose.composite import Compositor
    from vbg.live.pipeline import Stages
    from vbg.measure import bench, benchclip

    work = _work()
    work.device_name = "test device"
    stages = Stages(work.matter, None, None, Compositor(ColorBackground((0, 0, 0))), gpu=work)
    clip = [np.full((12, 16, 3), i * 20, np.uint8) for i in range(4)]
    result = bench.run_vbg(stages, lambda ms: benchclip.TimedSource(benchclip.RingSource(clip), ms),
                           None, warmup=1, frames=3)
    stage = result["stage_ms"]
    assert stage["preprocess"] > 0 and stage["inference"] >= 0 and stage["composite"] > 0
    assert result["network_runs_per_frame"] == 1.0
    assert stage["refine"] is None  # no CPU refiner ran


def test_blur_with_nobody_matches_the_cpu_blur() -> None:
    from vbg.backgrounds import BlurBackground
    from vbg.measure.benchclip import make_clip

    frame = make_clip((96, 64), count=1)[0]
    work = _work()
    work.matter._alpha = cuda.to_device(np.zeros((3, 4), np.float32))  # nobody in the room
    out, _ = work(frame, BlurBackground(15), 0.0)
    cpu = BlurBackground(15).full(frame, np.zeros((64, 96), np.uint8))
    # Measured: mean 1.9 levels apart (block means vs the CPU's pyramid); the frame itself is
    # 24 levels from its blur.
    assert np.abs(out.astype(int) - cpu.astype(int)).mean() < 4
