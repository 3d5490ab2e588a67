"""Webhook deliveries from the outbox to a receiver on 127.0.0.1: Carbon's body and both signatures, the
retries and the delivery log. Each test's webhooks are the only ones, so its events go to its receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from pipelines.api import ApiProcess, InvalidInput, WebhookDeliverer, signed_body, verify_signature
from pipelines.api._webhooks import check_webhook_url
from pipelines.store import ControlStore
from tests.api.mail import email, fill
from tests.api.receiver import Receiver


def fields(header: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in header.split(","))


def check_signatures(received, signing_key: str) -> dict:
    """Both of Carbon's signatures, recomputed here from the raw body; returns the decoded payload."""
    key = bytes.fromhex(signing_key)
    v1 = fields(received.headers["carbon-signature"])
    v2 = fields(received.headers["carbon-signature-compact"])
    assert v1["t"] == v2["t"]
    expected = hmac.new(key, f"{v1['t']}.".encode() + received.body, hashlib.sha256).hexdigest()
    assert v1["v1"] == expected
    compact = json.dumps(json.loads(received.body), separators=(",", ":"))
    assert v2["v2"] == hmac.new(key, f"{v2['t']}.{compact}".encode(), hashlib.sha256).hexdigest()
    assert verify_signature(received.body, received.headers["carbon-signature"], signing_key)
    assert not verify_signature(received.body + b" ", received.headers["carbon-signature"], signing_key)
    body = json.loads(received.body)
    assert list(body) == ["payload"]
    assert isinstance(body["payload"], str)
    payload = json.loads(body["payload"])
    assert payload["timestamp"] == v1["t"]
    return payload


def test_a_revoke_is_delivered_signed_in_carbons_shape(
    webhook_client: httpx.Client, control: ControlStore
) -> None:
    with Receiver() as receiver:
        hook = webhook_client.post("/add_webhook", json={"url": receiver.url}).json()
        customer = "webhook-revoker"
        webhook_client.get("/whoami", headers={"customer-id": customer})
        owner = control.customer(customer)
        assert owner is not None
        connection = control.save_connection(owner.id, "alex@contoso.test", auth_kind="app")
        revoked = webhook_client.post(
            "/revoke_access_token", json={"data_source_id": connection.id}, headers={"customer-id": customer}
        )
        assert revoked.json() == {"success": True}
        (got,) = receiver.wait_for(lambda r: len(r) >= 1)
    assert got.headers["content-type"] == "application/json"
    payload = check_signatures(got, hook["signing_key"])
    assert payload == {
        "webhook_type": "REVOKE",
        "obj": {
            "object_type": "DATA_SOURCE",
            "object_id": str(connection.id),
            "additional_information": "null",
        },
        "customer_id": customer,
        "timestamp": payload["timestamp"],
    }
    (log,) = control.deliveries(webhook_id=hook["id"])
    assert (log.status, log.attempts, log.last_status_code) == ("delivered", 1, 200)


def test_failures_are_retried_with_backoff_then_delivered(
    webhook_client: httpx.Client, control: ControlStore, api_data_dir: Path
) -> None:
    customer = "webhook-retried"
    webhook_client.get("/whoami", headers={"customer-id": customer})
    owner = control.customer(customer)
    assert owner is not None
    connection = control.save_connection(owner.id, "adele@contoso.test", auth_kind="app")
    with Receiver(statuses=[500, 503]) as receiver:
        hook = webhook_client.post("/add_webhook", json={"url": receiver.url}).json()
        answer = webhook_client.post(
            "/revoke_access_token", json={"data_source_id": connection.id}, headers={"customer-id": customer}
        )
        assert answer.json() == {"success": True}
        received = receiver.wait_for(lambda r: len(r) >= 3)
    payloads = [check_signatures(r, hook["signing_key"]) for r in received]
    assert [(p["webhook_type"], p["obj"]["object_id"]) for p in payloads] == [
        ("REVOKE", str(connection.id))
    ] * 3
    (log,) = control.deliveries(webhook_id=hook["id"])
    assert (log.status, log.attempts, log.last_status_code) == ("delivered", 3, 200)
    # Retries wait 0.2 s, then 0.4 s (the test server's delays), never at once; each is signed afresh.
    assert received[1].at - received[0].at >= 0.15
    assert received[2].at - received[1].at >= 0.35


def test_a_delete_request_announces_nothing_before_a_run_deletes(
    webhook_client: httpx.Client, control: ControlStore, api_data_dir: Path
) -> None:
    customer = "webhook-deleter"
    store = fill(api_data_dir, customer, [email(n) for n in range(1, 4)])
    ids = sorted(k.file_id for k in store.known([f"AAMk-{n:06d}" for n in range(1, 4)]).values())
    with Receiver() as receiver:
        hook = webhook_client.post("/add_webhook", json={"url": receiver.url}).json()
        answer = webhook_client.post(
            "/delete_files_v2",
            json={"filters": {"ids": ids[1:2]}, "send_webhook": True},
            headers={"customer-id": customer},
        )
        assert answer.json() == {"success": True}
        (recorded,) = [r for r in control.requests(customer_id=customer) if r.kind == "delete_files"]
        # The run carries send_webhook and sends FILE_DELETED for what it deleted; the request sends nothing.
        assert recorded.payload == {"file_ids": ids[1:2], "preserve_file_record": False, "send_webhook": True}
        assert control.deliveries(webhook_id=hook["id"]) == []
    assert receiver.received == []


def retried_object(delivery) -> str:
    return json.loads(delivery.payload)["obj"]["object_id"]


def test_a_receiver_that_keeps_failing_gets_three_retries_then_the_delivery_fails(
    webhook_client: httpx.Client, control: ControlStore
) -> None:
    customer = "webhook-unlucky"
    webhook_client.get("/whoami", headers={"customer-id": customer})
    with Receiver(statuses=[500] * 10) as receiver:
        hook = webhook_client.post("/add_webhook", json={"url": receiver.url}).json()
        owner = control.customer(customer)
        assert owner is not None
        connection = control.save_connection(owner.id, "megan@contoso.test", auth_kind="app")
        webhook_client.post(
            "/revoke_access_token", json={"data_source_id": connection.id}, headers={"customer-id": customer}
        )
        receiver.wait_for(lambda r: len(r) >= 4)
        deadline = time.monotonic() + 10
        while (
            control.deliveries(webhook_id=hook["id"])[0].status == "pending" and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        time.sleep(1.0)  # a fifth attempt would come 0.6 s after the fourth at the latest
        assert len(receiver.received) == 4
    (log,) = control.deliveries(webhook_id=hook["id"])
    assert (log.status, log.attempts, log.last_status_code) == ("failed", 4, 500)
    assert log.last_error == "the receiver answered 500"


def test_signed_body_matches_an_independent_computation() -> None:
    obj = {"object_type": "FILE", "object_id": "7", "additional_information": "null"}
    payload = json.dumps({"webhook_type": "FILE_READY", "obj": obj, "customer_id": "c", "timestamp": "1"})
    key = "00112233445566778899aabbccddeeff"
    body, headers = signed_body(payload, key, 1_700_000_000)
    assert json.loads(json.loads(body)["payload"])["timestamp"] == "1700000000"
    assert body.startswith(b'{"payload": "{\\"webhook_type\\": ')  # Python's default separators, as Carbon
    expected = hmac.new(bytes.fromhex(key), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert headers["Carbon-Signature"] == f"t=1700000000,v1={expected}"
    assert verify_signature(body, headers["Carbon-Signature"], key, tolerance_s=None)
    assert not verify_signature(body, headers["Carbon-Signature"], key)  # too old for the default tolerance
    assert not verify_signature(body, headers["Carbon-Signature"], "ff" * 16, tolerance_s=None)


# -- the deliverer in this process, on a control store of its own ----------------------------------------


@pytest.fixture
def own_control(tmp_path: Path) -> ControlStore:
    return ControlStore(tmp_path / "control.sqlite3", secret_key=Fernet.generate_key().decode())


def revoke_event(control: ControlStore, n: int) -> None:
    obj = {"object_type": "DATA_SOURCE", "object_id": str(n), "additional_information": "null"}
    payload = json.dumps({"webhook_type": "REVOKE", "obj": obj, "customer_id": "c", "timestamp": "0"})
    control.enqueue_deliveries("REVOKE", payload, customer_id="c")


def test_webhook_urls_on_private_addresses_are_refused_unless_allowed() -> None:
    for url in ("http://127.0.0.1:9000/hook", "http://169.254.169.254/latest/meta-data", "https://10.0.0.7/",
                "http://[::1]:8080/", "http://[fe80::1]/", "http://[::ffff:192.168.1.1]/",
                "http://localhost:3000/hook", "https://100.64.0.9/x"):  # fmt: skip
        with pytest.raises(InvalidInput, match="public addresses only") as refused:
            check_webhook_url(url)
        assert refused.value.loc == ("body", "url")
        assert "MAILROOM_API_ALLOW_PRIVATE_WEBHOOKS=1" in refused.value.message
        assert check_webhook_url(url, allow_private=True) == url
    for url in (
        "https://hooks.example.com/in?token=x",
        "http://93.184.215.14/hook",
        "https://[2606:4700::1]/",
    ):
        assert check_webhook_url(url) == url


def test_private_addresses_in_the_c_librarys_older_spellings_are_refused_at_registration() -> None:
    # Each of these connects to the address in its comment (the resolver reads them without DNS); they were
    # registered and only refused at delivery.
    for url in ("http://0x7f000001/hook",  # 127.0.0.1
                "http://2130706433/hook",  # 127.0.0.1
                "http://127.1:8080/hook",  # 127.0.0.1
                "http://0177.0.0.1/hook",  # 127.0.0.1
                "http://0xa9.254.169.254/latest/meta-data",  # 169.254.169.254
                "http://10.1/x"):  # 10.0.0.1  # fmt: skip
        with pytest.raises(
            InvalidInput, match="is not a public address; webhooks go to public addresses only"
        ):
            check_webhook_url(url)
    for url in ("https://0x5db8d70e.example.com/hook", "https://1e100.net/", "http://0x5db8d70e/hook"):
        assert check_webhook_url(url) == url  # names, and a public address (93.184.215.14) spelled in hex


def test_the_add_webhook_route_refuses_the_metadata_address_by_default(
    tmp_path: Path, api_env: dict[str, str]
) -> None:
    env = {k: v for k, v in api_env.items() if k != "MAILROOM_API_ALLOW_PRIVATE_WEBHOOKS"}
    env["MAILROOM_DATA_DIR"] = str(tmp_path)
    key = ControlStore(tmp_path / "control.sqlite3", secret_key=env["MAILROOM_SECRET_KEY"]).create_api_key(
        "t"
    )[1]
    with ApiProcess(env, log_path=tmp_path / "api.log") as api:
        auth = {"authorization": f"Bearer {key}"}
        refused = httpx.post(
            f"{api.url}/add_webhook", json={"url": "http://169.254.169.254/"}, headers=auth, trust_env=False
        )
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"] == ["body", "url"]
        assert "not a public address" in refused.json()["detail"][0]["msg"]
        added = httpx.post(
            f"{api.url}/add_webhook",
            json={"url": "https://hooks.example.com/"},
            headers=auth,
            trust_env=False,
        )
        assert added.status_code == 200


def test_the_deliverer_resolves_names_and_refuses_private_answers(own_control: ControlStore) -> None:
    with Receiver() as receiver:
        # Registered behind the route's back, by name: only resolving at delivery can catch it.
        hook, _ = own_control.add_webhook(receiver.url.replace("127.0.0.1", "localhost"))
        revoke_event(own_control, 1)
        deliverer = WebhookDeliverer(own_control, retry_delays_s=())
        try:
            assert deliverer.run_once() == 1
        finally:
            deliverer.stop()
        assert receiver.received == []
    (log,) = own_control.deliveries(webhook_id=hook.id)
    assert log.status == "failed"
    assert log.last_error is not None
    assert "the webhook host localhost resolves to" in log.last_error
    assert "not a public address" in log.last_error


def test_a_hanging_receiver_does_not_hold_up_other_webhooks(own_control: ControlStore) -> None:
    release = threading.Event()
    with Receiver(hold=release) as hanging, Receiver() as healthy:
        stuck, _ = own_control.add_webhook(hanging.url)
        own_control.add_webhook(healthy.url)
        for n in range(5):
            revoke_event(own_control, n)
        deliverer = WebhookDeliverer(own_control, timeout_s=60, poll_s=0.05, allow_private=True)
        deliverer.start()
        try:
            got = healthy.wait_for(lambda r: len(r) >= 5)
            # All five reached the healthy receiver while the first is still held at the hanging one.
            assert len(hanging.received) == 1
            assert not release.is_set()
            assert [json.loads(json.loads(r.body)["payload"])["obj"]["object_id"] for r in got] == [
                str(n) for n in range(5)
            ]
        finally:
            release.set()
        hanging.wait_for(lambda r: len(r) >= 5)
        deliverer.stop()
    assert {d.status for d in own_control.deliveries(webhook_id=stuck.id)} == {"delivered"}


def test_the_deliverer_prunes_the_control_store_periodically(tmp_path: Path) -> None:
    moment = [datetime(2025, 1, 1, tzinfo=UTC)]
    control = ControlStore(
        tmp_path / "control.sqlite3", secret_key=Fernet.generate_key().decode(), clock=lambda: moment[0]
    )
    (acme,) = control.update_customers(["acme"])
    token = control.issue_access_token(acme.id, ttl=timedelta(hours=1))
    control.save_oauth_state("s", acme.id, {"state": "s"}, ttl=timedelta(minutes=15))
    control.add_webhook("https://hooks.example.com/")
    (old,) = control.enqueue_deliveries("FILE_READY", "{}")
    control.record_delivery_attempt(old, delivered=True, status_code=200)
    moment[0] += timedelta(days=8)

    def rows() -> tuple[int, int, int]:
        with sqlite3.connect(control.path) as con:
            return tuple(  # type: ignore[return-value]
                con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 (fixed names)
                for table in ("access_tokens", "oauth_states", "webhook_deliveries")
            )

    assert rows() == (1, 1, 1)
    deliverer = WebhookDeliverer(control, poll_s=0.05, prune_every_s=3600, retention=timedelta(days=7))
    deliverer.start()
    try:
        deadline = time.monotonic() + 20
        while rows() != (0, 0, 0) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        deliverer.stop()
    assert rows() == (0, 0, 0)
    assert control.authenticate_access_token(token.access_token) is None
    # The next prune waits for its hour; until then a new expired row stays.
    again = WebhookDeliverer(control, prune_every_s=3600)
    try:
        assert again.prune_if_due() == 0
        control.issue_access_token(acme.id, ttl=timedelta(hours=-1))
        assert again.prune_if_due() is None
        assert rows() == (1, 0, 0)
    finally:
        again.stop()
