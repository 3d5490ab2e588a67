"""Control-store queries for the Dagster sensor's bookkeeping of requests whose run has started.

A run marks its request running (`ControlStore.mark_request_running`) and finishes it when its op ends. A run
whose process was killed, or that was canceled, never finishes it; the sensor compares these requests with
their runs in the Dagster instance and settles them here.
"""

from __future__ import annotations

from pipelines.store._control_types import Request
from pipelines.store.control import ControlStore, _iso, _request


def requests_with_runs(control: ControlStore, *, limit: int = 500) -> list[Request]:
    """Submitted requests that a run has taken (oldest first): the ones whose run may have ended unseen."""
    with control._read() as con:
        rows = con.execute(
            """
            SELECT * FROM requests WHERE status = 'submitted' AND run_id IS NOT NULL ORDER BY id LIMIT ?
            """,
            (limit,),
        ).fetchall()
    return [_request(row) for row in rows]


def settle_request(control: ControlStore, request_id: int, run_id: str, *, error: str | None = None) -> bool:
    """Finish a request as its run `run_id` ended (failed with `error`, else succeeded), unless it is no
    longer submitted to that run: a run that finished it itself, or a later run that took it, has the last
    word. True if this settled it."""
    now = _iso(control._now())
    with control._write() as con:
        found = con.execute(
            """
            UPDATE requests SET status = ?, reason = ?, updated_at = ?, finished_at = ?
            WHERE id = ? AND status = 'submitted' AND run_id = ? RETURNING id
            """,
            ("failed" if error else "succeeded", error, now, now, request_id, run_id),
        ).fetchone()
    return found is not None
