"""End-to-end machinery for tests that need real Dagster processes (importable by any room's tests).

    from tests.defs.harness import DagsterSite

    site = DagsterSite.create(tmp_path, sandbox=info, instance="queued")   # or "direct" (no daemon needed)
    site.add_customer("adele", "adele@contoso.test")                       # control store + partition
    run_id = site.launch("sync_outlook_job", "adele", {"ops": {...}})     # `dagster job launch`
    site.wait([run_id])                                                   # polled until it has finished
    with site.daemon():                                                   # dagster-daemon, stopped by PID
        ...
    with site.webserver() as port:                                        # dagster-webserver on 127.0.0.1
        site.graphql(port, "query { version }")

A site is a temporary DAGSTER_HOME (from the repo's dagster.yaml or dagster-ci.yaml), a data directory and
the environment every process gets (`site.env`: MAILROOM_* for the stores and the sandbox as Graph).
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
from cryptography.fernet import Fernet

from pipelines.defs import MailroomStores, add_customer_partition
from pipelines.defs.local import (
    InstanceKind,
    daemon,
    daemon_ready,
    free_port,
    launch_runs,
    open_instance,
    prepare_home,
    wait_for_runs,
    webserver,
    webserver_ready,
)
from pipelines.store import ControlStore, Customer, CustomerUpdate
from sandbox import SandboxInfo

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def sandbox_env(info: SandboxInfo) -> dict[str, str]:
    """The variables that point Mailroom at a running sandbox (pipelines/settings.py's short names)."""
    return {
        "MAILROOM_GRAPH_URL": info.graph_url,
        "MAILROOM_AUTHORITY": info.authority,
        "MAILROOM_CLIENT_ID": info.client_id,
        "MAILROOM_CLIENT_SECRET": info.client_secret.get_secret_value(),
        "MAILROOM_CA_BUNDLE": str(info.ca_cert),
    }


@dataclass
class DagsterSite:
    """A DAGSTER_HOME, a data directory and the environment of every process started for them."""

    root: Path
    home: Path
    data_dir: Path
    env: dict[str, str]
    logs: Path
    secret_key: str = field(repr=False, default="")

    @classmethod
    def create(
        cls,
        root: Path,
        *,
        sandbox: SandboxInfo | None = None,
        instance: InstanceKind = "direct",
        extra_env: Mapping[str, str] | None = None,
    ) -> DagsterSite:
        home = prepare_home(root / "dagster_home", instance)
        data_dir = root / "data"
        secret_key = Fernet.generate_key().decode()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILROOM_", "DAGSTER_"))}
        env |= {
            "DAGSTER_HOME": str(home),
            "MAILROOM_DATA_DIR": str(data_dir),
            "MAILROOM_SECRET_KEY": secret_key,
        }
        if sandbox is not None:
            env |= sandbox_env(sandbox)
        env |= dict(extra_env or {})
        return cls(root, home, data_dir, env, root / "logs", secret_key)

    @cached_property
    def instance(self) -> dg.DagsterInstance:
        return open_instance(self.home)

    @property
    def stores(self) -> MailroomStores:
        return MailroomStores(data_dir=str(self.data_dir), secret_key=self.secret_key)

    @property
    def control(self) -> ControlStore:
        return self.stores.control()

    def add_customer(
        self, customer_id: str, mailbox: str, *, auto_sync: bool = True, partition: bool = True
    ) -> Customer:
        """A customer with an app-only connection to `mailbox` (and its partition, unless told not to)."""
        update = CustomerUpdate(auto_sync_sources=["OUTLOOK"] if auto_sync else [])
        (customer,) = self.control.update_customers([customer_id], update)
        self.control.save_connection(customer.id, mailbox, auth_kind="app")
        if partition:
            add_customer_partition(self.instance, customer_id)
        return customer

    def launch(
        self,
        job: str,
        customer_id: str,
        run_config: Mapping[str, Any] | None = None,
        *,
        trigger: str = "test",
    ) -> str:
        """`dagster job launch` of one partition; its run id (the run may still be queued or running)."""
        (run_id,) = launch_runs([(job, customer_id, run_config or {})], env=self.env, trigger=trigger)
        return run_id

    def wait(self, run_ids: list[str], *, timeout: float = 180.0) -> dict[str, dg.DagsterRun]:
        return wait_for_runs(self.instance, run_ids, timeout=timeout)

    @contextmanager
    def daemon(self, *, timeout: float = 90.0) -> Iterator[None]:
        """`dagster-daemon run` for this site, healthy before the block starts, stopped by its PID after."""
        with daemon(self.env, log_path=self.logs / "daemon.log") as service:
            service.wait_until(daemon_ready(self.instance), timeout=timeout, what="healthy daemons")
            yield

    @contextmanager
    def webserver(self, *, timeout: float = 90.0) -> Iterator[int]:
        """`dagster-webserver` on 127.0.0.1 for this site; yields its port; stopped by its PID after."""
        port = free_port()
        with webserver(self.env, port=port, log_path=self.logs / "webserver.log") as service:
            service.wait_until(webserver_ready(port), timeout=timeout, what="answer on /server_info")
            yield port

    @staticmethod
    def graphql(port: int, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """POST a GraphQL document to the webserver; its `data` (errors raise)."""
        answer = httpx.post(
            f"http://127.0.0.1:{port}/graphql",
            json={"query": query, "variables": dict(variables or {})},
            timeout=60,
        )
        answer.raise_for_status()
        body = answer.json()
        if body.get("errors"):
            raise AssertionError(f"GraphQL errors: {body['errors']}")
        return body["data"]


def chromium(
    url: str,
    profile: Path,
    *,
    screenshot: Path | None = None,
    size: tuple[int, int] = (1400, 900),
    budget_ms: int = 20_000,
    timeout: float = 120.0,
) -> str:
    """Load `url` in a headless Chromium; take a screenshot to `screenshot`, or return the rendered DOM.

    Chromium runs in a session of its own, so on a timeout the whole process group it made is killed.
    """
    argv = [
        str(CHROMIUM),
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        f"--window-size={size[0]},{size[1]}",
        f"--virtual-time-budget={budget_ms}",
        f"--screenshot={screenshot}" if screenshot is not None else "--dump-dom",
        url,
    ]
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise AssertionError(f"chromium did not finish loading {url} within {timeout:.0f} s") from None
    if process.returncode != 0:
        raise AssertionError(f"chromium exited with {process.returncode} for {url}")
    return output.decode(errors="replace")


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG file's header (and proof that it is one)."""
    head = path.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise AssertionError(f"{path} is not a PNG file")
    return struct.unpack(">II", head[16:24])
