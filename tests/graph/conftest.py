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
