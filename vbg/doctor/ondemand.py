"""Doctor check: can vbg see who reads the virtual camera (on-demand idling)?"""

from __future__ import annotations

import sys
from pathlib import Path

from vbg.doctor.check import Check
from vbg.sinks import vcam
from vbg.sinks.readers import ReaderWatcher, WatchError, watch_support

NAME = "on-demand"
OFF_HINT = "set `on_demand = false` (or --no-on-demand) to silence this; vbg then always runs"


def check_on_demand(sys_root: Path = Path("/sys"), dev_root: Path = Path("/dev"),
                    platform: str | None = None) -> list[Check]:
    """inotify open/close events work here, and the loopback device can be watched (without
    opening it: a running vbg would count that as a reader)."""
    if not (platform or sys.platform).startswith("linux"):
        return [Check(NAME, "info", "not on this platform (the OBS virtual camera gives no "
                      "reader count): vbg keeps the camera on while it runs")]
    works, why = watch_support()
    if not works:
        return [Check(NAME, "warn", f"cannot count readers of the virtual camera ({why}); "
                      "the camera stays on while vbg runs", OFF_HINT)]
    device = vcam.find_loopback_device(sys_root=sys_root, dev_root=dev_root)
    device = device or next((p for p, _ in vcam.loopback_devices(sys_root, dev_root)), None)
    if device is None:
        return [Check(NAME, "info", f"{why} work; no loopback device to watch yet (see "
                      "v4l2loopback above)")]
    watcher = ReaderWatcher(device)
    try:
        watcher.start()
    except WatchError as e:
        return [Check(NAME, "warn", f"{e}: the camera stays on while vbg runs", OFF_HINT)]
    try:
        readers = watcher.readers
    finally:
        watcher.close()
    now = f"{readers} reader(s) now" if readers >= 0 else "reader count unknown"
    return [Check(NAME, "ok", f"works: with no application reading {device} vbg releases the "
                  f"camera and idles ({now})")]
