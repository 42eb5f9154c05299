"""Child processes that die with their parent: the worker's ticker and scheduler, an embedded
redis-server.

A process killed with SIGKILL runs no cleanup, so its children cannot be stopped by it. On Linux
the kernel does it: `PR_SET_PDEATHSIG` (prctl(2)), set in the child, sends the child a signal the
moment its parent dies. This is chosen over a child polling `os.getppid()` because it needs no loop
in the child: RQ's scheduler and redis-server run loops of their own that we do not write, and the
signal arrives at once instead of a poll interval later. It survives `exec` (redis-server is
started through it) and is cleared on `fork`, so grandchildren (RQ's work horses) are untouched.

Elsewhere (macOS) prctl does not exist: `die_with_parent` returns False and `orphaned` is the
portable check a loop of our own can make.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int, sig: int = signal.SIGTERM) -> bool:
    """Ask the kernel to send `sig` to this process when its parent (`parent_pid`, taken before
    the fork) dies; call it in the child, right after the fork. Returns whether that is in place.
    If the parent is already gone (it died between the fork and the prctl), `sig` is sent now."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        return False
    if orphaned(parent_pid):
        os.kill(os.getpid(), sig)
    return True


def orphaned(parent_pid: int) -> bool:
    """Whether the process that started us is gone (we were adopted by another)."""
    return os.getppid() != parent_pid


def _exec_with_lifeline(argv: list[str]) -> None:
    """`python -I app/lifeline.py PARENT_PID PROGRAM [ARG...]`: become PROGRAM, bound to die (with
    SIGTERM) when the process PARENT_PID dies. How a shell script or a Python process starts a
    server it owns (the embedded redis-server) without a preexec_fn in a threaded parent."""
    if len(argv) < 2:
        sys.exit("usage: python -I app/lifeline.py PARENT_PID PROGRAM [ARG...]")
    die_with_parent(int(argv[0]))
    os.execv(argv[1], argv[1:])


if __name__ == "__main__":
    _exec_with_lifeline(sys.argv[1:])
