"""Operations whose exact server behaviour is the point, against a scripted Graph: $batch item retries with
their own Retry-After, delta replays and broken rounds, attachment caps and broken downloads."""

from __future__ import annotations

import httpx
import orjson
import pytest

from pipelines.graph import AttachmentTooLarge, BadRequestError, SyncStateExpired, TransientError
from tests.graph.scripted import graph_error, json_response, scripted_client

pytestmark = pytest.mark.anyio


def batch_answer(request: httpx.Request, status_for) -> httpx.Response:
    responses = []
    for item in orjson.loads(request.content)["requests"]:
        mid = item["url"].rsplit("/", 1)[-1].split("?")[0]
        status, headers = status_for(mid)
        body = {"id": mid, "subject": f"s-{mid}"} if status == 200 else {"error": {"code": f"E{status}"}}
        responses.append({"id": item["id"], "status": status, "headers": headers, "body": body})
    return json_response(200, {"responses": list(reversed(responses))})


async def test_batch_retries_only_the_items_graph_throttled_after_their_retry_after(settings, clock) -> None:
    throttled = {"m3": 1, "m7": 2}
    batches: list[list[str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1.0/$batch"
        items = orjson.loads(request.content)["requests"]
        batches.append([item["url"].rsplit("/", 1)[-1] for item in items])
        assert all(item["headers"]["Prefer"] == 'IdType="ImmutableId"' for item in items)

        def status_for(mid: str):
            if mid == "gone":
                return 404, {}
            if throttled.get(mid):
                throttled[mid] -= 1
                return 429, {"Retry-After": "4" if mid == "m7" else "2"}
            return 200, {}

        return batch_answer(request, status_for)

    client, _ = scripted_client(settings, handler, clock=clock)
    ids = [f"m{i}" for i in range(10)] + ["gone"]
    async with client:
        got = await client.user("adele@contoso.test").get_messages(ids)
    assert list(got) == ids
    assert got["gone"] is None
    assert all(got[m].subject == f"s-{m}" for m in ids[:-1])
    assert [sorted(b) for b in batches[1:]] == [["m3", "m7"], ["m7"]]
    # Each retry waited for the longest Retry-After among the items it carried.
    assert clock.sleeps == [pytest.approx(4.05), pytest.approx(4.05)]


async def test_batches_of_more_than_twenty_are_split(settings, clock) -> None:
    sizes: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sizes.append(len(orjson.loads(request.content)["requests"]))
        return batch_answer(request, lambda mid: (200, {}))

    client, _ = scripted_client(settings, handler, clock=clock)
    async with client:
        got = await client.me().get_messages([f"m{i}" for i in range(45)])
    assert len(got) == 45
    assert sorted(sizes) == [5, 20, 20]


async def test_a_batch_item_that_fails_for_good_raises_by_meaning(settings, clock) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return batch_answer(request, lambda mid: (400, {}) if mid == "bad" else (200, {}))

    client, _ = scripted_client(settings, handler, clock=clock)
    async with client:
        with pytest.raises(BadRequestError, match=r"GET /me/messages/bad \(in \$batch\)") as caught:
            await client.me().get_messages(["ok", "bad"])
    assert caught.value.code == "E400"


def delta_pages(*pages: dict):
    queue = list(pages)

    def handler(request: httpx.Request) -> httpx.Response:
        answer = queue.pop(0)
        return answer if isinstance(answer, httpx.Response) else json_response(200, answer)

    return handler


BASE = "https://graph.test/v1.0/me/mailFolders/inbox/messages/delta"


async def test_a_delta_round_yields_pages_and_ends_with_the_delta_link(settings, clock) -> None:
    handler = delta_pages(
        {
            "value": [{"id": "a"}, {"id": "b", "subject": "old"}, {"id": "b", "subject": "new"}],
            "@odata.nextLink": BASE + "?$skiptoken=1",
        },
        {"value": [], "@odata.nextLink": BASE + "?$skiptoken=2"},
        {
            "value": [{"id": "a", "@removed": {"reason": "deleted"}}, {"id": "c"}],
            "@odata.deltaLink": BASE + "?$deltatoken=9",
        },
    )
    client, seen = scripted_client(settings, handler, clock=clock)
    async with client:
        pages = [p async for p in client.me().delta("inbox", select=["subject"], page_size=2)]
    assert [[m.id for m in p.messages] for p in pages] == [["a", "b"], [], ["c"]]
    assert pages[0].messages[1].subject == "new"
    assert [p.removed for p in pages] == [[], [], ["a"]]
    assert [p.cursor for p in pages] == [
        BASE + "?$skiptoken=1",
        BASE + "?$skiptoken=2",
        BASE + "?$deltatoken=9",
    ]
    assert [p.last for p in pages] == [False, False, True]
    assert all("odata.maxpagesize=2" in r.headers["Prefer"] for r in seen.requests)
    assert seen.requests[0].url.params["$select"] == "subject"
    assert "$select" not in seen.requests[1].url.params


async def test_an_expired_link_mid_round_is_sync_state_expired(settings, clock) -> None:
    handler = delta_pages(
        {"value": [{"id": "a"}], "@odata.nextLink": BASE + "?$skiptoken=1"},
        graph_error(410, "SyncStateNotFound", location=BASE + "?$deltatoken="),
    )
    client, _ = scripted_client(settings, handler, clock=clock)
    seen_pages = []

    async def follow() -> None:
        async for page in client.me().delta(link=BASE + "?$deltatoken=old"):
            seen_pages.append(page)

    async with client:
        with pytest.raises(SyncStateExpired) as caught:
            await follow()
    assert len(seen_pages) == 1
    assert caught.value.location == BASE + "?$deltatoken="


async def test_a_page_without_links_or_a_looping_link_is_not_followed_forever(settings, clock) -> None:
    client, _ = scripted_client(settings, delta_pages({"value": []}), clock=clock)
    async with client:
        with pytest.raises(TransientError, match="without a next or delta link"):
            _ = [p async for p in client.me().delta("inbox")]
    looping = {"value": [], "@odata.nextLink": BASE + "?$skiptoken=same"}
    client, _ = scripted_client(settings, delta_pages(looping, looping), clock=clock)
    async with client:
        with pytest.raises(TransientError, match="same next link again"):
            _ = [p async for p in client.me().delta(link=BASE + "?$skiptoken=same")]


async def test_an_attachment_over_the_cap_is_refused_before_its_body_is_read(settings, clock) -> None:
    served = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal served

        async def body():
            nonlocal served
            for _ in range(100):
                served += 1
                yield b"x" * 1024

        return httpx.Response(200, content=body(), headers={"content-length": str(100 * 1024)})

    client, _ = scripted_client(settings, handler, clock=clock)
    async with client:
        with pytest.raises(AttachmentTooLarge) as caught:
            async with client.me().open_attachment("m", "a", max_bytes=10_000):
                pass
    assert (caught.value.size, caught.value.cap) == (102_400, 10_000)
    assert served == 0


async def test_an_undeclared_size_is_capped_while_streaming(settings, clock, tmp_path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        async def body():
            for _ in range(100):
                yield b"x" * 1024

        return httpx.Response(200, content=body(), headers={"content-type": "application/pdf"})

    client, _ = scripted_client(settings, handler, clock=clock)
    async with client:
        with pytest.raises(AttachmentTooLarge):
            await client.me().save_attachment("m", "a", tmp_path / "a.pdf", max_bytes=10_000)
    assert list(tmp_path.iterdir()) == []


async def test_a_download_that_breaks_off_starts_over(settings, clock, tmp_path) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        broken = calls == 1

        async def body():
            yield b"a" * 5000
            if broken:
                raise httpx.ReadError("connection reset")
            yield b"b" * 5000

        return httpx.Response(200, content=body(), headers={"content-type": "application/octet-stream"})

    client, _ = scripted_client(settings, handler, clock=clock)
    async with client:
        saved = await client.me().save_attachment("m", "a", tmp_path / "file.bin")
    assert calls == 2
    assert saved.size == 10_000
    assert (tmp_path / "file.bin").read_bytes() == b"a" * 5000 + b"b" * 5000
    assert saved.content_type == "application/octet-stream"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.bin"]


async def test_batch_items_run_in_lanes_of_the_mailboxs_slots_and_424s_go_again_at_once(
    settings, clock
) -> None:
    sent: list[list[dict]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        items = orjson.loads(request.content)["requests"]
        sent.append(items)
        failed: set[str] = set()
        responses = []
        for item in items:
            mid = item["url"].rsplit("/", 1)[-1]
            if any(d in failed for d in item.get("dependsOn", [])):
                status = 424
            elif mid == "gone":
                status = 404
            else:
                status = 200
            if status >= 400:
                failed.add(item["id"])
            body = {"id": mid} if status == 200 else {"error": {"code": str(status)}}
            responses.append({"id": item["id"], "status": status, "body": body})
        return json_response(200, {"responses": responses})

    client, _ = scripted_client(settings, handler, clock=clock)
    ids = ["gone", *(f"m{i}" for i in range(1, 10))]
    async with client:
        got = await client.me().get_messages(ids)
    assert got["gone"] is None
    assert all(got[m].id == m for m in ids[1:])
    first = sent[0]
    assert [item.get("dependsOn") for item in first[:5]] == [None, None, None, None, ["1"]]
    assert first[9]["dependsOn"] == ["6"]
    # The lane behind the missing message failed with 424 and went again, without waiting.
    assert sorted(item["url"].rsplit("/", 1)[-1] for item in sent[1]) == ["m4", "m8"]
    assert clock.sleeps == []


async def test_a_page_too_large_for_graph_is_asked_for_again_smaller(settings, clock) -> None:
    sizes: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        prefer = request.headers["Prefer"]
        sizes.append(prefer.split("odata.maxpagesize=")[1])
        if len(sizes) <= 2:
            return graph_error(504, "UnknownError")
        return json_response(200, {"value": [{"id": "a"}], "@odata.deltaLink": BASE + "?$deltatoken=1"})

    client, _ = scripted_client(settings, handler, clock=clock)
    async with client:
        pages = [p async for p in client.me().delta("inbox", page_size=100)]
    assert sizes == ["100", "50", "25"]
    assert pages[0].last


async def test_categories_come_from_the_master_list(settings, clock) -> None:
    answer = {
        "value": [{"id": "c1", "displayName": "Red category", "color": "preset0"}, {"displayName": "Team A"}]
    }
    client, seen = scripted_client(settings, lambda r: json_response(200, answer), clock=clock)
    async with client:
        categories = await client.user("adele@contoso.test").categories()
    assert [(c.display_name, c.color) for c in categories] == [("Red category", "preset0"), ("Team A", None)]
    assert seen.requests[0].url.path == "/v1.0/users/adele@contoso.test/outlook/masterCategories"


@pytest.mark.parametrize(
    ("page", "link"),
    [
        (
            {"value": [], "@odata.nextLink": "https://g/v1.0/me/messages?$skip=10"},
            "https://g/v1.0/me/messages?$skip=10",
        ),
        ({"@odata.nextLink": "https://g/a?x=%22", "value": [{"id": "a"}]}, "https://g/a?x=%22"),
        ({"value": [{"id": "a", "subject": '"@odata.nextLink":"https://evil/"'}]}, None),
        ({"value": [{"id": "a", "attachments@odata.nextLink": "https://g/att"}]}, None),
        ({"value": [], "@odata.deltaLink": "https://g/delta?$deltatoken=1"}, None),
    ],
)
def test_the_next_link_is_peeked_only_from_a_real_key(page, link) -> None:
    from pipelines.graph._pages import _peek_next_link

    assert _peek_next_link(orjson.dumps(page)) == link
