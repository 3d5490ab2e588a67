"""Dagster benchmarks: what the code location costs on top of the engine, and how its ticks scale.

- Loading the code location (a fresh interpreter importing `pipelines.definitions`), which every code
  server, run process and `dagster job launch` pays.
- The same sync three ways on the sandbox: the engine called directly, `materialize` in-process (Dagster's
  bookkeeping, no process), and `dagster job launch` polled to SUCCESS (the README's path: CLI, code
  server, run process). Ratios against the bare engine.
- One `api_requests_sensor` tick over 500 recorded requests, and one `outlook_auto_sync_schedule` tick over
  1,000 auto-synced customers (targets: well within the daemon's 60 s evaluation timeout; a sensor tick
  under 1 s per 100 requests, a schedule tick under 10 s per 1,000 customers).
"""

import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from pipelines.defs import (
    MailroomStores,
    OutlookGraph,
    api_requests_sensor,
    email_search_index,
    outlook_auto_sync_schedule,
    outlook_emails,
)
from pipelines.defs.local import LocalSite, graph_env
from pipelines.settings import Settings, graph_settings_from_environment
from pipelines.store import CustomerUpdate
from pipelines.sync import SyncOptions, sync_customer
from sandbox import SandboxProcess

REQUESTS = 500
CUSTOMERS = 1_000
MESSAGES = 2_000
REPEATS = 3
MAILBOX = "adele@contoso.test"


def _median(samples: list[float]) -> float:
    return statistics.median(samples)


def _load_time() -> float:
    code = "import pipelines.definitions"
    samples = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        samples.append(time.perf_counter() - started)
    return _median(samples)


def _syncs(root: Path) -> None:
    with SandboxProcess(seed=1, messages=MESSAGES) as info:
        env = graph_env(
            graph_url=info.graph_url,
            authority=info.authority,
            client_id=info.client_id,
            client_secret=info.client_secret.get_secret_value(),
            ca_bundle=str(info.ca_cert),
        )
        graph = OutlookGraph(
            graph_url=info.graph_url,
            authority=info.authority,
            client_id=info.client_id,
            client_secret=info.client_secret.get_secret_value(),
            ca_bundle=str(info.ca_cert),
        )
        bare, inproc, launched = [], [], []
        for attempt in range(REPEATS):
            site = LocalSite(root / f"home{attempt}", root / f"data{attempt}", kind="direct", extra_env=env)
            for name in ("bare", "inproc", "launched"):
                site.add_customer(name, MAILBOX)
            settings = Settings(data_dir=site.data_dir, graph=graph_settings_from_environment(env))

            started = time.perf_counter()
            result = sync_customer("bare", SyncOptions(), settings=settings)
            bare.append(time.perf_counter() - started)

            stores = MailroomStores(data_dir=str(site.data_dir))
            started = time.perf_counter()
            dg.materialize(
                [outlook_emails, email_search_index],
                partition_key="inproc",
                instance=site.instance,
                resources={"stores": stores, "graph": graph},
            )
            inproc.append(time.perf_counter() - started)

            started = time.perf_counter()
            site.wait([site.launch("sync_outlook_job", "launched", trigger="bench")])
            launched.append(time.perf_counter() - started)
        emails = result.counts.inserted
    print(f"one customer's first sync ({emails:,} emails in the Inbox), median of {REPEATS}:")
    print(f"  engine called directly        {_median(bare):6.2f} s")
    print(
        f"  materialize, in-process       {_median(inproc):6.2f} s   x{_median(inproc) / _median(bare):.2f}"
    )
    ratio = _median(launched) / _median(bare)
    print(f"  dagster job launch -> SUCCESS {_median(launched):6.2f} s   x{ratio:.2f}", end="")
    print("  (CLI, code server, run process)")


def _ticks(root: Path) -> None:
    stores = MailroomStores(data_dir=str(root / "ticks"))
    control = stores.control()
    with dg.instance_for_test() as instance:
        ids = [f"customer-{n:04d}" for n in range(CUSTOMERS)]
        customers = control.update_customers(ids, CustomerUpdate(auto_sync_sources=["OUTLOOK"]))
        for customer in customers:
            control.save_connection(customer.id, f"{customer.customer_id}@contoso.test", auth_kind="app")
        for n in range(REQUESTS):
            control.record_request("sync", ids[n % len(ids)], {"folder": "Inbox", "filter_text": "is:unread"})

        started = time.perf_counter()
        result = api_requests_sensor(dg.build_sensor_context(instance=instance, resources={"stores": stores}))
        sensor = time.perf_counter() - started
        assert isinstance(result, dg.SensorResult)
        instance.add_dynamic_partitions("customers", ids)

        started = time.perf_counter()
        context = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=datetime.now(UTC), resources={"stores": stores}
        )
        runs = [r for r in outlook_auto_sync_schedule(context) if isinstance(r, dg.RunRequest)]
        schedule = time.perf_counter() - started
    per_hundred = sensor / REQUESTS * 100
    print(f"api_requests_sensor, one tick over {REQUESTS} requests: {sensor:.2f} s", end="")
    print(f" ({len(result.run_requests)} runs requested)")
    print(f"  {per_hundred:.3f} s per 100 requests; target 1 s: ratio {per_hundred / 1.0:.2f}")
    print(f"outlook_auto_sync_schedule, one tick over {CUSTOMERS:,} due customers: {schedule:.2f} s")
    print(f"  ({len(runs)} runs requested)")
    print(f"  target 10 s: ratio {schedule / 10.0:.2f}")


def main() -> None:
    print(f"loading the code location (fresh interpreter), median of {REPEATS}: {_load_time():.2f} s")
    with tempfile.TemporaryDirectory(prefix="mailroom-bench-dagster-") as scratch:
        root = Path(scratch)
        _ticks(root)
        _syncs(root)


if __name__ == "__main__":
    main()
