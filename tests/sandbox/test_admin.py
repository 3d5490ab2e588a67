"""The admin API: ground truth, adding and changing mail, folder paths, reset, and its error messages."""

import base64

import httpx
import pytest

from sandbox import AdminClient, AdminError, SandboxInfo
from tests.sandbox.conftest import ADELE, collect, graph_client

IMMUTABLE = {"Prefer": 'IdType="ImmutableId"'}


def test_ground_truth_matches_what_graph_serves(
    fresh_sandbox: SandboxInfo, sandbox_admin: AdminClient
) -> None:
    truth = sandbox_admin.ground_truth(ADELE)
    with graph_client(fresh_sandbox, sandbox_admin.mint_token(), **IMMUTABLE) as graph:
        served = collect(graph, f"/users/{ADELE}/messages", **{"$top": 200})
    by_id = {m["id"]: m for m in served}
    assert set(by_id) == {m["id"] for m in truth["messages"]}
    for expected in truth["messages"]:
        got = by_id[expected["id"]]
        for key in (
            "subject",
            "receivedDateTime",
            "categories",
            "isRead",
            "flag",
            "parentFolderId",
            "from",
            "internetMessageId",
            "hasAttachments",
        ):
            assert got[key] == expected[key], key
    paths = {tuple(m["folderPath"]) for m in truth["messages"]}
    assert ("Inbox", "Q1/Q2 Reports") in paths
    assert ("Inbox", "Receipts", "2024") in paths
    with_bodies = sandbox_admin.ground_truth(ADELE, bodies="text")
    assert all(m["body"]["contentType"] == "text" for m in with_bodies["messages"])
    assert "body" not in truth["messages"][0]


def test_add_change_move_delete(fresh_sandbox: SandboxInfo, sandbox_admin: AdminClient) -> None:
    payload = base64.b64encode(b"col1,col2\r\n1,2\r\n").decode()
    ids = sandbox_admin.add_message(
        ADELE,
        folder="Inbox/Q1\\/Q2 Reports",
        subject="Numbers",
        sender={"name": "Zoë", "address": "zoe@x.example"},
        toRecipients=[ADELE],
        body={"contentType": "text", "content": "Line one\nLine <two>"},
        categories=["Team A"],
        receivedDateTime="2025-03-04T05:06:07Z",
        attachments=[{"name": "n.csv", "contentType": "text/csv", "contentBytes": payload}],
    )
    with graph_client(fresh_sandbox, sandbox_admin.mint_token(), **IMMUTABLE) as graph:
        message = graph.get(f"/users/{ADELE}/messages/{ids['id']}").json()
        assert message["receivedDateTime"] == "2025-03-04T05:06:07Z"
        assert "Line &lt;two&gt;" in message["body"]["content"]
        assert message["parentFolderId"] == ids["folder_id"]
        attachment = graph.get(f"/users/{ADELE}/messages/{ids['id']}/attachments").json()["value"][0]
        raw = graph.get(f"/users/{ADELE}/messages/{ids['id']}/attachments/{attachment['id']}/$value")
        assert raw.content == base64.b64decode(payload)
        sandbox_admin.update_message(ADELE, ids["id"], isRead=True, flag="flagged", categories=[])
        changed = graph.get(f"/users/{ADELE}/messages/{ids['id']}").json()
        assert (changed["isRead"], changed["flag"]["flagStatus"], changed["categories"]) == (
            True,
            "flagged",
            [],
        )
        moved = sandbox_admin.move_message(ADELE, ids["id"], "Inbox/Receipts/2024")
        assert moved["id"] == ids["id"]
        assert moved["mutable_id"] != ids["mutable_id"]
        sandbox_admin.delete_message(ADELE, ids["id"])
        assert graph.get(f"/users/{ADELE}/messages/{ids['id']}").status_code == 404


def test_folders_and_reset(fresh_sandbox: SandboxInfo, sandbox_admin: AdminClient) -> None:
    token = sandbox_admin.mint_token()
    before = len(sandbox_admin.ground_truth(ADELE)["messages"])
    created = sandbox_admin.add_folder(ADELE, "Travel", parent="Inbox")
    assert created["path"] == ["Inbox", "Travel"]
    with pytest.raises(AdminError) as duplicate:
        sandbox_admin.add_folder(ADELE, "travel", parent="Inbox")
    assert duplicate.value.status == 409
    sandbox_admin.add_message(ADELE, folder="Inbox/Travel", subject="Tickets")
    assert len(sandbox_admin.ground_truth(ADELE)["messages"]) == before + 1
    sandbox_admin.reset()
    assert len(sandbox_admin.ground_truth(ADELE)["messages"]) == before
    assert all(f["displayName"] != "Travel" for f in sandbox_admin.folders(ADELE))
    with graph_client(fresh_sandbox, token) as graph:
        assert graph.get(f"/users/{ADELE}/mailFolders/inbox").status_code == 200
    bigger = sandbox_admin.reset(messages=400)
    assert bigger["messages"] == 400
    assert len(sandbox_admin.ground_truth(ADELE)["messages"]) == before + 280


def test_admin_errors_say_what_was_wrong(sandbox_admin: AdminClient) -> None:
    with pytest.raises(AdminError) as unknown:
        sandbox_admin.ground_truth("nobody@contoso.test")
    assert unknown.value.status == 404
    assert "adele@contoso.test" in unknown.value.message
    with pytest.raises(AdminError) as folder:
        sandbox_admin.add_message(ADELE, folder="Inbox/Nope", subject="x")
    assert "No folder 'Nope'" in folder.value.message
    with pytest.raises(AdminError) as invalid:
        sandbox_admin.add_message(ADELE, subject="x", importance="urgent")
    assert invalid.value.status == 400
    assert "importance" in invalid.value.message
    with pytest.raises(AdminError) as bad_id:
        sandbox_admin.delete_message(ADELE, "AAMk-nope")
    assert bad_id.value.code == "ErrorInvalidIdMalformed"


def test_admin_openapi_is_served(fresh_sandbox: SandboxInfo) -> None:
    from sandbox import ssl_context

    with httpx.Client(verify=ssl_context(fresh_sandbox.ca_cert), trust_env=False) as http:
        spec = http.get(f"{fresh_sandbox.base_url}/_sandbox/openapi.json").json()
    assert "/_sandbox/mailboxes/{upn}/ground-truth" in spec["paths"]
