"""Every numba kernel run once in each type it is used with, so none compiles mid-run.

`python -m vbg.warmup` builds the cache (`make setup` runs it); `vbg` does it on first use.
"""

from __future__ import annotations

import numpy as np

from vbg import backgrounds, jit
from vbg.compose import composite
from vbg.doctor import _numba_probe
from vbg.matte import onepass, refine
from vbg.matte.smoothing import TemporalSmoother
from vbg.segment import thumbs, zoom

_FRAME = (36, 64)  # a small frame (h, w): the types matter, not the size


def _frame() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (*_FRAME, 3), dtype=np.uint8)


class _ReadOnlyImage:
    """An image background as ImageBackground hands it out: frame-sized and read-only."""

    kind = "image"

    def __init__(self, image: np.ndarray) -> None:
        image.flags.writeable = False
        self._image = image

    def prepare(self, frame: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """The image (already the frame's size)."""
        return self._image

    def close(self) -> None:
        """Nothing to release."""


def _fields(frame: np.ndarray) -> onepass.MatteFields:
    low = np.zeros((9, 16), np.float32)
    low[3:, 5:11] = 1.0  # a person: edge cells as well as sure ones
    return refine.MatteRefiner(refine.RefineParams(guided=True, feather=1)).fields(frame, low)


def _warm_compositor(frame: np.ndarray) -> None:
    """Both blends (one-pass and with a full-res matte) over every kind of background, the
    image one read-only, the blur one with its room memory (live) and without (stills)."""
    fields = _fields(frame)
    alpha = np.full(_FRAME, 128, np.uint8)
    kinds = [_ReadOnlyImage(frame.copy()), backgrounds.ColorBackground((10, 20, 30)),
             backgrounds.TransparentBackground(), backgrounds.BlurBackground(15),
             backgrounds.BlurBackground(15, refresh=8)]
    matte = np.empty(_FRAME, np.uint8)
    i420 = np.empty((_FRAME[0] * 3 // 2, _FRAME[1]), np.uint8)
    for background in kinds:
        compositor = composite.Compositor(background)
        for _ in range(2):  # the second frame: the blur's room check and the still-scene paths
            compositor.render(frame, fields, matte=matte)
            compositor.render(frame, fields, same_scene=True)
            compositor.render(frame, fields, matte=matte, i420=i420, bgr=False)
            compositor.render(frame, fields, same_scene=True, i420=i420, bgr=False)
            compositor(frame, alpha)
            compositor(frame, alpha, same_scene=True)
        background.close()


def warm_all() -> None:
    """Compile (or load from the cache) every CPU kernel, in every type vbg calls it with."""
    frame = _frame()
    composite.warm_up()
    refine.warm_up()
    thumbs.warm_up()
    TemporalSmoother().warm_up()
    zoom.person_box(np.zeros((9, 16), np.float32))
    _numba_probe.parallel_sum(np.arange(4, dtype=np.int64))  # `vbg doctor`'s threading check
    _warm_compositor(frame)


def main() -> int:
    """Build the kernel cache now (one line while compiling; nothing to do when it is built)."""
    seconds = jit.ensure_kernels(print)
    if seconds is None:
        print(f"vbg: image kernels already compiled (cache {jit.cache_dir()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
