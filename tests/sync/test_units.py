"""The engine's pure parts: plans and fingerprints, folder records, rows from Graph's JSON, body conversion,
batches of pages, settings from the environment."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import filters
from pipelines.graph import Attachment, Message
from pipelines.settings import Settings, SettingsError, graph_settings_from_environment
from pipelines.store import Cursor, FolderRow
from pipelines.sync import SyncOptions
from pipelines.sync._convert import Converter, convert
from pipelines.sync._folders import from_records
from pipelines.sync._plan import folder_plan, plan_run
from pipelines.sync._rounds import Batch
from pipelines.sync._rows import FULL_SELECT, attachment_row, email_row, is_complete, needs_attachment_list

# -- plans ---------------------------------------------------------------------------------------------------


def plan(text: str, **options: object):
    return plan_run(filters.parse(text), one_off=bool(options.get("one_off")), strategy=None)


def test_no_filter_or_a_pushed_one_brings_bodies_in_the_pages() -> None:
    everything = plan("")
    assert (everything.mode, everything.strategy, everything.pushed.select) == ("delta", "pages", FULL_SELECT)
    assert "keeps every message" in everything.reason
    dated = plan("after:2024/01/07")
    assert dated.strategy == "pages"
    assert dated.pushed.odata_filter == "receivedDateTime ge 2024-01-07T00:00:00Z"
    assert dated.unpushed is not None  # for folders over Graph's 5,000 cap on filtered rounds
    assert dated.unpushed.odata_filter is None
    assert dated.unpushed.strategy == "batch"
    assert "5,000" in dated.explain()


def test_folders_too_big_for_a_filtered_delta_round_run_without_the_push_and_stay_so() -> None:
    dated = plan("after:2024/01/07")
    pushed, unpushed = dated.pushed, dated.unpushed
    assert unpushed is not None
    assert folder_plan(dated, total=4_999, existing=set()) == pushed
    assert folder_plan(dated, total=5_000, existing=set()) == unpushed
    # Once a folder has rounds of one kind, it keeps them whatever its size does.
    assert folder_plan(dated, total=9_000, existing={pushed.fingerprint}) == pushed
    assert folder_plan(dated, total=10, existing={unpushed.fingerprint}) == unpushed
    everything = plan("")
    assert folder_plan(everything, total=50_000, existing=set()) == everything.pushed


def test_a_filter_checked_here_lists_only_what_it_reads_then_batches_bodies() -> None:
    checked = plan("category:Work from:boss@example.com")
    assert checked.strategy == "batch"
    assert set(checked.pushed.select) == {"changeKey", "parentFolderId", "categories", "from"}
    assert "category:Work AND from:boss@example.com is checked here" in checked.reason
    assert "Bodies: only the properties the filter reads" in checked.explain()


def test_a_one_off_listing_pushes_what_graph_can_check() -> None:
    listing = plan("from:boss@example.com importance:high", one_off=True)
    assert listing.mode == "listing"
    assert listing.strategy == "pages"
    assert (
        listing.pushed.odata_filter
        == "from/emailAddress/address eq 'boss@example.com' and importance eq 'high'"
    )
    # Nothing to push: a one-off listing would be no cheaper than a delta round.
    assert plan("subject:hello", one_off=True).mode == "delta"


def test_fingerprints_change_with_the_filter_and_nothing_else() -> None:
    assert plan("category:A").pushed.fingerprint == plan("category:A").pushed.fingerprint
    assert (
        plan("category:A").pushed.fingerprint == plan('{"key": "category", "value": "A"}').pushed.fingerprint
    )
    assert plan("category:A").pushed.fingerprint != plan("category:B").pushed.fingerprint
    assert plan("category:A").pushed.fingerprint != plan("category:A", one_off=True).pushed.fingerprint
    forced = plan_run(filters.parse(""), one_off=False, strategy="batch")
    assert forced.pushed.fingerprint != plan("").pushed.fingerprint


# -- folder records ------------------------------------------------------------------------------------------


ROWS = [
    FolderRow("id-inbox", "Inbox", "Inbox", well_known_name="inbox", total_count=10),
    FolderRow("id-receipts", "Receipts", "Inbox/Receipts", parent_id="id-inbox"),
    FolderRow("id-2024", "2024", "Inbox/Receipts/2024", parent_id="id-receipts"),
    FolderRow("id-slash", "Q1/Q2", "Inbox/Q1\\/Q2", parent_id="id-inbox"),
    FolderRow("id-sent", "Gesendete Elemente", "Gesendete Elemente", well_known_name="sentitems"),
]


def test_recorded_folders_resolve_names_paths_and_ids() -> None:
    found = from_records(ROWS, ["inbox/receipts", "SENTITEMS", "id-slash"], subfolders=False)
    assert [f.id for f in found] == ["id-receipts", "id-sent", "id-slash"]
    below = from_records(ROWS, ["Inbox/Receipts"], subfolders=True)
    assert sorted(f.path for f in below) == ["Inbox/Receipts", "Inbox/Receipts/2024"]
    assert len(from_records(ROWS, ["msgfolderroot"], subfolders=True)) == len(ROWS)
    assert from_records(ROWS, ["Inbox/Nope"], subfolders=False) is None  # then the tree is walked
    assert from_records(ROWS, ["archive"], subfolders=False) is None


# -- rows ----------------------------------------------------------------------------------------------------

GRAPH = {
    "id": "AAMk-1",
    "changeKey": "ck-1",
    "subject": "Hello",
    "receivedDateTime": "2024-05-01T09:00:00Z",
    "from": {"emailAddress": {"name": "Ada", "address": "ada@example.com"}},
    "sender": None,
    "toRecipients": [{"emailAddress": {"name": "Bob", "address": "bob@example.com"}}],
    "categories": ["Work"],
    "isRead": "true",
    "flag": {"flagStatus": "flagged"},
    "hasAttachments": False,
    "body": {"contentType": "html", "content": '<p>Hi <img src="cid:logo"></p>'},
    "uniqueBody": {"contentType": "html", "content": "<p>Hi</p>"},
}


def test_a_row_keeps_what_graph_sent_and_the_folder_that_listed_it() -> None:
    message = Message.model_validate(GRAPH)
    row = email_row(
        message,
        folder_id="listed-in",
        folder_path="Inbox",
        data_source_id=7,
        body_text="Hi",
        unique_body_text="Hi",
        attachments=(),
    )
    assert (row.message_id, row.folder_id, row.data_source_id) == ("AAMk-1", "listed-in", 7)
    assert (row.from_address, row.sender_address) == ("ada@example.com", None)
    assert row.to_recipients[0].address == "bob@example.com"
    assert row.is_read is True
    assert row.flag_status == "flagged"
    assert row.body_html == GRAPH["body"]["content"]
    assert row.received_at.isoformat() == "2024-05-01T09:00:00+00:00"
    assert needs_attachment_list(message)  # no attachments by Graph's flag, but an inline image
    assert is_complete(message)
    assert not is_complete(Message.model_validate({"id": "x", "isRead": True}))  # a delta entry of changes


def test_attachments_are_recognised_by_type_name_and_content() -> None:
    def one(**fields: object) -> Attachment:
        return Attachment.model_validate({"id": "a", **fields})

    assert attachment_row(one(name="old.msg", contentType="application/octet-stream")).format == "msg"
    assert attachment_row(one(name="x", contentType="message/rfc822")).format == "eml"
    assert attachment_row(one(name="invite.ICS")).format == "ics"
    assert attachment_row(one(name="report.pdf")).format is None
    item = one(**{"@odata.type": "#microsoft.graph.itemAttachment", "name": "Fwd"})
    assert attachment_row(item).kind == "item"
    assert attachment_row(item, content_type="text/calendar; charset=utf-8").format == "ics"
    link = attachment_row(one(**{"@odata.type": "#microsoft.graph.referenceAttachment"}))
    assert link.kind == "reference"


# -- conversion ----------------------------------------------------------------------------------------------


def test_unique_body_equal_to_the_body_is_converted_once_and_text_bodies_are_tidied() -> None:
    html = "<p>One</p><p>Two</p>"
    assert convert([("html", html, "html", html)]) == [("One\n\nTwo", "One\n\nTwo")]
    assert convert([("text", "a  \r\n\r\n\r\nb\u200b", None, None)]) == [("a\n\nb", None)]
    assert convert([(None, None, None, None)]) == [(None, None)]


def test_worker_processes_convert_exactly_as_the_run_itself() -> None:
    parts = [
        ("html", f"<ul><li>item {n}</li></ul><a href='https://x.example/{n}'>link</a>", None, None)
        for n in range(40)
    ]
    converter = Converter(1)
    try:
        assert asyncio.run(converter.convert(parts)) == convert(parts)
    finally:
        converter.close()


# -- batches -------------------------------------------------------------------------------------------------


def test_a_batch_keeps_each_ids_last_state_across_pages() -> None:
    first, again = Message(id="m1", subject="one"), Message(id="m1", subject="two")
    batch = Batch()
    batch.add([first, Message(id="m2")], ["m3"], Cursor(next_link="n1"))
    batch.add([again], ["m2"], Cursor(next_link="n2"))
    batch.add([Message(id="m3")], [], Cursor(delta_link="d"))
    assert {k: m.subject for k, m in batch.messages.items()} == {"m1": "two", "m3": None}
    assert list(batch.removed) == ["m2"]  # m3 was removed, then listed again
    assert batch.cursor == Cursor(delta_link="d")
    assert batch.pages == 3


def test_sync_options_refuse_empty_folder_names() -> None:
    with pytest.raises(ValueError, match="empty folder"):
        SyncOptions(folders=("inbox", " "))


# -- settings ------------------------------------------------------------------------------------------------


def test_settings_read_short_names_and_refuse_contradictions(tmp_path: Path) -> None:
    env = {
        "MAILROOM_GRAPH_URL": "https://127.0.0.1:9443/v1.0",
        "MAILROOM_AUTHORITY": "https://127.0.0.1:9443/tenant-1",
        "MAILROOM_CLIENT_ID": "app",
        "MAILROOM_CLIENT_SECRET": "s3cret",
    }
    graph = graph_settings_from_environment(env)
    assert graph.authority == "https://127.0.0.1:9443/tenant-1"
    assert graph.tenant == "tenant-1"
    assert graph.client_secret.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(Settings(data_dir=tmp_path, graph=graph))
    with pytest.raises(SettingsError, match="MAILROOM_CLIENT_ID and MAILROOM_GRAPH_CLIENT_ID"):
        graph_settings_from_environment({**env, "MAILROOM_GRAPH_CLIENT_ID": "other"})
    with pytest.raises(SettingsError, match="MAILROOM_TENANT_ID"):
        graph_settings_from_environment({**env, "MAILROOM_TENANT_ID": "tenant-2"})
    with pytest.raises(SettingsError, match="MAILROOM_GRAPH_URL"):
        graph_settings_from_environment({**env, "MAILROOM_GRAPH_URL": "http://plain.example/v1.0"})
