"""`vbg doctor`: every problem carries a fix; device checks on fake sysfs trees; model hashes."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from vbg import doctor, models
from vbg.doctor import Check
from vbg.doctor.devices import (
    check_cameras,
    check_loopback,
    check_virtual_camera_open,
    parse_v4l2_formats,
    summarize_formats,
)
from vbg.doctor.runtime import check_models, check_numba, check_onnxruntime, cuda_problem
from vbg.sinks import vcam

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sysfs is Linux only")


@pytest.fixture(scope="module")
def here() -> list[Check]:
    return doctor.collect()


def test_every_problem_has_a_fix(here):
    assert here, "doctor found nothing to say"
    for check in here:
        assert check.found
        if check.problem:
            assert check.fix.strip(), f"{check.name}: problem without a fix: {check.found}"


@linux_only
def test_this_machine_cannot_run_live_mode_and_says_why(here):
    if any(Path("/dev").glob("video*")) or Path("/sys/module/v4l2loopback").exists():
        pytest.skip("this machine has video devices or v4l2loopback")
    failed = {c.name for c in here if c.status == "fail"}
    assert {"camera", "v4l2loopback"} <= failed
    assert not doctor.live_ok(here)
    loopback = next(c for c in here if c.name == "v4l2loopback")
    assert "modprobe v4l2loopback" in loopback.fix and 'card_label="VBG Camera"' in loopback.fix


def test_software_checks_pass_here(here):
    by_name = {c.name: c for c in here}
    assert by_name["onnxruntime"].status == "ok"
    assert by_name["numba"].status in ("ok", "warn")
    assert by_name["model selfie-landscape"].status == "ok"
    assert "sha256 ok" in by_name["model selfie-landscape"].found


def test_json_output_and_exit_code(capsys):
    code = doctor.run(argparse.Namespace(json=True))
    report = json.loads(capsys.readouterr().out)
    assert code == (0 if report["live_ok"] else 1)
    assert {"name", "status", "found", "fix"} <= set(report["checks"][0])
    assert report["live_ok"] == all(c["status"] != "fail" for c in report["checks"])


def test_text_output_marks(capsys):
    doctor.run(argparse.Namespace(json=False))
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("[")]
    assert lines and all(line[:4] in ("[ok]", "[!!]", "[--]") for line in lines)
    assert "live mode" in out.splitlines()[-1]


def test_render_indents_multiline_fix():
    text = Check("x", "fail", "broken", "\n  1) a\n  2) b").render()
    assert text.splitlines() == ["[!!] x: broken", "     fix:", "       1) a", "       2) b"]
    with pytest.raises(ValueError):
        Check("x", "maybe", "?")


# --- models ------------------------------------------------------------------------------------

@pytest.fixture
def models_copy(tmp_path, monkeypatch):
    """VBG_MODELS_DIR -> a copy of models/ whose selfie model is truncated."""
    for f in models.REPO_MODELS_DIR.iterdir():
        if f.is_file():
            shutil.copy(f, tmp_path / f.name)
    broken = tmp_path / "selfie_segmentation.onnx"
    broken.write_bytes(broken.read_bytes()[:1000])
    monkeypatch.setenv("VBG_MODELS_DIR", str(tmp_path))
    models.manifest.cache_clear()
    yield tmp_path
    models.manifest.cache_clear()


def test_corrupt_model_is_reported_with_both_hashes(models_copy):
    checks = {c.name: c for c in check_models()}
    bad = checks["model selfie"]
    assert bad.status == "fail"
    expected = models.manifest()["selfie"]["sha256"]
    actual = models.sha256_file(models_copy / "selfie_segmentation.onnx")
    assert expected in bad.found and actual in bad.found
    assert "1000 bytes" in bad.found
    assert "git checkout -- vbg/models/bundled/selfie_segmentation.onnx" in bad.fix
    assert checks["model selfie-landscape"].status == "ok"


def test_missing_model_is_reported(models_copy):
    (models_copy / "face_detection_short_range.onnx").unlink()
    check = next(c for c in check_models() if c.name == "model face-short-range")
    assert check.status == "fail" and "missing" in check.found and check.fix


def test_onnxruntime_check_names_the_provider():
    checks = {c.name: c for c in check_onnxruntime()}
    assert checks["onnxruntime"].status == "ok"
    found = checks["onnxruntime"].found
    assert "runs on cpu" in found or "runs on cuda" in found
    assert "cuda" in checks


def test_cuda_problem_explains_and_fixes():
    reason, fix = cuda_problem(["libcublas.so.13", "libcuda.so.1"], driver_present=False)
    assert "no NVIDIA driver" in reason and "CUDA 13" in reason
    assert "driver" in fix and "vbg[cuda]" in fix
    reason, fix = cuda_problem([], driver_present=True)
    assert "fell back to CPU" in reason and fix


def test_numba_check_runs_a_parallel_kernel():
    check = check_numba()[0]
    assert check.status in ("ok", "warn")
    assert "threading layer" in check.found


# --- devices, on fake sysfs trees -----------------------------------------------------------------

def fake_node(sys_root: Path, dev_root: Path, n: int, name: str, virtual: bool) -> None:
    parent = ("devices/virtual/video4linux" if virtual
              else "devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0/video4linux")
    real = sys_root / parent / f"video{n}"
    real.mkdir(parents=True)
    (real / "name").write_text(name + "\n")
    link = sys_root / "class" / "video4linux" / f"video{n}"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(real, link.parent))
    dev_root.mkdir(exist_ok=True)
    (dev_root / f"video{n}").write_bytes(b"")  # a plain file: QUERYCAP fails on it


def fake_module(sys_root: Path, exclusive_caps: str = "Y,N,N,N") -> None:
    module = sys_root / "module" / "v4l2loopback"
    (module / "parameters").mkdir(parents=True)
    (module / "version").write_text("0.13.2\n")
    (module / "parameters" / "exclusive_caps").write_text(exclusive_caps + "\n")
    (module / "parameters" / "max_buffers").write_text("2\n")


@linux_only
def test_loopback_ready(tmp_path):
    fake_module(tmp_path)
    fake_node(tmp_path, tmp_path / "dev", 10, "VBG Camera", virtual=True)
    checks = check_loopback(tmp_path, tmp_path / "dev")
    assert [c.status for c in checks] == ["ok", "ok"]
    assert "0.13.2" in checks[0].found and "exclusive_caps=Y" in checks[0].found
    assert f"{tmp_path}/dev/video10" in checks[1].found


@linux_only
def test_loopback_without_label_or_exclusive_caps(tmp_path):
    fake_module(tmp_path, exclusive_caps="N,N,N,N")
    fake_node(tmp_path, tmp_path / "dev", 3, "Dummy video device", virtual=True)
    checks = {c.name: c for c in check_loopback(tmp_path, tmp_path / "dev")}
    assert checks["virtual camera"].status == "warn"
    assert "modprobe -r v4l2loopback" in checks["virtual camera"].fix
    assert checks["exclusive_caps"].status == "warn"
    assert "Chrome" in checks["exclusive_caps"].found and checks["exclusive_caps"].fix


@linux_only
def test_loopback_module_absent(tmp_path, monkeypatch):
    monkeypatch.setattr("vbg.doctor.devices.module_installed", lambda: None)
    check = check_loopback(tmp_path, tmp_path / "dev")[0]
    assert check.status == "fail" and "not installed" in check.found
    assert vcam.install_command() in check.fix and "modprobe v4l2loopback" in check.fix


@linux_only
def test_cameras_skip_loopback_and_report_unopenable(tmp_path):
    fake_node(tmp_path, tmp_path / "dev", 10, "VBG Camera", virtual=True)
    assert check_cameras(tmp_path, tmp_path / "dev")[0].found.startswith(
        "no camera: only virtual")
    fake_node(tmp_path, tmp_path / "dev", 0, "Integrated Camera", virtual=False)
    checks = check_cameras(tmp_path, tmp_path / "dev")
    assert len(checks) == 1
    assert "Integrated Camera" in checks[0].found and "cannot be opened" in checks[0].found
    assert checks[0].status == "fail" and checks[0].fix


@linux_only
def test_no_cameras_at_all(tmp_path):
    check = check_cameras(tmp_path, tmp_path / "dev")[0]
    assert check.status == "fail"
    assert "no /dev/video* device at all" in check.found
    assert "usermod -aG video" in check.fix


@linux_only
def test_virtual_camera_open_not_tried_without_device(tmp_path):
    check = check_virtual_camera_open(tmp_path, tmp_path / "dev")[0]
    assert check.status == "info" and "not tried" in check.found


@linux_only
def test_virtual_camera_open_failure_gives_fix(tmp_path):
    fake_node(tmp_path, tmp_path / "dev", 10, "VBG Camera", virtual=True)
    check = check_virtual_camera_open(tmp_path, tmp_path / "dev")[0]
    assert check.status == "fail"  # a plain file is no loopback device
    assert check.fix


def test_v4l2_formats_parsed():
    text = """ioctl: VIDIOC_ENUM_FMT
	Type: Video Capture

	[0]: 'MJPG' (Motion-JPEG, compressed)
		Size: Discrete 1280x720
			Interval: Discrete 0.033s (30.000 fps)
			Interval: Discrete 0.067s (15.000 fps)
		Size: Discrete 640x480
			Interval: Discrete 0.033s (30.000 fps)
	[1]: 'YUYV' (YUYV 4:2:2)
		Size: Discrete 640x480
			Interval: Discrete 0.033s (30.000 fps)
		Size: Discrete 1280x720
			Interval: Discrete 0.100s (10.000 fps)
"""
    formats = parse_v4l2_formats(text)
    assert formats == {"MJPG": [(1280, 720, 30.0), (640, 480, 30.0)],
                       "YUYV": [(640, 480, 30.0), (1280, 720, 10.0)]}
    assert summarize_formats(formats) == ("MJPG 1280x720@30, 640x480@30; "
                                          "YUYV 1280x720@10, 640x480@30")


def test_install_command_per_distro():
    assert vcam.install_command({"ubuntu", "debian"}).startswith("sudo apt install v4l2loopback")
    assert vcam.install_command({"fedora"}).startswith("sudo dnf install")
    assert vcam.install_command({"manjaro", "arch"}).startswith("sudo pacman -S")
    assert "apt" in vcam.install_command(set()) and "pacman" in vcam.install_command(set())


def test_persist_command_uses_shipped_configs(tmp_path):
    assert str(vcam.CONFIGS_DIR / "v4l2loopback.conf") in vcam.persist_command()
    assert "/etc/modules-load.d/" in vcam.persist_command()
    fallback = vcam.persist_command(tmp_path)  # configs/ not shipped (pip install)
    assert "sudo tee /etc/modprobe.d/v4l2loopback.conf" in fallback
    assert vcam.MODPROBE_OPTIONS in fallback


def test_shipped_configs_match_the_options():
    modprobe = (vcam.CONFIGS_DIR / "v4l2loopback.conf").read_text()
    assert f"options v4l2loopback {vcam.MODPROBE_OPTIONS}" in modprobe.splitlines()
    load = (vcam.CONFIGS_DIR / "vbg-modules-load.conf").read_text()
    assert "v4l2loopback" in [line.strip() for line in load.splitlines()]
    unit = (vcam.CONFIGS_DIR / "vbg.service").read_text()
    assert "ExecStart=%h/.local/bin/vbg --config %h/.config/vbg/config.toml" in unit
    assert "WantedBy=default.target" in unit


def test_doctor_says_whether_whole_frames_can_run_on_the_gpu(monkeypatch) -> None:
    import vbg.gpu
    from vbg.doctor.runtime import check_gpu_frames

    monkeypatch.setattr(vbg.gpu, "cuda_status", lambda: (False, "numba.cuda finds no GPU"))
    check = check_gpu_frames()
    assert check.status == "info" and "numba.cuda finds no GPU" in check.found
    assert "vbg[cuda]" in check.fix
    monkeypatch.setattr(vbg.gpu, "cuda_status", lambda: (True, "NVIDIA H100"))
    check = check_gpu_frames()
    assert check.status == "ok" and "NVIDIA H100" in check.found
