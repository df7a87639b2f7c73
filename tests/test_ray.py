"""`vbg still --ray`: the same outputs and lines as a local batch, killed workers, Ctrl-C."""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path

import cv2
import pytest
from PIL import Image
from test_imageio import make_broken
from test_still import is_summary
from test_still_batch import interrupt_after_first_output

from vbg import cli
from vbg.errors import ConfigError
from vbg.still import distributed

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'vbg[ray]')")

REPO = Path(__file__).resolve().parents[1]
PHOTOS = 6  # real photos per batch (coco_person), plus the broken files of test_imageio


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One local Ray for the module (2 CPUs); `vbg still --ray` in-process joins it."""
    ray.init(address="local", num_cpus=2, include_dashboard=False,
             logging_level=logging.ERROR, log_to_driver=False)
    yield
    ray.shutdown()


def vbg(capsys, *argv: str | Path) -> tuple[int, str, str]:
    """Run `vbg still ARGV` in-process; (exit code, stdout, stderr)."""
    rc = cli.main(["still", *(str(a) for a in argv)])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def files(folder: Path) -> dict[str, bytes]:
    """Every file under folder (hidden ones included) -> its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def photos(shared_set, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """Real photos with broken files mixed in; (folder, broken name -> reason)."""
    images = sorted((shared_set("coco_person") / "images").glob("*.jpg"))[:PHOTOS]
    folder = tmp_path_factory.mktemp("photos")
    for path in images:
        shutil.copy(path, folder / path.name)
    return folder, make_broken(folder)


@pytest.fixture(scope="module")
def local_run(photos, tmp_path_factory):
    """The local batch every Ray run is compared with: (rc, stderr lines, files)."""
    out = tmp_path_factory.mktemp("local") / "out"
    rc = cli.main(["still", str(photos[0]), "-o", str(out), "--matte", str(out / "mattes")])
    return rc, out


def error_lines(err: str) -> list[str]:
    """stderr without its summary line (its time differs run to run)."""
    return sorted(err.splitlines()[:-1])


def test_ray_batch_matches_a_local_batch(photos, local_run, tmp_path, capsys):
    folder, broken = photos
    capsys.readouterr()
    rc_local, local_out = local_run
    rc_local_again = cli.main(["still", str(folder), "-o", str(tmp_path / "again")])
    local_err = capsys.readouterr().err
    out = tmp_path / "out"
    rc, stdout, err = vbg(capsys, folder, "-o", out, "--matte", out / "mattes", "--ray",
                          "--jobs", "2")
    assert rc == rc_local == rc_local_again == 1
    assert "Traceback" not in err
    assert files(out) == files(local_out)  # byte-identical outputs and mattes, nothing more
    assert len(files(out)) == 2 * PHOTOS
    lines = err.splitlines()
    assert error_lines(err) == error_lines(local_err)
    assert len(lines) == len(broken) + 1
    for name, reason in broken.items():
        assert sum(line.startswith(f"vbg: {folder / name}: ") and reason in line
                   for line in lines) == 1, (name, err)
    assert is_summary(lines[-1], PHOTOS, len(broken)), lines[-1]
    assert "vbg: ray: 2 workers (1 CPU each) on 1 node" in stdout


def test_killed_worker_costs_no_file(photos, local_run, tmp_path, capsys, monkeypatch):
    folder, broken = photos
    victim = sorted(folder.glob("*.jpg"))[1]
    marker = tmp_path / "killed"
    monkeypatch.setenv(distributed.KILL_ONCE_ENV, f"{victim.name}:{marker}")
    out = tmp_path / "out"
    rc, stdout, err = vbg(capsys, folder, "-o", out, "--matte", out / "mattes", "--ray",
                          "--jobs", "2")
    assert marker.exists()  # a worker process did die on the victim
    assert f"died while processing {victim}; trying it again (2 of 3)" in stdout
    assert rc == 1 and "Traceback" not in err
    assert len(err.splitlines()) == len(broken) + 1  # the crash is no failure: it was retried
    assert is_summary(err.splitlines()[-1], PHOTOS, len(broken))
    assert files(out) == files(local_run[1])  # every good file once, none partial


def test_skip_existing_finishes_only_the_rest(photos, local_run, tmp_path, capsys):
    folder, broken = photos
    out = tmp_path / "out"
    out.mkdir()
    done = sorted(local_run[1].glob("*.png"))[:2]
    for path in done:
        shutil.copy(path, out / path.name)
    rc, _, err = vbg(capsys, folder, "-o", out, "--ray", "--skip-existing")
    assert rc == 1
    assert is_summary(err.splitlines()[-1], PHOTOS - 2, len(broken), skipped=2)
    assert sorted(files(out)) == sorted(p.name for p in local_run[1].glob("*.png"))


def test_ctrl_c_stops_the_ray_work_and_leaves_complete_files(shared_set, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for k, path in enumerate(sorted((shared_set("coco_person") / "images").glob("*.jpg"))[:8]):
        big = cv2.resize(cv2.imread(str(path)), (2400, 1800), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(src / f"p{k}.jpg"), big)
    out = tmp_path / "out"
    proc, stdout, err = interrupt_after_first_output(
        [str(src), "-o", str(out), "--ray", "--jobs", "2"], out)
    assert proc.returncode == 130, (stdout, err)
    assert "Traceback" not in err, err
    assert err.splitlines()[-1].startswith("vbg: interrupted: done "), err
    written = sorted(out.rglob("*"))
    assert not [p for p in written if p.name.startswith(".")], written  # no partial file
    assert 1 <= len(written) < 8
    for path in written:
        with Image.open(path) as im:
            im.load()  # complete files only


def test_without_ray_installed_one_line_and_exit_2(photos, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails
    rc, _, err = vbg(capsys, photos[0], "-o", tmp_path / "out", "--ray")
    assert rc == 2
    assert err == "vbg: error: --ray needs Ray, which is not installed: pip install 'vbg[ray]'\n"
    assert not (tmp_path / "out").exists()


def test_a_folder_taken_for_the_address_is_explained(photos, tmp_path, capsys):
    rc, _, err = vbg(capsys, "--ray", photos[0], "-o", tmp_path / "out")
    assert rc == 2 and len(err.splitlines()) == 1
    assert "not a Ray address; put --ray after the inputs" in err


def test_a_node_that_cannot_see_the_files_says_so(tmp_path):
    missing = tmp_path / "elsewhere"
    check = distributed.PhotoWorker.check
    assert check(None, [], [str(tmp_path)]) is None  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []  # the write probe is removed
    assert check(None, [str(missing / "a.jpg")], []) == f"cannot read {missing / 'a.jpg'}"
    problem = check(None, [], [str(missing)])  # type: ignore[arg-type]
    assert problem is not None and problem.startswith(f"cannot write in the output folder "
                                                      f"{missing}")


def node(node_id: str, cpus: float, gpus: float = 0, alive: bool = True) -> dict:
    return {"NodeID": node_id, "Alive": alive, "Resources": {"CPU": cpus, "GPU": gpus}}


def test_workers_are_sized_by_each_nodes_cpus():
    two_small = [node("a", 1), node("b", 1), node("dead", 8, alive=False)]
    assert distributed.plan_workers(two_small, None, True) == distributed.WorkerPlan(
        2, 1, 0.0, ("a", "b"))
    assert distributed.plan_workers([node("a", 8, gpus=2)], None, True) == (
        distributed.WorkerPlan(8, 1, 0.25, ("a",) * 8))
    assert distributed.plan_workers([node("a", 8, gpus=2)], None, False).gpus == 0
    small_memory = node("a", 8)
    small_memory["Resources"]["memory"] = 3 * distributed.WORKER_MEMORY + 1
    assert distributed.plan_workers([small_memory], None, True) == distributed.WorkerPlan(
        3, 2, 0.0, ("a",) * 3)
    assert distributed.plan_workers(two_small, 1, True) == distributed.WorkerPlan(1, 1, 0.0)
    assert distributed.plan_workers([node("a", 16)], 4, True) == distributed.WorkerPlan(4, 4, 0)
    three = distributed.plan_workers([node("a", 2), node("b", 1)], None, True)
    assert three.nodes == ("a", "b", "a")  # nodes in turn
    assert three.at_most(2) == distributed.WorkerPlan(2, 1, 0.0, ("a", "b"))
    assert three.at_most(0).count == 1
    with pytest.raises(ConfigError, match="--jobs 3: the Ray cluster has 2 CPUs"):
        distributed.plan_workers(two_small, 3, True)


def test_a_file_that_kills_every_worker_fails_after_bounded_tries(photos, local_run, tmp_path,
                                                                    capsys, monkeypatch):
    folder, broken = photos
    victim = sorted(folder.glob("*.jpg"))[0]
    monkeypatch.setenv(distributed.KILL_ONCE_ENV, victim.name)  # no marker: every time
    out = tmp_path / "out"
    rc, stdout, err = vbg(capsys, folder, "-o", out, "--ray", "--jobs", "2")
    assert rc == 1 and "Traceback" not in err
    lines = err.splitlines()
    assert f"vbg: {victim}: the Ray worker process died {distributed.MAX_TRIES} times " in err
    assert sum(str(victim) in line for line in lines) == 1
    assert stdout.count(f"died while processing {victim}") == distributed.MAX_TRIES - 1
    assert is_summary(lines[-1], PHOTOS - 1, len(broken) + 1)
    assert sorted(files(out)) == sorted(p.name for p in local_run[1].glob("*.png")
                                        if p.stem != victim.stem)


def test_id_photo_reports_come_back_from_ray(photos, tmp_path, capsys):
    """Written and refused ID photos both keep their compliance report (as a local batch)."""
    folder = photos[0]
    reports = {}
    for where in ("local", "ray"):
        out, report = tmp_path / where, tmp_path / f"{where}.json"
        extra = ["--ray", "--jobs", "2"] if where == "ray" else []
        rc, _, err = vbg(capsys, folder, "--id-photo", "passport", "-o", out,
                         "--report", report, *extra)
        assert rc == 1 and "Traceback" not in err
        reports[where] = json.loads(report.read_text())
    local, remote = reports["local"], reports["ray"]
    # Photos with a face get a report, written or refused (both kinds are in this set).
    assert local["ok"] >= 1 and local["failed"] >= 1
    assert (remote["ok"], remote["failed"]) == (local["ok"], local["failed"])

    def key(report: dict) -> str:  # the same report but for the output folder's name
        return json.dumps({k: v for k, v in report.items() if k != "output"}, sort_keys=True)

    assert sorted(map(key, remote["files"])) == sorted(map(key, local["files"]))
