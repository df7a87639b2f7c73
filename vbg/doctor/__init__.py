"""`vbg doctor`: checks cameras, v4l2loopback, pyvirtualcam, onnxruntime, models and numba."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections.abc import Callable
from dataclasses import asdict

from vbg import __version__
from vbg.doctor.check import Check
from vbg.doctor.devices import check_cameras, check_loopback, check_virtual_camera_open
from vbg.doctor.ondemand import check_on_demand
from vbg.doctor.runtime import check_models, check_numba, check_onnxruntime, check_rvm

__all__ = ["Check", "add_arguments", "collect", "live_ok", "run"]


def _device_checks() -> list[Callable[[], list[Check]]]:
    if sys.platform.startswith("linux"):
        return [check_cameras, check_loopback, check_virtual_camera_open, check_on_demand]
    return [check_cameras, check_virtual_camera_open, check_on_demand]


def _safely(check: Callable[[], list[Check]]) -> list[Check]:
    try:
        return check()
    except Exception as e:  # a broken check must not hide the others
        name = check.__name__.removeprefix("check_").replace("_", " ")
        return [Check(name, "warn", f"the check itself failed: {type(e).__name__}: {e}",
                      "report this with the output of `vbg doctor --json`")]


def collect() -> list[Check]:
    """Run every check; never raises."""
    checks = [*_device_checks(), check_onnxruntime, check_models, check_rvm, check_numba]
    return [c for check in checks for c in _safely(check)]


def live_ok(checks: list[Check]) -> bool:
    """Live mode can run: no check failed (warnings and info do not count)."""
    return not any(c.status == "fail" for c in checks)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable results")


def run(args: argparse.Namespace) -> int:
    checks = collect()
    ok = live_ok(checks)
    if getattr(args, "json", False):
        print(json.dumps({"vbg": __version__, "platform": platform.platform(), "live_ok": ok,
                          "checks": [asdict(c) for c in checks]}, indent=2))
    else:
        print(f"vbg {__version__} doctor on {platform.platform()}, "
              f"Python {platform.python_version()}")
        for c in checks:
            print(c.render())
        failed = sum(c.status == "fail" for c in checks)
        print("live mode can run" if ok else
              f"live mode cannot run: {failed} problem(s) marked [!!] above need the fix shown")
    return 0 if ok else 1
