"""API benchmarks: requests per second and latency percentiles for `/user_files_v2` on a customer with 10,000
emails (2,000 of them with an attachment) and for `/update_users` with 100 customer ids, beside a trivial
route (`/health`) on the same server in the same run.

Target: `/user_files_v2` throughput at least a third of the trivial route's, measured where no answer can
be reused: a different page, order and direction each time, and a different filter each time. The server is
`mailroom api` in a child process (one uvicorn worker); the load comes from this process, 8 requests in
flight on keep-alive connections, so client and server share the machine's 2 cores as they would on a small
host. Beside requests per second, each line gives the server's CPU time per request, which the other work
on a shared machine disturbs less. `/update_users` is measured a second time with one request in flight:
with 8, its latency is mostly the wait for SQLite's one writer.
"""

import asyncio
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
from cryptography.fernet import Fernet

from pipelines.api import ApiProcess
from pipelines.store import Address, AttachmentRow, ControlStore, Cursor, EmailRow, MailStore, Page

EMAILS = 10_000
CONCURRENCY = 8
SECONDS = 6.0
CUSTOMER = "bench@example.com"
ORDERS = ("created_at", "updated_at", "name", "last_sync", "file_size", "id")


@dataclass(frozen=True)
class Figures:
    name: str
    requests: int
    seconds: float
    latencies_ms: list[float]
    errors: int
    server_cpu_ms: float  # per request

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def line(self) -> str:
        return (
            f"  {self.name:<44} {self.rps:6.0f} req/s   p50 {self.percentile(50):6.1f} ms   "
            f"p90 {self.percentile(90):6.1f} ms   p99 {self.percentile(99):6.1f} ms   "
            f"server {self.server_cpu_ms:5.2f} CPU ms/req   ({self.requests} requests, {self.errors} errors)"
        )


def _attachments(n: int) -> tuple[AttachmentRow, ...]:
    """Every fifth email has a PDF (metadata only: listings never read content)."""
    return (AttachmentRow(f"att-{n}", name=f"scan-{n}.pdf", size=4096),) if n % 5 == 0 else ()


def _fill(data: Path) -> None:
    store = MailStore.for_customer(data, CUSTOMER)
    store.start_round("inbox", "bench")
    base = datetime(2024, 1, 1, tzinfo=UTC)
    for start in range(0, EMAILS, 1000):
        rows = [
            EmailRow(
                message_id=f"AAMkAGI2-{n:08d}-immutable",
                folder_id="inbox",
                folder_path="Inbox",
                subject=f"Quarterly report {n}",
                from_name="Ada Lovelace",
                from_address="ada@example.com",
                to_recipients=(Address("Bob", "bob@example.com"),),
                received_at=base + timedelta(minutes=n),
                web_link=f"https://outlook.office365.com/owa/?ItemID={n}",
                body_content_type="html",
                body_html=f"<p>Hello {n}</p>" * 20,
                body_text=f"Hello {n}\n" * 20,
                has_attachments=n % 5 == 0,
                attachments=_attachments(n),
            )
            for n in range(start, start + 1000)
        ]
        last = start + 1000 >= EMAILS
        cursor = Cursor(delta_link="d") if last else Cursor(next_link=f"n{start}")
        store.apply_page(Page("inbox", "bench", upserts=rows, cursor=cursor))


Body = dict[str, Any] | Callable[[], dict[str, Any]] | None


async def _load(
    url: str,
    server: psutil.Process,
    name: str,
    method: str,
    path: str,
    headers: dict[str, str],
    body: Body,
    in_flight: int = CONCURRENCY,
) -> Figures:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    async with httpx.AsyncClient(
        base_url=url, headers=headers, limits=limits, trust_env=False, timeout=60
    ) as http:
        for _ in range(in_flight):  # open the connections
            await http.request(method, path, json=body() if callable(body) else body)
        deadline = time.perf_counter() + SECONDS

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await http.request(method, path, json=body() if callable(body) else body)
                latencies.append((time.perf_counter() - started) * 1000)
                errors += response.status_code != 200

        before = server.cpu_times()
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        elapsed = time.perf_counter() - started
        after = server.cpu_times()
    cpu_ms = (after.user + after.system - before.user - before.system) * 1000 / max(1, len(latencies))
    return Figures(name, len(latencies), elapsed, latencies, errors, cpu_ms)


def _any_page() -> dict[str, Any]:
    """A different page, order and direction each time: what clients walking the list in their own order
    ask (no answer is reused; the order of the store's files is, once asked)."""
    return {
        "pagination": {"limit": 10, "offset": random.randrange(EMAILS)},
        "order_by": random.choice(ORDERS),
        "order_dir": random.choice(("asc", "desc")),
    }


def _any_filter() -> dict[str, Any]:
    """A different filter each time (a subject's words, about 11 of 10,000 emails match), in any order:
    every request sorts afresh."""
    return {
        "filters": {"name": f"report {random.randrange(1000)}"},
        "order_by": random.choice(ORDERS),
        "order_dir": random.choice(("asc", "desc")),
    }


def _after_idle(url: str, headers: dict[str, str]) -> float:
    """Median latency of a listing after the reader let the store go (idle): an occasional poller's wait."""
    waits = []
    with httpx.Client(base_url=url, headers=headers, trust_env=False, timeout=60) as http:
        for _ in range(5):
            time.sleep(1.0)  # the reader lets a store go after 0.5 s without use
            started = time.perf_counter()
            http.post("/user_files_v2", json=_any_page())
            waits.append((time.perf_counter() - started) * 1000)
    return statistics.median(waits)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="mailroom-bench-api-") as tmp:
        data = Path(tmp)
        key = Fernet.generate_key().decode()
        started = time.perf_counter()
        _fill(data)
        print(
            f"filled a mail store with {EMAILS:,} emails and {EMAILS // 5:,} attachments in "
            f"{time.perf_counter() - started:.1f} s"
        )
        _, api_key = ControlStore(data / "control.sqlite3", secret_key=key).create_api_key("bench")
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
        env |= {"MAILROOM_DATA_DIR": str(data), "MAILROOM_SECRET_KEY": key}
        org = {"authorization": f"Bearer {api_key}"}
        user = org | {"customer-id": CUSTOMER}
        ids = [f"bench-user-{i:03d}" for i in range(100)]
        update = {"customer_ids": ids, "auto_sync_enabled_sources": ["OUTLOOK"], "auto_sync_interval": 6}
        with ApiProcess(env, log_path=data / "api.log") as api:
            server = psutil.Process(api.pid)
            by_name = {"pagination": {"limit": 100}, "order_by": "name"}
            runs: list[tuple[str, str, str, dict[str, str], Body]] = [
                ("GET /health (trivial)", "GET", "/health", {}, None),
                ("POST /user_files_v2 (any page, order)", "POST", "/user_files_v2", user, _any_page),
                ("POST /user_files_v2 (any filter, order)", "POST", "/user_files_v2", user, _any_filter),
                ("POST /user_files_v2 (the same page polled)", "POST", "/user_files_v2", user, {}),
                ("POST /user_files_v2 (100, by name)", "POST", "/user_files_v2", user, by_name),
                ("POST /update_users (100 ids)", "POST", "/update_users", org, update),
            ]
            figures = [asyncio.run(_load(api.url, server, *run)) for run in runs]
            alone = asyncio.run(
                _load(api.url, server, "POST /update_users (100 ids), 1 in flight", "POST", "/update_users",
                      org, update, in_flight=1)
            )  # fmt: skip
            idle = _after_idle(api.url, user)
        print(f"{CONCURRENCY} requests in flight unless said, {SECONDS:.0f} s a route, one server process:")
        for figure in (*figures, alone):
            print(figure.line())
        print(f"  one listing after the reader let the store go (idle): {idle:.1f} ms (median of 5)")
        trivial = figures[0]
        for files in figures[1:4]:
            ratio = files.rps / trivial.rps
            met = "met" if ratio >= 1 / 3 else "NOT met"
            print(
                f"{files.name.removeprefix('POST ')} throughput / trivial route: {ratio:.2f} "
                f"(target >= 0.33: {met}); median latency {statistics.median(files.latencies_ms):.1f} ms "
                f"vs {statistics.median(trivial.latencies_ms):.1f} ms"
            )
