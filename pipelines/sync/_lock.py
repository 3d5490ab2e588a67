"""One run at a time per customer: an exclusive lock beside the customer's mail store, held for the run.

Dagster already queues one run per customer; this also covers the CLI and anything else that calls the engine
while a run is under way. `flock` is dropped by the kernel when a process dies, so a killed run never leaves
the customer locked.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipelines.sync._errors import NotConfigured, SyncBusy

RUN_LOCK_SUFFIX = ".run"


def run_lock_path(store_path: Path) -> Path:
    return store_path.with_name(store_path.name + RUN_LOCK_SUFFIX)


@contextmanager
def run_lock(store_path: Path, *, customer_id: str) -> Iterator[None]:
    """Hold the customer's run lock, or raise SyncBusy at once if another run holds it (NotConfigured when
    the data directory cannot hold it)."""
    path = run_lock_path(store_path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        in_the_way = isinstance(error, FileExistsError | NotADirectoryError)
        why = "a file is in the way of a directory" if in_the_way else (error.strerror or str(error))
        raise NotConfigured(
            f"the mail store of customer {customer_id!r} cannot go in {path.parent} "
            f"(MAILROOM_DATA_DIR/mail): {why}"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise SyncBusy(
            f"another run is working on the mail store of customer {customer_id!r}; "
            "try again when it has finished"
        ) from None
    try:
        yield
    finally:
        os.close(fd)
