"""Run callables at the same moment, each in its own thread, released together by a barrier."""
from __future__ import annotations

import threading
from typing import Callable


def run_together(calls: list[Callable[[], object]], timeout: float = 60) -> list[object]:
    """Return each call's result (in order); re-raise the first exception any call raised."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(i: int, call: Callable[[], object]) -> None:
        barrier.wait()
        try:
            results[i] = call()
        except BaseException as exc:  # surfaced to the test below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    if any(thread.is_alive() for thread in threads):
        raise AssertionError(f"calls still running after {timeout}s")
    if errors:
        raise errors[0]
    return results
