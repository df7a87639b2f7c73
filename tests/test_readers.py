"""The reader watcher: inotify open/close events on a stand-in device file, /proc counts."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from vbg.sinks.readers import ReaderWatcher, WatchError, holders, watch_support

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify: Linux")


@pytest.fixture
def device(tmp_path):
    path = tmp_path / "video10"
    path.write_bytes(b"")
    return path


@pytest.fixture
def watcher(device):
    w = ReaderWatcher(device).start()
    yield w
    w.close()


def test_open_and_close_in_this_process_count(watcher, device):
    assert watcher.readers == 0
    t0 = time.perf_counter()
    first = os.open(device, os.O_RDONLY)
    assert watcher.wait(True, 2.0)
    assert time.perf_counter() - t0 < 0.5
    assert watcher.readers == 1
    second = os.open(device, os.O_RDWR)  # IN_CLOSE_WRITE on close, not NOWRITE
    deadline = time.monotonic() + 2.0
    while watcher.readers != 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert watcher.readers == 2
    os.close(first)
    os.close(second)  # two closes in a row: inotify may merge them into one event
    assert watcher.wait(False, 2.0)
    assert watcher.readers == 0
    assert watcher.opens >= 1 and watcher.closes >= 1


def test_our_own_open_before_start_does_not_count(device):
    own = os.open(device, os.O_WRONLY)  # the sink's own open of the device
    try:
        w = ReaderWatcher(device).start()
        try:
            assert w.readers == 0
            with open(device, "rb"):
                assert w.wait(True, 2.0)
                assert w.readers == 1
            assert w.wait(False, 2.0)
        finally:
            w.close()
    finally:
        os.close(own)


def test_a_reader_in_another_process(watcher, device):
    child = subprocess.Popen(["sh", "-c", f"exec 3<'{device}'; exec sleep 30"])
    try:
        assert watcher.wait(True, 3.0)
        assert holders(device, exclude_pid=os.getpid()) == 1
    finally:
        child.kill()
        child.wait()
    assert watcher.wait(False, 3.0)


def test_a_reader_already_there_at_start_counts(device):
    child = subprocess.Popen(["sh", "-c", f"exec 3<'{device}'; exec sleep 30"])
    try:
        deadline = time.monotonic() + 3.0
        while holders(device) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        w = ReaderWatcher(device).start()
        try:
            assert w.readers == 1
        finally:
            w.close()
    finally:
        child.kill()
        child.wait()


def test_device_removed_means_unknown_not_idle(watcher, device):
    device.unlink()
    assert watcher.wait(True, 2.0)  # -1: unknown counts as a reader
    assert watcher.readers == -1


def test_missing_path_says_why(tmp_path):
    with pytest.raises(WatchError, match=r"cannot watch .*nothing"):
        ReaderWatcher(tmp_path / "nothing").start()


def test_close_twice_and_support_check(watcher):
    watcher.close()
    watcher.close()
    works, why = watch_support()
    assert works, why
