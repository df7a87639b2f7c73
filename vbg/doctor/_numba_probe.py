"""A tiny parallel numba kernel: proves the threading layer and the on-disk cache work."""

import numba as nb
import numpy as np


@nb.njit(cache=True, parallel=True)
def parallel_sum(values: np.ndarray) -> int:
    total = 0
    for i in nb.prange(values.shape[0]):
        total += values[i]
    return total
