"""Fixtures of the Graph client's tests: the async backend, settings, and a scripted clock."""

from __future__ import annotations

import pytest

from pipelines.graph import GraphSettings
from tests.graph.scripted import FakeClock


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def settings() -> GraphSettings:
    """Settings for a scripted Graph on an invented host (MockTransport answers; nothing is dialled)."""
    return GraphSettings(
        graph_url="https://graph.test/v1.0",
        authority_host="https://login.test",
        tenant="contoso",
        client_id="client",
        backoff_base_s=1.0,
        backoff_cap_s=8.0,
        max_attempts=5,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def settings_for(info, **overrides: object) -> GraphSettings:
    """Graph settings that point at a running sandbox (its URLs, app and CA)."""
    host, tenant = info.authority.rsplit("/", 1)
    return GraphSettings(
        graph_url=info.graph_url,
        authority_host=host,
        tenant=tenant,
        client_id=info.client_id,
        client_secret=info.client_secret.get_secret_value(),
        ca_bundle=info.ca_cert,
        **overrides,
    )


@pytest.fixture
def sandbox_settings(sandbox_server) -> GraphSettings:
    return settings_for(sandbox_server, backoff_base_s=0.2)


@pytest.fixture
def app_token(sandbox_admin) -> str:
    """An app-only Mail.Read token minted by the sandbox (no MSAL)."""
    return sandbox_admin.mint_token()
