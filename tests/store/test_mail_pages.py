"""apply_page: idempotent upserts, moves, removals, tombstones, mark-and-sweep, one transaction a page."""

from dataclasses import replace
from pathlib import Path

import pytest

from pipelines.store import (
    AttachmentRow,
    ConflictError,
    Cursor,
    FileQuery,
    MailStore,
    Page,
)
from tests.store.conftest import email

INBOX, ARCHIVE, FP = "inbox", "archive", "fp-all"


def live(store: MailStore) -> dict[str, tuple[int, str | None]]:
    """message id -> (file id, folder) of every email still in the store."""
    page = store.list_files(FileQuery(kinds=["email"], limit=1000))
    return {f.message_id: (f.file_id, f.folder_id) for f in page.results}


def first_round(store: MailStore, rows: list, folder: str = INBOX) -> None:
    store.start_round(folder, FP)
    store.apply_page(Page(folder, FP, upserts=rows, cursor=Cursor(delta_link=f"delta-{folder}-1")))


def test_a_page_inserts_rows_in_order_and_moves_the_cursor(store: MailStore) -> None:
    store.start_round(INBOX, FP)
    result = store.apply_page(
        Page(INBOX, FP, upserts=[email(n) for n in range(5)], cursor=Cursor(next_link="next-1"))
    )
    assert (result.inserted, result.updated, result.unchanged) == (5, 0, 0)
    assert result.created_file_ids == (1, 2, 3, 4, 5)
    assert not result.round_finished
    assert live(store)["AAMk-00000"] == (1, INBOX)
    state = store.sync_state(INBOX, FP)
    assert state is not None
    assert (state.status, state.next_link, state.delta_link, state.pages) == ("in_round", "next-1", None, 1)

    result = store.apply_page(Page(INBOX, FP, upserts=[email(5)], cursor=Cursor(delta_link="delta-1")))
    assert result.round_finished
    state = store.sync_state(INBOX, FP)
    assert (state.status, state.next_link, state.delta_link, state.pages) == ("idle", None, "delta-1", 2)


def test_replaying_a_page_changes_nothing(store: MailStore) -> None:
    rows = [email(n) for n in range(10)]
    first_round(store, rows)
    before = store.get_email(3)
    again = store.apply_page(Page(INBOX, FP, upserts=rows, cursor=Cursor(delta_link="delta-inbox-1")))
    assert (again.inserted, again.updated, again.moved, again.unchanged) == (0, 0, 0, 10)
    assert len(live(store)) == 10
    after = store.get_email(3)
    assert after is not None
    assert before is not None
    assert after.last_synced_at == before.last_synced_at, "an unchanged row must not be rewritten"


def test_a_duplicate_inside_one_page_is_stored_once_with_the_last_version(store: MailStore) -> None:
    first_round(store, [email(1, subject="old"), email(1, subject="new")])
    assert len(live(store)) == 1
    record = store.get_email_by_message_id("AAMk-00001")
    assert record is not None
    assert record.row.subject == "new"


def test_a_changed_field_updates_the_row_and_keeps_its_file_id(store: MailStore) -> None:
    first_round(store, [email(1), email(2)])
    result = store.apply_page(
        Page(INBOX, FP, upserts=[email(2, categories=("Work", "Urgent"), is_read=True, change_key="ck-2-2")])
    )
    assert (result.updated, result.unchanged, result.changed_file_ids) == (1, 0, (2,))
    record = store.get_email(2)
    assert record is not None
    assert record.row.categories == ("Work", "Urgent")
    assert record.row.is_read is True


def test_a_move_updates_the_folder_and_never_duplicates(store: MailStore) -> None:
    first_round(store, [email(1), email(2)])
    store.start_round(ARCHIVE, FP)
    # The destination folder's round sees the message first ...
    moved = store.apply_page(
        Page(ARCHIVE, FP, upserts=[email(2, folder=ARCHIVE)], cursor=Cursor(delta_link="delta-archive-1"))
    )
    assert (moved.moved, moved.inserted) == (1, 0)
    assert live(store)["AAMk-00002"] == (2, ARCHIVE)
    # ... then the source folder's delta reports it removed: the row must stay, in its new folder.
    late = store.apply_page(
        Page(INBOX, FP, removals=["AAMk-00002"], cursor=Cursor(delta_link="delta-inbox-2"))
    )
    assert late.removed == 0
    assert live(store) == {"AAMk-00001": (1, INBOX), "AAMk-00002": (2, ARCHIVE)}


def test_a_move_seen_as_removal_first_revives_the_same_file_id(store: MailStore) -> None:
    first_round(store, [email(1), email(2)])
    gone = store.apply_page(Page(INBOX, FP, removals=["AAMk-00002"], cursor=Cursor(delta_link="d2")))
    assert gone.removed == 1
    assert gone.removed_file_ids == (2,)
    removed = store.get_email(2)
    assert removed is not None
    assert removed.removed_at is not None
    assert removed.row.body_html is None
    store.start_round(ARCHIVE, FP)
    back = store.apply_page(
        Page(ARCHIVE, FP, upserts=[email(2, folder=ARCHIVE)], cursor=Cursor(delta_link="a1"))
    )
    assert back.inserted == 1
    assert back.created_file_ids == (2,)
    assert live(store)["AAMk-00002"] == (2, ARCHIVE)


def test_removal_drops_content_and_attachments_but_keeps_the_id(store: MailStore) -> None:
    row = email(1, has_attachments=True, attachments=(AttachmentRow("att-1", name="a.pdf", content=b"%PDF"),))
    first_round(store, [row])
    assert store.counts().attachments == 1
    store.apply_page(Page(INBOX, FP, removals=["AAMk-00001"], cursor=Cursor(delta_link="d2")))
    counts = store.counts()
    assert (counts.emails, counts.removed, counts.attachments) == (0, 1, 0)
    assert store.known(["AAMk-00001"])["AAMk-00001"].removed


def test_pages_need_a_started_round(store: MailStore) -> None:
    with pytest.raises(ConflictError, match="start_round"):
        store.apply_page(Page(INBOX, FP, upserts=[email(1)]))


def test_a_cursor_cannot_hold_both_links() -> None:
    with pytest.raises(ValueError, match="not both"):
        Cursor(next_link="a", delta_link="b")


def test_the_page_and_its_cursor_commit_together(store: MailStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.start_round(INBOX, FP)
    store.apply_page(Page(INBOX, FP, upserts=[email(1)], cursor=Cursor(next_link="next-1")))

    def fail(*args: object) -> None:
        raise RuntimeError("killed between the rows and the cursor")

    monkeypatch.setattr(MailStore, "_advance", fail)
    with pytest.raises(RuntimeError):
        store.apply_page(
            Page(INBOX, FP, upserts=[email(2)], removals=["AAMk-00001"], cursor=Cursor(next_link="n2"))
        )
    monkeypatch.undo()
    assert set(live(store)) == {"AAMk-00001"}, "neither the upsert nor the removal may survive"
    assert store.sync_state(INBOX, FP).next_link == "next-1"


def test_mark_and_sweep_removes_what_a_restart_no_longer_lists(store: MailStore) -> None:
    first_round(store, [email(n) for n in range(6)])
    first_round(store, [email(100, folder=ARCHIVE)], folder=ARCHIVE)
    # The delta link expired (410): the inbox is listed again; 2 and 4 were deleted meanwhile.
    store.start_round(INBOX, FP, sweep=True)
    a = store.apply_page(Page(INBOX, FP, upserts=[email(0), email(1)], cursor=Cursor(next_link="n1")))
    assert a.swept == 0
    assert not a.round_finished
    b = store.apply_page(
        Page(INBOX, FP, upserts=[email(3)], seen=["AAMk-00005"], cursor=Cursor(delta_link="delta-2"))
    )
    assert b.swept == 2
    assert b.round_finished
    assert set(live(store)) == {"AAMk-00000", "AAMk-00001", "AAMk-00003", "AAMk-00005", "AAMk-00100"}
    # The next round after a completed sweep does not sweep again.
    state = store.sync_state(INBOX, FP)
    assert state is not None
    assert not state.sweep


def test_a_restart_after_a_crashed_restart_still_sweeps_correctly(store: MailStore) -> None:
    first_round(store, [email(n) for n in range(4)])
    store.start_round(INBOX, FP)
    store.apply_page(Page(INBOX, FP, upserts=[email(0), email(1), email(2)], cursor=Cursor(next_link="n1")))
    # The next link expired too: start over; marks from the abandoned listing must not count.
    store.start_round(INBOX, FP)
    done = store.apply_page(Page(INBOX, FP, upserts=[email(0)], cursor=Cursor(delta_link="d")))
    assert done.swept == 3
    assert set(live(store)) == {"AAMk-00000"}


def test_tombstoned_messages_are_skipped_until_a_resync_lifts_them(store: MailStore) -> None:
    first_round(store, [email(1), email(2)])
    deleted = store.delete_files([2])
    assert deleted.deleted == (2,)
    assert deleted.not_found == ()
    result = store.apply_page(Page(INBOX, FP, upserts=[email(1), email(2)], cursor=Cursor(delta_link="d2")))
    assert result.skipped == {"tombstoned": 1}
    assert set(live(store)) == {"AAMk-00001"}

    resync = store.apply_resync(email(2))
    assert resync.tombstone_lifted
    assert resync.written
    assert resync.file_id == 2
    assert live(store)["AAMk-00002"] == (2, INBOX)


def test_file_ids_no_bigint_holds_name_no_file(store: MailStore) -> None:
    first_round(store, [email(1), email(2)])
    huge = [2**64, -(2**64)]
    assert store.resolve_file_ids([1, *huge]) == {1: ("AAMk-00001", None)}
    deleted = store.delete_files([2, *huge])
    assert deleted.deleted == (2,)
    assert deleted.not_found == tuple(sorted(huge))
    assert set(live(store)) == {"AAMk-00001"}


def test_file_ids_are_never_reused(store: MailStore) -> None:
    first_round(store, [email(1), email(2), email(3)])
    store.delete_files([3])
    store.apply_page(Page(INBOX, FP, upserts=[email(4)], cursor=Cursor(delta_link="d2")))
    assert live(store)["AAMk-00004"][0] == 4
    store.apply_resync(email(3))
    assert live(store)["AAMk-00003"][0] == 3


def test_delete_with_the_record_kept_clears_content_only(store: MailStore) -> None:
    row = email(1, attachments=(AttachmentRow("att-1", name="a.txt", content=b"hello"),))
    first_round(store, [row, email(2)])
    store.rebuild_search_index()
    assert [h.file_id for h in store.search("message 1")][:1] == [1]
    store.delete_files([1], keep_record=True, request_id="req-9")
    record = store.get_email(1)
    assert record is not None
    assert record.file_contents_deleted
    assert record.row.subject == "Quarterly report 1"
    assert (record.row.body_html, record.row.body_text, record.row.unique_body_text) == (None, None, None)
    assert store.attachments("AAMk-00001") == []
    assert 1 not in [h.file_id for h in store.search("message")]
    kept = store.list_files(FileQuery(file_ids=[1]))
    assert kept.count == 1
    assert kept.results[0].file_contents_deleted


def test_resync_reports_the_fields_that_changed(store: MailStore) -> None:
    first_round(store, [email(1)])
    same = store.apply_resync(email(1))
    assert (same.changed_fields, same.written, same.tombstone_lifted) == ((), False, False)
    changed = store.apply_resync(email(1, subject="Re: new", flag_status="flagged"))
    assert changed.changed_fields == ("subject", "flag_status")
    assert changed.written
    record = store.get_email(1)
    assert record is not None
    assert record.row.flag_status == "flagged"


def test_attachments_get_file_ids_under_their_email_and_respect_the_cap(data_dir: Path) -> None:
    store = MailStore.for_customer(data_dir, "capped", max_attachment_bytes=10)
    row = email(
        1,
        has_attachments=True,
        attachments=(
            AttachmentRow("small", name="s.txt", content=b"tiny", size=4),
            AttachmentRow("big", name="b.bin", content=b"x" * 11, size=11),
            AttachmentRow("inline", name="logo.png", is_inline=True, content_state="inline_skipped"),
        ),
    )
    first_round(store, [row])
    stored = {a.row.attachment_id: a for a in store.attachments("AAMk-00001", with_content=True)}
    assert stored["small"].row.content == b"tiny"
    assert stored["small"].row.content_state == "stored"
    assert stored["big"].row.content is None
    assert stored["big"].row.content_state == "too_large"
    assert stored["inline"].row.content_state == "inline_skipped"
    assert {a.parent_file_id for a in stored.values()} == {1}
    assert sorted(a.file_id for a in stored.values()) == [2, 3, 4]
    children = store.list_files(FileQuery(parent_file_ids=[1], order_by="id"))
    assert [f.name for f in children.results] == ["s.txt", "b.bin", "logo.png"]
    # Unchanged attachments are not rewritten; attachments=None leaves them alone.
    again = store.apply_page(Page(INBOX, FP, upserts=[row, replace(row, attachments=None)]))
    assert again.unchanged == 1
    assert len(store.attachments("AAMk-00001")) == 3


def test_deleting_one_attachment_keeps_it_out_of_later_syncs(store: MailStore) -> None:
    row = email(
        1, attachments=(AttachmentRow("a", name="a.txt", content=b"a"), AttachmentRow("b", name="b.txt"))
    )
    first_round(store, [row])
    a_id = next(a.file_id for a in store.attachments("AAMk-00001") if a.row.attachment_id == "a")
    store.delete_files([a_id])
    store.apply_page(Page(INBOX, FP, upserts=[row], cursor=Cursor(delta_link="d2")))
    assert [a.row.attachment_id for a in store.attachments("AAMk-00001")] == ["b"]


def test_known_tells_the_engine_what_to_refetch(store: MailStore) -> None:
    first_round(store, [email(1), email(2)])
    store.delete_files([2])
    known = store.known(["AAMk-00001", "AAMk-00002", "AAMk-99999"])
    assert set(known) == {"AAMk-00001", "AAMk-00002"}
    assert known["AAMk-00001"].change_key == "ck-1-1"
    assert known["AAMk-00001"].folder_id == INBOX
    assert known["AAMk-00002"].tombstoned
    assert store.resolve_file_ids([1, 2, 77]) == {1: ("AAMk-00001", None), 2: ("AAMk-00002", None)}
