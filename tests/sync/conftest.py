"""Fixtures of the sync engine's tests: settings that point at the sandbox, and a customer connected to it.

- ``settings``: `pipelines.settings.Settings` with a fresh data directory, a secret key and the session
  sandbox's Graph settings (its URLs, app, CA).
- ``customer``: customer ``team@carbon.ai`` with an app-only connection to adele's mailbox, on a freshly
  reset sandbox (so tests may change mail and faults).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from pipelines.graph import GraphSettings
from pipelines.settings import Settings
from sandbox import AdminClient, SandboxInfo

CUSTOMER = "team@carbon.ai"
MAILBOX = "adele@contoso.test"


def inbox(admin: AdminClient) -> list[dict]:
    """The mailbox's Inbox messages as the sandbox has them now."""
    return [m for m in admin.ground_truth(MAILBOX)["messages"] if m["folderPath"] == ["Inbox"]]


def graph_settings(info: SandboxInfo, **overrides: object) -> GraphSettings:
    host, tenant = info.authority.rsplit("/", 1)
    values: dict[str, object] = {
        "graph_url": info.graph_url,
        "authority_host": host,
        "tenant": tenant,
        "client_id": info.client_id,
        "client_secret": info.client_secret.get_secret_value(),
        "ca_bundle": info.ca_cert,
        "backoff_base_s": 0.1,
        "backoff_cap_s": 2.0,
    }
    values.update(overrides)
    return GraphSettings(**values)  # type: ignore[arg-type]


def settings_for(info: SandboxInfo, data_dir: Path, **graph: object) -> Settings:
    return Settings(
        data_dir=data_dir, secret_key=Fernet.generate_key().decode(), graph=graph_settings(info, **graph)
    )


@pytest.fixture
def settings(sandbox_server: SandboxInfo, tmp_path: Path) -> Settings:
    return settings_for(sandbox_server, tmp_path / "data")


@pytest.fixture
def customer(settings: Settings, fresh_sandbox: SandboxInfo) -> str:
    control = settings.control_store()
    [record] = control.update_customers([CUSTOMER])
    control.save_connection(record.id, MAILBOX, auth_kind="app")
    return CUSTOMER
