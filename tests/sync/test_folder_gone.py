"""A folder deleted from the mailbox between syncs: its mail leaves the store, and a reference by path that
now names another folder (deleted and made anew, as people do) finds that one, in the same run. The folder
tree is walked only when needed, so the records of the last walk must not outlive the folder they name."""

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
