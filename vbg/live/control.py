"""Live control: the runtime file that tells `vbg ctl` where the daemon listens, and
LiveControl, what the web routes and `vbg ctl` act on (changes remembered for the next start)."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vbg.live import config, userconfig

RUNTIME_NAME = "live.json"


def runtime_dir() -> Path:
    """$XDG_RUNTIME_DIR/vbg (a per-user tmpfs), else ~/.cache/vbg."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and os.path.isdir(base):
        return Path(base) / "vbg"
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "vbg"


def runtime_file() -> Path:
    return runtime_dir() / RUNTIME_NAME


def pid_alive(pid: int) -> bool:
    """True when a process with this id exists (ours or another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OverflowError, ValueError):
        return False
    return True


def write_runtime_file(url: str, path: Path | None = None) -> Path:
    """Say where this process's live control listens: JSON {url, pid}, mode 0600, written
    atomically (a stale file of a dead daemon is simply replaced)."""
    path = runtime_file() if path is None else path
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({"url": url, "pid": os.getpid()}, f)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def remove_runtime_file(path: Path | None = None) -> None:
    """Remove the runtime file if this process wrote it (another daemon's stays)."""
    path = runtime_file() if path is None else path
    daemon = read_runtime_file(path)
    if daemon is not None and daemon.get("pid") == os.getpid():
        with contextlib.suppress(OSError):
            path.unlink()


def read_runtime_file(path: Path | None = None) -> dict[str, Any] | None:
    """{url, pid} of the file, or None when it is missing, unreadable, not ours or not JSON."""
    path = runtime_file() if path is None else path
    try:
        if path.stat().st_uid != os.getuid():
            return None  # never trust another user's file
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("url"), str):
        return None
    return data


def find_daemon(path: Path | None = None) -> dict[str, Any] | None:
    """The running daemon's {url, pid}; a file left by a dead one is removed and gives None."""
    path = runtime_file() if path is None else path
    daemon = read_runtime_file(path)
    if daemon is None:
        return None
    pid = daemon.get("pid")
    if not isinstance(pid, int) or not pid_alive(pid):
        with contextlib.suppress(OSError):
            path.unlink()  # stale: its daemon died without cleaning up
        return None
    return daemon


def background_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Choosing one background (image, video, blur, colour) clears the others, as the flags do."""
    return config.clear_other_backgrounds(changes, unset=(None, "", 0, False))


class LiveControl:
    """A running LivePipeline as the page and `vbg ctl` see it; `remember_in` (the user config)
    keeps the choices made here for the next start."""

    def __init__(self, live: Any, remember_in: Path | None = None,
                 url: str | None = None) -> None:
        self.live = live
        self.remember_in = remember_in
        self.url = url
        self.running = True  # False once the run ended (the routes answer 409 then)
        self._lock = threading.Lock()

    def state(self) -> dict[str, Any]:
        state = self.live.state()
        if self.url:
            state["web"] = self.url
        return state

    def update(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Apply partial config-file keys to the running pipeline; ConfigError (or another
        VbgError) with one line when they are bad. Returns the new state."""
        with self._lock:  # one change at a time: each merges over the last
            before = self.live.settings
            after = self.live.update(changes)  # clears the other backgrounds itself
            if self.remember_in is not None:
                changed = {name: value for name, value, _ in after.items()
                           if before.get(name) != value}
                userconfig.remember(changed, self.remember_in, self.live.log)
        return self.state()

    def pause(self) -> dict[str, Any]:
        self.live.pause()
        return self.state()

    def resume(self) -> dict[str, Any]:
        self.live.resume()
        return self.state()
