"""The client against a hostile sandbox (a quarter of requests fail or drop, latency, 504s for pages over
1 MB, delta replays and empty pages): thousands of messages, each exactly once, and the sandbox's own log
shows the client's manners: never more than 4 in flight per mailbox, never a retry before Retry-After."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import pytest

from pipelines.graph import ClientCredentialsProvider, GraphClient, join_path
from sandbox import AdminClient, SandboxInfo, SandboxProcess
from tests.graph.conftest import settings_for

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

MESSAGES = 3000
ADELE = "adele@contoso.test"


@pytest.fixture(scope="module")
def hostile() -> Iterator[tuple[SandboxInfo, AdminClient]]:
    with (
        SandboxProcess(seed=11, messages=MESSAGES, profile="hostile") as info,
        AdminClient.for_sandbox(info) as admin,
    ):
        yield info, admin


async def test_a_hostile_listing_returns_every_message_exactly_once_with_good_manners(hostile) -> None:
    info, admin = hostile
    truth = admin.ground_truth(ADELE)
    assert len(truth["messages"]) > MESSAGES
    admin.clear_log()
    # Beside the profile's random faults, a burst of throttling with a Retry-After worth obeying.
    admin.add_rule(path="/messages$", mailbox=ADELE, nth=4, times=3, status=429, retry_after=2)
    # Pages of 1000 full messages pass the profile's 1 MB limit: Graph answers 504 until they shrink.
    settings = settings_for(info, page_size=1000, backoff_base_s=0.2, backoff_cap_s=2.0, max_attempts=12)
    async with GraphClient(settings, ClientCredentialsProvider(settings)) as graph:
        adele = graph.user(ADELE)
        tree = await adele.folder_tree()

        async def everything_in(folder_id: str) -> list[str]:
            return [m.id async for page in adele.list_messages(folder_id) for m in page.messages]

        # Every folder at once: the client, not the caller, keeps the mailbox to 4 in flight.
        listed = await asyncio.gather(*(everything_in(node.id) for node in tree))
    by_folder = {node.path: ids for node, ids in zip(tree, listed, strict=True)}
    expected = Counter(join_path(m["folderPath"]) for m in truth["messages"])
    for path, ids in by_folder.items():
        assert len(ids) == len(set(ids)), f"duplicates in {path}"
        assert len(ids) == expected[path], path
    every = [i for ids in listed for i in ids]
    assert sorted(every) == sorted(
        m["id"] for m in truth["messages"] if join_path(m["folderPath"]) in by_folder
    )

    counters = admin.counters(ADELE)
    assert counters["max_in_flight"] <= 4
    assert counters["violations"] == 0
    faults = Counter(entry["fault"] for entry in admin.log(mailbox=ADELE, limit=50_000) if entry["fault"])
    assert faults["rule"] == 3
    assert faults["random"] + faults["drop"] > 0, faults
    assert counters["throttled"] >= 3
    log = admin.log(mailbox=ADELE, limit=50_000)
    assert max(entry["in_flight"] for entry in log) <= 4
    assert not [entry for entry in log if entry["violation"]]
    assert any(entry["status"] == 504 and entry["fault"] is None for entry in log)  # pages too large
    assert graph.stats.retries > 0


async def test_a_hostile_delta_round_sees_each_message_once_despite_replays(hostile) -> None:
    info, admin = hostile
    truth = admin.ground_truth(ADELE)
    settings = settings_for(info, backoff_base_s=0.2, backoff_cap_s=2.0, max_attempts=12)
    async with GraphClient(settings, ClientCredentialsProvider(settings)) as graph:
        adele = graph.user(ADELE)
        inbox = await adele.get_folder("inbox")
        seen: Counter[str] = Counter()
        pages = 0
        async for page in adele.delta(inbox.id, select=["subject", "receivedDateTime"], page_size=200):
            pages += 1
            seen.update(m.id for m in page.messages)
    expected = {m["id"] for m in truth["messages"] if m["parentFolderId"] == inbox.id}
    assert set(seen) == expected
    assert pages > 1
    assert admin.counters(ADELE)["violations"] == 0
