"""Customers through the users routes: a deleted customer stays deleted until its purge and then comes back
as a new one, `/list_users` pages by `starting_id`, and `/user` counts files by Carbon's file formats."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from pipelines.api import ApiSettings, NotFound
from pipelines.api._context import ApiContext
from pipelines.store import (
    AttachmentRow,
    ControlStore,
    Cursor,
    Page,
    StoreSettings,
    delete_mail_store,
    mail_store_path,
)
from tests.api.conftest import as_customer
from tests.api.mail import FINGERPRINT, email, fill, with_attachment

# Carbon's FileFormats enum, copied from its OpenAPI document with its source named.
FILE_FORMATS = set(
    json.loads((Path(__file__).parent / "carbon_file_formats.json").read_text(encoding="utf-8"))[
        "FileFormats"
    ]
)


def purge(api_data_dir: Path, control: ControlStore, customer: str) -> None:
    """What the delete run does once it has checked that the customer is still deleted."""
    deleted = control.customer(customer, include_deleted=True)
    assert deleted is not None
    assert control.customer_deleted(customer)
    delete_mail_store(mail_store_path(api_data_dir, customer))
    assert control.purge_customer(deleted.id)


def test_a_deleted_customer_is_gone_until_purged_then_new(
    client: httpx.Client, control: ControlStore, api_data_dir: Path, customer: str
) -> None:
    fill(api_data_dir, customer, [email(n) for n in range(1, 4)])
    me = as_customer(customer)
    before = client.get("/whoami", headers=me).json()
    assert before["num_files_synced"] == 3
    control.save_connection(before["id"], "old@contoso.test", auth_kind="delegated", token_cache=b"sealed")
    assert client.post("/delete_users", json={"customer_ids": [customer]}).json() == {"success": True}

    # Until the delete run has purged it, the customer is gone for every route, and no route brings the
    # old row (its connection, sealed token cache and mail) back.
    for answer in (
        client.get("/whoami", headers=me),
        client.post("/user_files_v2", json={}, headers=me),
        client.post("/user_data_sources", json={}, headers=me),
        client.post("/user", json={"customer_id": customer}),
    ):
        assert answer.status_code == 404, answer.text
    assert "was deleted" in client.get("/whoami", headers=me).json()["detail"]
    again = client.post("/update_users", json={"customer_ids": ["someone-else-" + customer, customer]})
    assert again.status_code == 409
    assert f"{customer!r} was deleted and its data is still being removed" in again.json()["detail"]
    assert control.customer("someone-else-" + customer) is None, "a refused update changes nothing"
    assert control.customer_deleted(customer)
    assert [r.kind for r in control.requests(customer_id=customer)] == ["delete_users"]

    purge(api_data_dir, control, customer)
    fresh = client.get("/whoami", headers=me).json()
    assert fresh["id"] != before["id"]
    assert fresh["num_files_synced"] == 0
    assert client.post("/user_data_sources", json={}, headers=me).json()["count"] == 0
    assert client.post("/update_users", json={"customer_ids": [customer]}).json() == {"success": True}


def test_a_remembered_caller_is_forgotten_when_deleted(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    stores = StoreSettings(data_dir=tmp_path, secret_key=key)
    ctx = ApiContext.build(ApiSettings(auth_cache_s=3600), stores, None)
    try:
        first = ctx.customer(1, "cached@example.com")
        assert ctx.customer(1, "cached@example.com") is first  # remembered
        ctx.control.mark_customers_deleted(["cached@example.com"])
        ctx.forget_customers(1, ["cached@example.com"])
        with pytest.raises(NotFound, match="was deleted"):
            ctx.customer(1, "cached@example.com")
    finally:
        ctx.reader.close()


def test_list_users_starts_at_starting_id(client: httpx.Client, customer: str) -> None:
    ids = [f"{customer}-{i}" for i in range(4)]
    client.post("/update_users", json={"customer_ids": ids})
    body = {"filters": {"customer_ids": ids}, "order_dir": "asc", "include_count": True}
    users = client.post("/list_users", json=body).json()["users"]
    assert [u["organization_supplied_user_id"] for u in users] == ids
    start = users[2]["id"]
    paged = client.post("/list_users", json=body | {"pagination": {"starting_id": start}}).json()
    assert [u["organization_supplied_user_id"] for u in paged["users"]] == ids[2:]
    assert paged["count"] == 2
    beyond = body | {"pagination": {"starting_id": users[-1]["id"] + 1}}
    assert client.post("/list_users", json=beyond).json() == {"users": [], "count": 0}


def attachment(n: int, name: str) -> AttachmentRow:
    return AttachmentRow(f"att-{n}", name=name, content_type="application/octet-stream", size=3)


def test_files_by_format_name_only_carbons_file_formats(
    client: httpx.Client, api_data_dir: Path, customer: str
) -> None:
    rows = [with_attachment(1), with_attachment(2), email(3)]
    pdf = email(4, has_attachments=True, attachments=(attachment(4, "scan.PDF"),))
    odd = email(5, has_attachments=True, attachments=(attachment(5, "archive.xyz"), attachment(6, "README")))
    store = fill(api_data_dir, customer, [*rows, pdf, odd, email(6)])
    store.start_round("inbox", FINGERPRINT)  # a listing again: email 6 left the mailbox, the rest stay
    kept = [f"AAMk-{n:06d}" for n in range(1, 6)]
    store.apply_page(
        Page("inbox", FINGERPRINT, removals=["AAMk-000006"], seen=kept, cursor=Cursor(delta_link="d2"))
    )
    client.post("/update_users", json={"customer_ids": [customer]})
    user = client.post("/user", json={"customer_id": customer}).json()
    by_format = user["aggregate_num_files_by_file_format"]
    assert set(by_format) <= FILE_FORMATS
    assert by_format == {"OUTLOOK": 5, "TXT": 2, "PDF": 1}  # archive.xyz and README have no format
    assert user["aggregate_num_files_by_source"] == {"OUTLOOK": 5 + 5}
    assert user["num_files_synced"] == 5
    listed = client.post("/user_files_v2", json={"pagination": {"limit": 100}}, headers=as_customer(customer))
    formats = Counter(f["file_statistics"]["file_format"] for f in listed.json()["results"])
    assert formats == Counter(by_format) + Counter({None: 2}), "the aggregate agrees with the listing"
