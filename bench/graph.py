"""Graph client overhead: 20,000 full messages paged from the sandbox through Mailroom's client and through a
bare httpx loop over the same pages, in the same run.

Target (issue 4): the client takes at most 1.15 times the bare loop. Both follow the same next links with the
same headers (immutable ids, `odata.maxpagesize`) over HTTPS with keep-alive, against a sandbox subprocess;
the bare loop parses each page with orjson and asks for the next, the client validates each page into
`Message` models (pydantic's Rust path on the response bytes), runs its manners (gate, budget, retries) and
reads one page ahead, so that the sandbox builds the next page while the client parses this one. A third
loop, bare httpx with the same pydantic parsing but no read-ahead, shows what the read-ahead buys. Times are
medians of interleaved repeats (each run is printed: the machine is shared). Peak memory: the client's
Python heap while paging (tracemalloc, in an extra untimed run) and the bench process's peak RSS.
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import time
import tracemalloc

import httpx
import orjson

from pipelines.graph import GraphClient, GraphSettings, StaticTokenProvider
from pipelines.graph._models import MessagePageBody
from sandbox import AdminClient, SandboxProcess, ssl_context

MESSAGES = 20_000
PAGE = 100
REPEATS = 5
TARGET_RATIO = 1.15
MAILBOX = "adele@contoso.test"


async def bare_loop(info, token: str, *, models: bool = False) -> int:
    """The least a client can do: GET each page, parse it, follow its next link (with `models`, parse into
    the client's models instead of plain dicts)."""
    headers = {
        "Authorization": f"Bearer {token}",
        "Prefer": f'IdType="ImmutableId", odata.maxpagesize={PAGE}',
    }
    seen = 0
    async with httpx.AsyncClient(verify=ssl_context(info.ca_cert), trust_env=False, headers=headers) as http:
        link: str | None = f"{info.graph_url}/users/{MAILBOX}/messages"
        while link is not None:
            body = (await http.get(link)).content
            if models:
                parsed = MessagePageBody.model_validate_json(body)
                seen, link = seen + len(parsed.value), parsed.next_link
            else:
                page = orjson.loads(body)
                seen, link = seen + len(page["value"]), page.get("@odata.nextLink")
    return seen


async def through_client(settings: GraphSettings, token: str) -> int:
    seen = 0
    async with GraphClient(settings, StaticTokenProvider(token)) as graph:
        async for page in graph.user(MAILBOX).list_messages():
            seen += len(page.messages)
    return seen


def timed(run) -> tuple[float, int]:
    started = time.perf_counter()
    seen = asyncio.run(run())
    return time.perf_counter() - started, seen


def main() -> None:
    with (
        SandboxProcess(seed=1, messages=MESSAGES, startup_timeout=120) as info,
        AdminClient.for_sandbox(info) as admin,
    ):
        token = admin.mint_token()
        host, tenant = info.authority.rsplit("/", 1)
        settings = GraphSettings(
            graph_url=info.graph_url,
            authority_host=host,
            tenant=tenant,
            ca_bundle=info.ca_cert,
            page_size=PAGE,
        )
        asyncio.run(bare_loop(info, token))  # warm the server's caches once, for both
        bare, bare_models, client = [], [], []
        for _ in range(REPEATS):
            seconds, bare_seen = timed(lambda: bare_loop(info, token))
            bare.append(seconds)
            seconds, client_seen = timed(lambda: through_client(settings, token))
            client.append(seconds)
            seconds, _ = timed(lambda: bare_loop(info, token, models=True))
            bare_models.append(seconds)
        tracemalloc.start()
        asyncio.run(through_client(settings, token))
        _, heap_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

    bare_s, client_s = statistics.median(bare), statistics.median(client)
    ratio = client_s / bare_s
    verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
    models_s = statistics.median(bare_models)
    print(f"messages paged: {client_seen:,} by the client, {bare_seen:,} by the bare loop, pages of {PAGE}")
    print(f"bare httpx loop: {bare_s:.2f} s median, {bare_seen / bare_s:,.0f} messages/s; runs {_runs(bare)}")
    rate = client_seen / client_s
    print(f"Mailroom client: {client_s:.2f} s median, {rate:,.0f} messages/s; runs {_runs(client)}")
    print(f"client / bare: {ratio:.3f}; target <= {TARGET_RATIO}, {verdict}")
    print(
        f"reference, bare loop into models, no read-ahead: {models_s:.2f} s, {models_s / bare_s:.3f} x bare"
    )
    print(f"client Python heap peak while paging: {heap_peak / 2**20:.1f} MiB")
    print(f"bench process peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


def _runs(seconds: list[float]) -> str:
    return " ".join(f"{s:.2f}" for s in seconds)


if __name__ == "__main__":
    main()
