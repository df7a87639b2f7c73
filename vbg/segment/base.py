"""The segmenter protocol and the registry of segmenters by name."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

from vbg.errors import ModelError


@runtime_checkable
class Segmenter(Protocol):
    """Frame in (BGR uint8 HxWx3), low-res float32 alpha out (1 = person)."""

    name: str
    input_size: tuple[int, int]  # (width, height) the network sees
    provider: str  # what really runs: "cuda" or "cpu"
    # Capabilities (Capabilities gives each a False default):
    temporal: bool  # keeps state over frames: no extra smoothing on top
    full_resolution: bool  # mattes at the working size itself (its own refiner)
    takes_thumb: bool  # __call__(frame, thumb=...) accepts a ready thumbnail
    mirrors: bool  # __call__(frame, mirror=True) segments the mirrored frame
    session: Any  # its onnxruntime session (run() is timed by `vbg bench`), or None

    def networks(self) -> tuple[Segmenter, ...]:
        """The segmenters that run a network for this one: itself, or a wrapper's parts."""

    def __call__(self, frame: np.ndarray) -> np.ndarray: ...

    def reset(self) -> None:
        """Forget recurrent/temporal state (scene cut, resolution change)."""


class Capabilities:
    """Base class of the segmenters: every capability off unless the class turns it on."""

    temporal = False
    full_resolution = False
    takes_thumb = False
    mirrors = False
    session: Any = None  # the onnxruntime session it runs; a wrapper with run() may replace it

    def networks(self) -> tuple[Any, ...]:
        """The segmenters that run a network for this one (itself; a wrapper's parts)."""
        return (self,)


Factory = Callable[..., Segmenter]
_REGISTRY: dict[str, Factory] = {}


def register(name: str) -> Callable[[Factory], Factory]:
    def deco(factory: Factory) -> Factory:
        _REGISTRY[name] = factory
        return factory

    return deco


def available() -> list[str]:
    return sorted(_REGISTRY)


def new_segmenter(name: str = "selfie-landscape", provider: str = "auto",
                  threads: int | None = None, **options: Any) -> Segmenter:
    """Build segmenter `name`; `options` are its constructor's own (e.g. RVM's `internal` long
    side); callers only ever see the Segmenter protocol. ModelError for an unknown name or
    option."""
    if name not in _REGISTRY:
        raise ModelError(f"unknown model {name!r}; choose one of {', '.join(available())}")
    factory = _REGISTRY[name]
    try:
        inspect.signature(factory).bind(provider=provider, threads=threads, **options)
    except TypeError:
        known = [p for p in inspect.signature(factory).parameters if p not in ("provider",
                                                                               "threads")]
        raise ModelError(f"model {name!r} has no option {', '.join(sorted(options))}; its "
                         f"options: {', '.join(known) or 'none'}") from None
    return factory(provider=provider, threads=threads, **options)
