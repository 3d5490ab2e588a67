"""Faults over HTTPS: throttling (concurrency, budget, early retries), rules, profiles, drops, 504s."""

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from sandbox import AdminClient, SandboxInfo, ssl_context
from tests.sandbox.conftest import ADELE, graph_client

INBOX = f"/users/{ADELE}/mailFolders/inbox"


def test_more_than_four_in_flight_is_throttled(
    fresh_sandbox: SandboxInfo, sandbox_admin: AdminClient
) -> None:
    # The first four requests are held at the server (a barrier, not a race against the clock) while two more
    # arrive, so exactly those two find four in flight, however slowly this machine starts threads.
    sandbox_admin.add_rule(path=r"/mailFolders/inbox$", action="hold", times=4)
    token = sandbox_admin.mint_token()

    def one(i: int) -> httpx.Response:
        with graph_client(fresh_sandbox, token) as graph:
            return graph.get(INBOX, params={"n": i})

    with ThreadPoolExecutor(4) as pool:
        held = [pool.submit(one, i) for i in range(4)]
        sandbox_admin.wait_held(4, mailbox=ADELE)
        assert sandbox_admin.counters(ADELE)["in_flight"] == 4
        over = [one(i) for i in (4, 5)]
        assert sandbox_admin.release() == 4
        statuses = [future.result().status_code for future in held]
    assert statuses == [200, 200, 200, 200]
    assert [r.status_code for r in over] == [429, 429]
    assert all(r.headers["Retry-After"] == "1" for r in over)
    assert {r.json()["error"]["code"] for r in over} == {"ApplicationThrottled"}
    assert all("MailboxConcurrency" in r.json()["error"]["message"] for r in over)
    counters = sandbox_admin.counters(ADELE)
    assert (counters["max_in_flight"], counters["in_flight"], counters["held"]) == (5, 0, 0)
    assert counters["throttled"] == 2
    assert counters["violations"] == 0
    concurrency = [e for e in sandbox_admin.log(mailbox=ADELE) if e["fault"] == "concurrency"]
    assert [(e["status"], e["in_flight"]) for e in concurrency] == [(429, 5), (429, 5)]


def test_held_requests_go_on_when_their_time_is_up_or_the_sandbox_resets(
    fresh_sandbox: SandboxInfo, sandbox_admin: AdminClient
) -> None:
    token = sandbox_admin.mint_token()
    sandbox_admin.add_rule(path=r"/mailFolders/inbox$", action="hold", delay_ms=1)
    with graph_client(fresh_sandbox, token) as graph:
        assert graph.get(INBOX).status_code == 200  # nobody released it: its own limit did
    assert sandbox_admin.release() == 0
    sandbox_admin.add_rule(path=r"/mailFolders/inbox$", action="hold")  # 60 s unless released
    with ThreadPoolExecutor(1) as pool, graph_client(fresh_sandbox, token) as graph:
        waiting = pool.submit(graph.get, INBOX)
        sandbox_admin.wait_held(1)
        sandbox_admin.reset()
        assert sandbox_admin.held() == 0  # let go by the reset, not by the 60 s limit
        assert waiting.result().status_code == 200


def test_retrying_before_retry_after_is_a_violation(graph: httpx.Client, sandbox_admin: AdminClient) -> None:
    sandbox_admin.add_rule(path=r"/mailFolders/inbox$", status=429, retry_after=1)
    first = graph.get(INBOX)
    assert first.status_code == 429
    assert first.headers["Retry-After"] == "1"
    too_soon = graph.get(INBOX)
    assert too_soon.status_code == 429
    assert "Retry-After" in too_soon.headers
    time.sleep(1.2)
    assert graph.get(INBOX).status_code == 200
    counters = sandbox_admin.counters(ADELE)
    assert counters["violations"] == 1
    log = sandbox_admin.log(mailbox=ADELE)
    assert [(e["status"], e["violation"]) for e in log] == [(429, False), (429, True), (200, False)]


def test_request_budget_per_window(graph: httpx.Client, sandbox_admin: AdminClient) -> None:
    sandbox_admin.set_faults(window_requests=3, window_seconds=600)
    assert [graph.get(INBOX, params={"i": i}).status_code for i in range(3)] == [200, 200, 200]
    over = graph.get(INBOX, params={"i": 3})
    assert over.status_code == 429
    assert int(over.headers["Retry-After"]) > 500
    assert "MailboxRequests" in over.json()["error"]["message"]
    assert graph.get("/users/alex@contoso.test/mailFolders/inbox").status_code == 200


def test_rule_fails_the_nth_request_and_is_logged(graph: httpx.Client, sandbox_admin: AdminClient) -> None:
    sandbox_admin.add_rule(path=r"/messages$", nth=2, times=2, status=503, retry_after=3)
    url = f"{INBOX}/messages"
    statuses = [graph.get(url, params={"$top": 1, "i": i}).status_code for i in range(5)]
    assert statuses == [200, 503, 503, 200, 200]
    failed = [e for e in sandbox_admin.log(mailbox=ADELE) if e["status"] == 503]
    assert [(e["fault"], e["retry_after"], e["code"]) for e in failed] == [
        ("rule", 3, "serviceNotAvailable")
    ] * 2
    assert graph.get(f"{INBOX}").status_code == 200


def test_a_dropped_connection_breaks_the_response(graph: httpx.Client, sandbox_admin: AdminClient) -> None:
    sandbox_admin.add_rule(path=r"/mailFolders/inbox$", action="drop")
    with pytest.raises(httpx.TransportError):
        graph.get(INBOX)
    assert graph.get(INBOX).status_code == 200


def test_big_pages_time_out(graph: httpx.Client, sandbox_admin: AdminClient) -> None:
    sandbox_admin.set_faults(max_page_bytes=60_000)
    url = f"{INBOX}/messages"
    assert graph.get(url, params={"$top": 100}).status_code == 504
    assert graph.get(url, params={"$top": 100, "$select": "subject"}).status_code == 200


def test_profiles_are_reproducible(fresh_sandbox: SandboxInfo, sandbox_admin: AdminClient) -> None:
    def statuses() -> list[int]:
        sandbox_admin.reset(profile="hostile")
        sandbox_admin.set_faults(latency_ms=(0, 0), drop_rate=0.0, error_rate=0.25, retry_after=0)
        with graph_client(fresh_sandbox, sandbox_admin.mint_token()) as graph:
            return [graph.get(INBOX, params={"i": i}).status_code for i in range(80)]

    first, second = statuses(), statuses()
    assert sandbox_admin.set_profile("flaky").error_rate == 0.03
    assert first == second
    failures = [s for s in first if s != 200]
    assert 5 <= len(failures) <= 40
    assert set(failures) <= {429, 500, 502, 503, 504}


def test_sign_in_paths_obey_rules(fresh_sandbox: SandboxInfo, sandbox_admin: AdminClient) -> None:
    sandbox_admin.add_rule(path=r"/oauth2/v2.0/token$", status=503, retry_after=1)
    with httpx.Client(verify=ssl_context(fresh_sandbox.ca_cert), trust_env=False) as http:
        refused = http.post(fresh_sandbox.token_url, data={"grant_type": "client_credentials"})
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "1"
        second = http.post(fresh_sandbox.token_url, data={"grant_type": "client_credentials"})
        assert second.status_code == 400
        assert second.json()["error"] == "invalid_request"
    log = sandbox_admin.log()
    assert [e["status"] for e in log if e["path"].endswith("/token")] == [503, 400]


def test_sign_in_requests_can_be_held_too(fresh_sandbox: SandboxInfo, sandbox_admin: AdminClient) -> None:
    sandbox_admin.add_rule(path=r"/oauth2/v2.0/token$", action="hold")
    with (
        ThreadPoolExecutor(1) as pool,
        httpx.Client(verify=ssl_context(fresh_sandbox.ca_cert), trust_env=False) as http,
    ):
        waiting = pool.submit(http.post, fresh_sandbox.token_url, data={"grant_type": "client_credentials"})
        sandbox_admin.wait_held(1)  # no mailbox: counted for the whole sandbox
        assert sandbox_admin.held(ADELE) == 0
        assert sandbox_admin.release() == 1
        assert sandbox_admin.held() == 0
        assert waiting.result().json()["error"] == "invalid_request"
    assert [e["fault"] for e in sandbox_admin.log() if e["path"].endswith("/token")] == ["rule"]
