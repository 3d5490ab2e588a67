"""The client against the sandbox over HTTPS: folders, listings, one message, $batch, delta, moves,
attachments, tokens refused; and the same client code in-process through httpx.ASGITransport."""

from __future__ import annotations

import asyncio
import hashlib
import tracemalloc

import httpx
import pytest

from pipelines.graph import (
    AttachmentTooLarge,
    AuthError,
    BadRequestError,
    FolderNotFoundError,
    GraphClient,
    NotFoundError,
    StaticTokenProvider,
    SyncStateExpired,
    join_path,
)
from tests.graph.conftest import settings_for

pytestmark = pytest.mark.anyio

ADELE = "adele@contoso.test"


def truth_ids(truth: dict, path: str) -> list[str]:
    return [m["id"] for m in truth["messages"] if join_path(m["folderPath"]) == path]


def client(settings, token: str, **kwargs) -> GraphClient:
    return GraphClient(settings, StaticTokenProvider(token, name="test connection"), **kwargs)


async def test_the_folder_tree_is_every_mail_folder_at_every_depth(
    sandbox_settings, app_token, sandbox_admin
):
    truth = sandbox_admin.ground_truth(ADELE)
    expected = {
        join_path(f["path"])
        for f in truth["folders"]
        if f["path"] and not f.get("isHidden") and "mailSearchFolder" not in f.get("@odata.type", "")
    }
    async with client(sandbox_settings, app_token) as graph:
        tree = await graph.user(ADELE).folder_tree()
    assert {node.path for node in tree} == expected
    assert "Inbox/Receipts/2024" in expected
    assert "Inbox/Q1\\/Q2 Reports" in expected
    assert tree.well_known("inbox").path == "Inbox"
    assert tree.well_known("sentitems").path == "Sent Items"


async def test_folders_resolve_by_well_known_name_path_escaped_path_and_id(sandbox_settings, app_token):
    async with client(sandbox_settings, app_token) as graph:
        adele = graph.user(ADELE)
        tree = await adele.folder_tree()
        receipts_2024 = await adele.resolve_folder("Inbox/Receipts/2024", tree=tree)
        assert receipts_2024.parts == ("Inbox", "Receipts", "2024")
        assert (await adele.resolve_folder("inbox/receipts/2024", tree=tree)).id == receipts_2024.id
        assert (await adele.resolve_folder(receipts_2024.id, tree=tree)).path == "Inbox/Receipts/2024"
        assert (await adele.resolve_folder("Inbox/Q1\\/Q2 Reports", tree=tree)).parts[-1] == "Q1/Q2 Reports"
        sent = await adele.resolve_folder("SentItems", tree=tree)
        assert (sent.path, sent.well_known_name) == ("Sent Items", "sentitems")
        with pytest.raises(FolderNotFoundError) as caught:
            await adele.resolve_folder("Inbox/Reciepts", tree=tree)
        assert "Inbox/Receipts" in caught.value.suggestions
        assert "did you mean 'Inbox/Receipts'" in str(caught.value)


async def test_well_known_names_find_localized_folders(sandbox_settings, app_token, sandbox_admin):
    megan = "megan@contoso.test"
    truth = sandbox_admin.ground_truth(megan)
    inbox_path = next(f["path"] for f in truth["folders"] if f.get("wellKnownName") == "inbox")
    async with client(sandbox_settings, app_token) as graph:
        node = await graph.user(megan).resolve_folder("inbox")
    assert node.parts == tuple(inbox_path)
    assert node.path != "Inbox"


async def test_a_listing_follows_every_next_link_and_returns_each_message_once(
    sandbox_server, app_token, sandbox_admin
):
    truth = sandbox_admin.ground_truth(ADELE)
    settings = settings_for(sandbox_server, page_size=7)
    async with client(settings, app_token) as graph:
        adele = graph.user(ADELE)
        inbox = await adele.resolve_folder("inbox")
        pages = [page async for page in adele.list_messages(inbox.id)]
    ids = [m.id for page in pages for m in page.messages]
    assert sorted(ids) == sorted(truth_ids(truth, "Inbox"))
    assert len(ids) == len(set(ids)) > 7
    assert all(len(page.messages) == 7 for page in pages[:-1])
    assert pages[-1].next_link is None
    assert all(m.body and m.body.content for page in pages for m in page.messages)


async def test_select_filter_and_top_reach_graph(sandbox_settings, app_token, sandbox_admin):
    truth = sandbox_admin.ground_truth(ADELE)
    with_attachments = {m["id"] for m in truth["messages"] if m["hasAttachments"]}
    async with client(sandbox_settings, app_token) as graph:
        pages = [
            page
            async for page in graph.user(ADELE).list_messages(
                select=["subject", "hasAttachments"], filter="hasAttachments eq true", top=5
            )
        ]
    messages = [m for page in pages for m in page.messages]
    assert {m.id for m in messages} == with_attachments
    assert all(len(page.messages) <= 5 for page in pages)
    assert all(m.model_fields_set <= {"id", "etag", "subject", "has_attachments"} for m in messages)


async def test_one_message_and_many_through_batch(fresh_sandbox, sandbox_admin):
    truth = sandbox_admin.ground_truth(ADELE)
    subjects = {m["id"]: m["subject"] for m in truth["messages"]}
    ids = list(subjects)[:45]
    sandbox_admin.delete_message(ADELE, ids[3])
    sandbox_admin.clear_log()
    async with client(settings_for(fresh_sandbox), sandbox_admin.mint_token()) as graph:
        adele = graph.user(ADELE)
        one = await adele.get_message(ids[0], select=["subject", "receivedDateTime"])
        many = await adele.get_messages(ids, select=["subject"])
        with pytest.raises(NotFoundError) as caught:
            await adele.get_message(ids[3])
    assert one.subject == subjects[ids[0]]
    assert one.received_date_time.tzinfo is not None
    assert list(many) == ids
    assert many[ids[3]] is None
    assert all(many[i].subject == subjects[i] for i in ids if i != ids[3])
    assert caught.value.code == "ErrorItemNotFound"
    assert caught.value.request_id
    batches = [e for e in sandbox_admin.log() if e["path"].endswith("$batch")]
    assert len(batches) >= 3  # 45 ids: 20 + 20 + 5, and again for the lane behind the deleted one
    counters = sandbox_admin.counters(ADELE)
    assert counters["max_in_flight"] <= 4


async def test_a_request_its_sender_stops_waiting_for_keeps_its_slot_until_graph_answers(
    fresh_sandbox, sandbox_admin
):
    """Graph goes on with a request whose sender was cancelled and counts it until it answers: the client's
    next requests must not make one too many in flight (the sandbox refuses a fifth with a 429)."""
    truth = sandbox_admin.ground_truth(ADELE)
    abandoned, *others = [m["id"] for m in truth["messages"]][:9]
    first, second = others[:4], others[4:]
    sandbox_admin.add_rule(path=f"/messages/{abandoned}$", action="hold", delay_ms=20_000)
    # Each of the others takes 300 ms at the server, so requests sent together overlap there.
    sandbox_admin.add_rule(path=f"/messages/({'|'.join(others)})$", action="delay", delay_ms=300, times=0)
    sandbox_admin.clear_log()
    async with client(settings_for(fresh_sandbox), sandbox_admin.mint_token()) as graph:
        adele = graph.user(ADELE)
        slow = asyncio.create_task(adele.get_message(abandoned))
        while await asyncio.to_thread(sandbox_admin.held, ADELE) < 1:
            await asyncio.sleep(0.01)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        got = await asyncio.gather(*(adele.get_message(i, select=["subject"]) for i in first))
        assert [m.id for m in got] == first
        at_once = max(e["in_flight"] for e in await asyncio.to_thread(sandbox_admin.log, mailbox=ADELE))
        assert at_once == 4  # the abandoned request and three others: the fourth waited for a slot
        assert await asyncio.to_thread(sandbox_admin.release) == 1
        while not any(
            e["path"].endswith(abandoned) and e["status"] == 200
            for e in await asyncio.to_thread(sandbox_admin.log, mailbox=ADELE)
        ):
            await asyncio.sleep(0.01)
        sandbox_admin.clear_log()
        # Once Graph has answered it, the abandoned request's slot is free again: four go at once.
        got = await asyncio.gather(*(adele.get_message(i, select=["subject"]) for i in second))
        assert [m.id for m in got] == second
        assert max(e["in_flight"] for e in await asyncio.to_thread(sandbox_admin.log, mailbox=ADELE)) == 4
    counters = sandbox_admin.counters(ADELE)
    assert counters["max_in_flight"] <= 4
    assert counters["throttled"] == 0


async def test_delta_rounds_report_changes_removals_and_moves_keep_ids(fresh_sandbox, sandbox_admin):
    async with client(settings_for(fresh_sandbox), sandbox_admin.mint_token()) as graph:
        adele = graph.user(ADELE)
        tree = await adele.folder_tree()
        inbox, archive = tree.well_known("inbox"), tree.well_known("archive")
        links = {}
        for folder in (inbox, archive):
            pages = [
                page async for page in adele.delta(folder.id, select=["subject", "isRead"], page_size=10)
            ]
            assert [p.last for p in pages] == [False] * (len(pages) - 1) + [True]
            links[folder.id] = pages[-1].cursor
            seen = [m.id for p in pages for m in p.messages]
            assert len(seen) == folder.folder.total_item_count
        moved, deleted, read = truth_ids(sandbox_admin.ground_truth(ADELE), "Inbox")[:3]
        added = sandbox_admin.add_message(ADELE, subject="Fresh news", folder="Inbox")["id"]
        sandbox_admin.update_message(ADELE, read, isRead=True)
        sandbox_admin.move_message(ADELE, moved, "archive")
        sandbox_admin.delete_message(ADELE, deleted)
        changes = {}
        for folder in (inbox, archive):
            pages = [page async for page in adele.delta(link=links[folder.id])]
            changes[folder.id] = (
                {m.id: m for p in pages for m in p.messages},
                {i for p in pages for i in p.removed},
            )
        after_move = await adele.get_message(moved)
    inbox_changes, inbox_removed = changes[inbox.id]
    assert set(inbox_changes) == {added, read}
    assert inbox_changes[read].is_read is True
    assert inbox_removed == {moved, deleted}
    archive_changes, archive_removed = changes[archive.id]
    assert set(archive_changes) == {moved}  # the same id in its new folder
    assert archive_removed == set()
    assert after_move.parent_folder_id == archive.id


async def test_an_invalidated_delta_link_is_sync_state_expired(fresh_sandbox, sandbox_admin):
    async with client(settings_for(fresh_sandbox), sandbox_admin.mint_token()) as graph:
        adele = graph.user(ADELE)
        inbox = await adele.get_folder("inbox")
        link = [p async for p in adele.delta(inbox.id)][-1].cursor
        sandbox_admin.invalidate_delta(mailbox=ADELE)
        with pytest.raises(SyncStateExpired) as caught:
            _ = [p async for p in adele.delta(link=link)]
    assert caught.value.status == 410
    assert caught.value.code.lower() == "syncstatenotfound"
    assert caught.value.location


async def test_attachments_metadata_and_content_of_each_kind(
    sandbox_settings, app_token, sandbox_admin, tmp_path
):
    truth = sandbox_admin.ground_truth(ADELE)
    where = {a["name"]: m["id"] for m in truth["messages"] for a in m["attachments"]}
    async with client(sandbox_settings, app_token) as graph:
        adele = graph.user(ADELE)
        by_name = {}
        for name in (
            "Kickoff.ics",
            "Reminder - please bring laptop",
            "Sales Invoice Template.docx",
            "Old thread.msg",
        ):
            attachments = await adele.list_attachments(where[name])
            by_name[name] = (where[name], next(a for a in attachments if a.name == name))
        kinds = {name: (a.kind, a.content_kind) for name, (_, a) in by_name.items()}
        assert kinds == {
            "Kickoff.ics": ("file", "ics"),
            "Reminder - please bring laptop": ("item", "item"),
            "Sales Invoice Template.docx": ("reference", "reference"),
            "Old thread.msg": ("file", "msg"),
        }
        message_id, item = by_name["Reminder - please bring laptop"]
        saved = await adele.save_attachment(message_id, item.id, tmp_path / "item.eml")
        assert saved.content_type.startswith("message/rfc822")
        assert b"Subject:" in saved.path.read_bytes()
        event_message, event = await _attachment(adele, where, "Team offsite")
        async with adele.open_attachment(event_message, event.id) as stream:
            assert stream.content_type.startswith("text/calendar")
            assert (b"".join([chunk async for chunk in stream.chunks()])).startswith(b"BEGIN:VCALENDAR")
        message_id, ics = by_name["Kickoff.ics"]
        async with adele.open_attachment(message_id, ics.id) as stream:
            content = b"".join([chunk async for chunk in stream.chunks()])
        assert content.startswith(b"BEGIN:VCALENDAR")
        message_id, reference = by_name["Sales Invoice Template.docx"]
        with pytest.raises(BadRequestError) as caught:
            await adele.save_attachment(message_id, reference.id, tmp_path / "ref")
        assert caught.value.status == 405
        assert not (tmp_path / "ref").exists()


async def _attachment(adele, where: dict[str, str], name: str):
    message_id = where[name]
    return message_id, next(a for a in await adele.list_attachments(message_id) if a.name == name)


async def test_a_large_attachment_streams_in_bounded_memory(
    sandbox_settings, app_token, sandbox_admin, tmp_path
):
    truth = sandbox_admin.ground_truth(ADELE)
    message_id, size = next(
        (m["id"], a["size"]) for m in truth["messages"] for a in m["attachments"] if a["size"] > 3_000_000
    )
    async with client(sandbox_settings, app_token) as graph:
        adele = graph.user(ADELE)
        attachment = next(a for a in await adele.list_attachments(message_id) if a.size == size)
        with pytest.raises(AttachmentTooLarge) as caught:
            await adele.save_attachment(message_id, attachment.id, tmp_path / "capped", max_bytes=1_000_000)
        assert caught.value.size == size
        tracemalloc.start()
        try:
            saved = await adele.save_attachment(message_id, attachment.id, tmp_path / "big.zip")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert saved.size == size == saved.path.stat().st_size
    assert saved.sha256 == hashlib.sha256(saved.path.read_bytes()).hexdigest()
    assert peak < size / 4, f"peak {peak} bytes while streaming {size}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.zip"]


async def test_a_refused_token_is_an_auth_error_naming_the_connection(sandbox_settings, sandbox_admin):
    token = sandbox_admin.mint_token()
    sandbox_admin.expire_tokens(token=token)
    async with client(sandbox_settings, token) as graph:
        with pytest.raises(AuthError, match="test connection") as caught:
            await graph.user(ADELE).get_folder("inbox")
    assert caught.value.status == 401
    assert token not in str(caught.value)


async def test_app_only_access_has_no_me_and_unlicensed_users_no_mailbox(
    sandbox_server, sandbox_settings, app_token
):
    async with client(sandbox_settings, app_token) as graph:
        with pytest.raises(AuthError) as denied:
            await graph.me().get_folder("inbox")
        with pytest.raises(NotFoundError) as unlicensed:
            await graph.user(sandbox_server.unlicensed[0]).get_folder("inbox")
    assert denied.value.status == 403
    assert unlicensed.value.code == "MailboxNotEnabledForRESTAPI"


async def test_the_same_client_runs_the_sandbox_in_process():
    from sandbox import create_app

    app = create_app(seed=1, messages=30)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://sandbox.test") as admin:
        info = (await admin.get("/_sandbox/info")).json()
        token = (await admin.post("/_sandbox/tokens", json={})).json()["access_token"]
        truth = (await admin.get(f"/_sandbox/mailboxes/{ADELE}/ground-truth")).json()
    settings = settings_for_in_process(info)
    async with client(settings, token, transport=transport) as graph:
        adele = graph.user(ADELE)
        inbox = await adele.resolve_folder("inbox")
        ids = [m.id async for page in adele.list_messages(inbox.id) for m in page.messages]
    assert sorted(ids) == sorted(truth_ids(truth, "Inbox"))


def settings_for_in_process(info: dict):
    from pipelines.graph import GraphSettings

    host, tenant = info["authority"].rsplit("/", 1)
    return GraphSettings(
        graph_url=info["graph_url"], authority_host=host, tenant=tenant, client_id=info["client_id"]
    )


async def test_categories_list_the_mailbox_master_categories(sandbox_settings, app_token, sandbox_admin):
    in_use = {c for m in sandbox_admin.ground_truth(ADELE)["messages"] for c in m["categories"]}
    async with client(sandbox_settings, app_token) as graph:
        categories = await graph.user(ADELE).categories()
    names = {c.display_name for c in categories}
    assert in_use <= names
    assert all(c.id and c.color for c in categories)
