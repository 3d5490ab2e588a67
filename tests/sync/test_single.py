"""Single emails and whole customers against the sandbox: resync with a diff, deletes that survive syncs."""

from __future__ import annotations

import pytest

from pipelines.settings import Settings
from pipelines.store import FileQuery
from pipelines.sync import (
    InvalidRequest,
    SyncOptions,
    delete_customer,
    delete_emails,
    resync_emails,
    sync_customer,
)
from pipelines.sync._lock import run_lock_path
from sandbox import AdminClient
from tests.sync.conftest import MAILBOX, inbox
from tests.sync.truth import differences, expected_messages, folder_ids, stored_emails


def test_resync_reports_what_changed_and_writes_only_then(
    settings: Settings, customer: str, sandbox_admin: AdminClient
) -> None:
    sync_customer(customer, settings=settings)
    store = settings.mail_store(customer)
    first, second, third = inbox(sandbox_admin)[:3]
    file_id = store.get_email_by_message_id(first["id"]).file_id
    synced_at = store.get_email(file_id).last_synced_at

    unchanged = resync_emails(customer, file_ids=[file_id], settings=settings)
    [email] = unchanged.emails
    assert (email.outcome, email.changed_fields, email.file_id) == ("unchanged", [], file_id)
    assert store.get_email(file_id).last_synced_at == synced_at  # nothing written

    sandbox_admin.update_message(MAILBOX, first["id"], categories=["Travel"], isRead=not first["isRead"])
    sandbox_admin.delete_message(MAILBOX, third["id"])
    result = resync_emails(
        customer, file_ids=[file_id, 999_999], message_ids=[second["id"], third["id"]], settings=settings
    )
    outcomes = {e.message_id or e.file_id: e for e in result.emails}
    assert outcomes[first["id"]].outcome == "updated"
    assert {"categories", "is_read", "change_key"} <= set(outcomes[first["id"]].changed_fields)
    assert outcomes[second["id"]].outcome == "unchanged"
    assert outcomes[third["id"]].outcome == "gone"
    assert outcomes[999_999].outcome == "unknown"
    assert store.get_email(file_id).row.categories == ("Travel",)
    assert store.get_email_by_message_id(third["id"]).removed_at is not None
    # And the rest of the store is left as it was: the whole of it equals the Inbox, bodies too.
    truth = sandbox_admin.ground_truth(MAILBOX, bodies="html")
    expected = expected_messages(truth, folder_ids(truth, "Inbox"))
    assert differences(stored_emails(store.path), expected, bodies=True) == []
    with pytest.raises(InvalidRequest):
        resync_emails(customer, settings=settings)


def test_a_deleted_email_stays_deleted_until_a_resync(
    settings: Settings, customer: str, sandbox_admin: AdminClient
) -> None:
    sync_customer(customer, settings=settings)
    store = settings.mail_store(customer)
    kept, gone = inbox(sandbox_admin)[:2]
    kept_id = store.get_email_by_message_id(kept["id"]).file_id
    gone_id = store.get_email_by_message_id(gone["id"]).file_id

    deleted = delete_emails(customer, file_ids=[kept_id], keep_record=True, settings=settings)
    assert deleted.deleted == [kept_id]
    assert delete_emails(customer, file_ids=[gone_id, 424_242], settings=settings).not_found == [424_242]
    record = store.get_email(kept_id)
    assert record.file_contents_deleted
    assert record.row.body_html is None
    assert store.get_email(gone_id) is None

    # Both change in the mailbox, so the next round lists them again: they must not come back.
    sandbox_admin.update_message(MAILBOX, kept["id"], flag="flagged")
    sandbox_admin.update_message(MAILBOX, gone["id"], flag="flagged")
    result = sync_customer(customer, settings=settings)
    assert result.counts.skipped.get("tombstoned") == 2
    assert store.get_email(gone_id) is None
    assert store.get_email(kept_id).file_contents_deleted

    # A restart (the delta link lost) relists everything: still not back.
    sandbox_admin.invalidate_delta(mailbox=MAILBOX)
    assert sync_customer(customer, settings=settings).folders[0].restarted
    assert store.get_email(gone_id) is None
    assert store.get_email(kept_id).file_contents_deleted
    assert store.get_email(kept_id).removed_at is None  # a kept record is not swept as gone

    [lifted] = resync_emails(customer, file_ids=[kept_id], settings=settings).emails
    assert lifted.tombstone_lifted
    assert lifted.outcome == "updated"
    record = store.get_email(kept_id)
    assert not record.file_contents_deleted
    assert record.row.flag_status == "flagged"
    assert record.row.body_text


def test_delete_by_file_query_and_delete_a_customer(
    settings: Settings, customer: str, sandbox_admin: AdminClient
) -> None:
    sync_customer(customer, SyncOptions(attachments=True), settings=settings)
    store = settings.mail_store(customer)
    pdfs = store.list_files(FileQuery(kinds=["attachment"], name_contains=".pdf", limit=100))
    assert pdfs.count >= 2
    result = delete_emails(
        customer, query=FileQuery(kinds=["attachment"], name_contains=".pdf"), settings=settings
    )
    assert sorted(result.deleted) == sorted(f.file_id for f in pdfs.results)
    assert store.list_files(FileQuery(kinds=["attachment"], name_contains=".pdf")).count == 0
    sync_customer(customer, settings=settings)
    assert store.list_files(FileQuery(kinds=["attachment"], name_contains=".pdf")).count == 0

    gone = delete_customer(customer, settings=settings)
    assert gone.mail_store_deleted
    assert gone.customer_purged
    assert not store.exists()
    assert not run_lock_path(store.path).exists()
    assert settings.control_store().customer(customer, include_deleted=True) is None
    again = delete_customer(customer, settings=settings)
    assert not again.mail_store_deleted
    assert not again.customer_purged


def test_a_late_delete_run_leaves_a_customer_created_afresh_alone(
    settings: Settings, customer: str, sandbox_admin: AdminClient
) -> None:
    control = settings.control_store()
    control.mark_customers_deleted([customer])
    first = delete_customer(customer, only_if_deleted=True, settings=settings)
    assert first.customer_purged
    assert first.skipped is None

    # The id is free again: a new customer under it, synced. A second run for the old deletion (a retry,
    # a duplicate request) must not touch it.
    [fresh] = control.update_customers([customer])
    control.save_connection(fresh.id, MAILBOX, auth_kind="app")
    sync_customer(customer, settings=settings)
    held = settings.mail_store(customer).counts().emails

    late = delete_customer(customer, only_if_deleted=True, settings=settings)
    assert not late.mail_store_deleted
    assert not late.customer_purged
    assert "created since" in (late.skipped or "")
    assert settings.mail_store(customer).counts().emails == held > 0
    assert control.customer(customer).id == fresh.id

    # An operator's removal needs no mark: it hides the customer first, then removes everything.
    removed = delete_customer(customer, settings=settings)
    assert removed.mail_store_deleted
    assert removed.customer_purged
    gone = delete_customer(customer, only_if_deleted=True, settings=settings)
    assert gone.skipped == f"customer {customer!r} is no longer marked deleted: already purged"
