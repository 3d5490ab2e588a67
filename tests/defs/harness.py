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

A site (`pipelines.defs.local.LocalSite`) is a temporary DAGSTER_HOME made from the repo's dagster.yaml or
dagster-ci.yaml, a data directory, and the environment every process gets (`site.env`: MAILROOM_* for the
stores and, given a sandbox, the sandbox as Graph). `mailroom dev` and `mailroom demo` use the same class.
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipelines.defs.local import InstanceKind, LocalSite, graph_env
from sandbox import SandboxInfo

CHROMIUM = Path("/usr/bin/chromium")
# Set by .ci/run: in CI a missing Chromium fails the screenshot test instead of skipping it.
REQUIRE_CHROMIUM = "MAILROOM_REQUIRE_CHROMIUM"
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
    return graph_env(
        graph_url=info.graph_url,
        authority=info.authority,
        client_id=info.client_id,
        client_secret=info.client_secret.get_secret_value(),
        ca_bundle=str(info.ca_cert),
    )


class DagsterSite(LocalSite):
    """A `LocalSite` under a test's temporary directory, with a launch trigger of "test" and GraphQL."""

    @classmethod
    def create(
        cls,
        root: Path,
        *,
        sandbox: SandboxInfo | None = None,
        instance: InstanceKind = "direct",
        extra_env: Mapping[str, str] | None = None,
    ) -> DagsterSite:
        env = (sandbox_env(sandbox) if sandbox is not None else {}) | dict(extra_env or {})
        return cls(root / "dagster_home", root / "data", kind=instance, extra_env=env, logs=root / "logs")

    def launch(
        self,
        job: str,
        customer_id: str,
        run_config: Mapping[str, Any] | None = None,
        *,
        trigger: str = "test",
    ) -> str:
        return super().launch(job, customer_id, run_config, trigger=trigger)

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


def require_chromium(binary: Path = CHROMIUM, env: Mapping[str, str] = os.environ) -> None:
    """Return if `binary` is there; otherwise fail (when MAILROOM_REQUIRE_CHROMIUM=1, as in CI) or skip,
    saying why either way."""
    if binary.exists():
        return
    reason = f"no {binary} (Debian's chromium package) for the screenshot"
    if env.get(REQUIRE_CHROMIUM) == "1":
        pytest.fail(f"{reason}, and {REQUIRE_CHROMIUM}=1 says this run must take it (CI installs it)")
    pytest.skip(f"{reason}; CI installs it")


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
