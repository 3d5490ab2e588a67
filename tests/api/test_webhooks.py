"""Webhook deliveries from the outbox to a receiver on 127.0.0.1: Carbon's body and both signatures, the
retries and the delivery log. Each test has an organization of its own, so its events go to its receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pipelines.api import ApiProcess, signed_body, verify_signature
from pipelines.store import ControlStore
from tests.api.mail import email, fill
from tests.api.receiver import Receiver


@pytest.fixture
def org_client(api: ApiProcess, control: ControlStore) -> Iterator[httpx.Client]:
    org = control.create_organization(f"webhooks-{time.monotonic_ns()}")
    _, key = control.create_api_key("webhook tests", organization_id=org.id)
    with httpx.Client(base_url=api.url, headers={"authorization": f"Bearer {key}"}, trust_env=False) as http:
        yield http


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
    org_client: httpx.Client, control: ControlStore
) -> None:
    with Receiver() as receiver:
        hook = org_client.post("/add_webhook", json={"url": receiver.url}).json()
        customer = "webhook-revoker"
        org_client.get("/whoami", headers={"customer-id": customer})
        owner = next(c for c in control.list_customers(organization_id=hook["organization_id"])[0])
        connection = control.save_connection(owner.id, "alex@contoso.test", auth_kind="app")
        revoked = org_client.post(
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
    org_client: httpx.Client, control: ControlStore, api_data_dir: Path
) -> None:
    customer = "webhook-deleter"
    store = fill(api_data_dir, customer, [email(n) for n in range(1, 4)])
    ids = sorted(k.file_id for k in store.known([f"AAMk-{n:06d}" for n in range(1, 4)]).values())
    with Receiver(statuses=[500, 503]) as receiver:
        hook = org_client.post("/add_webhook", json={"url": receiver.url}).json()
        answer = org_client.post(
            "/delete_files_v2",
            json={"filters": {"ids": ids[1:2]}, "send_webhook": True},
            headers={"customer-id": customer},
        )
        assert answer.json() == {"success": True}
        received = receiver.wait_for(lambda r: len(r) >= 3)
    payloads = [check_signatures(r, hook["signing_key"]) for r in received]
    assert [(p["webhook_type"], p["obj"]["object_id"]) for p in payloads] == [
        ("FILE_DELETED", str(ids[1]))
    ] * 3
    assert payloads[0]["obj"]["object_type"] == "FILE"
    (log,) = control.deliveries(webhook_id=hook["id"])
    assert (log.status, log.attempts, log.last_status_code) == ("delivered", 3, 200)
    # Retries wait 0.2 s, then 0.4 s (the test server's delays), never at once; each is signed afresh.
    assert received[1].at - received[0].at >= 0.15
    assert received[2].at - received[1].at >= 0.35


def retried_object(delivery) -> str:
    return json.loads(delivery.payload)["obj"]["object_id"]


def test_a_receiver_that_keeps_failing_gets_three_retries_then_the_delivery_fails(
    org_client: httpx.Client, control: ControlStore
) -> None:
    customer = "webhook-unlucky"
    org_client.get("/whoami", headers={"customer-id": customer})
    with Receiver(statuses=[500] * 10) as receiver:
        hook = org_client.post("/add_webhook", json={"url": receiver.url}).json()
        owner = control.list_customers(organization_id=hook["organization_id"])[0][0]
        connection = control.save_connection(owner.id, "megan@contoso.test", auth_kind="app")
        org_client.post(
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
