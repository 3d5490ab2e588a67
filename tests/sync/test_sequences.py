"""Sequences that combine what other tests take one at a time, each checked against the whole mailbox (bodies
too) after every step: a message moved out of the synced folders and back; one deleted in the mailbox after
Mailroom deleted it; a resync lifting a tombstone, then a changed filter; a 410 on the link of a sweeping
round that a failed run left half done."""

from __future__ import annotations

from collections.abc import Iterable

import duckdb
import pytest

import filters
from pipelines.settings import Settings
from pipelines.sync import (
    SyncFailed,
    SyncOptions,
    SyncProgress,
    delete_emails,
    resync_emails,
    sync_customer,
)
from sandbox import AdminClient, SandboxInfo
from tests.sync.conftest import MAILBOX, inbox, settings_for
from tests.sync.truth import differences, expected_messages, folder_ids, stored_emails


def store_differences(
    settings: Settings, customer: str, admin: AdminClient, filter: str = "", without: Iterable[str] = ()
) -> list[str]:
    """How the whole store differs from the Inbox under `filter`, less the messages `without`."""
    truth = admin.ground_truth(MAILBOX, bodies="html")
    expected = expected_messages(truth, folder_ids(truth, "Inbox"), filters.parse(filter))
    for message_id in without:
        expected.pop(message_id, None)
    return differences(stored_emails(settings.mail_store_path(customer)), expected, bodies=True)


def test_moved_out_and_back_between_syncs_and_across_them(
    settings: Settings, customer: str, sandbox_admin: AdminClient
) -> None:
    sync_customer(customer, settings=settings)
    store = settings.mail_store(customer)
    message = inbox(sandbox_admin)[0]
    file_id = store.get_email_by_message_id(message["id"]).file_id
    sandbox_admin.move_message(MAILBOX, message["id"], "archive")
    sandbox_admin.move_message(MAILBOX, message["id"], "inbox")
    sync_customer(customer, settings=settings)
    assert store_differences(settings, customer, sandbox_admin) == []

    sandbox_admin.move_message(MAILBOX, message["id"], "archive")
    assert sync_customer(customer, settings=settings).counts.deleted == 1
    assert store_differences(settings, customer, sandbox_admin) == []
    sandbox_admin.move_message(MAILBOX, message["id"], "inbox")
    assert sync_customer(customer, settings=settings).counts.inserted == 1
    assert store_differences(settings, customer, sandbox_admin) == []
    assert store.get_email_by_message_id(message["id"]).file_id == file_id


def test_deleted_through_mailroom_then_in_the_mailbox_then_resynced(
    settings: Settings, customer: str, sandbox_admin: AdminClient
) -> None:
    sync_customer(customer, settings=settings)
    store = settings.mail_store(customer)
    kept, dropped = inbox(sandbox_admin)[:2]
    kept_id = store.get_email_by_message_id(kept["id"]).file_id
    dropped_id = store.get_email_by_message_id(dropped["id"]).file_id
    delete_emails(customer, file_ids=[kept_id], keep_record=True, settings=settings)
    delete_emails(customer, file_ids=[dropped_id], settings=settings)
    for message in (kept, dropped):
        sandbox_admin.delete_message(MAILBOX, message["id"])
    sync_customer(customer, settings=settings)
    assert store_differences(settings, customer, sandbox_admin) == []
    assert store.get_email(kept_id).removed_at is not None

    result = resync_emails(customer, file_ids=[kept_id, dropped_id], settings=settings)
    assert sorted((e.file_id, e.outcome) for e in result.emails) == sorted(
        [(kept_id, "gone"), (dropped_id, "gone")]
    )
    assert store_differences(settings, customer, sandbox_admin) == []


def test_a_resync_lifts_a_tombstone_then_a_changed_filter_keeps_the_rule(
    settings: Settings, customer: str, sandbox_admin: AdminClient
) -> None:
    sync_customer(customer, settings=settings)
    store = settings.mail_store(customer)
    travel = next(m for m in inbox(sandbox_admin) if "Travel" in m["categories"])
    other = next(m for m in inbox(sandbox_admin) if "Travel" not in m["categories"])
    ids = [store.get_email_by_message_id(m["id"]).file_id for m in (travel, other)]
    delete_emails(customer, file_ids=ids, keep_record=True, settings=settings)
    [lifted] = resync_emails(customer, file_ids=ids[:1], settings=settings).emails
    assert (lifted.outcome, lifted.tombstone_lifted) == ("updated", True)
    assert store_differences(settings, customer, sandbox_admin, without=[other["id"]]) == []

    sync_customer(customer, SyncOptions(filter="category:Travel"), settings=settings)
    assert store_differences(settings, customer, sandbox_admin, "category:Travel") == []
    sync_customer(customer, settings=settings)  # every message again: the other one stays deleted
    assert store_differences(settings, customer, sandbox_admin, without=[other["id"]]) == []


def test_a_410_on_a_sweeping_round_left_half_done(
    sandbox_server: SandboxInfo, settings: Settings, customer: str, sandbox_admin: AdminClient
) -> None:
    small = settings_for(sandbox_server, settings.data_dir, delta_page_size=5, max_attempts=2)
    small = small.model_copy(update={"secret_key": settings.secret_key})
    sync_customer(customer, SyncOptions(batch_rows=5), settings=small)
    text = "after:2020/01/01"
    changed = SyncOptions(batch_rows=5, filter=text)  # a new filter: a round that sweeps when it ends

    def fail_once_a_batch_is_stored(progress: SyncProgress) -> None:
        # From the first stored batch on, Graph fails the round's pages: it stops half done, whatever the
        # machine's speed (a run lists at most a few pages ahead of what it has stored).
        if progress.seen and not sandbox_admin.faults().rules:
            sandbox_admin.add_rule(path="/messages/delta", times=0, status=500)

    with pytest.raises(SyncFailed):
        sync_customer(customer, changed, settings=small, progress=fail_once_a_batch_is_stored)
    [state] = small.mail_store(customer).sync_states()
    assert (state.status, state.sweep, state.filter_text) == ("in_round", True, text)
    assert state.next_link

    messages = inbox(sandbox_admin)
    for message in messages[:2] + messages[-2:]:  # some already relisted by the failed run, some not
        sandbox_admin.delete_message(MAILBOX, message["id"])
    sandbox_admin.update_message(MAILBOX, messages[10]["id"], categories=["Travel"])
    sandbox_admin.set_faults(rules=[])
    sandbox_admin.add_rule(path="/messages/delta", status=410, code="SyncStateNotFound")
    result = sync_customer(customer, changed, settings=small)
    assert [(f.round, f.restarted) for f in result.folders] == [("resumed", True)]
    assert result.counts.deleted == 4
    assert store_differences(settings, customer, sandbox_admin, text) == []


def test_a_move_stored_out_of_order_is_put_right_by_the_next_round(
    settings: Settings, customer: str, sandbox_admin: AdminClient
) -> None:
    # Two synced folders list at once. A message moved from the Inbox to the Archive while a run listed
    # both can reach the store twice: from the Archive's listing (after the move) and from the Inbox's
    # (before it), whose batch may be written last, leaving the row in the Inbox. The Inbox's next round
    # reports the message gone to the Archive, which this run syncs and which has already listed it.
    options = SyncOptions(folders=("inbox", "archive"))
    sync_customer(customer, options, settings=settings)
    message = inbox(sandbox_admin)[0]
    truth = sandbox_admin.ground_truth(MAILBOX)
    [inbox_id] = folder_ids(truth, "Inbox")
    sandbox_admin.move_message(MAILBOX, message["id"], "archive")
    sync_customer(customer, SyncOptions(folders=("archive",)), settings=settings)  # the Archive lists it
    path = settings.mail_store_path(customer)
    with duckdb.connect(str(path)) as con:  # and the Inbox's stale batch is written after
        con.execute(
            "UPDATE emails SET folder_id = ?, folder_path = 'Inbox' WHERE message_id = ?",
            [inbox_id, message["id"]],
        )

    result = sync_customer(customer, options, settings=settings)
    assert result.counts.moved == 1
    truth = sandbox_admin.ground_truth(MAILBOX, bodies="html")
    expected = expected_messages(truth, folder_ids(truth, "Inbox", "Archive"))
    assert differences(stored_emails(path), expected, bodies=True) == []
    assert settings.mail_store(customer).get_email_by_message_id(message["id"]).row.folder_path == "Archive"


def test_overlapping_folder_references_sync_each_folder_once(
    settings: Settings, customer: str, sandbox_admin: AdminClient
) -> None:
    truth = sandbox_admin.ground_truth(MAILBOX)
    [receipts] = folder_ids(truth, "Inbox/Receipts")
    # A path, its id, and a folder above both taken with its subfolders: every folder once, one round each.
    options = SyncOptions(folders=("Inbox/Receipts", receipts, "inbox"), subfolders=True)
    for round_ in ("first", "incremental"):
        result = sync_customer(customer, options, settings=settings)
        ids = [f.folder_id for f in result.folders]
        assert sorted(ids) == sorted(set(ids)) == sorted(folder_ids(truth, "Inbox", subfolders=True))
        assert {f.round for f in result.folders} == {round_}
        truth = sandbox_admin.ground_truth(MAILBOX, bodies="html")
        expected = expected_messages(truth, folder_ids(truth, "Inbox", subfolders=True))
        assert differences(stored_emails(settings.mail_store_path(customer)), expected, bodies=True) == []
        sandbox_admin.move_message(MAILBOX, inbox(sandbox_admin)[0]["id"], "Inbox/Receipts")
