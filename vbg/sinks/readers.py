"""Who reads the virtual camera: a count of the other processes holding a device open, from
inotify open/close events (libc through ctypes), started from a /proc scan."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import select
import struct
import threading
from pathlib import Path

IN_OPEN = 0x00000020
IN_CLOSE_WRITE = 0x00000008
IN_CLOSE_NOWRITE = 0x00000010
IN_DELETE_SELF = 0x00000400
IN_IGNORED = 0x00008000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
_EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (name follows)
_MASK = IN_OPEN | IN_CLOSE_WRITE | IN_CLOSE_NOWRITE | IN_DELETE_SELF


class WatchError(OSError):
    """The device cannot be watched here (no inotify, no such path, no permission)."""


def _libc() -> ctypes.CDLL:
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name, use_errno=True)
    if not hasattr(libc, "inotify_init1"):
        raise WatchError("this C library has no inotify (Linux only)")
    libc.inotify_init1.argtypes = [ctypes.c_int]
    libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    return libc


def holders(path: str | os.PathLike, exclude_pid: int | None = None,
            only_pid: int | None = None, proc: Path = Path("/proc")) -> int:
    """How many open files point at `path`, in the processes whose /proc/PID/fd this user may
    read (every fd counts; a forked child holding its parent's counts again)."""
    target = os.path.realpath(path)
    count = 0
    try:
        pids = ([str(only_pid)] if only_pid is not None else
                [p for p in os.listdir(proc) if p.isdigit() and int(p) != exclude_pid])
    except OSError:
        return 0
    for pid in pids:
        fd_dir = proc / pid / "fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:  # gone, or another user's
            continue
        for fd in fds:
            with contextlib.suppress(OSError):
                if os.readlink(fd_dir / fd) == target:
                    count += 1
    return count


class ReaderWatcher:
    """Counts the readers of `path`: open files of other processes found in /proc, plus this
    process's beyond those it held at start() (start it after the sink has opened the device:
    our own open does not count). inotify IN_OPEN / IN_CLOSE_* events say when to count again
    (they are not summed: the kernel merges identical unread events, so two closes in a row
    arrive as one); an open is a reader at once, even before its file shows in /proc. A thread
    blocks in poll(): no CPU while nothing happens. If the path goes away the count is unknown
    and `readers` says -1."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = str(path)
        self._own_at_start = 0
        self._count = 0
        self._lost = False
        self._changed = threading.Condition()
        self._fd = -1
        self._wake_r = self._wake_w = -1
        self._thread: threading.Thread | None = None
        self.opens = self.closes = 0  # event batches seen, for tests and stats

    def start(self) -> ReaderWatcher:
        """Watch now; raises WatchError saying why it cannot."""
        libc = _libc()
        fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            raise WatchError(f"inotify_init1 failed: {os.strerror(ctypes.get_errno())}")
        if libc.inotify_add_watch(fd, os.fsencode(self.path), _MASK) < 0:
            err = ctypes.get_errno()
            os.close(fd)
            raise WatchError(f"cannot watch {self.path}: {os.strerror(err)}")
        self._fd = fd
        self._wake_r, self._wake_w = os.pipe()
        self._own_at_start = self._own()
        self._count = self._scan()
        self._thread = threading.Thread(target=self._run, name="vbg-readers", daemon=True)
        self._thread.start()
        return self

    def _own(self) -> int:
        pid = os.getpid()
        return holders(self.path, only_pid=pid)

    def _scan(self) -> int:
        """Readers now by /proc: every other process's opens, ours beyond those at start."""
        own = max(0, self._own() - self._own_at_start)
        return holders(self.path, exclude_pid=os.getpid()) + own

    @property
    def readers(self) -> int:
        """Readers now; -1 when the device went away (unknown)."""
        return -1 if self._lost else self._count

    def wait(self, want_readers: bool, timeout: float | None) -> bool:
        """Block until there are readers (want_readers) or none; True if so, False on timeout."""
        with self._changed:
            return self._changed.wait_for(
                lambda: (self.readers != 0) == want_readers, timeout)

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        while True:
            ready = {fd for fd, _ in poller.poll()}
            if self._wake_r in ready:
                return
            try:
                data = os.read(self._fd, 4096)
            except BlockingIOError:
                continue
            except OSError:
                return
            self._take(data)
            if self._lost:
                return

    def _take(self, data: bytes) -> None:
        last_open = lost = False
        opens = closes = 0
        offset = 0
        while offset + _EVENT.size <= len(data):
            _wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
            offset += _EVENT.size + length
            if mask & IN_OPEN:
                opens, last_open = opens + 1, True
            if mask & (IN_CLOSE_WRITE | IN_CLOSE_NOWRITE):
                closes, last_open = closes + 1, False
            lost |= bool(mask & (IN_DELETE_SELF | IN_IGNORED))
        count = self._scan()  # after the lock: a scan takes ~0.3 ms per 100 processes
        with self._changed:
            self.opens += opens
            self.closes += closes
            # An open's file is installed in its process's fd table just after the event.
            self._count = max(1, count) if last_open else count
            self._lost = lost
            self._changed.notify_all()

    def close(self) -> None:
        """Stop watching; safe to call twice."""
        if self._wake_w >= 0:
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(1.0)
            self._thread = None
        for name in ("_fd", "_wake_r", "_wake_w"):
            fd = getattr(self, name)
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
                setattr(self, name, -1)


def watch_support(path: str | os.PathLike | None = None) -> tuple[bool, str]:
    """(works, why): can readers of `path` (else a temporary file) be counted here?"""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        target = Path(path) if path else Path(tmp) / "stand-in"
        if not path:
            target.touch()
        watcher = ReaderWatcher(target)
        try:
            watcher.start()
        except WatchError as e:
            return False, str(e)
        try:
            fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK)
            try:
                seen = watcher.wait(True, 1.0)
            finally:
                os.close(fd)
            gone = watcher.wait(False, 1.0)
        except OSError as e:
            return False, f"cannot open {target}: {e.strerror}"
        finally:
            watcher.close()
    if not (seen and gone):
        return False, f"inotify gave no open/close events for {target}"
    return True, f"inotify open/close events on {path or 'files'}"
