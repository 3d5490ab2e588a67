"""Fixtures for the sandbox's own tests: a Graph client on the shared (freshly reset) sandbox server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sandbox import AdminClient, SandboxInfo, ssl_context

ADELE = "adele@contoso.test"


def graph_client(info: SandboxInfo, token: str, **headers: str) -> httpx.Client:
    return httpx.Client(
        base_url=info.graph_url,
        verify=ssl_context(info.ca_cert),
        trust_env=False,
        timeout=60,
        headers={"Authorization": f"Bearer {token}", **headers},
    )


def collect(client: httpx.Client, url: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a listing, following @odata.nextLink verbatim."""
    items: list[dict[str, Any]] = []
    response = client.get(url, params=params or None)
    while True:
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["value"]
        if "@odata.nextLink" not in page:
            return items
        response = client.get(page["@odata.nextLink"])


@pytest.fixture
def graph(fresh_sandbox: SandboxInfo, sandbox_admin: AdminClient) -> Iterator[httpx.Client]:
    """An app-only (Mail.Read) Graph client on a freshly reset sandbox."""
    with graph_client(fresh_sandbox, sandbox_admin.mint_token()) as client:
        yield client
