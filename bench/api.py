"""API benchmarks: requests per second and latency percentiles for `/user_files_v2` on a customer with 10,000
emails and for `/update_users` with 100 customer ids, beside a trivial route (`/health`) on the same server in
the same run.

Target: `/user_files_v2` throughput at least a third of the trivial route's. The server is `mailroom api` in
a child process (one uvicorn worker); the load comes from this process, 8 requests in flight on keep-alive
connections, so client and server share the machine's 2 cores as they would on a small host.
"""

import asyncio
import os
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

from pipelines.api import ApiProcess
from pipelines.store import Address, ControlStore, Cursor, EmailRow, MailStore, Page

EMAILS = 10_000
CONCURRENCY = 8
SECONDS = 6.0
CUSTOMER = "bench@example.com"


@dataclass(frozen=True)
class Figures:
    name: str
    requests: int
    seconds: float
    latencies_ms: list[float]
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def line(self) -> str:
        return (
            f"  {self.name:<34} {self.rps:8.0f} req/s   p50 {self.percentile(50):6.1f} ms   "
            f"p90 {self.percentile(90):6.1f} ms   p99 {self.percentile(99):6.1f} ms   "
            f"({self.requests} requests, {self.errors} errors)"
        )


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
            )
            for n in range(start, start + 1000)
        ]
        last = start + 1000 >= EMAILS
        cursor = Cursor(delta_link="d") if last else Cursor(next_link=f"n{start}")
        store.apply_page(Page("inbox", "bench", upserts=rows, cursor=cursor))


async def _load(url: str, name: str, method: str, path: str, headers: dict, body: object) -> Figures:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(
        base_url=url, headers=headers, limits=limits, trust_env=False, timeout=60
    ) as http:
        for _ in range(CONCURRENCY):  # warm the connections and the server's caches
            await http.request(method, path, json=body() if callable(body) else body)
        deadline = time.perf_counter() + SECONDS

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await http.request(method, path, json=body() if callable(body) else body)
                latencies.append((time.perf_counter() - started) * 1000)
                errors += response.status_code != 200

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - started
    return Figures(name, len(latencies), elapsed, latencies, errors)


def _any_page() -> dict:
    """A different page each time: what a client walking the whole list asks (no answer is reused)."""
    return {"pagination": {"limit": 10, "offset": random.randrange(EMAILS - 10)}, "order_by": "id"}


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="mailroom-bench-api-") as tmp:
        data = Path(tmp)
        key = Fernet.generate_key().decode()
        started = time.perf_counter()
        _fill(data)
        print(f"filled a mail store with {EMAILS:,} emails in {time.perf_counter() - started:.1f} s")
        _, api_key = ControlStore(data / "control.sqlite3", secret_key=key).create_api_key("bench")
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
        env |= {"MAILROOM_DATA_DIR": str(data), "MAILROOM_SECRET_KEY": key}
        org = {"authorization": f"Bearer {api_key}"}
        user = org | {"customer-id": CUSTOMER}
        ids = [f"bench-user-{i:03d}" for i in range(100)]
        update = {"customer_ids": ids, "auto_sync_enabled_sources": ["OUTLOOK"], "auto_sync_interval": 6}
        with ApiProcess(env, log_path=data / "api.log") as api:
            by_name = {"pagination": {"limit": 100}, "order_by": "name"}
            runs = [
                ("GET /health (trivial)", "GET", "/health", {}, None),
                ("POST /user_files_v2 (10 of 10,000)", "POST", "/user_files_v2", user, {}),
                ("POST /user_files_v2 (10, any offset)", "POST", "/user_files_v2", user, _any_page),
                ("POST /user_files_v2 (100, by name)", "POST", "/user_files_v2", user, by_name),
                ("POST /update_users (100 ids)", "POST", "/update_users", org, update),
            ]
            figures = [asyncio.run(_load(api.url, *run)) for run in runs]
        print(f"{CONCURRENCY} requests in flight, {SECONDS:.0f} s per route, one server process:")
        for figure in figures:
            print(figure.line())
        trivial = figures[0]
        for files in figures[1:3]:
            ratio = files.rps / trivial.rps
            print(
                f"{files.name.removeprefix('POST ')} throughput / trivial route: {ratio:.2f} "
                f"(target >= 0.33: {'met' if ratio >= 1 / 3 else 'NOT met'}); median latency "
                f"{statistics.median(files.latencies_ms):.1f} ms "
                f"vs {statistics.median(trivial.latencies_ms):.1f} ms"
            )
