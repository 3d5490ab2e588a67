"""End to end: a client connects a sandbox mailbox through the API's OAuth routes, turns auto-sync on, and a
real `dagster-daemon` syncs it: the sensor runs the connect's first sync and adds the partition, and once the
customer's auto-sync interval has passed the schedule (ticking each minute here) syncs it again. The client
lists the files, resyncs one, deletes one that stays deleted after the next sync, and receives signed
webhooks."""

from __future__ import annotations

import json
import os
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest
from cryptography.fernet import Fernet

from pipelines.api import ApiProcess, verify_signature
from pipelines.defs.local import daemon, daemon_ready, open_instance, prepare_home
from pipelines.store import ControlStore, Request
from tests.api.receiver import Receiver
from tests.defs.harness import sandbox_env

CUSTOMER = "e2e@example.com"


def until(check: Callable[[], Any], what: str, timeout: float = 240.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def finished(control: ControlStore, kind: str, after: int = 0) -> Callable[[], Request | None]:
    def check() -> Request | None:
        for request in control.requests(customer_id=CUSTOMER, limit=200):
            if request.kind == kind and request.id > after and request.status in ("succeeded", "failed"):
                return request
        return None

    return check


@pytest.mark.slow
def test_connect_auto_sync_list_resync_delete_and_webhooks(
    tmp_path: Path, fresh_sandbox, sandbox_admin
) -> None:
    home = prepare_home(tmp_path / "dagster_home", "queued")
    data = tmp_path / "data"
    key = Fernet.generate_key().decode()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILROOM_", "DAGSTER_"))}
    env |= {
        "DAGSTER_HOME": str(home),
        "MAILROOM_DATA_DIR": str(data),
        "MAILROOM_SECRET_KEY": key,
        **sandbox_env(fresh_sandbox),
        "MAILROOM_API_WEBHOOK_POLL_S": "0.1",
        "MAILROOM_API_ALLOW_PRIVATE_WEBHOOKS": "1",  # the receiver listens on 127.0.0.1
        "MAILROOM_AUTO_SYNC_CRON": "* * * * *",  # the schedule ticks each minute rather than each hour
    }
    control = ControlStore(data / "control.sqlite3", secret_key=key)
    _, api_key = control.create_api_key("e2e")
    me = {"authorization": f"Bearer {api_key}", "customer-id": CUSTOMER}
    (tmp_path / "logs").mkdir()

    with (
        Receiver() as receiver,
        ApiProcess(env, log_path=tmp_path / "logs" / "api.log") as api,
        httpx.Client(base_url=api.url, headers=me, trust_env=False, timeout=60) as client,
    ):
        hook = client.post("/add_webhook", json={"url": receiver.url}).json()

        # Connect alex's mailbox the way a browser would, through Microsoft's (the sandbox's) sign-in.
        url = client.post("/integrations/oauth_url", json={"service": "OUTLOOK"}).json()["oauth_url"]
        sandbox_admin.set_signin(user="alex@contoso.test")
        try:
            browser = ssl.create_default_context(cafile=str(fresh_sandbox.ca_cert))
            with httpx.Client(verify=browser, trust_env=False, timeout=60) as visit:
                landed = visit.get(url, follow_redirects=True)
        finally:
            sandbox_admin.set_signin(user=None)
        assert landed.status_code == 200, landed.text
        answer = client.post(
            "/update_users",
            json={
                "customer_ids": [CUSTOMER],
                "auto_sync_enabled_sources": ["OUTLOOK"],
                "auto_sync_interval": 3,
            },
        )
        assert answer.json() == {"success": True}

        with daemon(env, log_path=tmp_path / "logs" / "daemon.log") as service:
            service.wait_until(daemon_ready(open_instance(home)), timeout=120, what="healthy daemons")
            first = until(finished(control, "sync"), "the first sync")
            assert first.status == "succeeded", f"{first.reason}\n{service.log_tail()}"
            listed = client.post(
                "/user_files_v2", json={"pagination": {"limit": 1000}, "order_by": "id"}
            ).json()
            truth = sandbox_admin.ground_truth("alex@contoso.test")
            assert listed["count"] >= 10
            emails = [f for f in listed["results"] if f["parent_id"] is None]
            assert {f["external_file_id"] for f in emails} <= {m["id"] for m in truth["messages"]}
            (source,) = client.post("/user_data_sources", json={}).json()["results"]
            assert source["sync_status"] == "READY"

            # Four hours on, as far as the schedule can tell: the last sync finished before the 3-hour
            # interval /update_users set, so the next tick syncs the customer.
            earlier = ControlStore(
                data / "control.sqlite3", secret_key=key, clock=lambda: datetime.now(UTC) - timedelta(hours=4)
            )
            earlier.record_connection_sync(source["id"], status="READY", synced=True)
            scheduled = until(
                scheduled_run(open_instance(home)), "a run of the auto-sync schedule", timeout=180
            )
            assert scheduled.status == dg.DagsterRunStatus.SUCCESS, service.log_tail()
            assert scheduled.tags["dagster/partition"] == CUSTOMER

            target, doomed = emails[0], emails[1]
            assert client.post("/resync_file", json={"file_id": target["id"]}).status_code == 200
            resync = until(finished(control, "resync"), "the resync")
            assert resync.status == "succeeded", resync.reason

            deleting = client.post(
                "/delete_files_v2", json={"filters": {"ids": [doomed["id"]]}, "send_webhook": True}
            )
            assert deleting.json() == {"success": True}
            delete = until(finished(control, "delete_files"), "the delete")
            assert delete.status == "succeeded", delete.reason
            assert client.post("/integrations/outlook/sync", json={"filters": {}}).json() == {"success": True}
            second = until(finished(control, "sync", after=delete.id), "the second sync")
            assert second.status == "succeeded", second.reason

        after = client.post("/user_files_v2", json={"pagination": {"limit": 1000}}).json()
        ids = {f["external_file_id"] for f in after["results"]}
        assert doomed["external_file_id"] not in ids  # deleted stays deleted
        assert target["external_file_id"] in ids

        events = receiver.wait_for(lambda got: {"ADD", "FILE_DELETED"} <= _types(got), timeout=30)
    for event in events:
        assert verify_signature(event.body, event.headers["carbon-signature"], hook["signing_key"])
    deleted = [_payload(e) for e in events if _payload(e)["webhook_type"] == "FILE_DELETED"]
    assert [d["obj"]["object_id"] for d in deleted] == [str(doomed["id"])]


def scheduled_run(instance: dg.DagsterInstance) -> Callable[[], dg.DagsterRun | None]:
    """The schedule's finished run for the customer, if any (its tags say who started it)."""

    def check() -> dg.DagsterRun | None:
        runs = instance.get_runs(
            filters=dg.RunsFilter(
                tags={"trigger": "schedule", "dagster/partition": CUSTOMER},
                statuses=[
                    dg.DagsterRunStatus.SUCCESS,
                    dg.DagsterRunStatus.FAILURE,
                    dg.DagsterRunStatus.CANCELED,
                ],
            )
        )
        return runs[0] if runs else None

    return check


def _payload(event) -> dict[str, Any]:
    return json.loads(json.loads(event.body)["payload"])


def _types(events) -> set[str]:
    return {_payload(e)["webhook_type"] for e in events}
