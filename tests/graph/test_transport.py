"""The transport's manners against a scripted Graph: headers, retries, Retry-After, backoff, 401, error
mapping, per-mailbox concurrency, pauses and the request budget."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from datetime import timedelta
from email.utils import format_datetime

import httpx
import orjson
import pytest

from pipelines.graph import (
    AuthError,
    BadRequestError,
    GraphSettings,
    NotFoundError,
    SyncStateExpired,
    ThrottledError,
    TransientError,
)
from pipelines.graph._transport import _Budget, _Slots, backoff, parse_retry_after
from tests.graph.scripted import WALL, FakeClock, graph_error, json_response, scripted_client

pytestmark = pytest.mark.anyio

MESSAGE = {"id": "AAMk-1", "subject": "hello"}


def ok(_: httpx.Request) -> httpx.Response:
    return json_response(200, MESSAGE)


def sequence(*answers: httpx.Response | Exception):
    """A handler that gives these answers in order (an exception is raised, as a dropped connection is)."""
    pending = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        answer = pending.pop(0) if pending else json_response(200, MESSAGE)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handler


async def test_every_request_asks_for_immutable_ids_with_its_own_client_request_id(settings, clock) -> None:
    pages = {
        "/v1.0/users/adele@contoso.test/mailFolders/inbox/messages": {
            "value": [MESSAGE],
            "@odata.nextLink": "https://graph.test/v1.0/users/adele@contoso.test/messages?$skip=1",
        },
        "/v1.0/users/adele@contoso.test/messages": {"value": [{"id": "AAMk-2"}]},
        "/v1.0/users/adele@contoso.test/messages/AAMk-1": MESSAGE,
    }
    client, seen = scripted_client(settings, lambda r: json_response(200, pages[r.url.path]), clock=clock)
    async with client:
        mailbox = client.user("adele@contoso.test")
        got = [m.id async for page in mailbox.list_messages("inbox") for m in page.messages]
        await mailbox.get_message("AAMk-1")
    assert got == ["AAMk-1", "AAMk-2"]
    assert len(seen.requests) == 3
    ids = [r.headers["client-request-id"] for r in seen.requests]
    assert len(set(ids)) == 3
    for request, request_id in zip(seen.requests, ids, strict=True):
        assert 'IdType="ImmutableId"' in request.headers["Prefer"]
        assert request.headers["Authorization"] == "Bearer token-1"
        uuid.UUID(request_id)


async def test_next_links_are_followed_byte_for_byte(settings, clock) -> None:
    link = "https://graph.test/v1.0/me/messages?%24select=subject%2cfrom&$skip=17&$skiptoken=a%3D%3D"
    first = True

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal first
        if first:
            first = False
            return json_response(200, {"value": [MESSAGE], "@odata.nextLink": link})
        return json_response(200, {"value": []})

    client, seen = scripted_client(settings, handler, clock=clock)
    async with client:
        pages = [p async for p in client.me().list_messages(select=["subject", "from"], top=5)]
    assert [p.next_link for p in pages] == [link, None]
    assert str(seen.requests[1].url) == link
    assert seen.requests[0].url.params["$top"] == "5"
    assert seen.requests[0].url.params["$select"] == "subject,from"


async def test_a_link_to_another_host_is_refused_before_the_token_leaves(settings, clock) -> None:
    evil = "https://evil.test/v1.0/me/messages?$skip=10"
    client, seen = scripted_client(
        settings, lambda r: json_response(200, {"value": [], "@odata.nextLink": evil}), clock=clock
    )
    async with client:
        with pytest.raises(BadRequestError, match=r"outside https://graph\.test/v1\.0"):
            _ = [p async for p in client.me().list_messages()]
    assert [r.url.host for r in seen.requests] == ["graph.test"]


async def test_retry_after_seconds_are_obeyed_exactly_in_sequence(settings, clock) -> None:
    handler = sequence(
        graph_error(429, "ApplicationThrottled", retry_after="3"),
        graph_error(429, "ApplicationThrottled", retry_after="1"),
    )
    client, seen = scripted_client(settings, handler, clock=clock)
    async with client:
        message = await client.me().get_message("AAMk-1")
    assert message.subject == "hello"
    assert clock.sleeps == [pytest.approx(3.05), pytest.approx(1.05)]
    assert [r.headers.get("Retry-Attempt") for r in seen.requests] == [None, "1", "2"]
    assert client.stats.throttled == 2
    assert client.stats.retries == 2


async def test_retry_after_as_an_http_date(settings, clock) -> None:
    when = format_datetime(WALL + timedelta(seconds=10), usegmt=True)
    client, _ = scripted_client(
        settings, sequence(graph_error(503, "serviceNotAvailable", retry_after=when)), clock=clock
    )
    async with client:
        await client.me().get_message("AAMk-1")
    assert clock.sleeps == [pytest.approx(10.05)]


async def test_backoff_grows_with_jitter_when_graph_gives_no_retry_after(settings, clock) -> None:
    handler = sequence(graph_error(500, "generalException"), graph_error(502, "x"), graph_error(504, "x"))
    client, seen = scripted_client(settings, handler, clock=clock)
    async with client:
        await client.me().get_message("AAMk-1")
    assert len(seen.requests) == 4
    lows = [0.5, 1.0, 2.0]
    for waited, low in zip(clock.sleeps, lows, strict=True):
        assert low <= waited <= 2 * low


def test_backoff_is_capped() -> None:
    assert all(4.0 <= backoff(attempt, base=1.0, cap=8.0) <= 8.0 for attempt in range(4, 30))


async def test_dropped_connections_and_timeouts_are_retried(settings, clock) -> None:
    handler = sequence(httpx.RemoteProtocolError("peer closed"), httpx.ReadTimeout("slow"))
    client, seen = scripted_client(settings, handler, clock=clock)
    async with client:
        assert (await client.me().get_message("AAMk-1")).id == "AAMk-1"
    assert len(seen.requests) == 3


async def test_giving_up_after_max_attempts_says_what_failed(settings, clock) -> None:
    client, seen = scripted_client(settings, lambda r: graph_error(502, "badGateway"), clock=clock)
    async with client:
        with pytest.raises(TransientError) as caught:
            await client.me().get_message("AAMk-1")
    assert len(seen.requests) == settings.max_attempts
    error = caught.value
    assert not isinstance(error, ThrottledError)
    assert error.status == 502
    assert error.request_id == "req-502-badGateway"
    assert error.client_request_id == seen.requests[-1].headers["client-request-id"]
    assert "GET /v1.0/me/messages/AAMk-1" in str(error)


async def test_endless_throttling_ends_in_throttled_error(settings, clock) -> None:
    client, _ = scripted_client(
        settings, lambda r: graph_error(429, "TooManyRequests", retry_after="2"), clock=clock
    )
    async with client:
        with pytest.raises(ThrottledError) as caught:
            await client.me().get_message("AAMk-1")
    assert caught.value.retry_after == 2
    assert isinstance(caught.value, TransientError)


async def test_a_retry_after_longer_than_we_wait_raises_at_once(settings, clock) -> None:
    client, seen = scripted_client(
        settings, lambda r: graph_error(429, "ApplicationThrottled", retry_after="3600")
    )
    async with client:
        with pytest.raises(ThrottledError, match="longer than max_retry_after_s") as caught:
            await client.me().get_message("AAMk-1")
    assert len(seen.requests) == 1
    assert caught.value.retry_after == pytest.approx(3600.05)


class RotatingTokens:
    """A provider handing out token-1, token-2, … and remembering which tokens Graph refused."""

    name = "connection adele"

    def __init__(self) -> None:
        self.issued = 0
        self.rejected: list[str | None] = []
        self.current: str | None = None

    async def token(self, *, rejected: str | None = None) -> str:
        if rejected is not None:
            self.rejected.append(rejected)
        if self.current is None or rejected == self.current:
            self.issued += 1
            self.current = f"token-{self.issued}"
        return self.current


async def test_a_401_gets_one_fresh_token(settings, clock) -> None:
    auth = RotatingTokens()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers["Authorization"] == "Bearer token-1":
            return graph_error(
                401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired."
            )
        return json_response(200, MESSAGE)

    client, seen = scripted_client(settings, handler, clock=clock, auth=auth)
    async with client:
        await client.me().get_message("AAMk-1")
    assert auth.rejected == ["token-1"]
    assert [r.headers["Authorization"] for r in seen.requests] == ["Bearer token-1", "Bearer token-2"]
    assert clock.sleeps == []


async def test_a_401_after_the_refresh_is_an_auth_error_naming_the_connection(settings, clock) -> None:
    auth = RotatingTokens()
    client, seen = scripted_client(
        settings, lambda r: graph_error(401, "InvalidAuthenticationToken"), auth=auth
    )
    async with client:
        with pytest.raises(AuthError, match="connection adele: Graph refused a freshly acquired token"):
            await client.me().get_message("AAMk-1")
    assert len(seen.requests) == 2
    assert "token-" not in str(AuthError)


@pytest.mark.parametrize(
    ("answer", "error", "code"),
    [
        (
            graph_error(410, "SyncStateNotFound", location="https://graph.test/v1.0/me/x/delta"),
            SyncStateExpired,
            None,
        ),
        (graph_error(400, "syncStateNotFound"), SyncStateExpired, "syncStateNotFound"),
        (graph_error(400, "resyncRequired"), SyncStateExpired, "resyncRequired"),
        (graph_error(404, "ErrorItemNotFound"), NotFoundError, "ErrorItemNotFound"),
        (graph_error(403, "ErrorAccessDenied"), AuthError, "ErrorAccessDenied"),
        (graph_error(400, "InefficientFilter"), BadRequestError, "InefficientFilter"),
        (httpx.Response(405, text="no"), BadRequestError, None),
    ],
)
async def test_errors_are_raised_by_meaning(settings, clock, answer, error, code) -> None:
    client, seen = scripted_client(settings, lambda r: answer, clock=clock)
    async with client:
        with pytest.raises(error) as caught:
            await client.me().get_message("AAMk-1")
    assert len(seen.requests) == 1
    assert caught.value.status == answer.status_code
    if code:
        assert caught.value.code == code
    if answer.status_code == 410:
        assert caught.value.location == "https://graph.test/v1.0/me/x/delta"


async def test_no_more_than_four_in_flight_per_mailbox_while_mailboxes_run_in_parallel(settings) -> None:
    in_flight: Counter[str] = Counter()
    most: Counter[str] = Counter()
    most_overall = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal most_overall
        mailbox = request.url.path.split("/")[3]
        in_flight[mailbox] += 1
        most[mailbox] = max(most[mailbox], in_flight[mailbox])
        most_overall = max(most_overall, sum(in_flight.values()))
        await asyncio.sleep(0.005)
        in_flight[mailbox] -= 1
        return json_response(200, MESSAGE)

    client, seen = scripted_client(settings, handler)
    async with client:
        boxes = [client.user("adele@contoso.test"), client.user("alex@contoso.test")]
        await asyncio.gather(*(box.get_message(f"m{i}") for i in range(20) for box in boxes))
    assert len(seen.requests) == 40
    assert most == {"adele@contoso.test": 4, "alex@contoso.test": 4}
    assert most_overall == 8


async def test_a_429_holds_every_request_to_that_mailbox_until_retry_after(settings, clock) -> None:
    arrivals: list[tuple[str, float]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        arrivals.append((request.url.path.split("/")[3], clock.now()))
        if len(arrivals) == 1:
            return graph_error(429, "ApplicationThrottled", retry_after="5")
        return json_response(200, MESSAGE)

    client, _ = scripted_client(settings, handler, clock=clock)
    start = clock.now()
    async with client:
        adele, alex = client.user("adele@contoso.test"), client.user("alex@contoso.test")
        first = asyncio.create_task(adele.get_message("first"))
        # The others start once the 429 is in (requests already on their way cannot be held back).
        while not arrivals:
            await asyncio.sleep(0)
        for _ in range(5):
            await asyncio.sleep(0)
        await asyncio.gather(first, *(adele.get_message(f"m{i}") for i in range(3)), alex.get_message("x"))
    assert arrivals[0] == ("adele@contoso.test", start)
    held = [t for box, t in arrivals[1:] if box == "adele@contoso.test"]
    assert len(held) == 4
    assert min(held) >= start + 5
    # Throttling is per mailbox: another mailbox goes on at once.
    assert [t for box, t in arrivals if box == "alex@contoso.test"] == [start]


def test_the_budget_paces_after_the_slowdown_point_and_waits_at_the_limit() -> None:
    budget = _Budget(limit=10, window=10.0, slowdown_at=0.5)
    waits = [budget.reserve(0.0) for _ in range(12)]
    assert waits[:5] == [0.0] * 5
    assert waits[5:10] == pytest.approx([1.0, 2.0, 3.0, 4.0, 5.0])
    # The 11th request of the window must wait until the first has left it.
    assert waits[10] == pytest.approx(10.0)
    assert waits[11] == pytest.approx(11.0)
    # Once the window has moved on, requests flow freely again.
    assert budget.reserve(100.0) == 0.0


async def test_a_client_near_its_budget_slows_down_rather_than_being_throttled(clock) -> None:
    settings = GraphSettings(
        graph_url="https://graph.test/v1.0", request_budget=20, budget_window_s=60.0, budget_slowdown_at=0.5
    )
    client, seen = scripted_client(settings, ok, clock=clock)
    async with client:
        box = client.me()
        for i in range(25):
            await box.get_message(f"m{i}")
    assert len(seen.requests) == 25
    assert clock.sleeps[:1] == [pytest.approx(3.0)]
    assert sum(clock.sleeps) == pytest.approx(60.0 + 4 * 3.0)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("7", 7.0), (" 0 ", 0.0), ("1.5", 1.5), ("-3", 0.0), ("soon", None), ("", None), (None, None)],
)
def test_parse_retry_after(header, seconds) -> None:
    assert parse_retry_after(header, now=WALL) == seconds


def test_parse_retry_after_dates() -> None:
    assert parse_retry_after(format_datetime(WALL + timedelta(seconds=90), usegmt=True), now=WALL) == 90.0
    assert parse_retry_after(format_datetime(WALL - timedelta(seconds=90), usegmt=True), now=WALL) == 0.0


def test_fake_clock_is_what_the_tests_think(clock: FakeClock) -> None:
    asyncio.run(clock.sleep(2.5))
    assert clock.now() == 1002.5


async def test_batches_take_the_mailboxs_slots_together_without_deadlock(settings) -> None:
    weight_in_flight = 0
    most = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal weight_in_flight, most
        items = orjson.loads(request.content)["requests"] if request.url.path.endswith("$batch") else None
        weight = min(4, len(items)) if items else 1
        weight_in_flight += weight
        most = max(most, weight_in_flight)
        await asyncio.sleep(0.002)
        weight_in_flight -= weight
        if items is None:
            return json_response(200, MESSAGE)
        answers = [{"id": i["id"], "status": 200, "body": {"id": i["url"].rsplit("/", 1)[-1]}} for i in items]
        return json_response(200, {"responses": answers})

    client, _ = scripted_client(settings, handler)
    async with client:
        box = client.me()
        results = await asyncio.gather(
            box.get_messages([f"b{i}" for i in range(70)]),
            *(box.get_message(f"s{i}") for i in range(10)),
            box.get_messages(["x", "y"]),
        )
    assert len(results[0]) == 70
    assert results[-1]["y"].id == "y"
    assert most == 4


async def test_a_cancelled_waiter_gives_its_place_back() -> None:
    slots = _Slots(4)
    await slots.take(3)
    big = asyncio.create_task(slots.take(4))
    await asyncio.sleep(0)
    small = asyncio.create_task(slots.take(1))
    await asyncio.sleep(0)
    assert not small.done()  # first come, first served: it queues behind the batch
    big.cancel()
    await asyncio.wait_for(small, timeout=1)
    slots.give(1)
    slots.give(3)
    await asyncio.wait_for(slots.take(4), timeout=1)


async def test_failures_are_logged_with_both_request_ids_and_never_the_token(settings, clock, caplog) -> None:
    handler = sequence(
        graph_error(503, "serviceNotAvailable", retry_after="1"), graph_error(404, "ErrorItemNotFound")
    )
    client, seen = scripted_client(settings, handler, clock=clock)
    with caplog.at_level(logging.INFO, logger="pipelines.graph"):
        async with client:
            with pytest.raises(NotFoundError):
                await client.me().get_message("AAMk-1")
    client_request_id = seen.requests[0].headers["client-request-id"]
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2
    assert "req-503-serviceNotAvailable" in lines[0]
    assert "retry 1/4" in lines[0]
    assert "req-404-ErrorItemNotFound" in lines[1]
    assert all(client_request_id in line for line in lines)
    assert not any("token-1" in line for line in lines)
