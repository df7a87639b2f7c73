"""Live mode's web control: the studio app driving the running pipeline on 127.0.0.1, and the
runtime file that tells `vbg ctl` where it is."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from vbg.errors import VbgError
from vbg.live.control import LiveControl, remove_runtime_file, write_runtime_file
from vbg.web.app import ServerHandle, create_app, serve_in_thread

HOST = "127.0.0.1"  # live control never listens beyond this machine


class LiveWeb:
    """The running control server; close() stops it and removes the runtime file."""

    def __init__(self, handle: ServerHandle, control: LiveControl,
                 runtime_path: Path | None) -> None:
        self.handle, self.control, self.runtime_path = handle, control, runtime_path

    @property
    def url(self) -> str:
        return self.handle.url

    def close(self, wait: bool = False) -> None:
        """Refuse new requests, remove the runtime file and end the server (its thread is a
        daemon: live mode's exit does not wait for it unless `wait`)."""
        self.control.running = False  # requests from now on get 409
        if self.runtime_path is not None:
            remove_runtime_file(self.runtime_path)
        self.handle.server.should_exit = True
        if wait:
            self.handle.thread.join(2.0)


def start_live_web(live: Any, port: int, log: Callable[[str], None],
                   remember_in: Path | None = None, runtime_path: Path | None = None
                   ) -> LiveWeb | None:
    """Serve the page and API for `live` on 127.0.0.1:port; None (and one line saying why,
    live mode going on without it) when the port is taken or the server cannot start."""
    control = LiveControl(live, remember_in=remember_in)
    try:  # one photo worker: the studio tabs take at most one core from the live camera
        handle = serve_in_thread(create_app(live=control, host=HOST, port=port,
                                             workers=1), HOST, port)
    except VbgError as e:
        reason = str(e).replace("--port", "--web-port")
        log(f"vbg: web control off: {reason}; live mode runs on without it (no page, no "
            "`vbg ctl`)")
        return None
    control.url = handle.url
    path = None
    try:
        path = write_runtime_file(handle.url, runtime_path)
    except OSError as e:
        log(f"vbg: `vbg ctl` will not find this live mode: cannot write its runtime file "
            f"({e.strerror or e})")
    log(f"vbg: control page {handle.url} (and `vbg ctl status`)")
    return LiveWeb(handle, control, path)
