"""Setup: `make install` puts a working `vbg` launcher where the systemd unit looks; the
CPU-only requirements stay in step with pyproject.toml."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

import vbg

ROOT = Path(__file__).resolve().parent.parent
needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _make(*args: str, bin_dir: Path) -> subprocess.CompletedProcess:
    # -o: the install stamps count as up to date (the test must not reinstall the venv).
    stamps = [f"-o{ROOT / '.venv' / f'.installed-{ort}'}" for ort in ("gpu", "cpu")]
    return subprocess.run(["make", "-s", "-C", str(ROOT), *stamps, *args, f"BIN={bin_dir}"],
                          capture_output=True, text=True, timeout=600)


@needs_make
def test_make_install_puts_a_working_launcher_in_bin(tmp_path):
    bin_dir = tmp_path / "bin"
    result = _make("install", bin_dir=bin_dir)
    assert result.returncode == 0, result.stderr + result.stdout
    launcher = bin_dir / "vbg"
    assert os.access(launcher, os.X_OK)
    assert "not on your PATH" in result.stdout  # tmp_path/bin is not on PATH
    version = subprocess.run([str(launcher), "--version"], capture_output=True, text=True,
                             timeout=300, cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.strip() == f"vbg {vbg.__version__}"
    assert _make("install", bin_dir=bin_dir).returncode == 0  # again: replaces its own launcher
    assert _make("uninstall", bin_dir=bin_dir).returncode == 0
    assert not launcher.exists()


@needs_make
def test_make_install_keeps_a_vbg_it_did_not_make(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    other = bin_dir / "vbg"
    other.write_text("#!/bin/sh\necho pipx's vbg\n")
    result = _make("install", bin_dir=bin_dir)
    assert result.returncode != 0 and "is not this launcher" in result.stdout
    assert other.read_text() == "#!/bin/sh\necho pipx's vbg\n"


def test_the_systemd_unit_runs_the_launcher_make_install_writes():
    unit = (ROOT / "configs" / "vbg.service").read_text()
    assert re.search(r"^ExecStart=%h/\.local/bin/vbg ", unit, re.M)
    assert re.search(r"^BIN \?= \$\(HOME\)/\.local/bin$", (ROOT / "Makefile").read_text(), re.M)


def _requirement_names(lines: list[str]) -> dict[str, str]:
    found = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if line:
            name = re.split(r"[<>=!~\[ ]", line, maxsplit=1)[0].lower()
            found[name] = line[len(name):]
    return found


def test_cpu_requirements_are_pyprojects_with_the_cpu_onnxruntime():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = _requirement_names(project["dependencies"])
    cpu = _requirement_names((ROOT / "requirements-cpu.txt").read_text().splitlines())
    assert "onnxruntime-gpu" in wanted and "onnxruntime-gpu" not in cpu
    assert cpu.pop("onnxruntime") == wanted.pop("onnxruntime-gpu")
    assert cpu == wanted


def test_the_code_asks_for_the_onnxruntime_module_not_a_distribution():
    """Either wheel (onnxruntime or onnxruntime-gpu) provides `import onnxruntime`; nothing may
    look up one distribution's metadata by name."""
    for path in (ROOT / "vbg").rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"""(version|distribution|requires)\(\s*["']onnxruntime""", text), (
            f"{path} looks an onnxruntime distribution up by name")
