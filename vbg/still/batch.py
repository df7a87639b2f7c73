"""Per-file batch work in worker processes, a progress line and the summary line.

Workers start with the "forkserver" method where the platform has it (else "spawn"): numba's
and onnxruntime's thread pools are not fork-safe once started, and a fresh process per worker
builds its own pipeline once. A worker that dies on a file (signal, out of memory) costs that
file only: the parent reports it in one line, starts a new worker and goes on.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, TextIO

from vbg import errors
from vbg.errors import VbgError

STOP_GRACE_S = 10.0  # after Ctrl-C, how long workers get to clean up before they are killed
# numba makes a named semaphore in every worker (multiprocessing.RLock). When a worker is killed
# the resource tracker removes it at exit but also warns on stderr: the crash already has its
# one line. Passed to the interpreters multiprocessing starts from here on (not to this one).
_QUIET_TRACKER = "ignore::UserWarning:multiprocessing.resource_tracker"


def cpu_count() -> int:
    """CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def threads_per_worker(workers: int) -> int:
    """Threads for each worker's libraries so that workers x threads <= cores."""
    return max(1, cpu_count() // max(1, workers))


@dataclass(frozen=True)
class WorkerSpec:
    """What each worker runs; the callables must be module-level (they are pickled by name)."""

    setup: Callable[[Any], Callable[[Any], Any]]  # once per worker: (setup_arg) -> work(item)
    setup_arg: Any
    describe: Callable[[Any, BaseException], str]  # one-line message for a failed item
    crashed: Callable[[Any, str], str]  # one-line message when the worker died on an item


@dataclass(frozen=True)
class Event:
    """`kind`: "start" (a worker took item `index`), "done" (value) or "failed" (message)."""

    kind: str
    index: int
    value: Any = None
    message: str = ""


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def _worker_main(conn: Connection, spec: WorkerSpec) -> None:
    """Worker loop: build once, then (index, item) in -> ("ok"|"failed", index, ...) out."""
    # Ctrl-C reaches the whole process group: only the parent reacts, then stops us with
    # SIGTERM, which unwinds like KeyboardInterrupt so that temporary files are removed.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        try:
            work = spec.setup(spec.setup_arg)
        except VbgError as e:
            conn.send(("init-failed", type(e).__name__, str(e)))
            return
        except Exception as e:
            conn.send(("init-failed", "", f"{type(e).__name__}: {e}"))
            return
        conn.send(("ready",))
        while (message := conn.recv()) is not None:
            index, item = message
            try:
                result = work(item)
            except Exception as e:  # one line per failed item; the worker goes on
                conn.send(("failed", index, spec.describe(item, e)))
            else:
                conn.send(("ok", index, result))
    except (KeyboardInterrupt, EOFError, OSError):
        return  # stopped by the parent, or the parent is gone


def _exit_reason(code: int | None) -> str:
    """Why a worker process ended, in words."""
    if code is None:
        return "the worker process stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (out of memory?)" if -code == signal.SIGKILL else ""
        return f"the worker process was killed by {name}{hint}"
    return f"the worker process exited with code {code}"


class _Worker:
    def __init__(self, ctx: Any, spec: WorkerSpec) -> None:
        self.conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=_worker_main, args=(child, spec), daemon=True)
        self.process.start()
        child.close()
        self.ready = False
        self.task: int | None = None


def _raise_init_failure(kind: str, message: str) -> None:
    cls = getattr(errors, kind, None) if kind else None
    if isinstance(cls, type) and issubclass(cls, VbgError):
        raise cls(message)
    raise VbgError(f"a worker process could not start ({message}); please report this")


class WorkerPool:
    """`workers` processes running spec.setup once and then spec's work per item."""

    def __init__(self, spec: WorkerSpec, workers: int) -> None:
        if _QUIET_TRACKER not in sys.warnoptions:
            sys.warnoptions.append(_QUIET_TRACKER)
        method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        self.ctx = mp.get_context(method)
        self.spec = spec
        self.workers = [_Worker(self.ctx, spec) for _ in range(max(1, workers))]

    def wait_ready(self) -> None:
        """Block until every worker has built its pipeline; VbgError if one could not."""
        for worker in self.workers:
            self._receive_ready(worker)

    def _receive_ready(self, worker: _Worker) -> None:
        try:
            message = worker.conn.recv()
        except (EOFError, OSError):
            worker.process.join(1.0)
            raise VbgError(f"{_exit_reason(worker.process.exitcode)} while starting; "
                           "please report this") from None
        if message[0] == "init-failed":
            _raise_init_failure(message[1], message[2])
        worker.ready = True

    def run(self, items: list[Any]) -> Iterator[Event]:
        """Events for every item, in completion order; crashed workers are replaced."""
        pending = list(range(len(items)))[::-1]  # pop() from the end = input order
        busy = 0
        while pending or busy:
            for worker in self.workers:
                if worker.ready and worker.task is None and pending:
                    task = pending.pop()
                    try:
                        worker.conn.send((task, items[task]))
                    except OSError:  # it just died: its sentinel replaces it, the item waits
                        pending.append(task)
                        continue
                    worker.task = task
                    busy += 1
                    yield Event("start", task)
            # Nothing busy but items left: replacement workers are starting; wait for them.
            by_handle: dict[Any, _Worker] = {}
            for worker in self.workers:
                by_handle[worker.conn] = worker
                by_handle[worker.process.sentinel] = worker
            for handle in wait(list(by_handle)):
                worker = by_handle[handle]
                if worker not in self.workers:
                    continue  # already replaced through its other handle
                event = self._receive(worker, items)
                if event is not None:
                    busy -= 1
                    yield event

    def _receive(self, worker: _Worker, items: list[Any]) -> Event | None:
        """The event a worker's message (or its death) means; replaces dead workers."""
        try:
            if worker.conn.poll():
                message = worker.conn.recv()
                if message[0] == "ready":
                    worker.ready = True
                    return None
                if message[0] == "init-failed":
                    _raise_init_failure(message[1], message[2])
                worker.task = None
                kind, index, payload = message
                if kind == "ok":
                    return Event("done", index, value=payload)
                return Event("failed", index, message=payload)
            if worker.process.is_alive():
                return None
        except (EOFError, OSError):
            pass
        worker.process.join(1.0)
        if worker.process.is_alive():  # its pipe broke but it lingers
            worker.process.kill()
            worker.process.join(1.0)
        task, reason = worker.task, _exit_reason(worker.process.exitcode)
        self._replace(worker)
        if task is None:
            if not worker.ready:
                raise VbgError(f"{reason} while starting; please report this")
            return None
        return Event("failed", task, message=self.spec.crashed(items[task], reason))

    def _replace(self, worker: _Worker) -> None:
        worker.conn.close()
        self.workers[self.workers.index(worker)] = _Worker(self.ctx, self.spec)

    def close(self, interrupted: bool = False) -> None:
        """Stop the workers: let them finish (or, interrupted, unwind their current item)."""
        for worker in self.workers:
            with contextlib.suppress(OSError):
                if interrupted and worker.process.is_alive():
                    worker.process.terminate()  # SIGTERM: unwinds, temp files are removed
                else:
                    worker.conn.send(None)
        deadline = time.monotonic() + STOP_GRACE_S
        for worker in self.workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(1.0)
            worker.conn.close()


def _columns(stream: TextIO) -> int:
    """Width of the terminal `stream` writes to (80 when unknown)."""
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        columns = 0
    return columns or shutil.get_terminal_size((80, 24)).columns  # 0: a pty with no size set


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds + 0.5))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    """One self-rewriting line on a terminal: bar, count, percent, ETA, current file."""

    BAR = 20

    def __init__(self, total: int, stream: TextIO, enabled: bool) -> None:
        self.total, self.stream, self.enabled = total, stream, enabled
        self.start = time.monotonic()
        self.width = 0
        self.done = 0
        self.name = ""

    def show(self, done: int | None = None, name: str | None = None) -> None:
        """Redraw with `done` items finished (of total) while working on `name`."""
        self.done = self.done if done is None else done
        self.name = self.name if name is None else name
        if not self.enabled or not self.total:
            return
        fraction = self.done / self.total
        filled = int(fraction * self.BAR)
        bar = "=" * filled + (">" if filled < self.BAR else "") + " " * (self.BAR - filled - 1)
        eta = "ETA --:--"
        if self.done:
            left = (time.monotonic() - self.start) / self.done * (self.total - self.done)
            eta = f"ETA {_clock(left)}"
        line = f"[{bar}] {self.done}/{self.total} {fraction:4.0%}  {eta}  "
        room = _columns(self.stream) - 1 - len(line)
        if len(self.name) <= room:
            line += self.name
        elif room >= 8:
            line += "..." + self.name[-(room - 3):]
        self.stream.write("\r" + line.ljust(self.width))
        self.stream.flush()
        self.width = len(line)

    def clear(self) -> None:
        if self.enabled and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
            self.width = 0

    def message(self, line: str) -> None:
        """Print a line above the progress line."""
        self.clear()
        print(line, file=self.stream, flush=True)
        self.show()


def summary(done: int, failed: int, skipped: int, elapsed: float | None = None) -> str:
    """`done N, failed N, skipped N[ in T s (R images/s)]`."""
    text = f"done {done}, failed {failed}, skipped {skipped}"
    if elapsed is None:
        return text
    rate = f"{done / elapsed:.2f}" if elapsed > 0 else "-"
    return f"{text} in {elapsed:.1f} s ({rate} images/s)"
