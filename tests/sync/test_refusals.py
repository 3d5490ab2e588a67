"""A request the engine refuses changes nothing: not the mail store, not the connection's status (what
`/user_data_sources` reports), and no webhook goes out. Each refusal says what was wrong and where."""

from __future__ import annotations

import json
from dataclasses import astuple
from typing import Any

import pytest

from pipelines.settings import Settings
from pipelines.store import CustomerUpdate
from pipelines.sync import (
    CustomerNotFound,
    FolderNotFound,
    InvalidRequest,
    NotConfigured,
    SyncFailed,
    SyncOptions,
    resync_emails,
    sync_customer,
)
from sandbox import AdminClient
from tests.sync.truth import stored_emails


def snapshot(settings: Settings, customer: str) -> dict[str, Any]:
    """What a refused request must leave as it was: the store's emails, runs and rounds, the connection's
    status and times, and the webhook outbox."""
    control = settings.control_store()
    [connection] = control.connections(control.customer(customer).id)
    store = settings.mail_store(customer)
    return {
        "emails": stored_emails(store.path),
        "runs": [astuple(r) for r in store.runs(100)],
        "rounds": [astuple(s) for s in store.sync_states()],
        "connection": (
            connection.sync_status,
            connection.sync_error,
            connection.last_synced_at,
            connection.updated_at,
        ),
        "outbox": [(d.event_type, d.payload) for d in control.deliveries(limit=100)],
    }


def test_a_folder_that_does_not_exist_or_a_bad_filter_changes_nothing(
    settings: Settings, customer: str, sandbox_admin: AdminClient
) -> None:
    sync_customer(customer, settings=settings)
    settings.control_store().add_webhook("https://hooks.example.com/carbon")
    before = snapshot(settings, customer)
    assert before["connection"][0] == "READY"

    with pytest.raises(FolderNotFound, match=r"no folder 'Inbox/Recepits' .*did you mean 'Inbox/Receipts'"):
        sync_customer(customer, SyncOptions(folders=("inbox", "Inbox/Recepits")), settings=settings)
    assert snapshot(settings, customer) == before

    with pytest.raises(InvalidRequest, match="categroy"):
        sync_customer(customer, SyncOptions(filter="categroy:Work"), settings=settings)
    with pytest.raises(CustomerNotFound, match="'nobody'"):
        sync_customer("nobody", settings=settings)
    assert snapshot(settings, customer) == before
    assert not settings.mail_store_path("nobody").exists()


def test_a_recorded_request_for_a_folder_that_does_not_exist_learns_it_from_the_connection(
    settings: Settings, customer: str, sandbox_admin: AdminClient
) -> None:
    # The API records the request and marks the connection QUEUED_FOR_SYNCING; the run is its only answer.
    control = settings.control_store()
    control.add_webhook("https://hooks.example.com/carbon")
    [connection] = control.connections(control.customer(customer).id)
    control.record_connection_sync(connection.id, status="QUEUED_FOR_SYNCING")
    with pytest.raises(FolderNotFound):
        sync_customer(customer, SyncOptions(folders=("Inbox/Nope",), request_id="17"), settings=settings)
    [connection] = control.connections(control.customer(customer).id)
    assert connection.sync_status == "SYNC_ERROR"
    assert "no folder 'Inbox/Nope'" in (connection.sync_error or "")
    [event] = [json.loads(d.payload) for d in control.deliveries(limit=10)]
    assert event["webhook_type"] == "DATA_SOURCE_READY"
    assert event["obj"]["additional_information"]["sync_status"] == "SYNC_ERROR"


def test_a_default_folder_that_is_gone_is_the_connections_sync_error(
    settings: Settings, customer: str, sandbox_admin: AdminClient
) -> None:
    # Not the caller's request but the customer's settings: the data source cannot sync, and says why.
    control = settings.control_store()
    control.update_customers([customer], CustomerUpdate(default_folder="Inbox/Gone"))
    with pytest.raises(FolderNotFound):
        sync_customer(customer, settings=settings)
    [connection] = control.connections(control.customer(customer).id)
    assert connection.sync_status == "SYNC_ERROR"
    assert "no folder 'Inbox/Gone'" in (connection.sync_error or "")


def test_an_unusable_data_directory_is_a_clear_error(settings: Settings, customer: str) -> None:
    # A file where the mail stores' directory goes (a mistyped MAILROOM_DATA_DIR, a half-restored backup).
    (settings.data_dir / "mail").write_text("in the way")
    with pytest.raises(NotConfigured, match=r"/mail \(MAILROOM_DATA_DIR/mail\): a file is in the way"):
        sync_customer(customer, settings=settings)
    with pytest.raises(NotConfigured, match=r"/mail \(MAILROOM_DATA_DIR/mail\): a file is in the way"):
        resync_emails(customer, file_ids=[1], settings=settings)
    # A control store that is not a database: named, and left as it is.
    junk = settings.data_dir / "junk.sqlite3"
    junk.write_bytes(b"not a database " * 100)
    elsewhere = settings.model_copy(update={"control_db": junk})
    with pytest.raises(SyncFailed, match=rf"control store {junk}: file is not a database"):
        sync_customer(customer, settings=elsewhere)
    assert junk.read_bytes() == b"not a database " * 100
