"""When each customer was last synced, and whether it is due (for the schedule) or stale (for the check).

The last sync comes from the control store: the engine stamps a connection when a sync of it finishes, whoever
ran it (a Dagster run, `mailroom sync`). One query for every customer, where asking the Dagster instance for
each partition's latest materialization costs one query per customer (3 s per 1,000 customers, measured).
Never from DuckDB: the schedule and the sensor run in the daemon, beside the runs that write it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import dagster as dg

from pipelines.defs import _tags
from pipelines.store import Customer

# The schedule ticks hourly; a sync that ended a few minutes after the hour should still be due at the same
# hour a day later, not an hour after that. (A tenth of the interval at most, for short intervals.)
DUE_SLACK = timedelta(minutes=10)
# A customer is stale when its last sync is older than its interval plus one schedule period (the sync for
# a due customer starts at the next hourly tick, not at the very moment it falls due).
STALE_GRACE = timedelta(hours=1)

IN_FLIGHT = (
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
)
FINISHED = (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)


@dataclass(frozen=True, slots=True)
class SyncClock:
    """One auto-synced customer's interval and last finished sync (None: never)."""

    customer_id: str
    interval: timedelta
    last_sync: datetime | None
    created_at: datetime

    def is_due(self, now: datetime) -> bool:
        slack = min(DUE_SLACK, self.interval / 10)
        return self.last_sync is None or now - self.last_sync >= self.interval - slack

    def age(self, now: datetime) -> timedelta:
        """How long since the last sync, or since the customer was added if it never synced."""
        return now - (self.last_sync or self.created_at)

    def is_stale(self, now: datetime) -> bool:
        return self.age(now) > self.interval + STALE_GRACE


def sync_clocks(auto_synced: Iterable[tuple[Customer, datetime | None]]) -> list[SyncClock]:
    """A clock per auto-synced customer, from `ControlStore.auto_sync_customers()`."""
    return [
        SyncClock(
            customer_id=customer.customer_id,
            interval=timedelta(minutes=customer.interval_minutes),
            last_sync=last_sync,
            created_at=customer.created_at,
        )
        for customer, last_sync in auto_synced
    ]


def partitions_in_flight(instance: dg.DagsterInstance, job_name: str) -> set[str]:
    """The partitions with a run of `job_name` queued or running."""
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=job_name, statuses=list(IN_FLIGHT)))
    return {run.tags[_tags.PARTITION] for run in runs if _tags.PARTITION in run.tags}
