"""`api_requests_sensor` evaluated with `build_sensor_context`: requests become partitions and runs in one
result, keyed by request id; bad requests are refused with a reason and never block the good ones."""

import sqlite3

import dagster as dg
import pytest

from pipelines.defs import MailroomStores, api_requests_sensor
from pipelines.store import ControlStore

from .conftest import add_customer


def evaluate(instance: dg.DagsterInstance, stores: MailroomStores) -> dg.SensorResult | dg.SkipReason:
    context = dg.build_sensor_context(instance=instance, resources={"stores": stores})
    return api_requests_sensor(context)


def added_partitions(result: dg.SensorResult) -> list[str]:
    return [key for request in result.dynamic_partitions_requests for key in request.partition_keys]


def test_each_kind_of_request_becomes_its_run(
    instance: dg.DagsterInstance, stores: MailroomStores, control: ControlStore
) -> None:
    acme = add_customer(control, "acme")
    add_customer(control, "newco", mailbox=None)
    sync = control.record_request(
        "sync",
        "acme",
        {
            "folder": "Inbox/Receipts",
            "filter_text": "has:attachment",
            "sync_attachments": True,
            "data_source_id": control.connections(acme.id)[0].id,
            "trigger": "connect",
        },
    )
    resync = control.record_request("resync", "acme", {"file_ids": [4], "message_ids": ["AAMk-1"]})
    delete = control.record_request(
        "delete_files", "acme", {"file_ids": [5, 6], "preserve_file_record": True}
    )
    update = control.record_request("update_users", "newco", {"auto_sync_enabled_sources": ["OUTLOOK"]})
    add_customer(control, "leaving")
    control.mark_customers_deleted(["leaving"])
    leave = control.record_request("delete_users", "leaving", {"customer_pk": 3})

    result = evaluate(instance, stores)

    assert isinstance(result, dg.SensorResult)
    assert sorted(added_partitions(result)) == ["acme", "leaving", "newco"]
    runs = {run.run_key: run for run in result.run_requests}
    assert set(runs) == {sync.run_key, resync.run_key, delete.run_key, leave.run_key}
    assert runs[sync.run_key].job_name == "sync_outlook_job"
    assert runs[sync.run_key].partition_key == "acme"
    assert runs[sync.run_key].tags == {
        "dagster/partition": "acme",
        "customer": "acme",
        "trigger": "connect",
        "mailroom/request": str(sync.id),
    }
    sync_config = runs[sync.run_key].run_config["ops"]["outlook_emails"]["config"]
    assert sync_config["folders"] == ["Inbox/Receipts"]
    assert sync_config["filter"] == "has:attachment"
    assert sync_config["attachments"] is True
    assert sync_config["request_id"] == sync.id
    assert runs[resync.run_key].job_name == "resync_emails_job"
    assert runs[resync.run_key].run_config["ops"]["resync_emails"]["config"]["file_ids"] == [4]
    assert runs[delete.run_key].job_name == "delete_emails_job"
    assert runs[delete.run_key].run_config["ops"]["delete_emails"]["config"]["keep_record"] is True
    assert runs[leave.run_key].job_name == "delete_customer_job"
    assert runs[leave.run_key].partition_key == "leaving"
    assert all(run.tags["trigger"] == "api" for key, run in runs.items() if key != sync.run_key)
    # Requests that became runs wait for them; the settings-only request is done.
    assert control.request(sync.id).status == "submitted"
    assert control.request(update.id).status == "succeeded"


def test_bad_requests_are_refused_with_a_reason_and_do_not_block_others(
    instance: dg.DagsterInstance, stores: MailroomStores, control: ControlStore
) -> None:
    add_customer(control, "acme")
    add_customer(control, "unplugged", mailbox=None)
    bad_filter = control.record_request("sync", "acme", {"filter_text": "categroy:Work"})
    good = control.record_request("sync", "acme", {"folder": "Inbox"})
    stranger = control.record_request("sync", "nobody", {})
    unplugged = control.record_request("sync", "unplugged", {})
    malformed = control.record_request("resync", "acme", {"file_ids": "seven"})
    empty = control.record_request("resync", "acme", {})
    also_good = control.record_request("delete_files", "acme", {"file_ids": [1]})

    result = evaluate(instance, stores)

    assert isinstance(result, dg.SensorResult)
    assert sorted(run.run_key for run in result.run_requests) == sorted([good.run_key, also_good.run_key])
    reasons = {r.id: control.request(r.id) for r in (bad_filter, stranger, unplugged, malformed, empty)}
    assert all(r.status == "failed" for r in reasons.values())
    assert "unknown key 'categroy'" in reasons[bad_filter.id].reason
    assert "did you mean 'category'" in reasons[bad_filter.id].reason
    assert "'nobody' does not exist" in reasons[stranger.id].reason
    assert "no live Outlook connection" in reasons[unplugged.id].reason
    assert "file_ids" in reasons[malformed.id].reason
    assert "no file ids and no message ids" in reasons[empty.id].reason
    # Refused requests are finished: once its partitions exist, the next tick has nothing to do.
    instance.add_dynamic_partitions("customers", added_partitions(result))
    assert isinstance(evaluate(instance, stores), dg.SkipReason)


def test_a_request_claimed_twice_is_reconciled_with_its_run(
    instance: dg.DagsterInstance, stores: MailroomStores, control: ControlStore
) -> None:
    add_customer(control, "acme")
    done, failed, running, lost = (control.record_request("sync", "acme", {}) for _ in range(4))
    first = evaluate(instance, stores)
    assert isinstance(first, dg.SensorResult)
    assert len(first.run_requests) == 4
    # The daemon made runs for three of them (one of which is still running); the fourth never started.
    for request, status in ((done, "SUCCESS"), (failed, "FAILURE"), (running, "STARTED")):
        instance.add_run(
            dg.DagsterRun(
                job_name="sync_outlook_job",
                run_id=f"run-{request.id}",
                status=dg.DagsterRunStatus[status],
                tags={"dagster/run_key": request.run_key, "dagster/partition": "acme"},
            )
        )
    _age_claims(control)

    second = evaluate(instance, stores)

    assert isinstance(second, dg.SensorResult)
    assert [run.run_key for run in second.run_requests] == [lost.run_key]
    assert control.request(done.id).status == "succeeded"
    assert control.request(failed.id).status == "failed"
    assert f"run run-{failed.id} ended FAILURE" in control.request(failed.id).reason
    assert control.request(running.id).run_id == f"run-{running.id}"
    assert control.request(running.id).status == "submitted"


def test_a_quiet_tick_skips(
    instance: dg.DagsterInstance, stores: MailroomStores, control: ControlStore
) -> None:
    result = evaluate(instance, stores)
    assert isinstance(result, dg.SkipReason)
    assert "no recorded requests" in (result.skip_message or "")


@pytest.mark.parametrize("kind", ["update_users", "sync"])
def test_a_partition_that_exists_is_not_added_again(
    instance: dg.DagsterInstance, stores: MailroomStores, control: ControlStore, kind: str
) -> None:
    add_customer(control, "acme")
    instance.add_dynamic_partitions("customers", ["acme"])
    control.record_request(kind, "acme", {})  # type: ignore[arg-type]
    result = evaluate(instance, stores)
    assert isinstance(result, dg.SensorResult)
    assert added_partitions(result) == []


def _age_claims(control: ControlStore) -> None:
    """Let the claims' lease run out, as if the tick that made them had died minutes ago."""
    with sqlite3.connect(control.path) as con:
        con.execute(
            "UPDATE requests SET submitted_at = '2000-01-01T00:00:00.000000Z' WHERE status = 'submitted'"
        )


def test_every_auto_synced_customer_gets_a_partition_without_a_request(
    instance: dg.DagsterInstance, stores: MailroomStores, control: ControlStore
) -> None:
    add_customer(control, "auto")
    add_customer(control, "manual", auto_sync=False)
    result = evaluate(instance, stores)
    assert isinstance(result, dg.SensorResult)
    assert added_partitions(result) == ["auto"]
    assert result.run_requests == []
    instance.add_dynamic_partitions("customers", ["auto"])
    assert isinstance(evaluate(instance, stores), dg.SkipReason)


RETRY = "dagster/auto_retry_run_id"  # the tag the daemon puts on a failed run it launched again


def _run(instance: dg.DagsterInstance, run_id: str, status: str, **tags: str) -> dg.DagsterRun:
    return instance.add_run(
        dg.DagsterRun(
            job_name="sync_outlook_job",
            run_id=run_id,
            status=dg.DagsterRunStatus[status],
            tags={"dagster/partition": "acme", **tags},
        )
    )


def test_requests_whose_run_ended_without_finishing_them_are_settled(
    instance: dg.DagsterInstance, stores: MailroomStores, control: ControlStore
) -> None:
    add_customer(control, "acme")
    instance.add_dynamic_partitions("customers", ["acme"])
    names = ("killed", "canceled", "succeeded", "running", "retrying", "retried", "vanished", "finished")
    requests = {name: control.record_request("sync", "acme", {}) for name in names}
    evaluate(instance, stores)  # claims them all
    for name, request in requests.items():
        control.mark_request_running(request.id, f"run-{name}")  # what each run's op does first
    # A run whose process was killed, as the run monitor or an operator marks it; one canceled in the UI.
    instance.report_run_failed(_run(instance, "run-killed", "STARTED"), "the run worker disappeared")
    instance.report_run_canceled(_run(instance, "run-canceled", "CANCELING"), "canceled in the UI")
    _run(instance, "run-succeeded", "SUCCESS")
    _run(instance, "run-running", "STARTED")
    # Failed, and the daemon will launch it again: the request waits for the retry.
    _run(instance, "run-retrying", "FAILURE", **{"dagster/will_retry": "true"})
    # Failed and retried: the retry's outcome is the request's.
    _run(instance, "run-retried", "FAILURE", **{"dagster/will_retry": "true", RETRY: "run-retry-2"})
    _run(instance, "run-retry-2", "SUCCESS", **{"dagster/parent_run_id": "run-retried"})
    # A run that finished its request itself keeps its word.
    _run(instance, "run-finished", "FAILURE")
    control.finish_request(requests["finished"].id, error="bad filter: its own reason")

    result = evaluate(instance, stores)

    assert isinstance(result, dg.SkipReason)
    assert "settled 5" in (result.skip_message or "")
    now = {name: control.request(request.id) for name, request in requests.items()}
    assert now["killed"].status == "failed"
    assert "run run-killed ended FAILURE: the run worker disappeared" in now["killed"].reason
    assert now["canceled"].status == "failed"
    assert "run run-canceled ended CANCELED: canceled in the UI" in now["canceled"].reason
    assert now["succeeded"].status == "succeeded"
    assert now["retried"].status == "succeeded"
    assert now["vanished"].status == "failed"
    assert "run-vanished is no longer in the Dagster instance" in now["vanished"].reason
    assert now["running"].status == now["retrying"].status == "submitted"
    assert now["finished"].reason == "bad filter: its own reason"

    # The retry starts and fails for good: the next tick settles that request too.
    _run(instance, "run-retry-1", "FAILURE", **{"dagster/parent_run_id": "run-retrying"})
    instance.add_run_tags("run-retrying", {RETRY: "run-retry-1"})
    evaluate(instance, stores)
    assert control.request(requests["retrying"].id).status == "failed"
    assert "run run-retry-1 ended FAILURE" in control.request(requests["retrying"].id).reason
    assert control.request(requests["running"].id).status == "submitted"
