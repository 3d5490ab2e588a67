"""`outlook_auto_sync_schedule` evaluated with `build_schedule_context`: due customers get a run, the others
don't, and a tick evaluated twice asks for the same runs (run keys); plus the clock it rests on."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from pipelines.defs import MailroomStores, outlook_auto_sync_schedule
from pipelines.defs._clock import DUE_SLACK, STALE_GRACE, SyncClock
from pipelines.store import ControlStore

from .conftest import add_customer

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def evaluate(
    instance: dg.DagsterInstance, stores: MailroomStores, when: datetime = NOW
) -> list[dg.RunRequest]:
    context = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=when, resources={"stores": stores}
    )
    results = list(outlook_auto_sync_schedule(context))
    return [r for r in results if isinstance(r, dg.RunRequest)]


def synced_at(control: ControlStore, customer_pk: int, when: datetime) -> None:
    """Stamp the customer's connection as synced at `when` (as a finished sync does)."""
    past = ControlStore(control.path, clock=lambda: when)
    (connection,) = control.connections(customer_pk)
    past.record_connection_sync(connection.id, status="READY", synced=True)


@pytest.fixture
def fleet(instance: dg.DagsterInstance, control: ControlStore) -> dict[str, int]:
    """Customers in every situation the schedule tells apart; each has a partition unless said otherwise."""
    pks = {
        "never-synced": add_customer(control, "never-synced").id,
        "fresh": add_customer(control, "fresh").id,
        "three-hourly": add_customer(control, "three-hourly", interval_minutes=180).id,
        "daily-overdue": add_customer(control, "daily-overdue").id,
        "auto-sync-off": add_customer(control, "auto-sync-off", auto_sync=False).id,
        "unconnected": add_customer(control, "unconnected", mailbox=None).id,
        "no-partition": add_customer(control, "no-partition").id,
        "busy": add_customer(control, "busy").id,
    }
    synced_at(control, pks["fresh"], NOW - timedelta(hours=2))
    synced_at(control, pks["three-hourly"], NOW - timedelta(hours=3, minutes=1))
    synced_at(control, pks["daily-overdue"], NOW - timedelta(hours=25))
    instance.add_dynamic_partitions("customers", [c for c in pks if c != "no-partition"])
    instance.add_run(
        dg.DagsterRun(
            job_name="sync_outlook_job",
            run_id="busy-run",
            status=dg.DagsterRunStatus.STARTED,
            tags={"dagster/partition": "busy"},
        )
    )
    return pks


def test_due_customers_get_one_run_each(
    instance: dg.DagsterInstance, stores: MailroomStores, fleet: dict[str, int]
) -> None:
    runs = evaluate(instance, stores)
    assert sorted(r.partition_key for r in runs) == ["daily-overdue", "never-synced", "three-hourly"]
    for run in runs:
        assert run.tags == {
            "dagster/partition": run.partition_key,
            "customer": run.partition_key,
            "trigger": "schedule",
        }
        assert run.run_key == f"{run.partition_key}@{NOW:%Y-%m-%dT%H:%M}"


def test_the_same_tick_twice_requests_the_same_runs(
    instance: dg.DagsterInstance, stores: MailroomStores, fleet: dict[str, int]
) -> None:
    assert [r.run_key for r in evaluate(instance, stores)] == [r.run_key for r in evaluate(instance, stores)]


def test_a_finished_sync_makes_a_customer_fresh(
    instance: dg.DagsterInstance, stores: MailroomStores, control: ControlStore, fleet: dict[str, int]
) -> None:
    synced_at(control, fleet["never-synced"], NOW - timedelta(minutes=3))
    assert "never-synced" not in {r.partition_key for r in evaluate(instance, stores)}


def test_the_next_tick_asks_again_while_a_customer_stays_due(
    instance: dg.DagsterInstance, stores: MailroomStores, fleet: dict[str, int]
) -> None:
    later = evaluate(instance, stores, NOW + timedelta(hours=1))
    assert "daily-overdue" in {r.partition_key for r in later}
    assert all(r.run_key.endswith(f"@{NOW + timedelta(hours=1):%Y-%m-%dT%H:%M}") for r in later)


def test_nobody_due_is_a_skip(
    instance: dg.DagsterInstance, stores: MailroomStores, control: ControlStore
) -> None:
    synced_at(control, add_customer(control, "fresh").id, NOW - timedelta(minutes=5))
    context = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=NOW, resources={"stores": stores}
    )
    (result,) = outlook_auto_sync_schedule(context)
    assert isinstance(result, dg.SkipReason)
    assert "no customer due" in (result.skip_message or "")


@pytest.mark.parametrize(
    ("age", "interval", "due", "stale"),
    [
        (None, timedelta(hours=24), True, False),
        (timedelta(hours=23), timedelta(hours=24), False, False),
        (timedelta(hours=24) - DUE_SLACK, timedelta(hours=24), True, False),
        (timedelta(hours=24) - DUE_SLACK - timedelta(seconds=1), timedelta(hours=24), False, False),
        (timedelta(hours=24) + STALE_GRACE, timedelta(hours=24), True, False),
        (timedelta(hours=24) + STALE_GRACE + timedelta(seconds=1), timedelta(hours=24), True, True),
        (timedelta(hours=3), timedelta(hours=3), True, False),
        (timedelta(minutes=5), timedelta(minutes=5), True, False),
    ],
)
def test_clock(age: timedelta | None, interval: timedelta, due: bool, stale: bool) -> None:
    clock = SyncClock(
        "c", interval, None if age is None else NOW - age, created_at=NOW - timedelta(minutes=1)
    )
    assert clock.is_due(NOW) is due
    assert clock.is_stale(NOW) is stale


def test_a_customer_that_never_synced_goes_stale_from_when_it_was_added() -> None:
    added = NOW - timedelta(hours=26)
    assert SyncClock("c", timedelta(hours=24), None, created_at=added).is_stale(NOW)
    assert not SyncClock("c", timedelta(hours=24), None, created_at=NOW - timedelta(hours=2)).is_stale(NOW)
