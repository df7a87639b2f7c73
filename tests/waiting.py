"""wait_for: poll a condition until it holds or a timeout passes (tests of threads)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(condition: Callable[[], Any], timeout: float = 15.0, step: float = 0.01) -> bool:
    """True as soon as `condition()` is truthy; False after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True
