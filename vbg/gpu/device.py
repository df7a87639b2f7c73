"""numba.cuda when a GPU really works here (or numba's CUDA simulator, which the tests use),
and device buffers that numba kernels and onnxruntime's IOBinding share."""

from __future__ import annotations

import os
import sys

import numpy as np

INSTALL_HINT = ("install the CUDA extras: pip install 'vbg[cuda]' (numba-cuda and the CUDA "
                "libraries onnxruntime-gpu loads), with a recent NVIDIA driver")


def simulated() -> bool:
    """True under NUMBA_ENABLE_CUDASIM=1: kernels run on the CPU, buffers are host memory."""
    from numba import config

    return bool(config.ENABLE_CUDASIM)


def no_driver() -> bool:
    """True when no NVIDIA driver is loaded here (Linux), so CUDA surely cannot work."""
    return (sys.platform.startswith("linux") and not os.path.exists("/proc/driver/nvidia/version")
            and not simulated())


def cuda_status() -> tuple[bool, str]:
    """(works, what): numba.cuda can launch a kernel here, or why not."""
    if no_driver():
        return False, f"no NVIDIA driver is loaded (/proc/driver/nvidia missing); {INSTALL_HINT}"
    try:
        from numba import cuda
    except Exception as e:  # numba built without its CUDA target, or numba-cuda broken
        return False, f"numba.cuda cannot be imported ({e}); {INSTALL_HINT}"
    try:
        if not cuda.is_available():
            return False, f"numba.cuda finds no usable GPU; {INSTALL_HINT}"
        from vbg.gpu import kernels

        probe = cuda.to_device(np.zeros(4, np.float32))
        kernels.fill[1, 4](probe, np.float32(2.0))
        if not np.all(probe.copy_to_host() == 2.0):
            return False, "a numba.cuda test kernel ran but wrote the wrong values"
    except Exception as e:  # driver, toolkit (NVVM/libdevice) or launch failure
        return False, f"numba.cuda cannot run a kernel here ({e}); {INSTALL_HINT}"
    if simulated():
        return True, "numba CUDA simulator (NUMBA_ENABLE_CUDASIM=1)"
    name = cuda.get_current_device().name  # bytes in numba's own CUDA target, str in numba-cuda
    return True, name.decode(errors="replace") if isinstance(name, bytes) else str(name)


class DeviceBuffers:
    """Allocates device arrays and tells onnxruntime where they are: 'cuda' memory on a GPU,
    host memory ('cpu') in the simulator, so the same IOBinding code runs in the tests."""

    def __init__(self) -> None:
        from numba import cuda

        self.cuda = cuda
        self.sim = simulated()
        self.ort_device = "cpu" if self.sim else "cuda"
        self.device_id = 0 if self.sim else cuda.get_current_device().id
        self.stream = cuda.stream()

    def empty(self, shape: tuple[int, ...], dtype=np.float32):
        return self.cuda.device_array(shape, dtype, stream=self.stream)

    def zeros(self, shape: tuple[int, ...], dtype=np.float32):
        return self.cuda.to_device(np.zeros(shape, dtype), stream=self.stream)

    def pinned(self, shape: tuple[int, ...], dtype=np.uint8) -> np.ndarray:
        """A page-locked host array (fast asynchronous copies); plain memory when simulated."""
        return np.zeros(shape, dtype) if self.sim else self.cuda.pinned_array(shape, dtype)

    def pointer(self, array) -> int:
        """The address onnxruntime binds: device memory, or the simulator's host array."""
        if self.sim:
            return int(array._ary.ctypes.data)
        return int(array.__cuda_array_interface__["data"][0])

    def sync(self) -> None:
        self.stream.synchronize()
