"""A run's side of a recorded request: running when the work starts, succeeded or failed (with why) after."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from pipelines.defs.resources import MailroomStores

_REASON_MAX = 1000


def failure_reason(error: BaseException) -> str:
    """What the request records of a failure: the run's own description, or the error's type and text."""
    if isinstance(error, dg.Failure) and error.description:
        text = error.description
    else:
        text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return text if len(text) <= _REASON_MAX else text[: _REASON_MAX - 1] + "…"


@contextmanager
def carrying_out(stores: MailroomStores, request_id: int | None, run_id: str) -> Iterator[None]:
    """Mark the request as taken by this run, then finished with the outcome of the block (if any request)."""
    if request_id is None:
        yield
        return
    control = stores.control()
    control.mark_request_running(request_id, run_id)
    try:
        yield
    except BaseException as error:
        control.finish_request(request_id, error=failure_reason(error))
        raise
    control.finish_request(request_id)
