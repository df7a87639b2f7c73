"""Doctor checks for devices: cameras, the v4l2loopback module and the virtual camera."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from vbg.doctor.check import Check
from vbg.sinks import vcam

SYS, DEV = Path("/sys"), Path("/dev")
VIDEO_GROUP_FIX = "`sudo usermod -aG video $USER`, then log out and in again"


def _linux(platform: str | None = None) -> bool:
    return (platform or sys.platform).startswith("linux")


def _tool(name: str) -> str | None:
    return shutil.which(name) or next(
        (str(p) for d in ("/usr/sbin", "/sbin") if (p := Path(d) / name).is_file()), None)


def _run(cmd: list[str], timeout: float = 5) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None


def parse_v4l2_formats(text: str) -> dict[str, list[tuple[int, int, float]]]:
    """`v4l2-ctl --list-formats-ext` output -> {fourcc: [(w, h, best fps), ...]}."""
    formats: dict[str, list[tuple[int, int, float]]] = {}
    sizes: list[tuple[int, int, float]] | None = None
    for line in text.splitlines():
        if m := re.search(r"\[\d+\]: '(\w+)'", line):
            sizes = formats.setdefault(m.group(1), [])
        elif (m := re.search(r"Size: \w+ (\d+)x(\d+)", line)) and sizes is not None:
            sizes.append((int(m.group(1)), int(m.group(2)), 0.0))
        elif (m := re.search(r"\(([\d.]+) fps\)", line)) and sizes:
            w, h, fps = sizes[-1]
            sizes[-1] = (w, h, max(fps, float(m.group(1))))
    return formats


def summarize_formats(formats: dict[str, list[tuple[int, int, float]]], per_format: int = 3) -> str:
    parts = []
    for fourcc, sizes in formats.items():
        best = sorted(set(sizes), key=lambda s: (s[0] * s[1], s[2]), reverse=True)[:per_format]
        parts.append(f"{fourcc} " + ", ".join(f"{w}x{h}@{fps:g}" for w, h, fps in best))
    return "; ".join(parts) or "no formats listed"


def _probe_with_cv2(source: str | int) -> str:
    import cv2

    if isinstance(source, str):
        cap = cv2.VideoCapture(source, cv2.CAP_V4L2)
    else:
        cap = cv2.VideoCapture(source)
    try:
        if not cap.isOpened():
            return "OpenCV cannot open it"
        fourcc = int(cap.get(cv2.CAP_PROP_FOURCC))
        code = "".join(chr((fourcc >> (8 * i)) & 0xFF) for i in range(4)).strip("\0") or "?"
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        return f"{code} {w}x{h}@{cap.get(cv2.CAP_PROP_FPS):g} (OpenCV default mode)"
    finally:
        cap.release()


def describe_formats(path: str) -> str:
    """Formats and sizes of a camera: v4l2-ctl if installed, else what OpenCV opens."""
    tool = _tool("v4l2-ctl")
    if tool and (done := _run([tool, "-d", path, "--list-formats-ext"])) and done.returncode == 0:
        return summarize_formats(parse_v4l2_formats(done.stdout))
    return _probe_with_cv2(path) + " (install v4l-utils for the full list)"


def check_cameras(sys_root: Path = SYS, dev_root: Path = DEV,
                  platform: str | None = None) -> list[Check]:
    if not _linux(platform):
        found = _probe_with_cv2(0)
        if found.startswith("OpenCV cannot"):
            return [Check("camera", "fail", "no camera opens as camera 0",
                          "plug a webcam in; allow camera access for your terminal/Python in "
                          "the system privacy settings")]
        return [Check("camera", "ok", f"camera 0: {found}")]
    devices = vcam.list_video_devices(sys_root, dev_root)
    cameras = [d for d in devices if not d.loopback and d.can_capture is not False]
    if not cameras:
        seen = ", ".join(f"{d.path} {d.name!r}" for d in devices)
        found = ("no camera: there is no /dev/video* device at all" if not devices else
                 f"no camera: only virtual or metadata nodes ({seen})")
        fix = ("plug a webcam in and check the kernel sees it (`lsusb`, `sudo dmesg | grep -i "
               "uvc`); in a VM or container pass it through (e.g. `docker run --device "
               "/dev/video0`); if /dev/video* exists but is not listed, check `ls -l /dev/video*` "
               f"and {VIDEO_GROUP_FIX}. To try vbg without a camera: `vbg --camera clip.mp4`")
        return [Check("camera", "fail", found, fix)]
    usable = [d for d in cameras if d.error is None]
    checks = []
    for d in cameras:
        label = f"{d.path} {d.name!r}"
        if d.error is not None:
            fix = VIDEO_GROUP_FIX if "ermission" in d.error else "close other programs using it"
            checks.append(Check("camera", "warn" if usable else "fail",
                                f"{label} cannot be opened: {d.error}", fix))
        else:
            formats = describe_formats(d.path)
            checks.append(Check("camera", "ok", f"{label} ({d.driver}): {formats}"))
    return checks


def module_installed() -> str | None:
    """Where the v4l2loopback module file is for the running kernel, or None."""
    tool = _tool("modinfo")
    if tool and (done := _run([tool, "-n", "v4l2loopback"])) and done.returncode == 0:
        return done.stdout.strip() or "installed"
    base = Path("/lib/modules") / os.uname().release
    if base.is_dir():
        found = next(base.rglob("v4l2loopback.ko*"), None)
        return str(found) if found else None
    return None


def _params(module: Path) -> dict[str, str]:
    params = {}
    for p in sorted((module / "parameters").glob("*")):
        try:
            params[p.name] = p.read_text().strip()
        except OSError:
            continue  # some parameters are root-only
    return params


def check_loopback(sys_root: Path = SYS, dev_root: Path = DEV) -> list[Check]:
    module = sys_root / "module" / "v4l2loopback"
    if not module.is_dir():
        installed = module_installed()
        checks = [Check("v4l2loopback", "fail",
                        f"module installed ({installed}) but not loaded" if installed
                        else "module not installed, so there is no virtual camera device",
                        vcam.loopback_fix(installed=bool(installed)))]
        state = vcam.secure_boot_state()
        if state:
            checks.append(Check("secure boot", "info", state + (
                f": {vcam.SECURE_BOOT_HINT}" if state == "enabled" else "")))
        return checks
    version = (module / "version").read_text().strip() if (module / "version").is_file() else "?"
    params = _params(module)
    shown = {k: v for k, v in params.items() if k in ("exclusive_caps", "max_buffers", "devices")}
    detail = ", ".join(f"{k}={v.split(',')[0]}" for k, v in shown.items())
    loaded = f"module {version} loaded" + (f" ({detail})" if detail else "")
    checks = [Check("v4l2loopback", "ok", loaded)]
    devices = vcam.loopback_devices(sys_root, dev_root)
    ours = [p for p, name in devices if name == vcam.LABEL]
    reload = f"{vcam.reload_command()} (and at boot: {vcam.persist_command()})"
    if ours:
        path = ours[0]
        if os.access(path, os.W_OK) or not Path(path).exists():
            checks.append(Check("virtual camera", "ok", f"{path} is labelled {vcam.LABEL!r}"))
        else:
            checks.append(Check("virtual camera", "fail", f"{path} is not writable by you",
                                VIDEO_GROUP_FIX))
    elif devices:
        listed = ", ".join(f"{p} {n!r}" for p, n in devices)
        checks.append(Check("virtual camera", "warn",
                            f"no device labelled {vcam.LABEL!r} ({listed}); vbg will use the "
                            "first free loopback device", reload))
    else:
        checks.append(Check("virtual camera", "fail", "module loaded but it made no device",
                            reload))
    caps = params.get("exclusive_caps", "").split(",")[: max(1, len(devices))]
    if caps != [""] and not any(c.strip() in ("Y", "1") for c in caps):
        checks.append(Check("exclusive_caps", "warn",
                            "off: Chrome, Meet and Teams in a browser will not list the camera",
                            reload))
    return checks


def check_virtual_camera_open(sys_root: Path = SYS, dev_root: Path = DEV,
                              platform: str | None = None) -> list[Check]:
    """Open the virtual camera at 64x48 for a moment: what pyvirtualcam really does."""
    import pyvirtualcam

    version = pyvirtualcam.__version__
    if _linux(platform):
        device = vcam.find_loopback_device(sys_root=sys_root, dev_root=dev_root)
        device = device or next((p for p, _ in vcam.loopback_devices(sys_root, dev_root)), None)
        if device is None:
            return [Check("pyvirtualcam", "info",
                          f"{version}, v4l2loopback backend; not tried: no loopback device "
                          "(see v4l2loopback above)")]
        backend = "v4l2loopback"
    else:
        device, backend = None, None
    try:
        cam = pyvirtualcam.Camera(64, 48, 30, fmt=pyvirtualcam.PixelFormat.BGR, device=device,
                                  backend=backend)
    except Exception as e:
        message = str(e)
        if "busy" in message.lower():
            return [Check("pyvirtualcam", "warn", f"{version}: {device} is busy (is vbg already "
                          "running?)", "stop the other program writing to it, then re-run")]
        explained = vcam.explain_open_error(message, device, 64, 48, platform or sys.platform)
        found, _, fix = explained.partition("Fix:")
        fix = fix.replace(vcam.DOCTOR, "").rstrip()
        return [Check("pyvirtualcam", "fail", f"{version}: {found.strip()}",
                      fix or "see the v4l2loopback check above")]
    try:
        opened = f"{cam.device} ({cam.backend} backend, native format {cam.native_fmt})"
    finally:
        cam.close()
    return [Check("pyvirtualcam", "ok", f"{version}: opened {opened} at 64x48")]
