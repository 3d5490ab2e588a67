"""A schemathesis fuzz of the API's own OpenAPI document: whatever the schema allows (and what it does not),
no answer is a server error. Three passes: with valid credentials (the routes' own code), with none
(everything but the open routes is a 401), and as a customer with an app-only connection to the sandbox's
mailbox (the routes that call Graph). It runs on a server of its own with webhook delivery off, so that
fuzzed webhook URLs are stored but never called."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.transport import Response

from pipelines.api import ApiProcess
from pipelines.store import ControlStore
from tests.api.conftest import server_env
from tests.api.mail import email, fill, with_attachment

CUSTOMER = "fuzz@example.com"
CONNECTED = "fuzz-connected@example.com"
# Routes in the schema that need no credentials: a file link is its own credential. (The OAuth callback,
# which carries a state instead, is not in the schema.)
OPEN = {"/health", "/files/{token}"}


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory, secret_key: str, sandbox_server) -> Iterator[dict]:
    data = tmp_path_factory.mktemp("fuzz-data")
    env = server_env(data, secret_key, sandbox_server) | {"MAILROOM_API_DELIVER_WEBHOOKS": "false"}
    control = ControlStore(data / "control.sqlite3", secret_key=secret_key)
    _, key = control.create_api_key("fuzz")
    fill(data, CUSTOMER, [with_attachment(n) if n % 3 == 0 else email(n) for n in range(1, 13)])
    (connected,) = control.update_customers([CONNECTED])
    control.save_connection(connected.id, "alex@contoso.test", auth_kind="app")
    with ApiProcess(env, log_path=Path(data) / "api.log") as api:
        yield {"url": api.url, "key": key, "api": api}


def operations(url: str) -> list[schemathesis.APIOperation]:
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


def fuzz_each(
    found: list[schemathesis.APIOperation],
    call: Callable[[schemathesis.Case], Response],
    max_examples: int = 40,
) -> None:
    """Run `call` on up to `max_examples` generated cases of each operation."""
    for operation in found:

        @given(case=operation.as_strategy())
        @settings(max_examples=max_examples, deadline=None, suppress_health_check=list(HealthCheck),
                  derandomize=True, database=None)  # fmt: skip
        def fuzz(case: schemathesis.Case) -> None:
            call(case)

        fuzz()


def no_server_error(server: dict, case: schemathesis.Case, response: Response) -> None:
    assert response.status_code < 500, (
        f"{case.method} {case.path} answered {response.status_code}: {response.text[:500]}\n"
        f"{server['api'].log_tail(3000)}"
    )


@pytest.mark.slow
def test_no_input_makes_a_server_error(fuzz_server: dict) -> None:
    found = operations(fuzz_server["url"])
    assert len(found) >= 20
    calls = 0

    def call(case: schemathesis.Case) -> Response:
        nonlocal calls
        # Valid credentials, so that the fuzz reaches the routes' own code rather than stopping at a 401.
        case.headers = {
            **(case.headers or {}),
            "authorization": f"Bearer {fuzz_server['key']}",
            "customer-id": CUSTOMER,
        }
        response = case.call(base_url=fuzz_server["url"], timeout=30)
        calls += 1
        no_server_error(fuzz_server, case, response)
        (content_type,) = response.headers.get("content-type") or [""]  # schemathesis lists each header
        assert content_type.startswith(("application/json", "text/html", "message/", "text/plain"))
        return response

    fuzz_each(found, call)
    assert calls > 10 * len(found)


@pytest.mark.slow
def test_without_credentials_every_closed_route_is_401(fuzz_server: dict) -> None:
    found = operations(fuzz_server["url"])
    statuses: dict[str, set[int]] = {}

    def call(case: schemathesis.Case) -> Response:
        # Whatever headers were generated stay, the credentials' among them: none is a live key or token.
        response = case.call(base_url=fuzz_server["url"], timeout=30)
        no_server_error(fuzz_server, case, response)
        statuses.setdefault(operation_path(case), set()).add(response.status_code)
        if case.operation.path not in OPEN:
            assert response.status_code == 401, f"{case.method} {case.path}: {response.text[:300]}"
        return response

    fuzz_each(found, call, max_examples=15)
    closed = {path for path in statuses if path.split(" ", 1)[1] not in OPEN}
    assert len(closed) >= 20
    assert all(statuses[path] == {401} for path in closed)


@pytest.mark.slow
def test_a_connected_customer_fuzzes_the_routes_that_call_graph(fuzz_server: dict) -> None:
    # The connection is revoked last, if a fuzzed data_source_id ever hits it.
    found = sorted(
        (op for op in operations(fuzz_server["url"]) if op.path.startswith("/integrations/")),
        key=lambda op: "revoke" in op.path,
    )
    answered: dict[str, list[int]] = {}

    def call(case: schemathesis.Case) -> Response:
        case.headers = {
            **(case.headers or {}),
            "authorization": f"Bearer {fuzz_server['key']}",
            "customer-id": CONNECTED,
        }
        response = case.call(base_url=fuzz_server["url"], timeout=60)
        no_server_error(fuzz_server, case, response)
        answered.setdefault(operation_path(case), []).append(response.status_code)
        return response

    fuzz_each(found, call, max_examples=25)
    # Graph was reached: the listings answered from alex's mailbox, not 404 for want of a connection.
    for path in ("GET /integrations/outlook/user_folders", "GET /integrations/outlook/user_categories"):
        assert 200 in answered[path], answered[path]


def operation_path(case: schemathesis.Case) -> str:
    return f"{case.method.upper()} {case.operation.path}"
