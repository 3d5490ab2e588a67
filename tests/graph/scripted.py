"""A scripted Graph for the transport's tests: an httpx.MockTransport that records what it was sent."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import httpx
import orjson

from pipelines.graph import GraphClient, GraphSettings, StaticTokenProvider, TokenProvider
from pipelines.graph._transport import Clock

Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]

WALL = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def json_response(status: int, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status, content=orjson.dumps(body), headers={"content-type": "application/json", **(headers or {})}
    )


def graph_error(status: int, code: str, message: str = "scripted", **headers: str) -> httpx.Response:
    headers = {k.replace("_", "-"): v for k, v in headers.items()}
    headers.setdefault("request-id", f"req-{status}-{code}")
    return json_response(status, {"error": {"code": code, "message": message}}, headers)


class FakeClock:
    """Virtual monotonic time: a sleep waits until the clock reaches its end, and the clock jumps to the next
    sleeper's end whenever every task is waiting. Every sleep is recorded, nothing really waits."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._driver: asyncio.Task[None] | None = None

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.t + seconds, len(self.sleeps), future))
        if self._driver is None or self._driver.done():
            self._driver = asyncio.create_task(self._drive())
        await future

    async def _drive(self) -> None:
        while self._sleepers:
            # Let every runnable task run until it waits (scripted transports never wait for real I/O).
            for _ in range(50):
                await asyncio.sleep(0)
            end, _, future = heapq.heappop(self._sleepers)
            self.t = max(self.t, end)
            future.set_result(None)


class Recorder:
    """Wraps a handler and keeps every request it answered."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.handler(request)
        if not isinstance(answer, httpx.Response):
            answer = await answer
        return answer


def scripted_client(
    settings: GraphSettings,
    handler: Handler,
    *,
    clock: FakeClock | None = None,
    auth: TokenProvider | None = None,
) -> tuple[GraphClient, Recorder]:
    recorder = Recorder(handler)
    transport_clock = None
    if clock is not None:
        transport_clock = Clock(now=clock.now, sleep=clock.sleep, wall=lambda: WALL)
    client = GraphClient(
        settings,
        auth or StaticTokenProvider("token-1"),
        transport=httpx.MockTransport(recorder),
        clock=transport_clock,
    )
    return client, recorder
