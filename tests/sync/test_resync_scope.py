"""A resync keeps the store equal to what the filter selects from the synced folders, as a sync does: a mail
moved out of them, or no longer matching the filter, leaves the store; a message id from a folder that is not
synced is refused; one that arrived in a synced folder since the last sync is stored. The whole store is
compared with the sandbox's ground truth after the resync and after the next sync."""

from __future__ import annotations

import filters
from pipelines.settings import Settings
from pipelines.sync import SyncOptions, resync_emails, sync_customer
from sandbox import AdminClient
from tests.sync.conftest import MAILBOX
from tests.sync.truth import differences, expected_messages, folder_ids, stored_emails


def store_differences(settings: Settings, customer: str, admin: AdminClient, filter: str = "") -> list[str]:
    """How the whole store differs from the Inbox as the sandbox holds it now, under `filter`, bodies too."""
    truth = admin.ground_truth(MAILBOX, bodies="html")
    expected = expected_messages(truth, folder_ids(truth, "Inbox"), filters.parse(filter))
    return differences(stored_emails(settings.mail_store_path(customer)), expected, bodies=True)


def messages_in(admin: AdminClient, *path: str) -> list[dict]:
    return [m for m in admin.ground_truth(MAILBOX)["messages"] if m["folderPath"] == list(path)]


def test_a_resync_stores_only_what_the_synced_folders_hold(
    settings: Settings, customer: str, sandbox_admin: AdminClient
) -> None:
    sync_customer(customer, settings=settings)  # the Inbox, every message
    store = settings.mail_store(customer)
    assert [s.filter_text for s in store.sync_states()] == [""]  # the round recorded its filter
    moved = messages_in(sandbox_admin, "Inbox")[0]
    moved_id = store.get_email_by_message_id(moved["id"]).file_id
    archived = messages_in(sandbox_admin, "Archive")[0]
    sandbox_admin.move_message(MAILBOX, moved["id"], "archive")
    arrived = sandbox_admin.add_message(MAILBOX, subject="Arrived after the sync", folder="inbox")["id"]

    result = resync_emails(
        customer, file_ids=[moved_id], message_ids=[archived["id"], arrived], settings=settings
    )
    outcomes = {e.message_id: e for e in result.emails}
    gone_out = outcomes[moved["id"]]
    assert (gone_out.outcome, gone_out.file_id) == ("out_of_scope", moved_id)
    assert gone_out.detail == (
        "removed from the store: it is in folder 'Archive', which this customer does not sync"
    )
    refused = outcomes[archived["id"]]
    assert (refused.outcome, refused.file_id) == ("out_of_scope", None)
    assert refused.detail == "not stored: it is in folder 'Archive', which this customer does not sync"
    new = outcomes[arrived]
    assert (new.outcome, new.changed_fields) == ("inserted", [])
    assert store.get_email(new.file_id).row.subject == "Arrived after the sync"

    assert store_differences(settings, customer, sandbox_admin) == []
    assert store.get_email_by_message_id(archived["id"]) is None
    assert store.get_email(moved_id).removed_at is not None
    sync_customer(customer, settings=settings)
    assert store_differences(settings, customer, sandbox_admin) == []

    # Moved back, it returns under the file id it always had.
    sandbox_admin.move_message(MAILBOX, moved["id"], "inbox")
    sync_customer(customer, settings=settings)
    assert store_differences(settings, customer, sandbox_admin) == []
    assert store.get_email_by_message_id(moved["id"]).file_id == moved_id


def test_a_resync_stores_only_what_the_filter_selects(
    settings: Settings, customer: str, sandbox_admin: AdminClient
) -> None:
    text = "category:Travel"
    sync_customer(customer, SyncOptions(filter=text), settings=settings)
    store = settings.mail_store(customer)
    assert [s.filter_text for s in store.sync_states()] == [text]
    inbox = messages_in(sandbox_admin, "Inbox")
    travel = [m for m in inbox if "Travel" in m["categories"]]
    other = next(m for m in inbox if "Travel" not in m["categories"])
    dropped, kept = travel[0], travel[1]
    dropped_id = store.get_email_by_message_id(dropped["id"]).file_id
    sandbox_admin.update_message(MAILBOX, dropped["id"], categories=["Work"])
    sandbox_admin.update_message(MAILBOX, kept["id"], isRead=not kept["isRead"])

    result = resync_emails(
        customer, file_ids=[dropped_id], message_ids=[kept["id"], other["id"]], settings=settings
    )
    outcomes = {e.message_id: e for e in result.emails}
    assert (outcomes[dropped["id"]].outcome, outcomes[dropped["id"]].detail) == (
        "out_of_scope",
        "removed from the store: it does not match the filter 'category:Travel' that folder 'Inbox' is "
        "synced with",
    )
    assert outcomes[kept["id"]].outcome == "updated"
    assert "is_read" in outcomes[kept["id"]].changed_fields
    assert (outcomes[other["id"]].outcome, outcomes[other["id"]].file_id) == ("out_of_scope", None)

    assert store_differences(settings, customer, sandbox_admin, text) == []
    sync_customer(customer, SyncOptions(filter=text), settings=settings)
    assert store_differences(settings, customer, sandbox_admin, text) == []
