"""Segmenters on device buffers: onnxruntime runs through IOBindings bound once, so the
network reads its input and writes its matte (and RVM its recurrent state) in GPU memory."""

from __future__ import annotations

import numpy as np

from vbg.errors import VbgError
from vbg.gpu.device import DeviceBuffers
from vbg.models.session import new_session, provider_label
from vbg.segment.base import Capabilities


def _session_on_device(path, provider: str, threads: int | None, heavy: bool,
                       buffers: DeviceBuffers):
    session = new_session(path, provider, threads, heavy=heavy)
    label = provider_label(session)
    if label != "cuda" and not buffers.sim:
        raise VbgError("the GPU path needs onnxruntime on CUDA, which fell back to CPU here")
    return session, label


def _bind(io, buffers: DeviceBuffers, name: str, array, output: bool = False) -> None:
    """Bind a device array to a named input or output by its address (no copy)."""
    bind = io.bind_output if output else io.bind_input
    bind(name, buffers.ort_device, buffers.device_id, np.dtype(array.dtype).type,
         list(array.shape), buffers.pointer(array))


class GpuRvm(Capabilities):
    """RVM on the full frame (its own refiner upsamples to frame size) at an internal long
    side of `internal` px. Recurrent state is two device sets that swap roles each frame: two
    IOBindings, bound once per frame size, read one set and write the other."""

    name = "rvm"
    temporal = True  # recurrent: no smoothing on top
    layout = "nchw"  # input: RGB planes 0..1 (kernels.to_nchw)
    threshold, contrast = 0.5, 1.0  # its soft matte is used as it is

    def __init__(self, buffers: DeviceBuffers, provider: str = "cuda",
                 threads: int | None = None, internal: int = 640) -> None:
        from vbg.segment.rvm import rvm_path

        self.buffers = buffers
        self._session, self.provider = _session_on_device(rvm_path(), provider, threads, True,
                                                          buffers)
        self.internal = internal
        self.input_size = (0, 0)
        self.runs = 0
        self._outputs = [o.name for o in self._session.get_outputs()]  # fgr pha r1o..r4o
        self._turn = 0

    def input_tensor(self, width: int, height: int):
        """The device tensor the input kernel fills for a width x height frame."""
        if self.input_size != (width, height):
            self._configure(width, height)
        return self._src

    def _configure(self, width: int, height: int) -> None:
        b = self.buffers
        # Device buffers, made once per frame size (hot path).
        self._src = b.empty((1, 3, height, width))
        self._fgr = b.empty((1, 3, height, width))
        self._pha = b.empty((1, 1, height, width))
        self._ratio = np.array([min(1.0, self.internal / max(width, height))], np.float32)
        # The state's shapes at this size, from one run on host arrays.
        zero = np.zeros((1, 1, 1, 1), np.float32)
        states = self._session.run(
            self._outputs[2:], {"src": np.zeros((1, 3, height, width), np.float32),
                                "r1i": zero, "r2i": zero, "r3i": zero, "r4i": zero,
                                "downsample_ratio": self._ratio})
        self._states = [[b.zeros(s.shape) for s in states] for _ in range(2)]
        self._bindings = [self._binding(k) for k in (0, 1)]
        self.input_size = (width, height)
        self._turn = 0

    def _binding(self, k: int):
        b, io = self.buffers, self._session.io_binding()
        _bind(io, b, "src", self._src)
        for i, state in enumerate(self._states[k]):
            _bind(io, b, f"r{i + 1}i", state)
        io.bind_cpu_input("downsample_ratio", self._ratio)
        _bind(io, b, self._outputs[0], self._fgr, output=True)
        _bind(io, b, self._outputs[1], self._pha, output=True)
        for name, state in zip(self._outputs[2:], self._states[1 - k], strict=True):
            _bind(io, b, name, state, output=True)
        return io

    def run(self):
        """The matte of the input tensor, (h, w) float32 on the device."""
        self._session.run_with_iobinding(self._bindings[self._turn])
        self._turn = 1 - self._turn
        self.runs += 1
        w, h = self.input_size
        return self._pha.reshape(h, w)

    def reset(self) -> None:
        """Zero the recurrent state (scene cut, resolution change)."""
        from vbg.gpu import kernels

        if self.input_size == (0, 0):
            return
        for states in self._states:
            for state in states:
                flat = state.reshape(state.size)
                kernels.fill[(state.size + 255) // 256, 256, self.buffers.stream](
                    flat, np.float32(0.0))
        self.buffers.sync()
        self._turn = 0


class GpuSelfie(Capabilities):
    """A MediaPipe selfie model (stateless, low-res input) on device buffers."""

    temporal = False
    layout = "nhwc"  # input: RGB 0..1 (kernels.to_nhwc_cubic)

    def __init__(self, name: str, buffers: DeviceBuffers, provider: str = "cuda",
                 threads: int | None = None) -> None:
        from vbg.models import verified_path

        self.name = name
        self.buffers = buffers
        self._session, self.provider = _session_on_device(verified_path(name), provider,
                                                          threads, False, buffers)
        _, h, w, _ = self._session.get_inputs()[0].shape
        self.input_size = (int(w), int(h))
        self.runs = 0
        # Device buffers, made once (the network's size is fixed).
        self._input = buffers.empty((1, int(h), int(w), 3))
        self._output = buffers.empty((1, int(h), int(w), 1))
        self._io = self._session.io_binding()
        _bind(self._io, buffers, self._session.get_inputs()[0].name, self._input)
        _bind(self._io, buffers, self._session.get_outputs()[0].name, self._output,
              output=True)

    def input_tensor(self, width: int, height: int):
        return self._input

    def run(self):
        self._session.run_with_iobinding(self._io)
        self.runs += 1
        w, h = self.input_size
        return self._output.reshape(h, w)

    def reset(self) -> None:
        """Stateless network: nothing to forget."""


def new_gpu_matter(name: str, buffers: DeviceBuffers, provider: str = "cuda",
                   threads: int | None = None, rvm_size: int = 640):
    """The GPU version of segmenter `name`, or a VbgError when it has none."""
    if name == "rvm":
        return GpuRvm(buffers, provider, threads, rvm_size)
    if name in ("selfie", "selfie-landscape"):
        return GpuSelfie(name, buffers, provider, threads)
    raise VbgError(f"model {name!r} has no GPU path")
