"""The single-email and customer jobs, run in-process on a test instance against the sandbox: resync,
delete (that the next sync does not undo), delete of the customer with its partition."""

import json

import dagster as dg
import pytest
from cryptography.fernet import Fernet

from pipelines.definitions import defs
from pipelines.defs import MailroomStores
from pipelines.defs._requests import plan_request
from pipelines.store import ControlStore, FileQuery
from sandbox import SandboxInfo

from .conftest import add_customer
from .test_assets import graph_resource


@pytest.fixture
def resources(stores: MailroomStores, sandbox_server: SandboxInfo) -> dict[str, object]:
    return {"stores": stores, "graph": graph_resource(sandbox_server)}


@pytest.fixture
def synced(instance: dg.DagsterInstance, control: ControlStore, resources: dict) -> str:
    add_customer(control, "alex", "alex@contoso.test")
    instance.add_dynamic_partitions("customers", ["alex"])
    assert run("sync_outlook_job", instance, resources, {}).success
    return "alex"


def run(job: str, instance: dg.DagsterInstance, resources: dict, config: dict, op: str = "outlook_emails"):
    return defs.resolve_job_def(job).execute_in_process(
        run_config={"ops": {op: {"config": config}}},
        instance=instance,
        partition_key="alex",
        resources=resources,
        raise_on_error=False,
    )


def emails(stores: MailroomStores) -> list[int]:
    found = stores.mail("alex", read_only=True).list_files(FileQuery(kinds=["email"], limit=1000))
    return [f.file_id for f in found.results]


def test_delete_then_sync_keeps_the_email_deleted(
    instance: dg.DagsterInstance, stores: MailroomStores, resources: dict, synced: str, control: ControlStore
) -> None:
    before = emails(stores)
    doomed = before[:2]
    request = control.record_request("delete_files", "alex", {"file_ids": doomed})
    deleted = run(
        "delete_emails_job",
        instance,
        resources,
        {"file_ids": doomed, "request_id": request.id},
        "delete_emails",
    )
    assert deleted.success
    assert control.request(request.id).status == "succeeded"
    assert set(emails(stores)) == set(before) - set(doomed)

    assert run("sync_outlook_job", instance, resources, {}).success
    assert set(emails(stores)) == set(before) - set(doomed)


def test_delete_by_message_id_sends_file_deleted_when_asked(
    instance: dg.DagsterInstance, stores: MailroomStores, resources: dict, synced: str, control: ControlStore
) -> None:
    # Only the registration seals a signing key; the run queues deliveries without the secret key.
    keyed = ControlStore(control.path, secret_key=Fernet.generate_key().decode())
    keyed.add_webhook("https://hooks.example.com/carbon")
    store = stores.mail("alex", read_only=True)
    before = emails(stores)
    first, second = before[:2]
    message = store.get_email(second).row.message_id
    request = control.record_request("delete_files", "alex", {"file_ids": [first], "send_webhook": True})
    # The sensor's config carries send_webhook; this run names the email by its message id instead.
    planned = plan_request(request, control).run.run_config["ops"]["delete_emails"]["config"]
    assert planned["send_webhook"] is True
    config = {**planned, "file_ids": [], "message_ids": [message, "AAMk-nobody"]}

    deleted = run("delete_emails_job", instance, resources, config, "delete_emails")

    assert deleted.success
    assert set(emails(stores)) == set(before) - {second}
    assert store.get_email(second) is None
    (output,) = [e for e in deleted.all_events if e.event_type_value == "STEP_OUTPUT"]
    metadata = output.event_specific_data.metadata
    assert metadata["deleted"].value == 1
    assert metadata["message_ids_not_found"].value == ["AAMk-nobody"]
    sent = [json.loads(d.payload) for d in control.deliveries()]
    assert [(e["webhook_type"], e["obj"]["object_id"]) for e in sent] == [("FILE_DELETED", str(second))]
    assert control.request(request.id).status == "succeeded"

    again = run("delete_emails_job", instance, resources, config, "delete_emails")  # a retried request
    assert again.success
    assert len(control.deliveries()) == 1, "a file deleted before is not announced again"


def test_resync_brings_a_deleted_email_back(
    instance: dg.DagsterInstance, stores: MailroomStores, resources: dict, synced: str
) -> None:
    (kept,) = emails(stores)[:1]
    store = stores.mail("alex", read_only=True)
    config = {"file_ids": [kept], "keep_record": True}
    assert run("delete_emails_job", instance, resources, config, "delete_emails").success
    assert store.get_email(kept).file_contents_deleted
    resynced = run("resync_emails_job", instance, resources, {"file_ids": [kept]}, "resync_emails")
    assert resynced.success
    assert not store.get_email(kept).file_contents_deleted
    assert store.get_email(kept).row.body_text


def test_a_resync_without_ids_fails_saying_so(
    instance: dg.DagsterInstance, resources: dict, synced: str
) -> None:
    result = run("resync_emails_job", instance, resources, {}, "resync_emails")
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert "file_ids or message_ids" in failure.step_failure_data.user_failure_data.description


def failure_of(result: dg.ExecuteInProcessResult) -> str:
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    data = failure.step_failure_data
    assert data.user_failure_data is not None, f"not a dg.Failure: {data.error.to_string()}"
    return data.user_failure_data.description


@pytest.mark.parametrize(
    ("job", "op", "config"),
    [
        ("sync_outlook_job", "outlook_emails", {}),
        ("resync_emails_job", "resync_emails", {"file_ids": [1]}),
        ("delete_emails_job", "delete_emails", {"file_ids": [1]}),
        ("delete_customer_job", "delete_customer", {}),
    ],
)
def test_a_run_without_a_customer_fails_saying_how_to_name_one(
    instance: dg.DagsterInstance, resources: dict, job: str, op: str, config: dict
) -> None:
    # `dagster job launch` without the partition tag: Dagster's own error was an invariant violation
    # ("Cannot access partition_key for a non-partitioned run").
    result = defs.resolve_job_def(job).execute_in_process(
        run_config={"ops": {op: {"config": config}}},
        instance=instance,
        resources=resources,
        raise_on_error=False,
    )
    description = failure_of(result)
    assert f"{job} runs for one customer and this run has none" in description
    assert '{"dagster/partition": "<customer id>"}' in description


@pytest.mark.parametrize(
    ("config", "says"),
    [
        (
            {"file_ids": [7, 2**64]},
            f"file_ids[1] is {2**64}, which is no file id (file ids are 1 to {2**63 - 1}",
        ),
        ({"file_ids": [-1]}, "file_ids[0] is -1, which is no file id"),
        ({"file_ids": [0]}, "file_ids[0] is 0, which is no file id"),
        ({"message_ids": ["AAMk", " "]}, "message_ids[1] is empty"),
    ],
)
@pytest.mark.parametrize(
    ("job", "op"), [("resync_emails_job", "resync_emails"), ("delete_emails_job", "delete_emails")]
)
def test_single_email_jobs_refuse_ids_that_name_no_file(
    instance: dg.DagsterInstance, resources: dict, synced: str, job: str, op: str, config: dict, says: str
) -> None:
    # The launchpad takes any integer: 2**64 reached the store and failed there with a TypeError, and -1
    # or 0 "succeeded" deleting nothing.
    assert says in failure_of(run(job, instance, resources, config, op))


@pytest.mark.parametrize(
    ("job", "op", "config"),
    [
        ("sync_outlook_job", "outlook_emails", {}),
        ("resync_emails_job", "resync_emails", {"file_ids": [1]}),
        ("delete_emails_job", "delete_emails", {"file_ids": [1]}),
    ],
)
def test_a_run_queued_before_its_customer_was_deleted_does_nothing_and_says_so(
    instance: dg.DagsterInstance,
    stores: MailroomStores,
    resources: dict,
    synced: str,
    control: ControlStore,
    job: str,
    op: str,
    config: dict,
) -> None:
    # The engine said "no customer 'alex' in the control store ...; add it with `mailroom customers add`".
    before = emails(stores)
    request = control.record_request("sync", "alex", {})
    control.mark_customers_deleted(["alex"])
    description = failure_of(run(job, instance, resources, config | {"request_id": request.id}, op))
    assert description.startswith("customer 'alex' was deleted before this run started (/delete_users")
    assert control.request(request.id).reason == description
    assert emails(stores) == before


def test_deleting_the_customer_removes_its_store_its_records_and_its_partition(
    instance: dg.DagsterInstance, stores: MailroomStores, resources: dict, synced: str, control: ControlStore
) -> None:
    control.mark_customers_deleted(["alex"])
    request = control.record_request("delete_users", "alex", {"customer_pk": 1})
    result = run("delete_customer_job", instance, resources, {"request_id": request.id}, "delete_customer")
    assert result.success
    assert not stores.mail("alex").exists()
    assert control.customer("alex", include_deleted=True) is None
    assert not instance.has_dynamic_partition("customers", "alex")
    assert control.request(request.id).status == "succeeded"


def test_a_delete_customer_run_for_a_customer_not_marked_deleted_removes_nothing(
    instance: dg.DagsterInstance, stores: MailroomStores, resources: dict, synced: str, control: ControlStore
) -> None:
    # The request of an earlier deletion, whose run comes after the id was given to a new customer.
    request = control.record_request("delete_users", "alex", {"customer_pk": 1})
    held = stores.mail("alex", read_only=True).counts().emails

    result = run("delete_customer_job", instance, resources, {"request_id": request.id}, "delete_customer")

    assert result.success
    assert stores.mail("alex", read_only=True).counts().emails == held > 0
    assert control.customer("alex") is not None
    assert instance.has_dynamic_partition("customers", "alex")
    (output,) = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    assert "created since" in output.event_specific_data.metadata["skipped"].value
    assert control.request(request.id).status == "succeeded"


def test_a_delete_customer_run_launched_by_hand_for_a_live_customer_fails_saying_what_deletes_one(
    instance: dg.DagsterInstance, stores: MailroomStores, resources: dict, synced: str, control: ControlStore
) -> None:
    # From the launchpad it "succeeded", having deleted nothing, with a skip reason about a customer
    # "created since" that never was.
    held = stores.mail("alex", read_only=True).counts().emails
    description = failure_of(run("delete_customer_job", instance, resources, {}, "delete_customer"))
    assert description.startswith("customer 'alex' is not deleted, so this run deletes nothing")
    assert "`mailroom customers remove alex --yes`" in description
    assert stores.mail("alex", read_only=True).counts().emails == held > 0
    assert instance.has_dynamic_partition("customers", "alex")
    # Once deleted (here as /delete_users does), a run by hand finishes the job.
    control.mark_customers_deleted(["alex"])
    assert run("delete_customer_job", instance, resources, {}, "delete_customer").success
    assert not stores.mail("alex").exists()


def _index_rebuilds(result: dg.ExecuteInProcessResult) -> list[str]:
    return [
        m.metadata["rebuilt_by"].value
        for m in result.asset_materializations_for_node(result.dagster_run.step_keys_to_execute[0])
        if m.asset_key.path == ["email_search_index"]
    ]


def test_single_email_jobs_keep_the_search_index_current(
    instance: dg.DagsterInstance, stores: MailroomStores, resources: dict, synced: str
) -> None:
    store = stores.mail("alex", read_only=True)
    assert store.search_index_status() == "current"  # the sync job built it
    (kept,) = emails(stores)[:1]
    subject = store.get_email(kept).row.subject

    deleted = run("delete_emails_job", instance, resources, {"file_ids": [kept]}, "delete_emails")
    assert deleted.success
    assert _index_rebuilds(deleted) == ["a delete"]
    assert kept not in [hit.file_id for hit in store.search(f'"{subject}"', limit=100)]
    repeated = run("delete_emails_job", instance, resources, {"file_ids": [kept]}, "delete_emails")
    assert repeated.success
    assert _index_rebuilds(repeated) == []  # nothing was deleted this time

    # Brought back by a resync (the deleted email's content was gone): the index must find it again.
    resynced = run("resync_emails_job", instance, resources, {"file_ids": [kept]}, "resync_emails")
    assert resynced.success
    assert _index_rebuilds(resynced) == ["a resync"]
    assert kept in [hit.file_id for hit in store.search(f'"{subject}"', limit=100)]
    assert store.search_index_status() == "current"

    unchanged = run("resync_emails_job", instance, resources, {"file_ids": [kept]}, "resync_emails")
    assert unchanged.success
    assert _index_rebuilds(unchanged) == []
