"""Reading the mail store: files for /user_files_v2, counts, previews, runs, search, schema versions."""

from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
from pydantic import ValidationError

from pipelines.store import (
    AttachmentRow,
    Cursor,
    FileQuery,
    FolderRow,
    MailStore,
    NotFound,
    Page,
    RunStart,
    RunTotals,
    SchemaError,
    StoreError,
    StoreNotFound,
    delete_mail_store,
)
from tests.store.conftest import BASE_TIME, email

FP = "fp"


@pytest.fixture
def filled(store: MailStore) -> MailStore:
    """Emails 1-8 in the inbox (2 has attachment 9, 3 an error); 10-13 archived (11 deleted, 13 removed)."""
    rows = [email(n, subject=f"Invoice {n}" if n % 4 == 0 else f"Hello {n}") for n in range(1, 9)]
    rows[1] = email(2, attachments=(AttachmentRow("a", name="scan.pdf", size=2048),))
    rows[2] = email(3, sync_status="SYNC_ERROR", sync_error="body too large")
    store.start_round("inbox", FP)
    store.apply_page(Page("inbox", FP, upserts=rows, request_id="req-1", cursor=Cursor(delta_link="d")))
    store.start_round("archive", FP)
    archive = [email(n, folder="archive") for n in range(9, 13)]
    store.apply_page(Page("archive", FP, upserts=archive, request_id="req-2", cursor=Cursor(delta_link="d")))
    store.apply_page(Page("archive", FP, removals=["AAMk-00012"], cursor=Cursor(delta_link="d2")))
    store.delete_files([11])
    return store


def ids(store: MailStore, **query: object) -> list[int]:
    return [f.file_id for f in store.list_files(FileQuery(**{"limit": 100, **query})).results]


def test_default_listing_shows_live_files_with_attachments_as_children(filled: MailStore) -> None:
    page = filled.list_files(FileQuery(limit=100, order_by="id"))
    assert [f.file_id for f in page.results] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12]
    assert page.count == 11
    attachment = page.results[8]
    assert (attachment.kind, attachment.parent_file_id, attachment.name) == ("attachment", 2, "scan.pdf")
    assert attachment.file_size == 2048


def test_filters_combine(filled: MailStore) -> None:
    assert ids(filled, file_ids=[1, 2, 12, 13, 99], order_by="id") == [1, 2, 12]
    assert ids(filled, file_ids=[13], include_removed=True) == [13]
    assert ids(filled, message_ids=["AAMk-00005"]) == [5]
    assert ids(filled, sync_statuses=["SYNC_ERROR"]) == [3]
    assert ids(filled, non_synced_only=True) == [3]
    assert ids(filled, sync_error_contains="TOO LARGE") == [3]
    assert 3 not in ids(filled, sync_error_contains="")
    assert ids(filled, name_contains="invoice", order_by="id") == [4, 8]
    assert ids(filled, parent_file_ids=[2]) == [9]
    assert 9 not in ids(filled, root_files_only=True)
    assert ids(filled, kinds=["attachment"]) == [9]
    assert ids(filled, request_ids=["req-2"], kinds=["email"], order_by="id") == [10, 12]
    assert ids(filled, folder_ids=["archive"], order_by="id") == [10, 12]
    after = BASE_TIME + timedelta(minutes=7)
    assert ids(filled, received_after=after, kinds=["email"], order_by="id") == [7, 8, 10, 12]
    assert ids(filled, received_before=BASE_TIME + timedelta(minutes=2), kinds=["email"]) == [1]
    assert ids(filled, min_file_id=10, order_by="id") == [10, 12]
    assert ids(filled, external_urls=["https://outlook.example.com/owa/?ItemID=4"]) == [4]


def test_order_and_pagination(filled: MailStore) -> None:
    by_name = filled.list_files(FileQuery(kinds=["email"], order_by="name", order_dir="desc", limit=3))
    assert [f.name for f in by_name.results] == [
        "Quarterly report 9",
        "Quarterly report 3",
        "Quarterly report 2",
    ]
    pages = [ids(filled, order_by="id", limit=4, offset=o) for o in (0, 4, 8)]
    assert pages == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 12]]
    beyond = filled.list_files(FileQuery(offset=50))
    assert (beyond.results, beyond.count) == ((), 11)
    assert filled.list_files(FileQuery(limit=0)).count == 11


def test_bad_queries_say_what_is_wrong() -> None:
    with pytest.raises(ValidationError, match="order_by"):
        FileQuery(order_by="size")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="root_files_only"):
        FileQuery(root_files_only=True, parent_file_ids=[1])
    with pytest.raises(ValidationError, match="limit"):
        FileQuery(limit=5000)


def test_counts_preview_and_folders(filled: MailStore) -> None:
    counts = filled.counts()
    assert counts.emails == 10
    assert counts.by_status == {"READY": 9, "SYNC_ERROR": 1}
    assert (counts.removed, counts.tombstones, counts.attachments) == (1, 1, 1)
    assert [s.file_id for s in filled.newest(3)] == [12, 10, 8]
    filled.upsert_folders([FolderRow("inbox", "Inbox", "Inbox", well_known_name="inbox", total_count=8)])
    filled.upsert_folders(
        [
            FolderRow("inbox", "Inbox", "Inbox", total_count=9),
            FolderRow("r", "Receipts", "Inbox/Receipts", "inbox"),
        ]
    )
    assert [(f.path, f.total_count) for f in filled.folders()] == [("Inbox", 9), ("Inbox/Receipts", None)]


def test_runs_are_recorded(store: MailStore) -> None:
    assert store.last_run() is None
    first = store.start_run(RunStart(plan="Graph: receivedDateTime ge 2024-01-07", folders=("Inbox",)))
    store.finish_run(first, RunTotals(seen=10, matched=8, inserted=8, skipped={"not_matched": 2}, requests=3))
    second = store.start_run(RunStart(trigger="schedule", request_id="r-7"))
    store.finish_run(second, RunTotals(), error="Graph said 503 five times")
    failed, ok = store.runs()
    assert (failed.status, failed.error, failed.request_id) == ("failed", "Graph said 503 five times", "r-7")
    assert ok.status == "succeeded"
    assert ok.totals.skipped == {"not_matched": 2}
    assert ok.folders == ("Inbox",)
    assert ok.finished_at is not None
    assert ok.finished_at >= ok.started_at
    with pytest.raises(NotFound, match="no sync run 99"):
        store.finish_run(99, RunTotals())


def test_search_finds_subject_sender_and_text(filled: MailStore) -> None:
    with pytest.raises(NotFound, match="no search index"):
        filled.search("invoice")
    assert filled.rebuild_search_index() == 10
    hits = filled.search("invoice")
    assert {h.file_id for h in hits} == {4, 8}
    assert filled.search("lovelace", limit=2)[0].from_address == "ada@example.com"
    reader = MailStore(filled.path, read_only=True)
    assert {h.file_id for h in reader.search("invoice")} == {4, 8}


def test_the_search_index_knows_whether_it_is_current(filled: MailStore) -> None:
    assert filled.search_index_status() == "missing"
    filled.rebuild_search_index()
    assert filled.search_index_status() == "current"
    filled.apply_page(Page("inbox", FP, upserts=[email(5, subject="Hello 5")], cursor=Cursor(delta_link="e")))
    assert filled.search_index_status() == "current", "a page that changed nothing leaves the index current"
    filled.apply_page(Page("inbox", FP, upserts=[email(5, subject="Renamed")], cursor=Cursor(delta_link="f")))
    assert filled.search_index_status() == "stale"
    filled.rebuild_search_index()
    filled.apply_page(Page("inbox", FP, removals=["AAMk-00001"], cursor=Cursor(delta_link="g")))
    assert filled.search_index_status() == "stale", "a removal changes what is searchable"
    filled.rebuild_search_index()
    filled.delete_files([4])
    assert filled.search_index_status() == "current", "a delete rebuilds the index in its own transaction"
    assert MailStore(filled.path, read_only=True).search_index_status() == "current"


def test_readers_need_an_existing_current_file(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFound, match="nothing has been synced"):
        MailStore(tmp_path / "none.duckdb", read_only=True).counts()
    with pytest.raises(StoreError, match="read-only"):
        MailStore(tmp_path / "none.duckdb", read_only=True).start_round("f", "p")
    foreign = tmp_path / "foreign.duckdb"
    duckdb.connect(str(foreign)).close()
    with pytest.raises(SchemaError, match="not a Mailroom mail store"):
        MailStore(foreign, read_only=True).counts()


def test_a_file_from_a_newer_mailroom_is_refused(store: MailStore) -> None:
    store.counts()
    con = duckdb.connect(str(store.path))
    con.execute("INSERT INTO schema_version VALUES (999, now())")
    con.close()
    with pytest.raises(SchemaError, match="newer than this Mailroom"):
        MailStore(store.path).counts()
    with pytest.raises(SchemaError, match="newer than this Mailroom"):
        MailStore(store.path, read_only=True).counts()


def test_deleting_a_customer_removes_every_file(filled: MailStore, data_dir: Path) -> None:
    filled.rebuild_search_index()
    assert delete_mail_store(filled.path)
    assert list((data_dir / "mail").iterdir()) == []
    assert not delete_mail_store(filled.path)


def test_one_attachment_with_its_content(store: MailStore) -> None:
    row = email(1, attachments=(AttachmentRow("a", name="a.txt", content_type="text/plain", content=b"hi"),))
    store.start_round("inbox", FP)
    store.apply_page(Page("inbox", FP, upserts=[row], cursor=Cursor(delta_link="d")))
    found = store.attachment(2)
    assert found is not None
    assert (found.parent_file_id, found.row.name, found.row.content) == (1, "a.txt", b"hi")
    assert store.attachment(1) is None, "an email's file id is not an attachment"
    assert store.counts().text_characters == len("Body of message 1")


def test_forgetting_cursors_and_removing_messages_anywhere(store: MailStore) -> None:
    store.start_round("inbox", FP)
    store.apply_page(Page("inbox", FP, upserts=[email(1), email(2)], cursor=Cursor(delta_link="d")))
    store.start_round("archive", FP)
    assert store.forget_sync_state("inbox") == 1
    assert [s.folder_id for s in store.sync_states()] == ["archive"]
    assert store.remove_messages(["AAMk-00002", "AAMk-00404"]) == (2,)
    assert store.remove_messages(["AAMk-00002"]) == ()
    assert store.forget_sync_state() == 1
    assert store.sync_states() == []


def test_integrity_counts_what_the_asset_checks_need(filled: MailStore) -> None:
    assert filled.integrity().ok
    filled.start_round("inbox", FP)
    filled.apply_page(Page("inbox", FP, upserts=[email(50, body_html=None, body_text=None)]))
    report = filled.integrity()
    assert (report.duplicate_message_ids, report.duplicate_file_ids, report.live_without_body) == (0, 0, 1)
    assert not report.ok
    with duckdb.connect(str(filled.path)) as con:
        con.execute("INSERT INTO emails SELECT * FROM emails WHERE file_id = 1")
    assert filled.integrity().duplicate_message_ids == 1
