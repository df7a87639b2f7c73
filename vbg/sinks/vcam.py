"""V4L2 device discovery (sysfs + VIDIOC_QUERYCAP) and the exact fixes for virtual-camera setup."""

from __future__ import annotations

import contextlib
import os
import re
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

from vbg.data import data_path

LABEL = "VBG Camera"
MODPROBE_OPTIONS = f'devices=1 video_nr=10 card_label="{LABEL}" exclusive_caps=1 max_buffers=2'
CONFIGS_DIR = data_path("system")  # copies of configs/ shipped as package data (wheels too)

_VIDIOC_QUERYCAP = 0x80685600  # _IOR('V', 0, struct v4l2_capability), 104 bytes
_CAP_VIDEO_CAPTURE = 0x00000001
_CAP_VIDEO_OUTPUT = 0x00000002
_CAP_VIDEO_CAPTURE_MPLANE = 0x00001000
_CAP_DEVICE_CAPS = 0x80000000
LOOPBACK_DRIVER = "v4l2 loopback"


@dataclass
class VideoDevice:
    """One /dev/videoN node as sysfs and VIDIOC_QUERYCAP describe it."""

    path: str
    index: int
    name: str  # sysfs card name, e.g. "Integrated Camera" or "VBG Camera"
    virtual: bool  # under /sys/devices/virtual (v4l2loopback and friends)
    driver: str | None = None  # from QUERYCAP, None if the node could not be opened
    caps: int | None = None
    error: str | None = None  # why QUERYCAP failed (permissions, busy, ...)

    @property
    def loopback(self) -> bool:
        return self.driver == LOOPBACK_DRIVER or (self.driver is None and self.virtual)

    @property
    def can_capture(self) -> bool | None:
        """True for a node that delivers video (not a UVC metadata node); None if unknown."""
        if self.caps is None:
            return None
        return bool(self.caps & (_CAP_VIDEO_CAPTURE | _CAP_VIDEO_CAPTURE_MPLANE))


def _index(path: Path) -> int:
    digits = re.sub(r"\D", "", path.name)
    return int(digits) if digits else -1


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def query_caps(path: str) -> tuple[str, int]:
    """(driver, device capabilities) of a V4L2 node; raises OSError when it cannot be opened."""
    import fcntl  # POSIX only; this module is imported on every platform

    buf = bytearray(104)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        fcntl.ioctl(fd, _VIDIOC_QUERYCAP, buf)
    finally:
        os.close(fd)
    driver = bytes(buf[0:16]).split(b"\0", 1)[0].decode(errors="replace")
    capabilities, device_caps = struct.unpack_from("<II", buf, 84)
    return driver, device_caps if capabilities & _CAP_DEVICE_CAPS else capabilities


def list_video_devices(sys_root: Path = Path("/sys"), dev_root: Path = Path("/dev"),
                       query: bool = True) -> list[VideoDevice]:
    """Every video4linux node, sorted by number; `query` also opens each for QUERYCAP."""
    devices = []
    class_dir = sys_root / "class" / "video4linux"
    entries = sorted(class_dir.glob("video*"), key=_index) if class_dir.is_dir() else []
    for entry in entries:
        real = str(entry.resolve())
        device = VideoDevice(
            path=str(dev_root / entry.name), index=_index(entry),
            name=_read(entry / "name") or "", virtual="/devices/virtual/" in real,
        )
        if query:
            try:
                device.driver, device.caps = query_caps(device.path)
            except OSError as e:
                device.error = e.strerror or str(e)
        devices.append(device)
    return devices


def loopback_devices(sys_root: Path = Path("/sys"), dev_root: Path = Path("/dev")
                     ) -> list[tuple[str, str]]:
    """(device path, card label) of every virtual video4linux node (v4l2loopback's)."""
    virtual = sys_root / "devices" / "virtual" / "video4linux"
    if not virtual.is_dir():
        return []
    return [(str(dev_root / e.name), _read(e / "name") or "")
            for e in sorted(virtual.glob("video*"), key=_index)]


def find_loopback_device(label: str = LABEL, sys_root: Path = Path("/sys"),
                         dev_root: Path = Path("/dev")) -> str | None:
    """/dev/videoN of the v4l2loopback device whose card label is `label`, or None."""
    for path, name in loopback_devices(sys_root, dev_root):
        if name == label:
            return path
    return None


def linux_distro(os_release: Path = Path("/etc/os-release")) -> set[str]:
    """ID and ID_LIKE words of /etc/os-release, e.g. {"ubuntu", "debian"}."""
    words: set[str] = set()
    for line in (_read(os_release) or "").splitlines():
        key, _, value = line.partition("=")
        if key in ("ID", "ID_LIKE"):
            words.update(value.strip('"').lower().split())
    return words


def install_command(distro: set[str] | None = None) -> str:
    """The package-manager command that installs v4l2loopback on this distribution."""
    distro = linux_distro() if distro is None else distro
    commands = {
        "debian": "sudo apt install v4l2loopback-dkms v4l2loopback-utils",
        "fedora": "sudo dnf install v4l2loopback  # from RPM Fusion (free)",
        "arch": "sudo pacman -S v4l2loopback-dkms linux-headers",
        "suse": "sudo zypper install v4l2loopback-kmp-default",
    }
    aliases = {"ubuntu": "debian", "rhel": "fedora", "centos": "fedora", "manjaro": "arch",
               "opensuse": "suse", "sles": "suse"}
    for word in sorted(distro):
        key = aliases.get(word, word)
        if key in commands:
            return commands[key]
    return (f"{commands['debian']}  (Fedora: sudo dnf install v4l2loopback; "
            f"Arch: sudo pacman -S v4l2loopback-dkms)")


def modprobe_command() -> str:
    return f"sudo modprobe v4l2loopback {MODPROBE_OPTIONS}"


def reload_command() -> str:
    return f"sudo modprobe -r v4l2loopback && {modprobe_command()}"


def persist_command(configs_dir: Path = CONFIGS_DIR) -> str:
    """Commands that load the module with vbg's options at every boot."""
    modprobe_conf = configs_dir / "v4l2loopback.conf"
    load_conf = configs_dir / "vbg-modules-load.conf"
    if modprobe_conf.is_file() and load_conf.is_file():
        return (f"sudo cp {modprobe_conf} /etc/modprobe.d/v4l2loopback.conf && "
                f"sudo cp {load_conf} /etc/modules-load.d/vbg.conf")
    return (f"echo 'options v4l2loopback {MODPROBE_OPTIONS}' | "
            "sudo tee /etc/modprobe.d/v4l2loopback.conf && "
            "echo v4l2loopback | sudo tee /etc/modules-load.d/vbg.conf")


SECURE_BOOT_HINT = (
    "With Secure Boot on, the kernel refuses the unsigned module (modprobe: 'Key was rejected "
    "by service'): enrol the DKMS signing key (Ubuntu: `sudo update-secureboot-policy "
    "--enroll-key`; others: `sudo mokutil --import /var/lib/dkms/mok.pub`) and reboot, "
    "or turn Secure Boot off."
)
OBS_FIX = (
    "install OBS Studio 28 or newer (https://obsproject.com), open it once and click "
    "'Start Virtual Camera', then 'Stop Virtual Camera' (macOS 13+: allow the OBS system "
    "extension in System Settings > Privacy & Security), then run vbg again"
)
DOCTOR = "Run `vbg doctor` to check every step."


def loopback_fix(installed: bool = False) -> str:
    """The whole fix for 'no v4l2loopback device': install, load, persist, Secure Boot."""
    steps = [] if installed else [f"install it:  {install_command()}"]
    steps += [f"load it:     {modprobe_command()}",
              f"every boot:  {persist_command()}"]
    lines = [f"  {i}) {step}" for i, step in enumerate(steps, 1)]
    return "\n" + "\n".join([*lines, f"  {SECURE_BOOT_HINT}"])


def explain_open_error(message: str, device: str | None, width: int, height: int,
                       platform: str = sys.platform) -> str:
    """One clear SinkError message, with the fix, for a pyvirtualcam.Camera failure."""
    said = f"(pyvirtualcam: {' | '.join(message.strip().splitlines())})"
    if not platform.startswith("linux"):
        return (f"no virtual camera: OBS Virtual Camera is not available {said}. "
                f"Fix: {OBS_FIX}. {DOCTOR}")
    target = device or "the v4l2loopback device"
    if "No v4l2 loopback device found" in message:
        return (f"no virtual camera: the v4l2loopback kernel module is not loaded, so there is no "
                f"/dev/video* loopback device {said}. Fix:{loopback_fix()}\n{DOCTOR}")
    if "missing permissions" in message or "Permission denied" in message:
        return (f"cannot open {target}: permission denied {said}. Fix: "
                "`sudo usermod -aG video $USER`, then log out and in again. " + DOCTOR)
    if "does not exist" in message:
        return (f"virtual camera device {target} does not exist {said}. Fix: leave the device "
                f"unset to use the '{LABEL}' loopback device, or pick one listed by "
                f"`v4l2-ctl --list-devices`; if none is listed:{loopback_fix()}\n{DOCTOR}")
    if "not a video output device" in message or "is not a V4L2 device" in message:
        return (f"{target} is not a v4l2loopback device (a real camera?) {said}. Fix: choose the "
                f"'{LABEL}' device (see `v4l2-ctl --list-devices`) or leave the device unset. "
                + DOCTOR)
    if "Invalid argument" in message or "Errno 22" in message:
        return (f"{target} refused the format {width}x{height} {said}. Either another program "
                f"writes to it with another size (stop it), or the v4l2loopback module is too old. "
                f"Fix: update v4l2loopback (your distribution's current package or "
                f"https://github.com/umlaeute/v4l2loopback), then reload it: {reload_command()}. "
                + DOCTOR)
    if "busy" in message.lower() or "already in use" in message:
        return (f"{target} is busy {said}: another program (another vbg?) is writing to it. "
                f"Fix: stop that program, or add a second device with `{reload_command()}` "
                "using devices=2. " + DOCTOR)
    return f"the virtual camera cannot be opened {said}. {DOCTOR}"


def secure_boot_state() -> str | None:
    """'enabled'/'disabled' from `mokutil --sb-state`, None if unknown."""
    import shutil
    import subprocess

    if not shutil.which("mokutil"):
        return None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["mokutil", "--sb-state"], capture_output=True, text=True,
                             timeout=5).stdout.lower()
        if "enabled" in out:
            return "enabled"
        if "disabled" in out:
            return "disabled"
    return None
