"""A schemathesis fuzz of the API's own OpenAPI document: whatever the schema allows (and what it does not),
no answer is a server error. It runs on a server of its own with webhook delivery off, so that fuzzed
webhook URLs are stored but never called."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from pipelines.api import ApiProcess
from pipelines.store import ControlStore
from tests.api.conftest import server_env
from tests.api.mail import email, fill, with_attachment

CUSTOMER = "fuzz@example.com"


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory, secret_key: str, sandbox_server) -> Iterator[dict]:
    data = tmp_path_factory.mktemp("fuzz-data")
    env = server_env(data, secret_key, sandbox_server) | {"MAILROOM_API_DELIVER_WEBHOOKS": "false"}
    _, key = ControlStore(data / "control.sqlite3", secret_key=secret_key).create_api_key("fuzz")
    fill(data, CUSTOMER, [with_attachment(n) if n % 3 == 0 else email(n) for n in range(1, 13)])
    with ApiProcess(env, log_path=Path(data) / "api.log") as api:
        yield {"url": api.url, "key": key, "api": api}


def operations(url: str) -> list[schemathesis.APIOperation]:
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.slow
def test_no_input_makes_a_server_error(fuzz_server: dict) -> None:
    found = operations(fuzz_server["url"])
    assert len(found) >= 20
    calls = 0
    for operation in found:

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)  # fmt: skip
        def fuzz(case: schemathesis.Case) -> None:
            nonlocal calls
            # Valid credentials, so that the fuzz reaches the routes' own code rather than stopping at a 401.
            case.headers = {
                **(case.headers or {}),
                "authorization": f"Bearer {fuzz_server['key']}",
                "customer-id": CUSTOMER,
            }
            response = case.call(base_url=fuzz_server["url"], timeout=30)
            calls += 1
            assert response.status_code < 500, (
                f"{case.method} {case.path} answered {response.status_code}: {response.text[:500]}\n"
                f"{fuzz_server['api'].log_tail(3000)}"
            )
            (content_type,) = response.headers.get("content-type") or [""]  # schemathesis lists each header
            assert content_type.startswith(("application/json", "text/html", "message/", "text/plain"))

        fuzz()
    assert calls > 10 * len(found)
