"""Delta rounds over HTTPS: a full first round, then only changes with @removed; tokens, limits, 410s."""

from datetime import UTC, datetime
from typing import Any

import httpx

from sandbox import AdminClient, SandboxInfo
from tests.sandbox.conftest import ADELE, graph_client

PREFER = 'IdType="ImmutableId", odata.maxpagesize=25'


def pages_of(graph: httpx.Client, url: str, **params: Any) -> list[dict[str, Any]]:
    """Every page of one delta round, following next links verbatim; the last one holds the delta link."""
    pages: list[dict[str, Any]] = []
    response = graph.get(url, params=params or None)
    while True:
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page)
        if "@odata.deltaLink" in page:
            assert "@odata.nextLink" not in page
            return pages
        response = graph.get(page["@odata.nextLink"])


def round_of(graph: httpx.Client, url: str, **params: Any) -> tuple[list[dict[str, Any]], str]:
    """All items of one delta round and the delta link that ends it."""
    pages = pages_of(graph, url, **params)
    return [item for page in pages for item in page["value"]], pages[-1]["@odata.deltaLink"]


def inbox_truth(admin: AdminClient) -> list[dict[str, Any]]:
    """The messages in adele's inbox, from the sandbox's ground truth (immutable ids)."""
    return [m for m in admin.ground_truth(ADELE)["messages"] if m["folderPath"] == ["Inbox"]]


def test_first_round_then_changes(fresh_sandbox: SandboxInfo, sandbox_admin: AdminClient) -> None:
    with graph_client(fresh_sandbox, sandbox_admin.mint_token(), Prefer=PREFER) as graph:
        url = f"/users/{ADELE}/mailFolders/inbox/messages/delta"
        first = graph.get(url, params={"$select": "subject,isRead"})
        assert first.headers["Preference-Applied"] == PREFER
        items, link = round_of(graph, url, **{"$select": "subject,isRead"})
        inbox = graph.get(f"/users/{ADELE}/mailFolders/inbox").json()
        assert len({i["id"] for i in items}) == inbox["totalItemCount"]
        assert all(set(i) == {"@odata.type", "@odata.etag", "id", "subject", "isRead"} for i in items)

        quiet, link = round_of(graph, link)
        assert quiet == []

        added = sandbox_admin.add_message(ADELE, subject="Fresh one", folder="inbox")
        victim, changed, leaver = items[0]["id"], items[1]["id"], items[2]["id"]
        sandbox_admin.delete_message(ADELE, victim)
        sandbox_admin.update_message(ADELE, changed, isRead=not items[1]["isRead"])
        sandbox_admin.move_message(ADELE, leaver, "archive")
        changes, link = round_of(graph, link)
        removed = {c["id"] for c in changes if "@removed" in c}
        present = {c["id"]: c for c in changes if "@removed" not in c}
        assert removed == {victim, leaver}
        assert all(c["@removed"] == {"reason": "deleted"} for c in changes if "@removed" in c)
        assert set(present) == {added["id"], changed}
        assert present[changed]["isRead"] is not items[1]["isRead"]
        assert present[added["id"]]["subject"] == "Fresh one"

        archive_items, _ = round_of(graph, f"/users/{ADELE}/mailFolders/archive/messages/delta")
        assert leaver in {i["id"] for i in archive_items}


def test_mutable_ids_show_a_move_out_and_back_as_removed_then_new(
    fresh_sandbox: SandboxInfo, sandbox_admin: AdminClient
) -> None:
    with graph_client(fresh_sandbox, sandbox_admin.mint_token()) as graph:
        folder = next(f for f in sandbox_admin.folders(ADELE) if f["path"] == ["Inbox", "Receipts", "2024"])
        url = f"/users/{ADELE}/mailFolders/{folder['id']}/messages/delta"
        items, link = round_of(graph, url)
        old = items[0]["id"]
        moved = sandbox_admin.move_message(ADELE, old, "archive")
        sandbox_admin.move_message(ADELE, moved["id"], "Inbox/Receipts/2024")
        changes, _ = round_of(graph, link)
        removed = [c["id"] for c in changes if "@removed" in c]
        fresh = [c["id"] for c in changes if "@removed" not in c]
        assert removed == [old]
        assert len(fresh) == 1
        assert fresh[0] != old


def test_change_type_and_received_filter(fresh_sandbox: SandboxInfo, sandbox_admin: AdminClient) -> None:
    with graph_client(fresh_sandbox, sandbox_admin.mint_token(), Prefer=PREFER) as graph:
        url = f"/users/{ADELE}/mailFolders/inbox/messages/delta"
        recent, _ = round_of(
            graph,
            url,
            **{"$filter": "receivedDateTime ge 2025-01-01T00:00:00Z", "$select": "receivedDateTime"},
        )
        assert recent
        assert all(i["receivedDateTime"] >= "2025-01-01" for i in recent)
        items, created_link = round_of(graph, url, changeType="created")
        sandbox_admin.update_message(ADELE, items[0]["id"], isRead=True)
        added = sandbox_admin.add_message(ADELE, subject="New", folder="inbox")
        created, _ = round_of(graph, created_link)
        assert [c["id"] for c in created] == [added["id"]]
        unsupported = graph.get(url, params={"$filter": "isRead eq false"})
        assert unsupported.status_code == 400
        assert unsupported.json()["error"]["code"] == "ErrorInvalidUrlQuery"
        assert "receivedDateTime ge" in unsupported.json()["error"]["message"]
        bad_order = graph.get(url, params={"$orderby": "subject"})
        assert bad_order.json()["error"]["code"] == "ErrorInvalidUrlQuery"


def test_invalidated_and_unknown_tokens_answer_410(
    fresh_sandbox: SandboxInfo, sandbox_admin: AdminClient
) -> None:
    with graph_client(fresh_sandbox, sandbox_admin.mint_token(), Prefer=PREFER) as graph:
        url = f"/users/{ADELE}/mailFolders/inbox/messages/delta"
        first = graph.get(url).json()
        next_link = first["@odata.nextLink"]
        sandbox_admin.invalidate_delta(mailbox=ADELE, folder="inbox")
        gone = graph.get(next_link)
        assert gone.status_code == 410
        assert gone.json()["error"]["code"] == "SyncStateNotFound"
        assert gone.headers["Location"].endswith(url)
        restarted, _ = round_of(graph, gone.headers["Location"])
        assert restarted
        unknown = graph.get(url, params={"$deltatoken": "made-up"})
        assert unknown.status_code == 410


def test_empty_pages_carry_a_next_link_and_lose_nothing(
    fresh_sandbox: SandboxInfo, sandbox_admin: AdminClient
) -> None:
    url = f"/users/{ADELE}/mailFolders/inbox/messages/delta"
    truth = {m["id"] for m in inbox_truth(sandbox_admin)}
    prefer = 'IdType="ImmutableId", odata.maxpagesize=5'

    def pages() -> list[dict[str, Any]]:
        with graph_client(fresh_sandbox, sandbox_admin.mint_token(), Prefer=prefer) as graph:
            return pages_of(graph, url, **{"$select": "subject"})

    plain = pages()
    assert [p for p in plain if p["value"] == []] == []  # without the setting, no page is empty
    sandbox_admin.set_faults(delta_empty_page_rate=0.3)
    faulty = pages()
    empty = [p for p in faulty if p["value"] == []]
    assert len(empty) >= 1  # seeded, so the same pages come back empty on every run
    assert all("@odata.nextLink" in p and "@odata.deltaLink" not in p for p in empty)
    ids = [item["id"] for page in faulty for item in page["value"]]
    assert len(ids) == len(set(ids)) == len(truth)
    assert set(ids) == truth
    # Empty pages are extra pages: every other page is as full as the page size allows.
    assert len(faulty) == len(plain) + len(empty) == -(-len(truth) // 5) + len(empty)


def test_replayed_items_lose_nothing(fresh_sandbox: SandboxInfo, sandbox_admin: AdminClient) -> None:
    sandbox_admin.set_faults(delta_replay_rate=0.5)
    with graph_client(fresh_sandbox, sandbox_admin.mint_token(), Prefer=PREFER) as graph:
        url = f"/users/{ADELE}/mailFolders/inbox/messages/delta"
        items, _ = round_of(graph, url, **{"$select": "subject"})
    ids = [i["id"] for i in items]
    assert len(ids) > len(set(ids))
    assert set(ids) == {m["id"] for m in inbox_truth(sandbox_admin)}
    log = sandbox_admin.log(mailbox=ADELE)
    assert all(entry["route"].endswith("/messages/delta") for entry in log)


def _received(item: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(item["receivedDateTime"])


def test_a_filtered_round_stops_at_the_5000_newest_and_says_nothing_more(
    fresh_sandbox: SandboxInfo, sandbox_admin: AdminClient
) -> None:
    """Graph (graph.md section 4): with `receivedDateTime ge|gt`, a round returns up to 5,000 messages. It
    gives no count or warning: the round simply ends with a delta link, and later rounds carry only changes,
    so the older matches never come. The sandbox keeps the newest 5,000."""
    sandbox_admin.reset(messages=14_000)
    since = datetime(2023, 7, 1, tzinfo=UTC)
    matching = sorted(
        (m for m in inbox_truth(sandbox_admin) if _received(m) >= since), key=_received, reverse=True
    )
    assert len(matching) > 5_100  # the seed fills the inbox past the cap
    assert _received(matching[4_999]) > _received(matching[5_000])  # no tie makes "the newest" ambiguous
    prefer = 'IdType="ImmutableId", odata.maxpagesize=1000'
    with graph_client(fresh_sandbox, sandbox_admin.mint_token(), Prefer=prefer) as graph:
        url = f"/users/{ADELE}/mailFolders/inbox/messages/delta"
        pages = pages_of(
            graph,
            url,
            **{
                "$filter": "receivedDateTime ge 2023-07-01T00:00:00Z",
                "$orderby": "receivedDateTime desc",
                "$select": "receivedDateTime",
            },
        )
        items = [item for page in pages for item in page["value"]]
        assert len(items) == 5_000
        assert {i["id"] for i in items} == {m["id"] for m in matching[:5_000]}
        stamps = [_received(i) for i in items]
        assert stamps == sorted(stamps, reverse=True)
        assert [sorted(page) for page in pages] == [["@odata.context", "@odata.nextLink", "value"]] * (
            len(pages) - 1
        ) + [["@odata.context", "@odata.deltaLink", "value"]]

        added = sandbox_admin.add_message(
            ADELE, subject="After the cap", receivedDateTime="2025-06-02T00:00:00Z"
        )
        changes, _ = round_of(graph, pages[-1]["@odata.deltaLink"])
        assert [c["id"] for c in changes] == [added["id"]]


def test_ge_and_gt_rounds_differ_at_the_instant_itself(
    fresh_sandbox: SandboxInfo, sandbox_admin: AdminClient
) -> None:
    folder = sandbox_admin.add_folder(ADELE, "Boundary")

    def add(received: str) -> str:
        return sandbox_admin.add_message(
            ADELE, subject=received, folder=folder["id"], receivedDateTime=received
        )["id"]

    add("2024-03-01T11:59:59Z")
    exact = add("2024-03-01T12:00:00Z")
    later = add("2024-03-01T12:00:01Z")
    url = f"/users/{ADELE}/mailFolders/{folder['id']}/messages/delta"
    with graph_client(fresh_sandbox, sandbox_admin.mint_token(), Prefer=PREFER) as graph:

        def ids_of(**params: Any) -> tuple[set[str], str]:
            items, link = round_of(graph, url, **params)
            return {i["id"] for i in items}, link

        ge, ge_link = ids_of(**{"$filter": "receivedDateTime ge 2024-03-01T12:00:00Z"})
        gt, gt_link = ids_of(**{"$filter": "receivedDateTime gt 2024-03-01T12:00:00Z"})
        assert ge == {exact, later}
        assert gt == {later}
        assert ids_of(**{"$filter": "receivedDateTime gt 2024-03-01T13:00:00+01:00"})[0] == {later}
        assert ids_of(**{"$filter": "receivedDateTime GT 2024-03-01T11:59:59Z"})[0] == {exact, later}

        # The filter travels in the links: a later arrival stamped with the instant passes ge only.
        again = add("2024-03-01T12:00:00Z")
        assert {i["id"] for i in round_of(graph, ge_link)[0]} == {again}
        assert round_of(graph, gt_link)[0] == []
