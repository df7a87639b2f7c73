"""Running still-mode jobs: here or in worker processes, the tally, the summary line."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numba

from vbg.errors import ConfigError, VbgError
from vbg.still.batch import Progress, WorkerPool, WorkerSpec, summary, threads_per_worker
from vbg.still.idphoto import IdPhotoRefused
from vbg.still.jobs import Job, make_folders, remove_partial_files
from vbg.still.options import StillOptions
from vbg.still.pipeline import StillPipeline
from vbg.still.segmenter import PhotoMatter


def failure_line(source: Path, error: BaseException) -> str:
    """`vbg: <input>: <reason>` on one line (many ImageError messages start with the path)."""
    text = " ".join(str(error).split())
    if isinstance(error, MemoryError):
        text = "not enough memory to process this image"
    elif not isinstance(error, VbgError):
        text = f"unexpected error ({type(error).__name__}: {text}); please report this"
    if text.startswith(f"{source}: "):
        return f"vbg: {text}"
    return f"vbg: {source}: {text}"


def crash_line(job: Job, reason: str) -> str:
    """The line for an input whose worker process died."""
    return f"vbg: {job.source}: {reason} while processing this image; please report this"


def _limit_threads(threads: int) -> None:
    """Cap numba's and OpenCV's threads in this worker process."""
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    cv2.setNumThreads(threads)


def worker_setup(setup: tuple[StillOptions, int]) -> Callable[[Job], dict | None]:
    """In each worker: build the pipeline once; returns the per-job function (an ID photo's
    refusal comes back as {"refused": line, "report": ...} so that its report is kept)."""
    options, threads = setup
    _limit_threads(threads)
    process = StillPipeline(options, threads=threads).process

    def work(job: Job) -> dict | None:
        try:
            return process(job)
        except IdPhotoRefused as e:
            return {"refused": failure_line(job.source, e), "report": e.report}

    return work


def _describe(job: Job, error: BaseException) -> str:
    return failure_line(job.source, error)


# runner(options, jobs, tally, progress): processes the jobs, counting into tally
Runner = Callable[[StillOptions, list[Job], "Tally", Progress], None]


@dataclass
class Tally:
    """Counts for the summary line."""

    done: int = 0
    failed: int = 0
    skipped: int = 0
    reports: list[dict] = field(default_factory=list)  # ID photos' compliance reports


def _run_here(options: StillOptions, jobs: list[Job], tally: Tally, progress: Progress,
              segmenter: PhotoMatter | None = None) -> None:
    """Process the jobs in this process, one after another."""
    pipeline = StillPipeline(options, segmenter)  # bad model/background: exit 2 here
    make_folders(jobs)
    progress.start = time.monotonic()
    for finished, job in enumerate(jobs):
        progress.show(finished, job.label or job.source.name)
        try:
            report = pipeline.process(job)
            tally.done += 1
            if report is not None:
                tally.reports.append(report)
        except Exception as e:  # one line per failed input; the batch goes on
            tally.failed += 1
            progress.message(failure_line(job.source, e))
            if isinstance(e, IdPhotoRefused):
                tally.reports.append(e.report)
    progress.show(len(jobs))


def _run_pool(options: StillOptions, jobs: list[Job], tally: Tally, progress: Progress,
              workers: int) -> None:
    """Process the jobs in `workers` processes; results and errors come back here."""
    spec = WorkerSpec(worker_setup, (options, threads_per_worker(workers)), _describe, crash_line)
    pool: WorkerPool | None = None
    interrupted = False
    try:
        pool = WorkerPool(spec, workers)
        pool.wait_ready()  # bad model/background: exit 2 here, before any folder is made
        make_folders(jobs)
        progress.start = time.monotonic()
        finished = 0
        for event in pool.run(jobs):
            job = jobs[event.index]
            if event.kind == "start":
                progress.show(name=job.label or job.source.name)
                continue
            finished += 1
            if event.kind == "done" and isinstance(event.value, dict) and "refused" in event.value:
                tally.failed += 1
                tally.reports.append(event.value["report"])
                progress.message(event.value["refused"])
            elif event.kind == "done":
                tally.done += 1
                if event.value is not None:
                    tally.reports.append(event.value)
            else:
                tally.failed += 1
                progress.message(event.message)
                remove_partial_files([job])  # in case its worker was killed while writing
            progress.show(finished)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        if pool is not None:
            pool.close(interrupted)
            if interrupted:
                remove_partial_files(jobs)


def _triage(jobs: list[Job], skip_existing: bool, tally: Tally, quiet: bool) -> list[Job]:
    """The jobs to run: not those that would overwrite an input (failed) or, with
    --skip-existing, whose outputs exist (skipped; said unless quiet)."""
    sources = {job.source.resolve() for job in jobs}
    todo = []
    for job in jobs:
        targets = [job.output] + ([job.matte] if job.matte else [])
        if any(t.resolve() in sources for t in targets):
            print(failure_line(job.source, ConfigError(
                "the output would replace an input file; choose another output name or "
                "folder")), file=sys.stderr)
            tally.failed += 1
        elif skip_existing and all(t.exists() for t in targets):
            tally.skipped += 1
            if not quiet:
                print(f"vbg: {job.output} exists: skipped (--skip-existing)", file=sys.stderr)
        else:
            todo.append(job)
    return todo


def run_jobs(options: StillOptions, jobs: list[Job], problems: list[str], *, workers: int = 1,
             skip_existing: bool = False, batch: bool = True, started: float | None = None,
             segmenter: PhotoMatter | None = None, runner: Runner | None = None,
             reports: list[dict] | None = None) -> int:
    """Run planned jobs (problems: inputs already failed) with one-line reports on stderr;
    0 = all done, 1 = some failed, 130 = interrupted. `segmenter` only for workers=1;
    `runner` runs the jobs elsewhere (vbg.still.distributed: Ray) with the same tally;
    `reports` receives the ID photos' compliance reports (Ray's too)."""
    err = sys.stderr
    started = time.monotonic() if started is None else started
    tally = Tally(failed=len(problems))
    for problem in problems:
        print(f"vbg: {problem}", file=err)
    todo = _triage(jobs, skip_existing, tally, quiet=batch)
    progress = Progress(len(todo), err, enabled=len(todo) > 1 and err.isatty())
    workers = min(workers, len(todo)) if segmenter is None else min(1, len(todo))
    try:
        if runner is not None and todo:
            runner(options, todo, tally, progress)
        elif workers > 1:
            _run_pool(options, todo, tally, progress, workers)
        elif todo:
            _run_here(options, todo, tally, progress, segmenter)
    except KeyboardInterrupt:
        progress.clear()
        left = len(jobs) + len(problems) - tally.done - tally.failed - tally.skipped
        print(f"vbg: interrupted: {summary(tally.done, tally.failed, tally.skipped)}, "
              f"left {left}", file=err)
        return 130
    finally:
        progress.clear()
        if reports is not None:
            reports.extend(tally.reports)
    if batch:
        elapsed = time.monotonic() - started
        print(f"vbg: {summary(tally.done, tally.failed, tally.skipped, elapsed)}", file=err)
    return 1 if tally.failed else 0
