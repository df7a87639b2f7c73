"""`vbg still` batches at scale: worker processes, crashes, -r, --skip-existing, formats, Ctrl-C."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_imageio import assert_upright, make_mixed, quadrants_rgb
from test_still import expected_names, is_summary, read_rgba

from vbg import cli
from vbg.still import batch, jobs
from vbg.still import run as still_run

REPO = Path(__file__).resolve().parents[1]


def vbg(capsys, *argv: str | Path) -> tuple[int, str]:
    """Run `vbg still ARGV` in-process; (exit code, stderr)."""
    rc = cli.main(["still", *(str(a) for a in argv)])
    return rc, capsys.readouterr().err


def no_hidden_files(folder: Path) -> bool:
    """Nothing temporary (write_image's `.name.*.part`) anywhere under folder."""
    return not [p for p in folder.rglob("*") if p.name.startswith(".")]


def photo(path: Path, size=(64, 48), seed: int = 0, noise: int = 20) -> Path:
    """A valid picture (quadrants plus noise, so that JPEG sizes depend on quality)."""
    rgb = quadrants_rgb(*size).astype(np.int16)
    rgb += np.random.default_rng(seed).integers(-noise, noise + 1, rgb.shape, dtype=np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb.clip(0, 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> tuple[Path, dict, dict]:
    folder = tmp_path_factory.mktemp("mixed")
    return (folder, *make_mixed(folder))


@pytest.fixture(scope="module")
def jobs2(mixed, tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """`vbg still MIXED -o OUT --jobs 2` as a user runs it (a real process, stderr a pipe)."""
    out = tmp_path_factory.mktemp("jobs2") / "out"
    proc = subprocess.run([sys.executable, "-m", "vbg", "still", str(mixed[0]), "-o", str(out),
                           "--jobs", "2"], cwd=REPO, capture_output=True, text=True, timeout=300)
    return proc, out


def test_jobs2_names_each_broken_file_in_one_line(mixed, jobs2):
    folder, awkward, broken = mixed
    proc, _ = jobs2
    assert len(broken) >= 6 and len(awkward) >= 10
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "\r" not in proc.stderr
    lines = proc.stderr.splitlines()
    for name, reason in broken.items():
        hits = [line for line in lines if f"{folder / name}:" in line]
        assert len(hits) == 1, (name, hits)
        assert hits[0].startswith(f"vbg: {folder / name}: ") and reason in hits[0]
    assert len(lines) == len(broken) + 1
    assert is_summary(lines[-1], len(awkward), len(broken)), lines[-1]


def test_jobs2_writes_every_valid_file_upright(mixed, jobs2):
    _, awkward, broken = mixed
    _, out = jobs2
    names = expected_names(sorted([*awkward, *broken]))
    assert {p.name for p in out.iterdir()} == {f"{names[n]}.png" for n in awkward}
    assert no_hidden_files(out)
    for name, exp in awkward.items():
        rgba = read_rgba(out / f"{names[name]}.png")
        if exp.upright_marker:
            assert_upright(np.ascontiguousarray(rgba[:, :, 2::-1]), tol=40)
        elif exp.bgr is not None:
            assert rgba.shape[:2] == exp.bgr.shape[:2], name


def crashing_setup(arg):
    """Worker setup whose work kills the worker process on files named crash*."""
    process = still_run.worker_setup(arg)

    def work(job: jobs.Job) -> None:
        if job.source.name.startswith("crash"):
            os.kill(os.getpid(), signal.SIGSEGV)
        process(job)

    return work


@pytest.mark.parametrize("names", [["a", "crash1", "b", "crash2", "c", "d"],
                                   ["crash1", "crash2", "crash3", "e"]])
def test_worker_crash_costs_one_file(tmp_path, capsys, monkeypatch, names):
    for k, name in enumerate(names):
        photo(tmp_path / "in" / f"{name}.png", seed=k)
    monkeypatch.setattr(still_run, "worker_setup", crashing_setup)
    rc, err = vbg(capsys, tmp_path / "in", "-o", tmp_path / "out", "--jobs", "2")
    assert rc == 1
    lines = err.splitlines()
    crashed = [n for n in names if n.startswith("crash")]
    for name in crashed:
        line = f"vbg: {tmp_path / 'in' / name}.png: the worker process was killed by SIGSEGV "
        assert sum(x.startswith(line + "while processing") for x in lines) == 1, err
    assert len(lines) == len(crashed) + 1
    assert is_summary(lines[-1], len(names) - len(crashed), len(crashed))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        f"{n}.png" for n in names if n not in crashed)


def test_worker_start_failure_is_a_clear_error(tmp_path, capsys):
    photo(tmp_path / "in" / "a.png")
    photo(tmp_path / "in" / "b.png")
    rc, err = vbg(capsys, tmp_path / "in", "-o", tmp_path / "out", "--jobs", "2",
                  "--model", "nosuch")
    assert rc == 2 and err.startswith("vbg: error: unknown model 'nosuch'")
    assert len(err.splitlines()) == 1 and not (tmp_path / "out").exists()


@pytest.fixture
def tree(tmp_path) -> Path:
    """photos/ with sub-folders, hidden files and folders, a non-image and a name clash."""
    root = tmp_path / "photos"
    photo(root / "top.jpg")
    photo(root / "a" / "one.png", seed=1)
    photo(root / "a" / "one.jpg", seed=2)  # same stem in the same folder
    photo(root / "a" / "deeper" / "two.webp", seed=3)
    photo(root / "b" / "one.png", seed=4)  # same name, another folder: no clash
    photo(root / ".hidden" / "secret.png", seed=5)
    photo(root / "a" / ".dot.png", seed=6)
    (root / "a" / "notes.txt").write_text("not a picture")
    return root


def relative_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_recursive_keeps_relative_paths(tree, capsys):
    out = tree / "out"  # inside the input tree: never read back as input
    rc, err = vbg(capsys, tree, "-r", "-o", out, "--color", "white", "--format", "jpg")
    assert rc == 0, err
    expected = ["a/deeper/two.jpg", "a/one.jpg.jpg", "a/one.png.jpg", "b/one.jpg", "top.jpg"]
    assert relative_files(out) == expected
    assert is_summary(err.splitlines()[-1], 5, 0)
    rc, err = vbg(capsys, tree, "-r", "-o", out, "--color", "white", "--format", "jpg")
    assert rc == 0 and relative_files(out) == expected  # the outputs were not taken as inputs


def test_without_recursive_subfolders_are_ignored(tree, tmp_path, capsys):
    rc, _ = vbg(capsys, tree, "-o", tmp_path / "flat")
    assert rc == 0 and relative_files(tmp_path / "flat") == ["top.png"]


def test_recursive_with_jobs_and_matte(tree, tmp_path, capsys):
    rc, err = vbg(capsys, tree / "a", "-r", "-o", tmp_path / "o", "--matte", tmp_path / "m",
                  "--jobs", "2")
    assert rc == 0, err
    expected = ["deeper/two.png", "one.jpg.png", "one.png.png"]
    assert relative_files(tmp_path / "o") == expected == relative_files(tmp_path / "m")


def test_skip_existing(tree, tmp_path, capsys):
    out = tmp_path / "out"
    rc, err = vbg(capsys, tree, "-r", "-o", out, "--matte", tmp_path / "m")
    assert rc == 0 and is_summary(err.splitlines()[-1], 5, 0)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    (out / "top.png").unlink()
    (tmp_path / "m" / "b" / "one.png").unlink()  # output there, matte missing: done again
    rc, err = vbg(capsys, tree, "-r", "-o", out, "--matte", tmp_path / "m", "--skip-existing")
    assert rc == 0 and err.splitlines() == [err.splitlines()[-1]]
    assert is_summary(err.splitlines()[-1], 2, 0, skipped=3)
    for path, stamp in stamps.items():
        if path.name != "top.png" and path != out / "b" / "one.png":
            assert path.stat().st_mtime_ns == stamp, path  # untouched
    assert (out / "top.png").is_file() and (tmp_path / "m" / "b" / "one.png").is_file()


def test_skip_existing_single_file_says_so(tmp_path, capsys):
    src = photo(tmp_path / "a.png")
    (tmp_path / "cut.png").write_bytes(b"old")
    rc, err = vbg(capsys, src, "-o", tmp_path / "cut.png", "--skip-existing")
    assert rc == 0 and err == f"vbg: {tmp_path / 'cut.png'} exists: skipped (--skip-existing)\n"
    assert (tmp_path / "cut.png").read_bytes() == b"old"


def test_formats_and_quality(tmp_path, capsys):
    src = tmp_path / "in"
    for k in range(2):
        photo(src / f"p{k}.png", size=(160, 120), seed=k)
    sizes = {}
    for q in (30, 95):
        rc, _ = vbg(capsys, src, "-o", tmp_path / f"q{q}", "--color", "blue", "--format", "jpg",
                    "--quality", str(q))
        assert rc == 0
        with Image.open(tmp_path / f"q{q}" / "p0.jpg") as im:
            assert im.format == "JPEG" and im.mode == "RGB" and im.size == (160, 120)
        sizes[q] = (tmp_path / f"q{q}" / "p0.jpg").stat().st_size
    assert sizes[30] < sizes[95]
    rc, _ = vbg(capsys, src, "-o", tmp_path / "webp", "--format", "webp")
    assert rc == 0
    with Image.open(tmp_path / "webp" / "p1.webp") as im:
        assert im.format == "WEBP" and im.mode == "RGBA"  # the cut-out keeps its alpha


@pytest.mark.parametrize(("flags", "message"), [
    (["--format", "jpg"], "--format jpg cannot store the transparent cut-out; use png or webp"),
    (["--format", "png", "--quality", "80"], "--quality applies to jpg and webp output only"),
    (["--color", "red", "--format", "jpg", "--quality", "0"], "--quality 0: use a value from 1"),
    (["--jobs", "0"], "--jobs 0: use 1 or more"),
    (["--allow-multiple"], "--allow-multiple only applies to --id-photo"),
])
def test_bad_batch_flags_fail_at_start(tmp_path, capsys, flags, message):
    photo(tmp_path / "in" / "a.png")
    rc, err = vbg(capsys, tmp_path / "in", "-o", tmp_path / "out", *flags)
    assert rc == 2 and err.startswith("vbg: error: ") and message in err, err
    assert len(err.splitlines()) == 1 and not (tmp_path / "out").exists()


def test_single_file_format_must_match_extension(tmp_path, capsys):
    src = photo(tmp_path / "a.png")
    rc, err = vbg(capsys, src, "-o", tmp_path / "x.png", "--format", "webp")
    assert rc == 2 and "--format webp does not match -o" in err


def test_progress_bar_with_workers_on_a_terminal(tmp_path, monkeypatch):
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    for k in range(3):
        photo(tmp_path / "in" / f"p{k}.png", seed=k)
    err = Tty()
    monkeypatch.setattr(sys, "stderr", err)
    rc = cli.main(["still", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--jobs", "2"])
    assert rc == 0
    text = err.getvalue()
    assert "\r[>                   ] 0/3   0%  ETA --:--  p" in text
    assert re.search(r"\r\[=+>? *\] 2/3  67%  ETA \d+:\d\d  p\d\.png", text)
    assert "] 3/3 100%" in text
    assert is_summary(text.rsplit("\r", 1)[-1].strip(), 3, 0)


def test_progress_line_fits_the_terminal(monkeypatch):
    monkeypatch.setattr(batch, "_columns", lambda stream: 60)
    stream = io.StringIO()
    progress = batch.Progress(10, stream, enabled=True)
    progress.show(4, "some/very/long/folder/name/that/goes/on/and/on/photo.jpg")
    line = stream.getvalue().lstrip("\r")
    assert len(line) == 59 and line.endswith("on/photo.jpg") and " 4/10  40%  ETA " in line


def test_summary_and_thread_split():
    assert batch.summary(3, 1, 2, 2.0) == "done 3, failed 1, skipped 2 in 2.0 s (1.50 images/s)"
    assert batch.summary(3, 1, 2) == "done 3, failed 1, skipped 2"
    assert 1 <= batch.threads_per_worker(64) <= batch.threads_per_worker(1)
    assert batch.threads_per_worker(1) == batch.cpu_count()


def test_partial_files_of_killed_workers_are_removed(tmp_path):
    for name in (".a.png.k2j_x8q1.part", ".a.png.zz.part", ".b.png.x1.part", "a.png", ".a.png"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / ".a.png.q.part").write_bytes(b"x")
    jobs.remove_partial_files([jobs.Job(Path("in/a.jpg"), tmp_path / "a.png",
                                           tmp_path / "m" / "a.png")])
    assert sorted(p.name for p in tmp_path.iterdir()) == [".a.png", ".b.png.x1.part", "a.png", "m"]
    assert list((tmp_path / "m").iterdir()) == []



def interrupt_after_first_output(still_args: list[str], out: Path
                                 ) -> tuple[subprocess.Popen, str, str]:
    """`vbg still STILL_ARGS`, Ctrl-C once its first PNG is in OUT; (proc, stdout, stderr)."""
    proc = subprocess.Popen([sys.executable, "-m", "vbg", "still", *still_args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if out.is_dir() and any(p.suffix == ".png" for p in out.iterdir()):
                break
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        stdout, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc, stdout, err

def test_ctrl_c_stops_cleanly(tmp_path):
    src = tmp_path / "in"
    for k in range(12):
        photo(src / f"p{k:02d}.png", size=(1200, 900), seed=k, noise=0)
    out = tmp_path / "out"
    proc, _, err = interrupt_after_first_output([str(src), "-o", str(out), "--jobs", "2"], out)
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    assert err.splitlines()[-1].startswith("vbg: interrupted: done "), err
    assert no_hidden_files(out), sorted(p.name for p in out.rglob("*"))
    written = list(out.iterdir())
    assert 1 <= len(written) < 12
    for path in written:
        with Image.open(path) as im:
            im.load()  # complete files only
