"""Sending a Graph request politely: per-mailbox gates, retries, Retry-After, backoff, and error mapping.

Manners, per mailbox (Graph limits each app + mailbox pair, reference/graph.md §6):
- at most `max_in_flight_per_mailbox` requests in flight (a streamed download holds its slot until closed);
- a local count of the request budget (10,000 per 10 minutes): past `budget_slowdown_at` of it, requests are
  spaced at the sustainable rate, and at the limit they wait for the window to move, so the client slows down
  before Graph has to throttle it;
- a 429 pauses the whole mailbox until its `Retry-After` has passed, so no request (the retry included)
  reaches Graph early.
Retries cover 429, 500, 502, 503, 504, 509, timeouts and dropped connections: `Retry-After` (seconds or an
HTTP date) when given, otherwise exponential backoff with jitter, capped, for at most `max_attempts` tries. A
401 gets one fresh token (not counted as an attempt), then AuthError naming the connection.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import random
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from pipelines.graph._auth import TokenProvider
from pipelines.graph._errors import (
    AuthError,
    BadRequestError,
    GraphError,
    NotFoundError,
    SyncStateExpired,
    ThrottledError,
    TransientError,
)
from pipelines.graph._settings import GraphSettings

log = logging.getLogger("pipelines.graph")

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504, 509})
_SYNC_STATE_CODES = frozenset({"syncstatenotfound", "resyncrequired", "syncstateinvalid"})
_IMMUTABLE_IDS = 'IdType="ImmutableId"'
# Retry-After is measured by the server from when it answered; a hair more keeps us clear of rounding.
RETRY_AFTER_MARGIN_S = 0.05


@dataclass
class Clock:
    """Time as the transport sees it; tests replace it to script waits without sleeping."""

    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    wall: Callable[[], datetime] = lambda: datetime.now(UTC)


@dataclass
class Stats:
    """What one client did, for a sync run's record."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0
    token_refreshes: int = 0
    waited_s: float = 0.0
    by_status: dict[int, int] = field(default_factory=dict)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date); None if absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def backoff(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """The wait before try `attempt + 1` without a Retry-After: exponential, capped, half-jittered."""
    step = min(cap, base * (2 ** max(0, attempt - 1)))
    return step * (rng or random).uniform(0.5, 1.0)


class PageSize:
    """The `Prefer: odata.maxpagesize` of one listing: halved after a 504, Graph's answer to a page too large
    to build in time, so the listing goes on with smaller pages instead of failing."""

    def __init__(self, size: int) -> None:
        self.size = size

    def shrink(self) -> None:
        self.size = max(1, self.size // 2)


class _Budget:
    """The mailbox's request budget as counted here: send times in the current window, reserved in order."""

    def __init__(self, limit: int, window: float, slowdown_at: float) -> None:
        self._limit = limit
        self._window = window
        self._threshold = max(1, int(limit * slowdown_at))
        self._interval = window / limit
        self._sent: deque[float] = deque()

    def reserve(self, now: float) -> float:
        """Reserve a send time for one request; returns how long to wait until then."""
        sent = self._sent
        while sent and sent[0] <= now - self._window:
            sent.popleft()
        at = now
        if len(sent) >= self._threshold:
            at = max(at, sent[-1] + self._interval)
        if len(sent) >= self._limit:
            at = max(at, sent[-self._limit] + self._window)
        bisect.insort(sent, at)
        return at - now


class _Slots:
    """A counting semaphore that takes several slots at once (a $batch) without deadlock, first come first
    served, and releases synchronously (so a cancelled task never leaks its slots)."""

    def __init__(self, size: int) -> None:
        self._free = size
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    async def take(self, count: int) -> None:
        if not self._waiters and self._free >= count:
            self._free -= count
            return
        future = asyncio.get_running_loop().create_future()
        entry = (count, future)
        self._waiters.append(entry)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.give(count)  # granted just as we were cancelled
            else:
                self._waiters.remove(entry)
                self._wake()
            raise

    def give(self, count: int) -> None:
        self._free += count
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._waiters[0][0] <= self._free:
            count, future = self._waiters.popleft()
            if not future.done():
                self._free -= count
                future.set_result(None)


class Gate:
    """One mailbox's manners: the in-flight slots, the request budget and a pause set by 429s."""

    def __init__(self, key: str, settings: GraphSettings, clock: Clock) -> None:
        self.key = key
        self.size = settings.max_in_flight_per_mailbox
        self._slots = _Slots(self.size)
        self._budget = _Budget(settings.request_budget, settings.budget_window_s, settings.budget_slowdown_at)
        self._clock = clock
        self._paused_until = 0.0

    def pause(self, seconds: float) -> None:
        """Hold every request to this mailbox for `seconds` from now."""
        self._paused_until = max(self._paused_until, self._clock.now() + seconds)

    @asynccontextmanager
    async def slot(self, stats: Stats, *, slots: int = 1, cost: int = 1) -> AsyncIterator[_Held]:
        """Take in-flight slots (a $batch takes several), then wait out any pause and the budget's pacing
        for `cost` requests (Graph counts each request inside a $batch)."""
        slots = min(slots, self.size)
        await self._slots.take(slots)
        held = _Held(self._slots, slots)
        try:
            wait = max(self._budget.reserve(self._clock.now()) for _ in range(cost))
            while True:
                wait = max(wait, self._paused_until - self._clock.now())
                if wait <= 0:
                    break
                stats.waited_s += wait
                await self._clock.sleep(wait)
                wait = 0.0
            yield held
        finally:
            if not held.kept:
                self._slots.give(slots)


class _Held:
    """The slots one request holds. A request whose sender stops waiting (a cancelled task) is still being
    worked on by Graph, which counts it against the mailbox's requests in flight until it answers: its slots
    stay taken until it ends, so the sender's next request does not make one too many."""

    def __init__(self, slots: _Slots, count: int) -> None:
        self._slots = slots
        self._count = count
        self.kept = False

    def keep_until(self, request: asyncio.Future[Any]) -> None:
        self.kept = True
        request.add_done_callback(lambda _: self._slots.give(self._count))


_closing: set[asyncio.Task[None]] = set()  # answers of abandoned requests being closed (held till done)


def _close_abandoned(sending: asyncio.Future[Any]) -> None:
    """Close the answer of a request whose sender stopped waiting for it."""
    if sending.cancelled() or sending.exception() is not None:  # retrieving the error marks it seen
        return
    outcome = sending.result()
    if isinstance(outcome, httpx.Response):
        task = asyncio.ensure_future(outcome.aclose())
        _closing.add(task)
        task.add_done_callback(_closing.discard)


def _error_body(content: bytes) -> tuple[str | None, str | None]:
    try:
        error = orjson.loads(content).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        return None, None
    if isinstance(error, dict):
        return error.get("code"), error.get("message")
    if isinstance(error, str):  # the sign-in endpoints' shape, in case a proxy answers with it
        return error, None
    return None, None


def error_for(
    status: int,
    content: bytes,
    headers: httpx.Headers | dict[str, str],
    *,
    what: str,
    client_request_id: str | None,
) -> GraphError:
    """The GraphError for a failed response (also used for the responses inside a $batch)."""
    code, message = _error_body(content)
    headers = httpx.Headers(headers)
    context: dict[str, Any] = {
        "status": status,
        "code": code,
        "request_id": headers.get("request-id"),
        "client_request_id": headers.get("client-request-id") or client_request_id,
    }
    text = f"{what}: {message or httpx.codes.get_reason_phrase(status) or 'HTTP ' + str(status)}"
    if status == 410 or (code or "").lower() in _SYNC_STATE_CODES:
        return SyncStateExpired(text, location=headers.get("location"), **context)
    if status == 429:
        return ThrottledError(text, retry_after=parse_retry_after(headers.get("retry-after")), **context)
    if status in (401, 403):
        return AuthError(text, **context)
    if status == 404:
        return NotFoundError(text, **context)
    if status >= 500:
        return TransientError(text, **context)
    return BadRequestError(text, **context)


def _signal_when_written(sent: asyncio.Event) -> Callable[[str, dict], Awaitable[None]]:
    # httpcore's trace extension reports each step of an exchange; the body written is the request gone.
    async def trace(event: str, info: dict) -> None:
        if event.endswith("send_request_body.complete"):
            sent.set()

    return trace


async def _discard(response: httpx.Response | None) -> None:
    if response is not None:
        await response.aclose()


class Transport:
    """Sends requests for one connection (one token provider) to any number of mailboxes."""

    def __init__(
        self,
        settings: GraphSettings,
        auth: TokenProvider,
        http: httpx.AsyncClient,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.auth = auth
        self.http = http
        self.clock = clock or Clock()
        self.stats = Stats()
        self._gates: dict[str, Gate] = {}
        root = urlsplit(settings.graph_root)
        self._origin = (root.scheme, root.netloc.lower())

    def gate(self, key: str) -> Gate:
        """The gate of one mailbox (created on first use)."""
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = Gate(key, self.settings, self.clock)
        return gate

    def url(self, path_or_link: str) -> httpx.URL:
        """A Graph URL: a path under the versioned root, or a next/delta link exactly as Graph gave it."""
        if path_or_link.startswith("/"):
            return httpx.URL(self.settings.graph_root + path_or_link)
        parts = urlsplit(path_or_link)
        if (parts.scheme, parts.netloc.lower()) != self._origin:
            # A link elsewhere would carry our bearer token to another host.
            raise BadRequestError(
                f"refusing to follow a link outside {self.settings.graph_root}: {path_or_link}"
            )
        return httpx.URL(path_or_link)

    async def fetch(self, gate: Gate, method: str, path_or_link: str, **options: Any) -> bytes:
        """Send with retries and return the successful response's body."""
        async with self.exchange(gate, method, path_or_link, read=True, **options) as response:
            return response.content

    @asynccontextmanager
    async def exchange(
        self,
        gate: Gate,
        method: str,
        path_or_link: str,
        *,
        params: dict[str, str] | None = None,
        prefer: tuple[str, ...] = (),
        json: Any = None,
        slots: int = 1,
        cost: int = 1,
        page_size: PageSize | None = None,
        sent: asyncio.Event | None = None,
        read: bool = False,
    ) -> AsyncIterator[httpx.Response]:
        """Send with retries and yield the successful response while it holds its slot(s).

        With `read`, the body is read (and a failure while reading retried) before the response is yielded;
        without, the caller streams it. `sent` is set once a request has been written to the connection.
        """
        url = self.url(path_or_link)
        if params:
            url = url.copy_merge_params(params)
        client_request_id = str(uuid.uuid4())
        what = f"{method} {url.path}"
        headers = {
            "client-request-id": client_request_id,
            "return-client-request-id": "true",
        }
        content = orjson.dumps(json) if json is not None else None
        extensions = {"trace": _signal_when_written(sent)} if sent is not None else None
        if content is not None:
            headers["Content-Type"] = "application/json"
        rejected: str | None = None
        refused: GraphError | None = None
        attempt = 0
        while True:
            attempt += 1
            token = await self._token(rejected, refused)
            headers["Authorization"] = f"Bearer {token}"
            paging = (f"odata.maxpagesize={page_size.size}",) if page_size else ()
            headers["Prefer"] = ", ".join((_IMMUTABLE_IDS, *prefer, *paging))
            if attempt > 1:
                headers["Retry-Attempt"] = str(attempt - 1)
            async with gate.slot(self.stats, slots=slots, cost=cost) as held:
                request = self.http.build_request(
                    method, url, headers=headers, content=content, extensions=extensions
                )
                sending = asyncio.ensure_future(
                    self._send_once(request, read=read, what=what, request_id=client_request_id)
                )
                try:
                    outcome = await asyncio.shield(sending)
                except asyncio.CancelledError:
                    # The request goes on without its sender (a listing a round no longer needs, a page
                    # read ahead): it keeps its slot until it ends, and its answer is closed unread.
                    held.keep_until(sending)
                    sending.add_done_callback(_close_abandoned)
                    raise
                if isinstance(outcome, httpx.Response):
                    try:
                        yield outcome
                    finally:
                        await outcome.aclose()
                    return
            failure, retry_after = outcome
            if failure.status == 401 and rejected is None:
                rejected, refused = token, failure
                attempt -= 1  # a fresh token is not a retry
                self.stats.token_refreshes += 1
                log.info("%s: 401, asking %s for a fresh token", what, self.auth.name)
                continue
            wait = self._wait_before_retry(failure, retry_after, attempt, what)
            if failure.status == 504 and page_size is not None:
                page_size.shrink()
            if failure.status == 429:
                # Throttling is per mailbox: hold every request to it, not only this one.
                gate.pause(wait)
            else:
                self.stats.waited_s += wait
                await self.clock.sleep(wait)

    async def _token(self, rejected: str | None, refused: GraphError | None) -> str:
        try:
            return await self.auth.token(rejected=rejected)
        except AuthError as error:
            if refused is None or error.status is not None:
                raise
            # Keep what Graph said about the refused token beside why no other token came.
            raise AuthError(
                f"{error.message} (after {refused.message})",
                status=refused.status,
                code=refused.code,
                request_id=refused.request_id,
                client_request_id=refused.client_request_id,
            ) from error

    async def _send_once(
        self, request: httpx.Request, *, read: bool, what: str, request_id: str
    ) -> httpx.Response | tuple[GraphError, float | None]:
        """One try: the successful response (still open), or what went wrong and Graph's Retry-After."""
        self.stats.requests += 1
        response = None
        try:
            response = await self.http.send(request, stream=True)
            if read and response.status_code < 400:
                # Read inside the retry loop: a connection dropped mid-body is retried like any other.
                await response.aread()
        except httpx.TransportError as exc:
            await _discard(response)
            kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "connection failed"
            return TransientError(
                f"{what}: {kind} ({type(exc).__name__})", client_request_id=request_id
            ), None
        status = response.status_code
        self.stats.by_status[status] = self.stats.by_status.get(status, 0) + 1
        if status < 400:
            return response
        try:
            body = await response.aread()
        except httpx.TransportError:
            body = b""
        finally:
            await response.aclose()
        failure = error_for(status, body, response.headers, what=what, client_request_id=request_id)
        return failure, parse_retry_after(response.headers.get("retry-after"), now=self.clock.wall())

    def _wait_before_retry(
        self, failure: GraphError, retry_after: float | None, attempt: int, what: str
    ) -> float:
        """How long to wait before the next try, or raise `failure` (or a clearer error) if none is due."""
        settings, status = self.settings, failure.status
        if status == 401:
            raise AuthError(
                f"{self.auth.name}: Graph refused a freshly acquired token ({failure.code or 'HTTP 401'}); "
                "the connection must sign in again or its permissions changed",
                status=401,
                code=failure.code,
                request_id=failure.request_id,
                client_request_id=failure.client_request_id,
            ) from failure
        if status is not None and status not in RETRYABLE_STATUSES:
            # Missing items and expired delta links are answers the caller handles, not incidents.
            log.log(logging.INFO if status in (404, 410) else logging.WARNING, "%s", failure)
            raise failure
        if retry_after is not None:
            wait = retry_after + RETRY_AFTER_MARGIN_S
        else:
            wait = backoff(attempt, base=settings.backoff_base_s, cap=settings.backoff_cap_s)
        if status == 429:
            self.stats.throttled += 1
            if wait > settings.max_retry_after_s:
                raise ThrottledError(
                    f"{what}: Graph asks to wait {wait:.0f} s, longer than max_retry_after_s "
                    f"({settings.max_retry_after_s:.0f} s); try this mailbox later",
                    retry_after=wait,
                    status=429,
                    code=failure.code,
                    request_id=failure.request_id,
                    client_request_id=failure.client_request_id,
                )
        if attempt >= settings.max_attempts:
            log.warning("%s (gave up after %d tries)", failure, attempt)
            raise failure
        self.stats.retries += 1
        log.info("%s; retry %d/%d in %.2f s", failure, attempt, settings.max_attempts - 1, wait)
        return wait
