"""The CUDA path: one upload per frame, inference through IOBinding on device buffers,
smoothing, blur and blend as numba.cuda kernels, one download (`GpuFrameWork`)."""

from vbg.gpu.device import cuda_status, no_driver, simulated

__all__ = ["cuda_status", "no_driver", "simulated"]
