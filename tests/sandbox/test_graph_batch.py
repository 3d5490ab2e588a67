"""$batch over HTTPS: limits, dependsOn and 424, relative urls, inner requests throttled on their own."""

import base64
from urllib.parse import quote

import httpx

from sandbox import AdminClient
from tests.sandbox.conftest import ADELE


def test_batch_answers_each_request(graph: httpx.Client) -> None:
    inbox_page = graph.get(f"/users/{ADELE}/mailFolders/inbox/messages", params={"$top": 2}).json()["value"]
    requests = [
        {"id": "1", "method": "GET", "url": f"/users/{ADELE}/mailFolders/inbox?$select=displayName"},
        {"id": "2", "method": "GET", "url": f"users/{ADELE}/messages/{inbox_page[0]['id']}?$select=subject"},
        {"id": "3", "method": "GET", "url": f"/users/{ADELE}/messages/{inbox_page[1]['id']}/$value"},
        {"id": "4", "method": "GET", "url": f"/users/{ADELE}/messages/AAMk-broken"},
    ]
    response = graph.post("/$batch", json={"requests": requests})
    assert response.status_code == 200
    answers = {r["id"]: r for r in response.json()["responses"]}
    assert answers["1"]["status"] == 200
    assert answers["1"]["body"]["displayName"] == "Inbox"
    assert answers["2"]["body"]["subject"] == inbox_page[0]["subject"]
    assert b"Subject:" in base64.b64decode(answers["3"]["body"])
    assert answers["4"]["status"] == 400
    assert answers["4"]["body"]["error"]["code"] == "ErrorInvalidIdMalformed"


def test_depends_on_a_failure_gives_424(graph: httpx.Client) -> None:
    requests = [
        {"id": "a", "method": "GET", "url": f"/users/{ADELE}/messages/AAMk-broken"},
        {"id": "b", "method": "GET", "url": f"/users/{ADELE}/mailFolders/inbox", "dependsOn": ["a"]},
        {"id": "c", "method": "GET", "url": f"/users/{ADELE}/mailFolders/inbox"},
        {"id": "d", "method": "GET", "url": f"/users/{ADELE}/mailFolders/archive", "dependsOn": ["c"]},
    ]
    answers = {
        r["id"]: r["status"] for r in graph.post("/$batch", json={"requests": requests}).json()["responses"]
    }
    assert answers == {"a": 400, "b": 424, "c": 200, "d": 200}


def test_malformed_batches_are_400(graph: httpx.Client) -> None:
    one = {"method": "GET", "url": f"/users/{ADELE}/mailFolders/inbox"}
    too_many = [{"id": str(i), **one} for i in range(21)]
    assert graph.post("/$batch", json={"requests": too_many}).status_code == 400
    duplicated = [{"id": "x", **one}, {"id": "x", **one}]
    assert "used twice" in graph.post("/$batch", json={"requests": duplicated}).json()["error"]["message"]
    absolute = [{"id": "1", "method": "GET", "url": "https://graph.microsoft.com/v1.0/me"}]
    assert graph.post("/$batch", json={"requests": absolute}).status_code == 400
    bodiless = [{"id": "1", "method": "PATCH", "url": f"/users/{ADELE}/messages/x", "body": {"isRead": True}}]
    assert "Content-Type" in graph.post("/$batch", json={"requests": bodiless}).json()["error"]["message"]
    assert graph.post("/$batch", content=b"{not json").status_code == 400


def test_inner_requests_count_against_mailbox_concurrency(
    graph: httpx.Client, sandbox_admin: AdminClient
) -> None:
    sandbox_admin.set_faults(latency_ms=(50, 50))
    requests = [
        {"id": str(i), "method": "GET", "url": f"/users/{ADELE}/mailFolders/inbox"} for i in range(10)
    ]
    responses = graph.post("/$batch", json={"requests": requests}).json()["responses"]
    throttled = [r for r in responses if r["status"] == 429]
    assert len(throttled) == 6
    assert all(r["headers"]["Retry-After"] == "1" for r in throttled)
    assert throttled[0]["body"]["error"]["message"] == "Application is over its MailboxConcurrency limit."
    counters = sandbox_admin.counters(ADELE)
    assert counters["max_in_flight"] == 5  # four admitted, and the fifth that found them busy
    assert counters["throttled"] == 6


def test_inner_urls_are_percent_decoded_like_top_level_ones(graph: httpx.Client) -> None:
    message = graph.get(f"/users/{ADELE}/messages", params={"$top": 1}).json()["value"][0]
    encoded = quote(message["id"], safe="")
    requests = [{"id": "1", "method": "GET", "url": f"/users/{ADELE}/messages/{encoded}?$select=subject"}]
    answer = graph.post("/$batch", json={"requests": requests}).json()["responses"][0]
    assert answer["status"] == 200, answer
    assert answer["body"]["subject"] == message["subject"]
