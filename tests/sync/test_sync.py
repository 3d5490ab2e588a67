"""End-to-end: the engine against the sandbox over HTTPS; the store compared with the sandbox's truth."""

from __future__ import annotations

import json
from collections import Counter
from urllib.parse import unquote_plus

import pytest

import filters
from pipelines.settings import Settings
from pipelines.sync import (
    ConnectionNotFound,
    CustomerNotFound,
    FolderNotFound,
    InvalidRequest,
    NotConfigured,
    SyncBusy,
    SyncFailed,
    SyncOptions,
    SyncProgress,
    sync_customer,
)
from pipelines.sync._lock import run_lock
from sandbox import AdminClient
from tests.sync.conftest import CUSTOMER, MAILBOX
from tests.sync.truth import differences, expected_messages, folder_ids, stored_emails


def check(
    settings: Settings,
    admin: AdminClient,
    paths: tuple[str, ...] = ("Inbox",),
    *,
    subfolders: bool = False,
    filter: str | None = None,
) -> dict[str, dict]:
    """Assert the store equals what the sandbox holds in those folders under that filter; return the truth."""
    truth = admin.ground_truth(MAILBOX, bodies="html")
    tree = filters.parse(filter) if filter else None
    expected = expected_messages(truth, folder_ids(truth, *paths, subfolders=subfolders), tree)
    stored = stored_emails(settings.mail_store_path(CUSTOMER))
    assert differences(stored, expected, bodies=True) == []
    return expected


def requests_to(admin: AdminClient, since: int = 0) -> list[dict]:
    return [e for e in admin.log(mailbox=MAILBOX, since=since, limit=50_000) if "/_sandbox" not in e["path"]]


def test_first_sync_stores_the_inbox_exactly_and_the_next_costs_one_request(
    settings: Settings, customer: str, sandbox_admin: AdminClient
) -> None:
    seen: list[SyncProgress] = []
    result = sync_customer(customer, settings=settings, progress=seen.append)

    expected = check(settings, sandbox_admin)
    assert result.status == "succeeded"
    assert [(f.path, f.round) for f in result.folders] == [("Inbox", "first")]
    assert result.counts.seen == result.counts.inserted == len(expected)
    assert result.strategy == "pages"
    assert "every message" in result.plan
    assert sorted(result.created_file_ids) == result.created_file_ids
    assert len(result.created_file_ids) >= len(expected)
    assert seen[-1].done
    assert seen[-1].seen == len(expected)

    store = settings.mail_store(customer)
    [run] = store.runs()
    assert run.status == "succeeded"
    assert run.totals.inserted == len(expected)
    assert run.folders == ("Inbox",)
    assert "Graph lists every message" in (run.plan or "")
    assert run.totals.details["strategy"] == "pages"
    connection = settings.control_store().connections(settings.control_store().customer(customer).id)[0]
    assert connection.sync_status == "READY"
    assert connection.last_synced_at is not None
    truth = sandbox_admin.ground_truth(MAILBOX)
    with_files = {m["id"]: m["attachments"] for m in truth["messages"] if m["id"] in expected}
    assert store.counts().attachments == sum(len(a) for a in with_files.values())

    # Carbon's webhooks for the files the run stored, queued for the API's deliverer.
    control = settings.control_store()
    control.add_webhook("https://hooks.example.com/carbon")
    sandbox_admin.update_message(MAILBOX, next(iter(expected)), isRead=True)
    sandbox_admin.clear_log()
    changed = sync_customer(customer, settings=settings)
    kinds = Counter(d.event_type for d in control.deliveries(limit=100))
    assert kinds == {"FILE_READY": len(changed.changed_file_ids), "DATA_SOURCE_READY": 1}
    assert changed.counts.updated == 1

    sandbox_admin.clear_log()
    again = sync_customer(customer, settings=settings)
    assert [(f.path, f.round) for f in again.folders] == [("Inbox", "incremental")]
    assert again.counts.inserted == again.counts.updated == again.counts.deleted == 0
    assert len(requests_to(sandbox_admin)) == again.requests == 1
    check(settings, sandbox_admin)


def test_every_kind_of_change_reaches_the_store(
    settings: Settings, customer: str, sandbox_admin: AdminClient
) -> None:
    options = SyncOptions(folders=("inbox",), subfolders=True)
    sync_customer(customer, options, settings=settings)
    truth = sandbox_admin.ground_truth(MAILBOX)
    inbox = [m for m in truth["messages"] if m["folderPath"] == ["Inbox"]]
    archived = next(m for m in truth["messages"] if m["folderPath"] == ["Archive"])
    store = settings.mail_store(customer)
    moved = inbox[3]
    moved_file_id = store.get_email_by_message_id(moved["id"]).file_id

    added = sandbox_admin.add_message(MAILBOX, subject="Brand new", sender="new@example.com")
    sandbox_admin.update_message(MAILBOX, inbox[0]["id"], categories=["Travel", "Team A"])
    sandbox_admin.update_message(MAILBOX, inbox[1]["id"], isRead=not inbox[1]["isRead"])
    sandbox_admin.update_message(MAILBOX, inbox[2]["id"], flag="flagged")
    sandbox_admin.move_message(MAILBOX, moved["id"], "Inbox/Receipts/2024")  # between synced folders
    sandbox_admin.move_message(MAILBOX, inbox[4]["id"], "archive")  # out of the synced folders
    sandbox_admin.move_message(MAILBOX, archived["id"], "inbox")  # into them
    sandbox_admin.delete_message(MAILBOX, inbox[5]["id"])

    control = settings.control_store()
    control.add_webhook("https://hooks.example.com/carbon")
    result = sync_customer(customer, options, settings=settings)

    check(settings, sandbox_admin, ("Inbox",), subfolders=True)
    [announced] = [d for d in control.deliveries(limit=100) if d.event_type == "FILES_CREATED"]
    listed = json.loads(announced.payload)["obj"]["object_id"]
    assert sorted(int(i) for i in listed) == result.created_file_ids
    counts = result.counts
    assert counts.moved == 1
    assert counts.deleted == 2  # moved to the Archive, and deleted
    assert counts.inserted == 2  # the new message and the one from the Archive
    assert counts.updated == 3
    row = store.get_email_by_message_id(moved["id"])
    assert row.file_id == moved_file_id
    assert row.row.folder_path == "Inbox/Receipts/2024"
    assert store.get_email_by_message_id(added["id"]).row.from_address == "new@example.com"
    assert store.get_email_by_message_id(inbox[5]["id"]).removed_at is not None
    assert store.integrity().ok


FILTERS = [
    "category:Travel",
    'category:"Team A" OR category:Personal',
    "after:2024/03/01",
    "before:2024/03/01",
    "from:pat.obrien@example.com",
    "to:alex@contoso.test",  # one Inbox message has it; every message is to adele, so to:adele proved nothing
    "cc:alex@contoso.test",
    "subject:report",
    "importance:high",
    "has:attachment",
    "is:flagged",
    "is:read",
    "is:unread",
    "NOT from:pat.obrien@example.com after:2023/06/01",
]


def test_each_filter_key_stores_exactly_what_it_selects(
    settings: Settings, customer: str, sandbox_admin: AdminClient
) -> None:
    # One customer, filter after filter: each changed filter starts a new round, and the store becomes
    # exactly the new selection (what the old filter kept and this one does not is swept out).
    truth = sandbox_admin.ground_truth(MAILBOX)
    inbox = len(expected_messages(truth, folder_ids(truth, "Inbox")))
    for text in FILTERS:
        result = sync_customer(customer, SyncOptions(filter=text), settings=settings)
        expected = check(settings, sandbox_admin, filter=text)
        # A filter that kept everything or nothing would pass even if the engine ignored it.
        assert 0 < len(expected) < inbox, (text, len(expected), inbox)
        assert result.counts.matched == len(expected), text
        assert result.folders[0].round == "first", text
        pushed = filters.plan(filters.parse(text), "delta")
        assert result.strategy == ("pages" if pushed.residual is None else "batch"), text


def test_a_one_off_listing_pushes_the_filter_to_graph(
    settings: Settings, customer: str, sandbox_admin: AdminClient
) -> None:
    text = "from:pat.obrien@example.com importance:high"
    sandbox_admin.clear_log()
    result = sync_customer(customer, SyncOptions(filter=text, one_off=True), settings=settings)
    assert result.folders[0].round == "listing"
    assert "Mode: one-off listing" in result.plan
    expected = check(settings, sandbox_admin, filter=text)
    assert result.counts.seen == len(expected)  # Graph sent only the matches
    listed = [e for e in requests_to(sandbox_admin) if e["path"].endswith("/messages")]
    queries = [unquote_plus(e["query"]) for e in listed]
    assert any("$filter=from/emailAddress/address eq" in q for q in queries)
    # The attachments of the listed folder came from one listing of their own, not a lookup per message.
    assert any("$filter=hasAttachments eq true&$expand=attachments" in q for q in queries)
    assert not [e for e in requests_to(sandbox_admin) if e["path"].endswith("/$batch")]
    # A listing leaves no delta link: the next one-off run lists again.
    assert (
        sync_customer(customer, SyncOptions(filter=text, one_off=True), settings=settings).folders[0].round
        == "listing"
    )


def test_folders_by_path_id_and_well_known_name_with_subfolders(
    settings: Settings, customer: str, sandbox_admin: AdminClient
) -> None:
    truth = sandbox_admin.ground_truth(MAILBOX)
    unicode_id = next(f["id"] for f in truth["folders"] if f["displayName"].startswith("Ün"))
    options = SyncOptions(
        folders=("Inbox/Receipts", "Inbox/Q1\\/Q2 Reports", unicode_id, "sentitems"), subfolders=True
    )
    result = sync_customer(customer, options, settings=settings)
    assert sorted(f.path for f in result.folders) == [
        "Inbox/Q1\\/Q2 Reports",
        "Inbox/Receipts",
        "Inbox/Receipts/2023",
        "Inbox/Receipts/2024",
        "Inbox/Ünïcødé Ördner",
        "Sent Items",
    ]
    check(
        settings,
        sandbox_admin,
        ("Inbox/Receipts", "Inbox/Q1/Q2 Reports", "Inbox/Ünïcødé Ördner", "Sent Items"),
        subfolders=True,
    )
    with pytest.raises(FolderNotFound) as caught:
        sync_customer(customer, SyncOptions(folders=("Inbox/Recepits",)), settings=settings)
    assert "Inbox/Receipts" in caught.value.suggestions
    assert "Inbox/Recepits" in str(caught.value)


def test_a_410_in_the_middle_restarts_the_folder_and_sweeps(
    sandbox_server, settings: Settings, customer: str, sandbox_admin: AdminClient, tmp_path
) -> None:
    from tests.sync.conftest import settings_for

    small = settings_for(sandbox_server, settings.data_dir, delta_page_size=10)
    small = small.model_copy(update={"secret_key": settings.secret_key})
    options = SyncOptions(batch_rows=10)
    sync_customer(customer, options, settings=small)
    truth = sandbox_admin.ground_truth(MAILBOX)
    inbox = [m for m in truth["messages"] if m["folderPath"] == ["Inbox"]]
    for message in inbox[:3]:
        sandbox_admin.delete_message(MAILBOX, message["id"])
    sandbox_admin.update_message(MAILBOX, inbox[5]["id"], categories=["Travel"])
    # The stored delta link is forgotten: the next round starts over and must still notice the deletions.
    sandbox_admin.invalidate_delta(mailbox=MAILBOX)
    result = sync_customer(customer, options, settings=small)
    assert result.folders[0].restarted
    assert result.counts.deleted == 3
    check(settings, sandbox_admin)

    # And a 410 for a next link in the middle of a first round (a changed filter starts one).
    sandbox_admin.add_rule(path="/messages/delta", nth=3, status=410, code="SyncStateNotFound")
    sandbox_admin.delete_message(MAILBOX, inbox[6]["id"])
    result = sync_customer(
        customer, options.model_copy(update={"filter": "after:2020/01/01"}), settings=small
    )
    assert result.folders[0].restarted
    assert result.folders[0].round == "first"
    check(settings, sandbox_admin, filter="after:2020/01/01")


def test_a_run_that_fails_is_recorded_and_the_next_resumes(
    sandbox_server, settings: Settings, customer: str, sandbox_admin: AdminClient
) -> None:
    from tests.sync.conftest import settings_for

    small = settings_for(sandbox_server, settings.data_dir, delta_page_size=10, max_attempts=2)
    small = small.model_copy(update={"secret_key": settings.secret_key})
    sandbox_admin.add_rule(path="/messages/delta", nth=4, times=2, status=500)  # both tries of one page
    with pytest.raises(SyncFailed) as caught:
        sync_customer(customer, SyncOptions(batch_rows=10), settings=small)
    failed = caught.value.result
    assert failed is not None
    assert failed.status == "failed"
    assert failed.counts.inserted > 0
    store = settings.mail_store(customer)
    assert store.runs()[0].status == "failed"
    assert "500" in (store.runs()[0].error or "")
    [state] = store.sync_states()
    assert state.status == "in_round"
    assert state.next_link
    connection = settings.control_store().connections(settings.control_store().customer(customer).id)[0]
    assert connection.sync_status == "SYNC_ERROR"

    # A message stored by the failed run changes before the next: Graph leaves that to the round after the
    # resumed one, which the resuming run takes too.
    stored = next(iter(stored_emails(settings.mail_store_path(customer))))
    sandbox_admin.update_message(MAILBOX, stored, categories=["Travel"])
    result = sync_customer(customer, SyncOptions(batch_rows=10), settings=small)
    assert result.folders[0].round == "resumed"
    assert result.counts.inserted + failed.counts.inserted == len(check(settings, sandbox_admin))
    assert result.counts.updated == 1


def test_bad_requests_are_refused_with_what_was_wrong(
    settings: Settings, customer: str, sandbox_server
) -> None:
    with pytest.raises(CustomerNotFound, match=r"nobody@example\.com"):
        sync_customer("nobody@example.com", settings=settings)
    with pytest.raises(InvalidRequest, match="categroy"):
        sync_customer(customer, SyncOptions(filter="categroy:Work"), settings=settings)
    settings.control_store().update_customers(["lonely"])
    with pytest.raises(ConnectionNotFound, match="lonely"):
        sync_customer("lonely", settings=settings)
    unconfigured = settings.model_copy(update={"graph": settings.graph.model_copy(update={"client_id": ""})})
    with pytest.raises(NotConfigured, match="MAILROOM_CLIENT_ID"):
        sync_customer(customer, settings=unconfigured)
    with run_lock(settings.mail_store_path(customer), customer_id=customer), pytest.raises(SyncBusy):
        sync_customer(customer, settings=settings)


def test_attachments_metadata_always_content_on_request(
    settings: Settings, customer: str, sandbox_admin: AdminClient
) -> None:
    options = SyncOptions(attachments=True, max_attachment_bytes=1_000_000)
    sync_customer(customer, options, settings=settings)
    store = settings.mail_store(customer)
    truth = sandbox_admin.ground_truth(MAILBOX)
    by_name = {}
    for message in truth["messages"]:
        if message["folderPath"] != ["Inbox"]:
            continue
        for record in store.attachments(message["id"], with_content=True):
            by_name[record.row.name] = record.row
    assert by_name["Invoice 2024-117.pdf"].content_state == "stored"
    assert len(by_name["Invoice 2024-117.pdf"].content) == 24_000
    assert by_name["chart.png"].content_state == "inline_skipped"
    assert by_name["chart.png"].is_inline
    assert by_name["photos.zip"].content_state == "too_large"
    assert by_name["Forwarded message.eml"].format == "eml"
    assert by_name["Old thread.msg"].format == "msg"
    assert by_name["Kickoff.ics"].format == "ics"
    item = by_name["Reminder - please bring laptop"]
    assert item.kind == "item"
    assert item.format == "eml"
    assert item.content.startswith(b"")
    assert item.content
    assert by_name["Team offsite"].format == "ics"
    assert by_name["Sales Invoice Template.docx"].kind == "reference"
    assert by_name["Sales Invoice Template.docx"].content_state == "reference"


def test_a_run_that_changed_something_rebuilds_an_existing_index_unless_told_not_to(
    settings: Settings, customer: str, sandbox_admin: AdminClient
) -> None:
    sync_customer(customer, settings=settings)
    store = settings.mail_store(customer)
    store.rebuild_search_index()

    sandbox_admin.add_message(MAILBOX, subject="Zanzibar shipping manifest", body="<p>Cargo list</p>")
    sync_customer(customer, SyncOptions(rebuild_index=False), settings=settings)
    assert store.search_index_status() == "stale"
    assert store.search("zanzibar") == []

    sandbox_admin.add_message(MAILBOX, subject="Zanzibar customs form", body="<p>Form attached</p>")
    sync_customer(customer, settings=settings)
    assert store.search_index_status() == "current"
    assert len(store.search("zanzibar")) == 2
