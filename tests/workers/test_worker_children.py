"""A worker killed with SIGKILL leaves no process behind: its periodic ticker and RQ's scheduler
die with it (issue 9 item 11: both kept running, ringing and scheduling for a dead worker)."""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _alive_children(pid: int) -> dict[int, str]:
    """Living (not zombie) processes whose parent is `pid`, with their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and state != "Z":
            found[int(entry.name)] = cmdline
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_sigkill_of_the_worker_leaves_neither_its_ticker_nor_its_scheduler_running(
        app, processes):
    worker = processes.worker()
    deadline = time.monotonic() + 30
    while len(children := _alive_children(worker.pid)) < 2:  # the ticker, then the scheduler
        assert worker.poll() is None, "the worker exited"
        assert time.monotonic() < deadline, f"the worker's children did not start: {children}"
        time.sleep(0.1)

    os.kill(worker.pid, signal.SIGKILL)  # the worker alone, as the OOM killer would
    worker.wait()
    try:
        deadline = time.monotonic() + 5
        while left := {pid: cmd for pid, cmd in children.items() if _alive(pid)}:
            assert time.monotonic() < deadline, f"still running 5 s after the worker died: {left}"
            time.sleep(0.1)
    finally:  # on failure, don't leave them to the next tests
        for pid in children:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
