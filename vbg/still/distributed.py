"""`vbg still --ray`: the same jobs run by Ray actors, each building its pipeline once.

Inputs and outputs are paths every node sees (a shared filesystem). Each actor holds one
StillPipeline (one onnxruntime session, its threads = the actor's CPUs) and takes one file at a
time; the driver hands out files, reports each result, shows the progress line and makes the
summary, exactly as a local batch. A worker process that dies on a file costs no file: its
temporary output is removed, a fresh actor replaces it and the file is tried again (at most
MAX_TRIES times, then reported failed). Ctrl-C kills the actors this run started.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vbg import errors
from vbg.errors import ConfigError, SinkError, VbgError
from vbg.still.batch import Progress, cpu_count
from vbg.still.jobs import Job, make_folders, remove_partial_files
from vbg.still.options import StillOptions
from vbg.still.run import Runner, Tally, crash_line, failure_line, worker_setup

INSTALL_HINT = "pip install 'vbg[ray]'"
# Default workers per node: one per WORKER_CPUS CPUs and per WORKER_MEMORY bytes of its memory
# (at least one): one-thread workers beat fewer two-thread ones (docs/decisions.md, "Ray
# workers"); a 12 MP cut-out peaks near 1 GB, a 108 MP photo at 1.8 GB.
WORKER_CPUS = 1
WORKER_MEMORY = 2 * 1024**3
MAX_TRIES = 3  # a file whose worker process dies this many times is reported failed
READY_TIMEOUT_S = 600.0  # workers not started by then (no room on the cluster?): an error
# Tests only: "NAME:MARKER" makes the worker that first gets file NAME kill itself (SIGKILL)
# in the middle of it, once per MARKER file (created then), as an out-of-memory kill would;
# "NAME" alone: every time.
KILL_ONCE_ENV = "VBG_TEST_KILL_ONCE"
KILL_DELAY_S = 0.05
LOCAL_RAY = "local"  # `--ray` with no ADDRESS: a Ray instance on this machine, started here


def import_ray() -> Any:
    """The ray module; ConfigError (one line, the install command) when it is not installed."""
    try:
        return importlib.import_module("ray")
    except ImportError:
        raise ConfigError(f"--ray needs Ray, which is not installed: {INSTALL_HINT}") from None


@dataclass(frozen=True)
class WorkerPlan:
    """How many actors, and what each asks of its node."""

    count: int
    cpus: int
    gpus: float
    nodes: tuple[str, ...] = ()  # node ids to pin one actor each to (default sizing)

    def at_most(self, files: int) -> WorkerPlan:
        """No more workers than files."""
        count = max(1, min(self.count, files))
        return WorkerPlan(count, self.cpus, self.gpus, self.nodes[:count])


def plan_workers(nodes: list[dict[str, Any]], requested: int | None, use_gpu: bool) -> WorkerPlan:
    """Workers sized by CPU: `requested` spread over the cluster, else per node
    max(1, min(CPUs // WORKER_CPUS, memory // WORKER_MEMORY)), each with its share of the
    node's CPUs (and GPUs)."""
    alive = [n for n in nodes if n.get("Alive") and n["Resources"].get("CPU", 0) >= 1]
    if not alive:
        raise ConfigError("--ray: the Ray cluster has no node with a CPU")
    cpus = [int(n["Resources"]["CPU"]) for n in alive]
    gpus = [float(n["Resources"].get("GPU", 0)) if use_gpu else 0.0 for n in alive]
    if requested is not None:
        if requested > sum(cpus):
            raise ConfigError(f"--jobs {requested}: the Ray cluster has {sum(cpus)} CPUs; ask "
                              "for at most one worker per CPU")
        per = max(1, min(sum(cpus) // requested, max(cpus)))
        gpu = min(1.0, sum(gpus) / requested) if sum(gpus) else 0.0
        return WorkerPlan(requested, per, gpu)
    memory = [n["Resources"].get("memory", float("inf")) for n in alive]
    counts = [max(1, int(min(c // WORKER_CPUS, m // WORKER_MEMORY)))
              for c, m in zip(cpus, memory, strict=True)]
    ids = tuple(n["NodeID"] for round_ in range(max(counts))  # nodes in turn: a short batch
                for n, k in zip(alive, counts, strict=True) if round_ < k)  # uses them all
    return WorkerPlan(len(ids), min(c // k for c, k in zip(cpus, counts, strict=True)),
                      min(g / k for g, k in zip(gpus, counts, strict=True)), ids)


class PhotoWorker:
    """A Ray actor's state: the still pipeline, built once; then one job per call."""

    def __init__(self, options: StillOptions, threads: int) -> None:
        self.error: tuple[str, str] | None = None
        try:
            self.work = worker_setup((options, threads))
        except VbgError as e:
            self.error = (type(e).__name__, str(e))
        except Exception as e:
            self.error = ("", f"{type(e).__name__}: {e}")

    def ready(self) -> dict[str, Any]:
        """Where this worker runs, and why it could not start (None when it could)."""
        ray = importlib.import_module("ray")
        return {"node": ray.get_runtime_context().get_node_id(), "host": socket.gethostname(),
                "pid": os.getpid(), "error": self.error}

    def check(self, inputs: list[str], folders: list[str]) -> str | None:
        """None when this node can read `inputs` and write in `folders`, else what it cannot."""
        for path in inputs:
            if not os.access(path, os.R_OK):
                return f"cannot read {path}"
        for folder in folders:
            try:
                fd, name = tempfile.mkstemp(prefix=".vbg-check.", suffix=".part", dir=folder)
            except OSError as e:
                return f"cannot write in the output folder {folder} ({e.strerror or e})"
            os.close(fd)
            os.unlink(name)
        return None

    def process(self, job: Job) -> dict[str, Any] | None:
        """None when job's outputs are written; else {"error": its one-line failure} and/or
        {"report": an ID photo's compliance report, written or refused}."""
        doomed = _maybe_kill_for_test(job)
        try:
            result = self.work(job)
        except Exception as e:  # one line per failed input; the worker goes on
            return {"error": failure_line(job.source, e)}
        if doomed:
            time.sleep(60.0)  # the test hook's kill comes before any answer
        if isinstance(result, dict) and "refused" in result:
            return {"error": result["refused"], "report": result["report"]}
        return None if result is None else {"report": result}


def _maybe_kill_for_test(job: Job) -> bool:
    """The KILL_ONCE_ENV test hook: True when this process is to die (SIGKILL) on job."""
    name, _, marker = os.environ.get(KILL_ONCE_ENV, "").partition(":")
    if not name or job.source.name != name:
        return False
    try:
        if marker:
            Path(marker).touch(exist_ok=False)
    except FileExistsError:
        return False
    threading.Timer(KILL_DELAY_S, os.kill, (os.getpid(), signal.SIGKILL)).start()
    return True


def _quiet_ray(ray: Any) -> None:
    """Drop the raylet's "a worker died" paragraphs Ray prints on the driver's stdout: vbg
    reports each crash in its own line (private Ray API; skipped when it is not there)."""
    worker_module = sys.modules.get("ray._private.worker")
    original = getattr(worker_module, "print_to_stdstream", None)
    if original is None or getattr(original, "vbg_quiet", False):
        return

    def print_to_stdstream(data: dict[str, Any], ignore_prefix: bool) -> None:
        if data.get("pid") != "raylet":
            original(data, ignore_prefix)

    print_to_stdstream.vbg_quiet = True  # type: ignore[attr-defined]
    worker_module.print_to_stdstream = print_to_stdstream  # type: ignore[union-attr]


def connect(ray: Any, address: str | None) -> bool:
    """Start a local Ray (address None) or join a cluster; True when this call started it."""
    if ray.is_initialized():
        return False  # a caller (a test, a notebook) already connected
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.ERROR,
                              "log_to_driver": False}
    try:
        if address is None:
            ray.init(address="local", num_cpus=cpu_count(), **kwargs)  # never a running one
        else:
            kwargs.pop("include_dashboard")
            ray.init(address=address, **kwargs)
    except Exception as e:
        where = "start a local Ray instance" if address is None else f"connect to {address}"
        text = " ".join(str(e).split())[:300]
        raise ConfigError(f"--ray: cannot {where} ({type(e).__name__}: {text}); for a cluster "
                          "run `ray start --head` first, then --ray auto") from None
    _quiet_ray(ray)
    return True


class RayBatch:
    """One `--ray` run: actors started, files handed out, results tallied, actors stopped."""

    def __init__(self, ray: Any, options: StillOptions, plan: WorkerPlan) -> None:
        self.ray, self.options, self.plan = ray, options, plan
        env = {KILL_ONCE_ENV: os.environ[KILL_ONCE_ENV]} if KILL_ONCE_ENV in os.environ else {}
        self.actor_class = ray.remote(max_restarts=0, max_task_retries=0)(PhotoWorker)
        self.runtime_env = {"env_vars": env} if env else None
        self.actors: list[Any] = []
        self.where: dict[Any, dict[str, Any]] = {}
        self.files_by_node: Counter[str] = Counter()

    def start(self, pin: str | None = None) -> Any:
        """A new actor (pinned to node `pin`, else spread over the cluster)."""
        strategy: Any = "SPREAD"
        if pin is not None:
            affinity = importlib.import_module("ray.util.scheduling_strategies")
            strategy = affinity.NodeAffinitySchedulingStrategy(pin, soft=True)
        actor = self.actor_class.options(
            num_cpus=self.plan.cpus, num_gpus=self.plan.gpus, scheduling_strategy=strategy,
            runtime_env=self.runtime_env).remote(self.options, self.plan.cpus)
        self.actors.append(actor)
        return actor

    def start_all(self) -> None:
        """Every planned actor, built and ready; VbgError (as a local run) when one cannot."""
        pins: list[str | None] = list(self.plan.nodes) or [None] * self.plan.count
        refs = {self.start(pin).ready.remote(): None for pin in pins}
        ready, waiting = self.ray.wait(list(refs), num_returns=len(refs),
                                       timeout=READY_TIMEOUT_S)
        if waiting:
            raise VbgError(f"--ray: {len(waiting)} of {len(refs)} workers did not start within "
                           f"{READY_TIMEOUT_S:.0f} s (not enough free CPUs on the cluster?)")
        for actor, info in zip(self.actors, self.ray.get(ready), strict=True):
            self.where[actor] = self.checked(info)

    @staticmethod
    def checked(info: dict[str, Any]) -> dict[str, Any]:
        """A worker's ready() answer; its start-up error raised as a local run raises it."""
        if info["error"] is not None:
            kind, message = info["error"]
            cls = getattr(errors, kind, None) if kind else None
            if isinstance(cls, type) and issubclass(cls, VbgError):
                raise cls(message)
            raise VbgError(f"a Ray worker could not start ({message}); please report this")
        return info

    def check_nodes(self, jobs: list[Job]) -> None:
        """SinkError (one line) when a node cannot read the inputs or write the outputs."""
        first_per_folder: dict[Path, str] = {}
        for job in jobs:
            first_per_folder.setdefault(job.source.parent, str(job.source))
        inputs = [p for p in first_per_folder.values() if os.access(p, os.R_OK)]
        folders = sorted({str(p.parent) for job in jobs for p in (job.output, job.matte) if p})
        by_node = {info["node"]: actor for actor, info in self.where.items()}
        answers = self.ray.get([a.check.remote(inputs, folders) for a in by_node.values()])
        for actor, problem in zip(by_node.values(), answers, strict=True):
            if problem is not None:
                info = self.where[actor]
                raise SinkError(f"--ray: node {info['host']} ({info['node'][:8]}): {problem}; "
                                "the inputs and the output folder must be on storage every "
                                "node sees (a shared filesystem)")

    def describe(self) -> str:
        nodes = {info["node"] for info in self.where.values()}
        return (f"vbg: ray: {len(self.where)} worker{'s' * (len(self.where) > 1)} "
                f"({self.plan.cpus} CPU{'s' * (self.plan.cpus > 1)} each"
                f"{f', {self.plan.gpus:g} GPU' if self.plan.gpus else ''}) on {len(nodes)} "
                f"node{'s' * (len(nodes) > 1)}")

    def run(self, jobs: list[Job], tally: Tally, progress: Progress) -> None:
        """Hand out the jobs one per idle actor until each is done or failed; a dead actor's
        file goes back to the front of the queue and a new actor starts in its place."""
        ray = self.ray
        exceptions = importlib.import_module("ray.exceptions")
        pending = deque(range(len(jobs)))
        tries = [0] * len(jobs)
        idle = list(self.where)
        running: dict[Any, tuple[Any, int | None]] = {}  # ref -> (actor, job; None: starting)
        finished = start_deaths = 0
        while pending or any(index is not None for _, index in running.values()):
            while idle and pending:
                actor, index = idle.pop(), pending.popleft()
                running[actor.process.remote(jobs[index])] = (actor, index)
                progress.show(name=jobs[index].label or jobs[index].source.name)
            if not running:
                raise VbgError("--ray: no Ray worker left to run the remaining files")
            done, _ = ray.wait(list(running), num_returns=1)
            actor, index = running.pop(done[0])
            try:
                answer = ray.get(done[0])
            except exceptions.RayActorError:  # its worker process died
                self.actors.remove(actor)
                host = self.where.pop(actor, {}).get("host", "?")
                if index is None:
                    start_deaths += 1
                    if start_deaths >= MAX_TRIES:
                        raise VbgError("--ray: new Ray workers keep dying while they start "
                                       "(out of memory?); see `ray status`") from None
                elif self.retry(jobs[index], tries, index, host):
                    pending.appendleft(index)  # an idle worker takes it first
                else:
                    finished += 1
                    tally.failed += 1
                    progress.message(crash_line(jobs[index], f"the Ray worker process died "
                                                f"{MAX_TRIES} times (killed, or out of memory?)"))
                    progress.show(finished)
                replacement = self.start(None)
                running[replacement.ready.remote()] = (replacement, None)
                continue
            except exceptions.RayError as e:  # the call failed, not the worker
                if index is None:
                    raise VbgError(f"a Ray worker could not start ({e}); please report "
                                   "this") from None
                answer = {"error": failure_line(jobs[index].source, e)}
            if index is None:  # a replacement is ready
                self.where[actor] = self.checked(answer)
                idle.insert(0, actor)
                continue
            idle.append(actor)
            self.files_by_node[self.where[actor]["node"]] += 1
            finished += 1
            answer = answer or {}
            if answer.get("report") is not None:
                tally.reports.append(answer["report"])
            if answer.get("error") is None:
                tally.done += 1
            else:
                tally.failed += 1
                progress.message(answer["error"])
            progress.show(finished)

    def retry(self, job: Job, tries: list[int], index: int, host: str) -> bool:
        """After a worker died on job: its partial files removed; True to try it again."""
        remove_partial_files([job])
        tries[index] += 1
        if tries[index] >= MAX_TRIES:
            return False
        print(f"vbg: ray: the worker on {host} died while processing {job.source}; trying it "
              f"again ({tries[index] + 1} of {MAX_TRIES})", flush=True)
        return True

    def node_lines(self) -> list[str]:
        """One line per node: how many files its workers processed."""
        hosts = {info["node"]: info["host"] for info in self.where.values()}
        return [f"vbg: ray: node {node[:8]} ({hosts.get(node, '?')}): {count} "
                f"file{'s' * (count != 1)}" for node, count in sorted(self.files_by_node.items())]

    def stop(self, interrupted: bool, jobs: list[Job]) -> None:
        """Kill this run's actors; interrupted: wait for them to die, then remove partial files."""
        for actor in self.actors:
            with contextlib.suppress(Exception):
                self.ray.kill(actor, no_restart=True)
        if interrupted:
            deadline = time.monotonic() + 10.0
            for actor in self.actors:
                with contextlib.suppress(Exception):
                    self.ray.get(actor.ready.remote(),
                                 timeout=max(0.1, deadline - time.monotonic()))
            remove_partial_files(jobs)


def ray_runner(address: str, workers: int | None) -> Runner:
    """The run_jobs runner for `--ray [ADDRESS]` (LOCAL_RAY: a local Ray on this machine's
    cores) with `workers` actors (None: sized by each node's CPUs)."""
    if address != LOCAL_RAY and "://" not in address and os.path.exists(address):
        raise ConfigError(f"--ray {address}: that is a file or folder, not a Ray address; put "
                          "--ray after the inputs, or write --ray=ADDRESS")
    ray = import_ray()  # ConfigError before any job runs when Ray is not installed

    def run(options: StillOptions, jobs: list[Job], tally: Tally, progress: Progress) -> None:
        started = connect(ray, None if address == LOCAL_RAY else address)
        batch: RayBatch | None = None
        interrupted = False
        try:
            use_gpu = options.provider != "cpu"
            plan = plan_workers(ray.nodes(), workers, use_gpu).at_most(len(jobs))
            batch = RayBatch(ray, options, plan)
            batch.start_all()
            make_folders(jobs)
            batch.check_nodes(jobs)
            print(batch.describe(), flush=True)  # stdout, as the model line
            progress.start = time.monotonic()
            batch.run(jobs, tally, progress)
            for line in batch.node_lines():
                print(line, flush=True)
        except KeyboardInterrupt:
            interrupted = True
            raise
        finally:
            if batch is not None:
                batch.stop(interrupted, jobs)
            if started:
                ray.shutdown()
            if interrupted:
                remove_partial_files(jobs)

    return run
