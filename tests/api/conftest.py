"""Fixtures of the API's tests: a real `mailroom api` process on 127.0.0.1, its stores, keys and customers.

- ``api_env`` (session): the environment of the server (data directory, secret key, the sandbox as Graph,
  webhook retries 0.2 s / 0.4 s / 0.6 s apart so that retries are seen within a test, and webhooks
  allowed to reach receivers on 127.0.0.1).
- ``api`` (session): the running server (``ApiProcess``), stopped by its PID at the end.
- ``control`` (session): the same control store, for arranging and inspecting.
- ``api_key`` (session): a live API key of organization 1.
- ``customer``: a customer id of its own per test (tests share one server; ids keep them apart).
- ``client``: an ``httpx.Client`` on the server with the API key; ``as_customer(c)`` adds ``customer-id``.
- ``webhook_client``: ``client``, with the organization's webhooks removed before and after the test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from pipelines.api import ApiProcess
from pipelines.store import ControlStore
from sandbox import SandboxInfo


def sandbox_env(info: SandboxInfo) -> dict[str, str]:
    """MAILROOM_GRAPH_* for a running sandbox: its Graph URL, authority, app and CA."""
    host, tenant = info.authority.rsplit("/", 1)
    return {
        "MAILROOM_GRAPH_GRAPH_URL": info.graph_url,
        "MAILROOM_GRAPH_AUTHORITY_HOST": host,
        "MAILROOM_GRAPH_TENANT": tenant,
        "MAILROOM_GRAPH_CLIENT_ID": info.client_id,
        "MAILROOM_GRAPH_CLIENT_SECRET": info.client_secret.get_secret_value(),
        "MAILROOM_GRAPH_CA_BUNDLE": str(info.ca_cert),
        "MAILROOM_GRAPH_BACKOFF_BASE_S": "0.2",
    }


def server_env(data_dir: Path, secret_key: str, sandbox: SandboxInfo | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
    env |= {
        "MAILROOM_DATA_DIR": str(data_dir),
        "MAILROOM_SECRET_KEY": secret_key,
        "MAILROOM_API_WEBHOOK_POLL_S": "0.1",
        "MAILROOM_API_WEBHOOK_RETRY_DELAYS_S": "[0.2, 0.4, 0.6]",
        "MAILROOM_API_WEBHOOK_TIMEOUT_S": "5",
        "MAILROOM_API_AUTH_CACHE_S": "0",
        "MAILROOM_API_ALLOW_PRIVATE_WEBHOOKS": "1",  # receivers listen on 127.0.0.1
    }
    if sandbox is not None:
        env |= sandbox_env(sandbox)
    return env


@pytest.fixture(scope="session")
def api_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("api-data")


@pytest.fixture(scope="session")
def secret_key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture(scope="session")
def api_env(api_data_dir: Path, secret_key: str, sandbox_server: SandboxInfo) -> dict[str, str]:
    return server_env(api_data_dir, secret_key, sandbox_server)


@pytest.fixture(scope="session")
def api(api_env: dict[str, str], api_data_dir: Path) -> Iterator[ApiProcess]:
    with ApiProcess(api_env, log_path=api_data_dir / "api.log") as process:
        yield process


@pytest.fixture(scope="session")
def control(api_data_dir: Path, secret_key: str) -> ControlStore:
    return ControlStore(api_data_dir / "control.sqlite3", secret_key=secret_key)


@pytest.fixture(scope="session")
def api_key(control: ControlStore) -> str:
    return control.create_api_key("tests")[1]


@pytest.fixture
def customer() -> str:
    return f"cust-{uuid.uuid4().hex[:10]}@example.com"


@pytest.fixture
def client(api: ApiProcess, api_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=api.url, headers={"authorization": f"Bearer {api_key}"}, trust_env=False, timeout=30
    ) as http:
        yield http


@pytest.fixture
def webhook_client(client: httpx.Client) -> Iterator[httpx.Client]:
    """Mailroom serves one organization, and the tests of a worker share one server: with the webhooks of
    other tests removed, a test's receiver gets only the events of that test."""

    def remove_all() -> None:
        for hook in client.post("/webhooks", json={"pagination": {"limit": 100}}).json()["results"]:
            client.delete(f"/delete_webhook/{hook['id']}")

    remove_all()
    yield client
    remove_all()


def as_customer(customer_id: str) -> dict[str, str]:
    return {"customer-id": customer_id}
