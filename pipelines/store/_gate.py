"""A writer-preferring gate in front of a DuckDB file, shared by every process that uses the store.

DuckDB refuses a writer while any reader has the file open, and answers at once, so under a steady stream of
API reads a sync run's retries could starve. Before opening the file, readers pass a turnstile and hold the
room shared; a writer takes the turnstile and keeps it (new readers queue behind it) and then waits for the
room to empty. `flock` locks belong to an open file description, so threads of one process exclude each other
too, and the kernel drops them when a process dies.
"""

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipelines.store._errors import StoreBusy
from pipelines.store._paths import gate_paths

_POLL_FIRST, _POLL_MAX = 0.001, 0.05


def _acquire(path: Path, mode: int, deadline: float) -> int:
    """Open `path` and flock it in `mode`, polling until `deadline`; the descriptor holds the lock."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    delay = _POLL_FIRST
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise StoreBusy(
                    f"{path.name}: another process kept the store busy past the time out"
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, _POLL_MAX)


@contextmanager
def gate(store_path: Path, *, writer: bool, timeout: float) -> Iterator[None]:
    """Hold the gate: shared for a reader, exclusive for a writer."""
    turnstile, room = gate_paths(store_path)
    deadline = time.monotonic() + timeout
    held = [_acquire(turnstile, fcntl.LOCK_EX, deadline)]
    try:
        held.append(_acquire(room, fcntl.LOCK_EX if writer else fcntl.LOCK_SH, deadline))
        if not writer:
            # Readers only pass the turnstile; a writer stays in it so that new readers queue behind it.
            os.close(held.pop(0))
        yield
    finally:
        for fd in held:
            os.close(fd)  # closing the descriptor releases its lock
