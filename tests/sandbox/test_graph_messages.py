"""Messages over HTTPS: paging, $select, $filter/$orderby/$search rules, ids, Prefer headers, MIME."""

import email
import email.policy

import httpx
import pytest

from sandbox import AdminClient, SandboxInfo, filter_matches
from tests.sandbox.conftest import ADELE, collect, graph_client

IMMUTABLE = {"Prefer": 'IdType="ImmutableId"'}


def test_paging_returns_every_message_once_newest_first(
    graph: httpx.Client, sandbox_admin: AdminClient
) -> None:
    truth = sandbox_admin.ground_truth(ADELE)
    first = graph.get(f"/users/{ADELE}/messages").json()
    assert len(first["value"]) == 10
    items = collect(graph, f"/users/{ADELE}/messages", **{"$top": 37, "$select": "receivedDateTime"})
    assert len(items) == len({m["id"] for m in items}) == len(truth["messages"])
    stamps = [m["receivedDateTime"] for m in items]
    assert stamps == sorted(stamps, reverse=True)
    assert set(items[0]) == {"@odata.etag", "id", "receivedDateTime"}


def test_top_is_bounded_and_count_is_total(graph: httpx.Client) -> None:
    too_many = graph.get(f"/users/{ADELE}/messages", params={"$top": 1001})
    assert too_many.status_code == 400
    assert "1001" in too_many.json()["error"]["message"]
    page = graph.get(
        f"/users/{ADELE}/mailFolders/inbox/messages", params={"$top": 1, "$count": "true"}
    ).json()
    assert page["@odata.count"] == graph.get(f"/users/{ADELE}/mailFolders/inbox").json()["totalItemCount"]


@pytest.mark.parametrize(
    "text",
    [
        "isRead eq false",
        "hasAttachments eq true",
        "importance eq 'high'",
        "categories/any(c:c eq 'Red category')",
        "from/emailAddress/address eq 'noreply@example.com'",
        "receivedDateTime ge 2024-06-01T00:00:00Z and receivedDateTime lt 2025-01-01",
        "flag/flagStatus eq 'flagged' or startswith(subject,'RE:')",
        "subject eq 'Let''s meet for lunch?'",
    ],
)
def test_filter_results_are_the_local_evaluation_of_the_ground_truth(
    graph: httpx.Client, sandbox_admin: AdminClient, text: str
) -> None:
    truth = sandbox_admin.ground_truth(ADELE)
    expected = {m["id"] for m in truth["messages"] if filter_matches(text, m)}
    response = graph.get(
        f"/users/{ADELE}/messages", params={"$filter": text, "$top": 1000}, headers=IMMUTABLE
    )
    got = [m["id"] for m in response.json()["value"]]
    assert expected
    assert set(got) == expected


def test_orderby_rule_inefficient_filter(graph: httpx.Client) -> None:
    url = f"/users/{ADELE}/messages"
    ok = graph.get(
        url,
        params={
            "$filter": "receivedDateTime ge 2024-01-01T00:00:00Z and importance eq 'high'",
            "$orderby": "receivedDateTime desc",
        },
    )
    assert ok.status_code == 200
    bad = graph.get(url, params={"$filter": "importance eq 'high'", "$orderby": "receivedDateTime desc"})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "InefficientFilter"
    ordered = collect(graph, url, **{"$orderby": "subject", "$select": "subject", "$top": 500})
    subjects = [m["subject"].casefold() for m in ordered]
    assert subjects == sorted(subjects)


def test_search_rules_and_results(graph: httpx.Client) -> None:
    url = f"/users/{ADELE}/messages"
    hits = collect(graph, url, **{"$search": '"subject:invoice"', "$select": "subject"})
    assert hits
    assert all("invoice" in m["subject"].lower() for m in hits)
    with_filter = graph.get(url, params={"$search": '"invoice"', "$filter": "isRead eq true"})
    assert with_filter.json()["error"]["code"] == "SearchWithFilter"
    with_order = graph.get(url, params={"$search": '"invoice"', "$orderby": "subject"})
    assert with_order.json()["error"]["code"] == "SearchWithOrderBy"
    unquoted = graph.get(url, params={"$search": "invoice"})
    assert unquoted.status_code == 400


def test_select_errors_and_on_request_properties(graph: httpx.Client) -> None:
    url = f"/users/{ADELE}/mailFolders/inbox/messages"
    assert graph.get(url, params={"$select": "subject,nonsense"}).status_code == 400
    default = graph.get(url, params={"$top": 1}).json()["value"][0]
    assert "uniqueBody" not in default
    assert "internetMessageHeaders" not in default
    assert default["body"]["contentType"] == "html"
    chosen = graph.get(url, params={"$top": 1, "$select": "uniqueBody,internetMessageHeaders"}).json()[
        "value"
    ][0]
    assert set(chosen) == {"@odata.etag", "id", "uniqueBody", "internetMessageHeaders"}
    assert {h["name"] for h in chosen["internetMessageHeaders"]} >= {"Message-ID", "From", "Subject"}


def test_reply_unique_body_leaves_out_quoted_history(graph: httpx.Client) -> None:
    reply = graph.get(
        f"/users/{ADELE}/messages",
        params={"$filter": "subject eq 'RE: Quarterly planning'", "$select": "body,uniqueBody"},
        headers={"Prefer": 'outlook.body-content-type="text"'},
    )
    assert reply.headers["Preference-Applied"] == 'outlook.body-content-type="text"'
    message = reply.json()["value"][0]
    assert message["body"]["contentType"] == "text"
    assert "From:" in message["body"]["content"]
    assert "From:" not in message["uniqueBody"]["content"]
    assert message["uniqueBody"]["content"] in message["body"]["content"]


def test_ids_change_on_move_unless_immutable(graph: httpx.Client, sandbox_admin: AdminClient) -> None:
    page = graph.get(f"/users/{ADELE}/mailFolders/inbox/messages", params={"$top": 1, "$select": "subject"})
    mutable = page.json()["value"][0]["id"]
    immutable = graph.get(f"/users/{ADELE}/messages/{mutable}", headers=IMMUTABLE).json()["id"]
    assert immutable != mutable
    sandbox_admin.move_message(ADELE, immutable, "archive")
    gone = graph.get(f"/users/{ADELE}/messages/{mutable}")
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "ErrorItemNotFound"
    moved = graph.get(f"/users/{ADELE}/messages/{immutable}", headers=IMMUTABLE)
    assert moved.status_code == 200
    assert moved.json()["id"] == immutable
    assert moved.headers["Preference-Applied"] == 'IdType="ImmutableId"'
    new_mutable = graph.get(f"/users/{ADELE}/messages/{immutable}").json()["id"]
    assert new_mutable not in {mutable, immutable}
    archive = graph.get(f"/users/{ADELE}/mailFolders/archive").json()["id"]
    assert moved.json()["parentFolderId"] == archive
    malformed = graph.get(f"/users/{ADELE}/messages/AAMk-not-an-id")
    assert malformed.json()["error"]["code"] == "ErrorInvalidIdMalformed"


def test_patch_move_and_delete_through_graph(fresh_sandbox: SandboxInfo, sandbox_admin: AdminClient) -> None:
    token = sandbox_admin.mint_token(roles=["Mail.ReadWrite"])
    with graph_client(fresh_sandbox, token, Prefer='IdType="ImmutableId"') as graph:
        first = graph.get(f"/users/{ADELE}/mailFolders/inbox/messages", params={"$top": 1}).json()["value"][0]
        patched = graph.patch(
            f"/users/{ADELE}/messages/{first['id']}",
            json={"isRead": not first["isRead"], "categories": ["Travel"]},
        )
        assert patched.status_code == 200
        assert patched.json()["categories"] == ["Travel"]
        assert patched.json()["changeKey"] != first["changeKey"]
        moved = graph.post(f"/users/{ADELE}/messages/{first['id']}/move", json={"destinationId": "junkemail"})
        assert moved.status_code == 201
        assert graph.delete(f"/users/{ADELE}/messages/{first['id']}").status_code == 204
        deleted = graph.get(f"/users/{ADELE}/mailFolders/deleteditems/messages/{first['id']}")
        assert deleted.status_code == 200
    with graph_client(fresh_sandbox, sandbox_admin.mint_token()) as read_only:
        refused = read_only.patch(f"/users/{ADELE}/messages/{first['id']}", json={"isRead": True})
        assert refused.status_code == 403


def test_message_value_is_parseable_mime(graph: httpx.Client) -> None:
    found = graph.get(f"/users/{ADELE}/messages", params={"$filter": "subject eq 'Invoice 2024-117'"}).json()
    message = found["value"][0]
    raw = graph.get(f"/users/{ADELE}/messages/{message['id']}/$value")
    assert raw.status_code == 200
    parsed = email.message_from_bytes(raw.content, policy=email.policy.default)
    assert parsed["Subject"] == "Invoice 2024-117"
    assert parsed["Message-ID"] == message["internetMessageId"]
    names = sorted(part.get_filename() for part in parsed.iter_attachments())
    assert names == ["Invoice 2024-117.pdf", "chart.png"]


def test_request_ids_and_error_shape(graph: httpx.Client) -> None:
    response = graph.get(f"/users/{ADELE}/messages/nope", headers={"client-request-id": "abc-123"})
    assert response.headers["client-request-id"] == "abc-123"
    error = response.json()["error"]
    assert error["innerError"]["client-request-id"] == "abc-123"
    assert error["innerError"]["request-id"] == response.headers["request-id"]
    unknown = graph.get(f"/users/{ADELE}/calendars")
    assert unknown.status_code == 400
    assert "calendars" in unknown.json()["error"]["message"]
