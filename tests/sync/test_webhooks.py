"""Carbon's webhooks from runs, queued in the control store's outbox: what a failed sync stored and the
error that stopped it, a refused connection, a resync that fails (FILE_ERROR) or works (FILE_READY), and
FILE_DELETED only for the files a delete actually deleted, only when asked."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipelines.settings import Settings
from pipelines.store import ControlStore
from pipelines.sync import (
    ConnectionRefused,
    SyncFailed,
    SyncOptions,
    delete_emails,
    resync_emails,
    sync_customer,
)
from sandbox import AdminClient, SandboxInfo
from tests.sync.conftest import CUSTOMER, MAILBOX, settings_for


def events(control: ControlStore) -> list[dict[str, Any]]:
    """The queued events, oldest first, decoded as a receiver would read them."""
    return [json.loads(d.payload) for d in reversed(control.deliveries(limit=10_000))]


def of_type(found: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in found if e["webhook_type"] == kind]


def file_ids(found: list[dict[str, Any]]) -> list[int]:
    return sorted(int(e["obj"]["object_id"]) for e in found)


@pytest.fixture
def control(settings: Settings, customer: str) -> ControlStore:
    control = settings.control_store()
    control.add_webhook("https://hooks.example.com/carbon")
    return control


def test_a_failed_sync_reports_what_it_stored_and_the_error(
    sandbox_server: SandboxInfo,
    settings: Settings,
    customer: str,
    control: ControlStore,
    sandbox_admin: AdminClient,
) -> None:
    small = settings_for(sandbox_server, settings.data_dir, delta_page_size=10, max_attempts=2)
    small = small.model_copy(update={"secret_key": settings.secret_key})
    sandbox_admin.add_rule(path="/messages/delta", nth=4, times=2, status=500)  # both tries of one page
    with pytest.raises(SyncFailed) as caught:
        sync_customer(customer, SyncOptions(batch_rows=10, request_id="req-7"), settings=small)
    failed = caught.value.result
    assert failed.created_file_ids  # it stored pages before the storm

    found = events(control)
    [source] = of_type(found, "DATA_SOURCE_READY")
    connection = control.connection(failed.connection_id)
    assert source["obj"]["object_type"] == "DATA_SOURCE"
    assert source["obj"]["object_id"] == str(connection.id)
    info = source["obj"]["additional_information"]
    assert info["sync_status"] == "SYNC_ERROR" == connection.sync_status
    assert info["sync_error_message"] == connection.sync_error == str(caught.value)
    assert "500" in info["sync_error_message"]
    assert info["request_id"] == "req-7"
    # What it stored is in the store and listed, so receivers hear of it as of any sync's files.
    assert file_ids(of_type(found, "FILE_READY")) == failed.created_file_ids
    created = [int(i) for e in of_type(found, "FILES_CREATED") for i in e["obj"]["object_id"]]
    assert sorted(created) == failed.created_file_ids
    assert found[-1]["webhook_type"] == "DATA_SOURCE_READY"  # the data source's event comes last

    # The next run resumes and succeeds: its data source event says READY, without an error.
    sync_customer(customer, SyncOptions(batch_rows=10), settings=small)
    latest = of_type(events(control), "DATA_SOURCE_READY")[-1]["obj"]["additional_information"]
    assert latest["sync_status"] == "READY"
    assert "sync_error_message" not in latest


def test_a_refused_connection_reports_a_sync_error_and_nothing_else(
    settings: Settings, customer: str, control: ControlStore, sandbox_admin: AdminClient
) -> None:
    sandbox_admin.add_rule(path="/users/", times=0, status=401, code="InvalidAuthenticationToken")
    with pytest.raises(ConnectionRefused) as caught:
        sync_customer(customer, settings=settings)

    [event] = events(control)
    assert event["webhook_type"] == "DATA_SOURCE_READY"
    assert event["customer_id"] == CUSTOMER
    info = event["obj"]["additional_information"]
    assert info["sync_status"] == "SYNC_ERROR"
    assert info["sync_error_message"] == str(caught.value)
    assert "connected again" in info["sync_error_message"]
    assert str(caught.value).count(f"({MAILBOX})") == 1  # the connection named once, not twice


def test_a_resync_reports_file_error_when_it_fails_and_file_ready_when_it_works(
    settings: Settings, customer: str, control: ControlStore, sandbox_admin: AdminClient
) -> None:
    sync_customer(customer, settings=settings)
    store = settings.mail_store(customer)
    inbox = [m for m in sandbox_admin.ground_truth(MAILBOX)["messages"] if m["folderPath"] == ["Inbox"]]
    named = [store.get_email_by_message_id(m["id"]).file_id for m in inbox[:2]]
    before = len(events(control))

    sandbox_admin.add_rule(path="/users/", times=0, status=401, code="InvalidAuthenticationToken")
    with pytest.raises(ConnectionRefused) as caught:
        resync_emails(customer, file_ids=[*named, 999_999], request_id="req-9", settings=settings)
    errors = events(control)[before:]
    assert {e["webhook_type"] for e in errors} == {"FILE_ERROR"}
    assert file_ids(errors) == sorted(named)  # the unknown file id is nobody's file
    info = errors[0]["obj"]["additional_information"]
    assert info == {"request_id": "req-9", "sync_error_message": str(caught.value)}

    sandbox_admin.set_faults(rules=[])
    before = len(events(control))
    resync_emails(customer, file_ids=named, settings=settings)
    ready = events(control)[before:]
    assert {e["webhook_type"] for e in ready} == {"FILE_READY"}
    assert file_ids(ready) == sorted(named)


def test_file_deleted_only_for_what_the_delete_deleted_and_only_when_asked(
    settings: Settings, customer: str, control: ControlStore, sandbox_admin: AdminClient
) -> None:
    sync_customer(customer, settings=settings)
    store = settings.mail_store(customer)
    inbox = [m for m in sandbox_admin.ground_truth(MAILBOX)["messages"] if m["folderPath"] == ["Inbox"]]
    first, second, third = (store.get_email_by_message_id(m["id"]).file_id for m in inbox[:3])
    before = len(events(control))

    quiet = delete_emails(customer, file_ids=[first], settings=settings)
    assert quiet.deleted == [first]
    assert len(events(control)) == before

    loud = delete_emails(
        customer,
        file_ids=[second, first, 424_242],
        message_ids=[inbox[2]["id"], "AAMk-nobody"],
        send_webhook=True,
        settings=settings,
    )
    # A delete is idempotent: a file deleted before is reported deleted (the store holds its tombstone).
    assert sorted(loud.deleted) == sorted([first, second, third])
    assert loud.not_found == [424_242]
    assert loud.message_ids_not_found == ["AAMk-nobody"]
    deleted = events(control)[before:]
    assert {e["webhook_type"] for e in deleted} == {"FILE_DELETED"}
    # Announced: what this delete deleted, not `first`, deleted before (a retried request repeats nothing).
    assert sorted(loud.newly_deleted) == sorted([second, third])
    assert file_ids(deleted) == sorted(loud.newly_deleted)
    assert {e["customer_id"] for e in deleted} == {CUSTOMER}
