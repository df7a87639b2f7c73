"""Bounded worker pool for heavy requests: a few threads, a bounded queue, Busy when full."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import math
import os
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

# Requests waiting for a worker beyond those running; more get 503 with Retry-After.
DEFAULT_QUEUE = 16
_RECENT = 32  # durations kept to estimate Retry-After


M_ARENA_MAX = -8  # glibc mallopt parameter


def default_workers() -> int:
    """Worker threads: one per core, 1 to 4 (docs/decisions.md, "Web server bounds")."""
    return max(1, min(4, os.cpu_count() or 1))


def limit_malloc_arenas(arenas: int) -> bool:
    """Cap glibc's malloc arenas (each worker thread would get its own, and RSS then creeps up
    with every photo size seen); False where this is not glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_ARENA_MAX, max(1, arenas)))
    except (OSError, AttributeError):
        return False


class Busy(Exception):
    """The pool and its queue are full; retry after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"busy: retry after {retry_after} s")
        self.retry_after = retry_after


class WorkPool:
    """Runs blocking jobs off the event loop on `workers` threads; at most `queue` wait.

    A job counts until its thread finishes it; one whose client gave up before it started is
    dropped (cancelled), so abandoned requests cannot pile up behind the bound.
    """

    def __init__(self, workers: int | None = None, queue: int = DEFAULT_QUEUE) -> None:
        self.workers = workers or default_workers()
        self.queue = queue
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="vbg-web")
        self._lock = threading.Lock()
        self._pending = 0
        self._durations: deque[float] = deque(maxlen=_RECENT)
        self.rejected = 0
        self.done = 0

    @property
    def pending(self) -> int:
        """Jobs running or waiting."""
        return self._pending

    def retry_after(self) -> int:
        """Seconds after which a worker is likely free (median job time x queue depth)."""
        typical = statistics.median(self._durations) if self._durations else 1.0
        return max(1, math.ceil(typical * (self._pending - self.workers + 1) / self.workers))

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """fn(*args) on a worker thread; Busy at once when workers + queue are all taken."""
        with self._lock:
            if self._pending >= self.workers + self.queue:
                self.rejected += 1
                raise Busy(self.retry_after())
            self._pending += 1

        def job() -> T:
            started = time.monotonic()
            try:
                return fn(*args)
            finally:
                self._durations.append(time.monotonic() - started)

        try:
            future = self._executor.submit(job)
        except RuntimeError:  # shut down
            self._finished(None)
            raise Busy(1) from None
        future.add_done_callback(self._finished)  # also when cancelled before it ran
        return await asyncio.wrap_future(future)

    def _finished(self, _future: object) -> None:
        with self._lock:
            self._pending -= 1
            self.done += 1

    def shutdown(self) -> None:
        """Stop taking jobs; running ones finish."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    def stats(self) -> dict[str, Any]:
        """Counters for /api/about."""
        return {"workers": self.workers, "queue": self.queue, "pending": self._pending,
                "done": self.done, "rejected": self.rejected}
