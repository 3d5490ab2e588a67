"""The routes over real HTTP against a `mailroom api` process: shapes, defaults, filters, paging, the
requests recorded for Dagster, links that expire, and what a second customer can never see."""

from __future__ import annotations

import email
from pathlib import Path

import httpx
import pytest

from pipelines.api._links import LinkSigner
from pipelines.store import ControlStore
from tests.api.conftest import as_customer
from tests.api.mail import email as make_email
from tests.api.mail import fill, with_attachment


@pytest.fixture
def mailbox(api_data_dir: Path, customer: str) -> list[int]:
    """20 emails for the customer (5 with a stored text attachment); returns the email file ids."""
    rows = [with_attachment(n) if n % 4 == 0 else make_email(n) for n in range(1, 21)]
    rows[2] = make_email(3, sync_status="SYNC_ERROR", sync_error="body too large")
    store = fill(api_data_dir, customer, rows, request_id="carbon-req-1")
    known = store.known([row.message_id for row in rows])
    return sorted(k.file_id for k in known.values())


def files(client: httpx.Client, customer: str, **body: object) -> dict:
    response = client.post("/user_files_v2", json=body, headers=as_customer(customer))
    assert response.status_code == 200, response.text
    return response.json()


def test_health_and_openapi_docs(client: httpx.Client) -> None:
    assert client.get("/health").json()["status"] == "ok"
    schema = client.get("/openapi.json").json()
    for path in ("/user_files_v2", "/update_users", "/integrations/outlook/sync", "/add_webhook"):
        assert path in schema["paths"]
    assert client.get("/docs").status_code == 200


def test_user_files_defaults_every_required_field_and_count(
    client: httpx.Client, customer: str, mailbox: list[int]
) -> None:
    body = files(client, customer)
    assert body["count"] == 25  # 20 emails and 5 attachments
    assert len(body["results"]) == 10  # Carbon's default page
    first = body["results"][0]
    for field in ("id", "source", "organization_id", "organization_user_id", "organization_supplied_user_id",
                  "external_file_id", "sync_status", "skip_embedding_generation", "supports_cold_storage",
                  "embedding_storage_status", "created_at", "updated_at"):  # fmt: skip
        assert field in first
    assert first["source"] == "OUTLOOK"
    assert first["organization_supplied_user_id"] == customer
    assert first["request_id"] == "carbon-req-1"
    assert first["presigned_url"] is None


def test_user_files_filters_order_and_pages(client: httpx.Client, customer: str, mailbox: list[int]) -> None:
    by_id = files(client, customer, order_by="id", order_dir="desc", pagination={"limit": 3, "offset": 1})
    ids = [f["id"] for f in by_id["results"]]
    assert ids == sorted(ids, reverse=True)
    assert len(ids) == 3
    assert by_id["count"] == 25

    roots = files(client, customer, filters={"root_files_only": True}, pagination={"limit": 100})
    assert roots["count"] == 20
    assert all(f["parent_id"] is None for f in roots["results"])

    children = files(client, customer, filters={"parent_file_ids": [mailbox[3]]})
    assert [f["name"] for f in children["results"]] == ["notes-4.txt"]
    assert children["results"][0]["file_statistics"]["file_format"] == "TXT"

    errors = files(client, customer, filters={"sync_statuses": ["SYNC_ERROR"]})
    assert [f["sync_error_message"] for f in errors["results"]] == ["body too large"]

    named = files(client, customer, filters={"name": "invoice 1"}, pagination={"limit": 100})
    assert sorted(f["name"] for f in named["results"]) == ["Invoice 10", "Invoice 12", "Invoice 14",
                                                           "Invoice 16", "Invoice 18"]  # fmt: skip

    external = files(client, customer, filters={"external_file_ids": ["AAMk-000007"]})
    assert [f["external_file_id"] for f in external["results"]] == ["AAMk-000007"]

    cursor = files(client, customer, pagination={"limit": 100, "starting_id": mailbox[10]}, order_by="id")
    assert min(f["id"] for f in cursor["results"]) == mailbox[10]

    assert files(client, customer, filters={"source": "GMAIL"}) == {"results": [], "count": 0}
    assert files(client, customer, filters={"tags_v2": {"AND": [{"key": "a", "value": 1}]}})["count"] == 0
    assert files(client, customer, filters={"request_ids": ["carbon-req-1"]})["count"] == 25


def test_links_serve_the_email_and_the_attachment_then_expire_to_strangers(
    api, client: httpx.Client, control: ControlStore, secret_key: str, api_data_dir: Path,
    customer: str, mailbox: list[int],
) -> None:  # fmt: skip
    body = files(
        client,
        customer,
        filters={"ids": [mailbox[3]], "include_all_children": False},
        include_raw_file=True,
        include_parsed_text_file=True,
    )
    (found,) = body["results"]
    raw = httpx.get(found["presigned_url"], trust_env=False)
    assert raw.status_code == 200
    message = email.message_from_bytes(raw.content)
    assert message["Subject"] == "Invoice 4"
    assert raw.headers["content-type"].startswith("message/rfc822")
    parsed = httpx.get(found["parsed_text_url"], trust_env=False)
    assert parsed.text == "Body of message 4"

    attachment = files(client, customer, filters={"parent_file_ids": [mailbox[3]]})["results"][0]
    link = client.get(f"/raw_file/{attachment['id']}", headers=as_customer(customer)).json()["presigned_url"]
    assert httpx.get(link, trust_env=False).content == b"hello notes"

    tampered = found["presigned_url"][:-3] + "AAA"
    assert httpx.get(tampered, trust_env=False).status_code == 404
    forged = found["presigned_url"].replace(f".{mailbox[3]}.", f".{mailbox[4]}.")
    assert httpx.get(forged, trust_env=False).status_code == 404

    # Links signed with the server's own key: one whose time is up, and one for another customer.
    signer = LinkSigner(secret_key, api.url)
    owner = control.customer(customer)
    assert owner is not None
    fresh = signer.url("raw", owner.id, mailbox[3], ttl_s=60)
    again = email.message_from_bytes(httpx.get(fresh, trust_env=False).content)
    assert again["Subject"] == "Invoice 4"  # the signer is the server's
    expired = signer.url("raw", owner.id, mailbox[3], ttl_s=-1)
    gone = httpx.get(expired, trust_env=False)
    assert (gone.status_code, gone.json()) == (404, {"detail": "this link is unknown or has expired"})
    assert signer.open(expired.rsplit("/", 1)[1]) is None
    stranger_id = f"stranger-{customer}"
    fill(api_data_dir, stranger_id, [make_email(900)])
    stranger = control.customer(stranger_id) or control.update_customers([stranger_id])[0]
    # The stranger's genuine link names the owner's file id: it opens the stranger's store, never the owner's.
    theirs = httpx.get(signer.url("raw", stranger.id, mailbox[3], ttl_s=60), trust_env=False)
    assert theirs.status_code == 404
    assert b"Invoice 4" not in theirs.content
    # And the owner's link, re-pointed at the stranger, no longer carries a valid signature.
    repointed = found["presigned_url"].replace(f"/files/raw.{owner.id}.", f"/files/raw.{stranger.id}.")
    assert repointed != found["presigned_url"]
    assert httpx.get(repointed, trust_env=False).status_code == 404


def test_resync_and_deletes_are_recorded_for_dagster(
    client: httpx.Client, control: ControlStore, customer: str, mailbox: list[int]
) -> None:
    resynced = client.post("/resync_file", json={"file_id": mailbox[0]}, headers=as_customer(customer))
    assert resynced.status_code == 200, resynced.text
    assert resynced.json()["sync_status"] == "QUEUED_FOR_SYNC"
    assert resynced.json()["id"] == mailbox[0]

    deleted = client.post(
        "/delete_files_v2",
        json={"filters": {"ids": mailbox[1:3]}, "preserve_file_record": True},
        headers=as_customer(customer),
    )
    assert deleted.json() == {"success": True}
    old = client.post("/delete_files", json={"file_ids": [mailbox[5]]}, headers=as_customer(customer))
    assert old.json() == {"success": True}

    recorded = {r.kind: r for r in control.requests(customer_id=customer)}
    assert recorded["resync"].payload["file_ids"] == [mailbox[0]]
    assert recorded["resync"].payload["message_ids"] == ["AAMk-000001"]
    deletes = [r.payload for r in control.requests(customer_id=customer) if r.kind == "delete_files"]
    assert {"file_ids": mailbox[1:3], "preserve_file_record": True, "send_webhook": False} in deletes
    assert {"file_ids": [mailbox[5]], "preserve_file_record": False, "send_webhook": False} in deletes
    assert all(r.status == "queued" for r in control.requests(customer_id=customer))


def test_update_users_applies_settings_and_records_requests(
    client: httpx.Client, control: ControlStore, customer: str
) -> None:
    others = [f"{customer}-{i}" for i in range(3)]
    response = client.post(
        "/update_users",
        json={
            "customer_ids": [customer, *others],
            "auto_sync_enabled_sources": ["OUTLOOK"],
            "auto_sync_interval": 6,
            "max_files": 500,
        },
    )
    assert response.json() == {"success": True}
    stored = control.customer(customer)
    assert stored is not None
    assert stored.outlook_auto_sync
    assert stored.interval_minutes == 360
    assert stored.max_files == 500

    client.post("/update_users", json={"customer_ids": [customer], "auto_sync_interval": -1})
    again = control.customer(customer)
    assert again is not None
    assert again.interval_minutes == 24 * 60
    assert again.outlook_auto_sync  # absent fields stay as they were
    assert again.max_files == 500

    client.post("/update_users", json={"customer_ids": [customer], "auto_sync_enabled_sources": "ALL"})
    user = client.post("/user", json={"customer_id": customer}).json()
    assert user["auto_sync_enabled_sources"] == ["ALL"]
    assert user["custom_limits"] == {"max_files": 500}
    kinds = [r.kind for r in control.requests(customer_id=others[0])]
    assert kinds == ["update_users"]


def test_list_users_pages_and_filters(client: httpx.Client, customer: str) -> None:
    ids = [f"{customer}-{i}" for i in range(5)]
    client.post("/update_users", json={"customer_ids": ids})
    listed = client.post(
        "/list_users",
        json={
            "filters": {"customer_ids": ids},
            "pagination": {"limit": 2},
            "include_count": True,
            "order_by": "created_at",
            "order_dir": "asc",
        },
    ).json()
    assert listed["count"] == 5
    assert [u["organization_supplied_user_id"] for u in listed["users"]] == ids[:2]
    assert client.post("/list_users", json={"filters": {"customer_ids": ids}}).json()["count"] is None


def test_whoami_counts_what_is_stored(client: httpx.Client, customer: str, mailbox: list[int]) -> None:
    me = client.get("/whoami", headers=as_customer(customer)).json()
    assert me["organization_supplied_user_id"] == customer
    assert me["num_files_synced"] == 20
    assert me["num_characters_synced"] > 0


def test_delete_users_hides_them_revokes_tokens_and_records(
    client: httpx.Client, control: ControlStore, customer: str
) -> None:
    token = client.get("/auth/v1/access_token", headers=as_customer(customer)).json()["access_token"]
    assert client.get("/whoami", headers={"authorization": f"Token {token}"}).status_code == 200
    assert client.post("/delete_users", json={"customer_ids": [customer, "nobody-here"]}).json() == {
        "success": True
    }
    assert client.post("/user", json={"customer_id": customer}).status_code == 404
    assert client.get("/whoami", headers={"authorization": f"Token {token}"}).status_code == 401
    assert [r.kind for r in control.requests(customer_id=customer)] == ["delete_users"]


def test_access_tokens_and_both_authorization_lines(
    api, client: httpx.Client, api_key: str, customer: str
) -> None:
    tokens = client.get("/auth/v1/access_token", headers=as_customer(customer)).json()
    assert set(tokens) == {"access_token", "refresh_token"}
    with_token = {"authorization": f"Token {tokens['access_token']}"}
    assert client.get("/whoami", headers=with_token).json()["organization_supplied_user_id"] == customer
    # What the SDK sends when configured with both: two separate authorization lines, Token first.
    both = [("authorization", f"Token {tokens['access_token']}"), ("authorization", f"Bearer {api_key}"),
            ("customer-id", customer)]  # fmt: skip
    answer = httpx.get(f"{api.url}/whoami", headers=both, trust_env=False)
    assert answer.json()["organization_supplied_user_id"] == customer
    stale = [("authorization", "Token not-a-token"), ("authorization", f"Bearer {api_key}"),
             ("customer-id", customer)]  # fmt: skip
    assert httpx.get(f"{api.url}/whoami", headers=stale, trust_env=False).status_code == 200
    # An access token is a customer's, never the organization's.
    assert (
        httpx.post(f"{api.url}/list_users", json={}, headers=with_token, trust_env=False).status_code == 401
    )


def test_an_access_token_cannot_mint_its_successor(
    api, client: httpx.Client, api_key: str, customer: str
) -> None:
    token = client.get("/auth/v1/access_token", headers=as_customer(customer)).json()["access_token"]
    with_token = {"authorization": f"Token {token}"}
    assert httpx.get(f"{api.url}/whoami", headers=with_token, trust_env=False).status_code == 200
    renewed = httpx.get(f"{api.url}/auth/v1/access_token", headers=with_token, trust_env=False)
    assert renewed.status_code == 401
    assert "Bearer <api key>" in renewed.json()["detail"]
    # With the customer-id header too, a token is still not an API key.
    renewed = httpx.get(
        f"{api.url}/auth/v1/access_token", headers=with_token | as_customer(customer), trust_env=False
    )
    assert renewed.status_code == 401
    # The SDK's two lines (Token first, then the key) mint through the key.
    both = [("authorization", f"Token {token}"), ("authorization", f"Bearer {api_key}"),
            ("customer-id", customer)]  # fmt: skip
    assert httpx.get(f"{api.url}/auth/v1/access_token", headers=both, trust_env=False).status_code == 200
