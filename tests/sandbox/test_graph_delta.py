"""Delta rounds over HTTPS: a full first round, then only changes with @removed; tokens, limits, 410s."""

from typing import Any

import httpx

from sandbox import AdminClient, SandboxInfo
from tests.sandbox.conftest import ADELE, graph_client

PREFER = 'IdType="ImmutableId", odata.maxpagesize=25'


def round_of(graph: httpx.Client, url: str, **params: Any) -> tuple[list[dict[str, Any]], str]:
    """All items of one delta round and the delta link that ends it."""
    items: list[dict[str, Any]] = []
    response = graph.get(url, params=params or None)
    while True:
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["value"]
        if "@odata.deltaLink" in page:
            return items, page["@odata.deltaLink"]
        assert "@odata.deltaLink" not in page
        response = graph.get(page["@odata.nextLink"])


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


def test_faulty_profile_replays_and_empty_pages_lose_nothing(
    fresh_sandbox: SandboxInfo, sandbox_admin: AdminClient
) -> None:
    sandbox_admin.set_faults(delta_replay_rate=0.5, delta_empty_page_rate=0.3)
    with graph_client(fresh_sandbox, sandbox_admin.mint_token(), Prefer="odata.maxpagesize=5") as graph:
        url = f"/users/{ADELE}/mailFolders/inbox/messages/delta"
        items, _ = round_of(graph, url, **{"$select": "subject"})
    ids = [i["id"] for i in items]
    assert len(ids) > len(set(ids))
    log = sandbox_admin.log(mailbox=ADELE)
    assert any(entry["route"].endswith("/messages/delta") for entry in log)
    with graph_client(fresh_sandbox, sandbox_admin.mint_token()) as graph:
        inbox = graph.get(f"/users/{ADELE}/mailFolders/inbox").json()
    assert len(set(ids)) == inbox["totalItemCount"]
