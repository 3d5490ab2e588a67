"""Deletes through Mailroom compared with the whole mailbox, not only the deleted ids: after a delete, the
syncs that follow (an incremental one and a restart) and a resync, the store holds exactly the Inbox as the
sandbox has it minus what was deleted, bodies included, so collateral damage (another row lost or changed)
fails too."""

from __future__ import annotations

from collections.abc import Iterable

from pipelines.settings import Settings
from pipelines.store import FileQuery, MailStore
from pipelines.sync import SyncOptions, delete_emails, resync_emails, sync_customer
from sandbox import AdminClient
from tests.sync.conftest import MAILBOX
from tests.sync.truth import differences, expected_messages, folder_ids, stored_emails


def inbox_differences(
    settings: Settings, customer: str, admin: AdminClient, without: Iterable[str] = ()
) -> list[str]:
    """How the whole store differs from the sandbox's Inbox less the messages `without` (bodies too)."""
    truth = admin.ground_truth(MAILBOX, bodies="html")
    expected = expected_messages(truth, folder_ids(truth, "Inbox"))
    for message_id in without:
        expected.pop(message_id)
    return differences(stored_emails(settings.mail_store_path(customer)), expected, bodies=True)


def test_deleted_emails_stay_out_and_nothing_else_changes(
    settings: Settings, customer: str, sandbox_admin: AdminClient
) -> None:
    sync_customer(customer, settings=settings)
    store = settings.mail_store(customer)
    inbox = [m for m in sandbox_admin.ground_truth(MAILBOX)["messages"] if m["folderPath"] == ["Inbox"]]
    kept, gone, changed = inbox[0], inbox[1], inbox[2]
    kept_id = store.get_email_by_message_id(kept["id"]).file_id
    gone_id = store.get_email_by_message_id(gone["id"]).file_id
    deleted = (kept["id"], gone["id"])

    delete_emails(customer, file_ids=[kept_id], keep_record=True, settings=settings)
    delete_emails(customer, file_ids=[gone_id], settings=settings)
    assert inbox_differences(settings, customer, sandbox_admin, deleted) == []

    # The deleted ones change in the mailbox (so the next round lists them), and so does the rest of it.
    for message in (kept, gone):
        sandbox_admin.update_message(MAILBOX, message["id"], flag="flagged")
    sandbox_admin.update_message(MAILBOX, changed["id"], categories=["Travel"], isRead=not changed["isRead"])
    sandbox_admin.add_message(MAILBOX, subject="Arrived after the delete", folder="inbox")
    sandbox_admin.delete_message(MAILBOX, inbox[3]["id"])
    assert sync_customer(customer, settings=settings).counts.skipped.get("tombstoned") == 2
    assert inbox_differences(settings, customer, sandbox_admin, deleted) == []

    sandbox_admin.invalidate_delta(mailbox=MAILBOX)  # a restart relists and sweeps the whole folder
    assert sync_customer(customer, settings=settings).folders[0].restarted
    assert inbox_differences(settings, customer, sandbox_admin, deleted) == []

    # A resync brings back the one whose record was kept, and only it.
    [back] = resync_emails(customer, file_ids=[kept_id], settings=settings).emails
    assert (back.outcome, back.tombstone_lifted, back.file_id) == ("updated", True, kept_id)
    assert inbox_differences(settings, customer, sandbox_admin, [gone["id"]]) == []
    sync_customer(customer, settings=settings)
    assert inbox_differences(settings, customer, sandbox_admin, [gone["id"]]) == []


def attachments_by_file(store: MailStore) -> dict[int, tuple]:
    """Every stored attachment: file id -> (its email, name, content state, content digest)."""
    page = store.list_files(FileQuery(kinds=["attachment"], limit=1000))
    found = {}
    for file in page.results:
        record = store.attachment(file.file_id)
        found[file.file_id] = (
            record.message_id,
            record.row.name,
            record.row.content_state,
            record.content_sha256,
        )
    return found


def test_deleting_attachments_leaves_their_emails_and_the_other_attachments_alone(
    settings: Settings, customer: str, sandbox_admin: AdminClient
) -> None:
    options = SyncOptions(attachments=True)
    sync_customer(customer, options, settings=settings)
    store = settings.mail_store(customer)
    before = attachments_by_file(store)
    pdfs = {f for f, (_, name, _, _) in before.items() if name.endswith(".pdf")}
    assert 2 <= len(pdfs) < len(before)

    result = delete_emails(
        customer, query=FileQuery(kinds=["attachment"], name_contains=".pdf"), settings=settings
    )
    assert sorted(result.deleted) == sorted(pdfs)
    remaining = {f: a for f, a in before.items() if f not in pdfs}
    assert attachments_by_file(store) == remaining
    assert inbox_differences(settings, customer, sandbox_admin) == []  # their emails are all still there

    sync_customer(customer, options, settings=settings)
    assert attachments_by_file(store) == remaining
    assert inbox_differences(settings, customer, sandbox_admin) == []
