"""Sandbox speed: messages served per second in full-body pages of 100, and a 100,000-message mailbox's start.

Targets (issue 3): at least 5,000 messages per second on one core; a 100,000-message mailbox starts within
20 s in under 1 GB. The sandbox runs as a subprocess (one process, one event loop: one core); the client
here pages over HTTPS with keep-alive. Figures are medians of several repeats; "per server CPU second"
divides by the server process's own CPU time, which is what one core can do regardless of the client.
"""

from __future__ import annotations

import statistics
import time

import httpx
import orjson
import psutil

from sandbox import AdminClient, SandboxProcess, ssl_context

MESSAGES = 100_000
PAGE = 100
PAGES_PER_RUN = 100
REPEATS = 5
THROUGHPUT_TARGET = 5_000
START_TARGET_S = 20.0
MEMORY_TARGET_MB = 1024.0


def _page_through(client: httpx.Client, url: str, pages: int) -> int:
    served = 0
    link: str | None = url
    for _ in range(pages):
        if link is None:
            break
        page = orjson.loads(client.get(link).content)
        served += len(page["value"])
        link = page.get("@odata.nextLink")
    return served


def main() -> None:
    started = time.perf_counter()
    with SandboxProcess(messages=MESSAGES, startup_timeout=120) as info:
        start_s = time.perf_counter() - started
        server = psutil.Process(info.pid)
        rss_start = server.memory_info().rss / 2**20
        admin = AdminClient.for_sandbox(info)
        total = sum(m["messages"] for m in admin.mailboxes())
        print(
            f"start: {start_s:.2f} s for {total:,} messages in {len(info.mailboxes)} mailboxes "
            f"(largest {MESSAGES:,} generated); target {START_TARGET_S:.0f} s, "
            f"ratio {start_s / START_TARGET_S:.2f}"
        )
        print(
            f"memory after start: {rss_start:.0f} MiB; target {MEMORY_TARGET_MB:.0f} MiB, "
            f"ratio {rss_start / MEMORY_TARGET_MB:.2f}"
        )

        headers = {"Authorization": f"Bearer {admin.mint_token()}", "Prefer": 'IdType="ImmutableId"'}
        with httpx.Client(
            verify=ssl_context(info.ca_cert), trust_env=False, headers=headers, timeout=120
        ) as client:
            url = f"{info.graph_url}/users/{info.mailboxes[0]}/messages?$top={PAGE}"
            _page_through(client, url, 3)  # warm: connection, TLS, the sorted listing cache
            wall, per_cpu = [], []
            for repeat in range(REPEATS):
                skip = repeat * PAGE * PAGES_PER_RUN
                cpu_before = sum(server.cpu_times()[:2])
                t0 = time.perf_counter()
                served = _page_through(client, f"{url}&$skip={skip}", PAGES_PER_RUN)
                elapsed = time.perf_counter() - t0
                cpu = sum(server.cpu_times()[:2]) - cpu_before
                wall.append(served / elapsed)
                per_cpu.append(served / cpu if cpu else float("inf"))
            body = len(client.get(url).content) / PAGE
            delta_url = f"{info.graph_url}/users/{info.mailboxes[0]}/mailFolders/inbox/messages/delta"
            t0 = time.perf_counter()
            response = orjson.loads(
                client.get(delta_url, headers={"Prefer": f"odata.maxpagesize={PAGE}"}).content
            )
            delta_count = len(response["value"])
            while "@odata.nextLink" in response:
                response = orjson.loads(client.get(response["@odata.nextLink"]).content)
                delta_count += len(response["value"])
            delta_rate = delta_count / (time.perf_counter() - t0)
        rss_end = server.memory_info().rss / 2**20
        wall_median, cpu_median = statistics.median(wall), statistics.median(per_cpu)
        print(
            f"full-body pages of {PAGE} (~{body / 1024:.1f} KiB per message): "
            f"median {wall_median:,.0f} msg/s end to end; target {THROUGHPUT_TARGET:,}, "
            f"ratio {wall_median / THROUGHPUT_TARGET:.2f}"
        )
        print(
            f"  per server CPU second (one core): median {cpu_median:,.0f} msg/s, "
            f"ratio {cpu_median / THROUGHPUT_TARGET:.2f}; runs: {', '.join(f'{w:,.0f}' for w in wall)}"
        )
        print(
            f"delta, first round of the inbox ({delta_count:,} messages, pages of {PAGE}): "
            f"{delta_rate:,.0f} msg/s"
        )
        print(f"memory after the runs: {rss_end:.0f} MiB; ratio {rss_end / MEMORY_TARGET_MB:.2f}")


if __name__ == "__main__":
    main()
