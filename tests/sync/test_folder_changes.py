"""Folders that change in the mailbox between syncs. The folder tree is walked only when needed, and runs
resolve folders from the records of the last walk, so those records must follow the mailbox: a deleted
folder's mail leaves the store and a path that now names another folder (deleted and made anew, as people
do) finds that one, in the same run; a renamed folder's mail takes the new path when a walk sees it."""

from __future__ import annotations

import duckdb
import pytest

from pipelines.settings import Settings
from pipelines.sync import FolderNotFound, SyncOptions, sync_customer
from sandbox import AdminClient
from tests.sync.conftest import MAILBOX
from tests.sync.truth import differences, expected_messages, folder_ids, stored_emails


def test_a_path_whose_folder_was_deleted_and_made_anew_syncs_the_new_folder(
    settings: Settings, customer: str, sandbox_admin: AdminClient
) -> None:
    truth = sandbox_admin.ground_truth(MAILBOX)
    [old] = folder_ids(truth, "Inbox/Ünïcødé Ördner")  # a folder without subfolders plays the old one
    [new] = folder_ids(truth, "Inbox/Receipts")
    sync_customer(customer, SyncOptions(folders=(old,)), settings=settings)
    path = settings.mail_store_path(customer)
    assert stored_emails(path)
    # As the store would be had the old folder been 'Inbox/Receipts' when last walked and synced...
    with duckdb.connect(str(path)) as con:
        con.execute("DELETE FROM folders WHERE folder_id = ?", [new])
        con.execute("UPDATE folders SET path = 'Inbox/Receipts' WHERE folder_id = ?", [old])
        con.execute("UPDATE emails SET folder_path = 'Inbox/Receipts' WHERE folder_id = ?", [old])
    # ...and then it was deleted from the mailbox (Graph answers 404 for it), and a new one took its name.
    sandbox_admin.add_rule(path=old, times=0, status=404, code="ErrorItemNotFound")

    options = SyncOptions(folders=("Inbox/Receipts",))
    result = sync_customer(customer, options, settings=settings)
    assert [(f.folder_id, f.round) for f in result.folders] == [(old, "gone"), (new, "first")]
    expected = expected_messages(truth, [new])
    assert differences(stored_emails(path), expected) == []

    again = sync_customer(customer, options, settings=settings)
    assert [(f.folder_id, f.round) for f in again.folders] == [(new, "incremental")]
    assert differences(stored_emails(path), expected) == []


def test_a_path_whose_folder_was_deleted_is_swept_then_refused(
    settings: Settings, customer: str, sandbox_admin: AdminClient
) -> None:
    truth = sandbox_admin.ground_truth(MAILBOX)
    [old] = folder_ids(truth, "Inbox/Ünïcødé Ördner")
    sync_customer(customer, SyncOptions(folders=(old,)), settings=settings)
    path = settings.mail_store_path(customer)
    with duckdb.connect(str(path)) as con:  # it was 'Inbox/Old Projects' when last walked
        con.execute("UPDATE folders SET path = 'Inbox/Old Projects' WHERE folder_id = ?", [old])
    sandbox_admin.add_rule(path=old, times=0, status=404, code="ErrorItemNotFound")

    options = SyncOptions(folders=("Inbox/Old Projects",))
    result = sync_customer(customer, options, settings=settings)
    assert [(f.folder_id, f.round) for f in result.folders] == [(old, "gone")]
    assert result.counts.deleted > 0
    assert stored_emails(path) == {}
    # Not 'gone' again at every run from a record of the folder: the next run says it does not exist.
    with pytest.raises(FolderNotFound, match="no folder 'Inbox/Old Projects'"):
        sync_customer(customer, options, settings=settings)


def test_a_renamed_folder_gives_its_new_path_to_the_mail_already_stored(
    settings: Settings, customer: str, sandbox_admin: AdminClient
) -> None:
    options = SyncOptions(folders=("Inbox/Projects",), subfolders=True)
    sync_customer(customer, options, settings=settings)
    path = settings.mail_store_path(customer)
    truth = sandbox_admin.ground_truth(MAILBOX)
    [projects] = folder_ids(truth, "Inbox/Projects")
    [team] = folder_ids(truth, "Inbox/Projects/Team A")
    # As the store would be had the folder been 'Inbox/Clients' at the last walk, over an hour ago (a run
    # with subfolders walks again then), and renamed 'Projects' since, its subfolder's path with it.
    with duckdb.connect(str(path)) as con:
        for folder, old in ((projects, "Inbox/Clients"), (team, "Inbox/Clients/Team A")):
            con.execute("UPDATE folders SET path = ? WHERE folder_id = ?", [old, folder])
            con.execute("UPDATE emails SET folder_path = ? WHERE folder_id = ?", [old, folder])
        con.execute("UPDATE folders SET updated_at = now() - INTERVAL 2 HOUR")

    result = sync_customer(customer, options, settings=settings)
    assert sorted(f.path for f in result.folders) == ["Inbox/Projects", "Inbox/Projects/Team A"]
    assert result.counts.updated == result.counts.inserted == 0  # nothing in the folders changed
    with duckdb.connect(str(path), read_only=True) as con:
        paths = con.execute("SELECT folder_id, folder_path, count(*) FROM emails GROUP BY ALL").fetchall()
    named = ((projects, "Inbox/Projects"), (team, "Inbox/Projects/Team A"))
    expected = [(f, p, n) for f, p in named if (n := len(expected_messages(truth, [f])))]
    assert expected
    assert sorted(paths) == sorted(expected)


def test_mail_moved_into_a_new_subfolder_follows_it_in_the_same_run(
    settings: Settings, customer: str, sandbox_admin: AdminClient
) -> None:
    options = SyncOptions(folders=("inbox",), subfolders=True)
    sync_customer(customer, options, settings=settings)
    store = settings.mail_store(customer)
    inbox = [m for m in sandbox_admin.ground_truth(MAILBOX)["messages"] if m["folderPath"] == ["Inbox"]]
    moved, left = inbox[0], inbox[1]
    moved_file_id = store.get_email_by_message_id(moved["id"]).file_id
    # A folder made since the last walk (the records are minutes old, so nothing walks by their age), and
    # mail filed into it: the Inbox's round sees the mail leave, for a folder it has never heard of.
    created = sandbox_admin.add_folder(MAILBOX, "Filed today", parent="inbox")
    sandbox_admin.move_message(MAILBOX, moved["id"], created["id"])
    sandbox_admin.add_message(MAILBOX, subject="Straight into the new folder", folder=created["id"])
    sandbox_admin.move_message(MAILBOX, left["id"], "archive")  # and one that really leaves

    result = sync_customer(customer, options, settings=settings)
    truth = sandbox_admin.ground_truth(MAILBOX, bodies="html")
    expected = expected_messages(truth, folder_ids(truth, "Inbox", subfolders=True))
    assert differences(stored_emails(store.path), expected, bodies=True) == []
    assert "Inbox/Filed today" in {f.path for f in result.folders}
    assert (result.counts.moved, result.counts.deleted) == (1, 1)
    record = store.get_email_by_message_id(moved["id"])
    assert (record.file_id, record.row.folder_path) == (moved_file_id, "Inbox/Filed today")
