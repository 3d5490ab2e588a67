"""The official `carbon-python-sdk` 0.2.56, in its own venv, against a real `mailroom api` on 127.0.0.1:
every route with `validate=True`, sync and async clients, both auth forms and the duplicated header."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from pipelines.api import ApiProcess
from pipelines.store import ControlStore
from tests.api.mail import email, fill, with_attachment
from tests.api.receiver import Receiver
from tests.api.sdk import sdk_python


@pytest.fixture(scope="module")
def carbon_python() -> Path:
    return sdk_python()


@pytest.fixture(scope="module")
def sdk_run(
    carbon_python: Path,
    api: ApiProcess,
    api_key: str,
    control: ControlStore,
    api_data_dir: Path,
    tmp_path_factory,
) -> dict:
    customer, other = "sdk-user@example.com", "sdk-other@example.com"
    (owner,) = control.update_customers([customer])
    adele = control.save_connection(owner.id, "adele@contoso.test", auth_kind="app")
    alex = control.save_connection(owner.id, "alex@contoso.test", auth_kind="app")
    rows = [with_attachment(n) if n == 2 else email(n, data_source_id=adele.id) for n in range(1, 8)]
    store = fill(api_data_dir, customer, rows)
    ids = sorted(k.file_id for k in store.known([r.message_id for r in rows]).values())
    config = tmp_path_factory.mktemp("sdk") / "config.json"
    with Receiver() as receiver:
        config.write_text(
            json.dumps(
                {
                    "host": api.url,
                    "api_key": api_key,
                    "customer_id": customer,
                    "other_customer": other,
                    "data_source_id": adele.id,
                    "revoke_id": alex.id,
                    "file_id": ids[0],
                    "delete_ids": ids[4:7],
                    "webhook_url": receiver.url,
                }
            )
        )
        done = subprocess.run(
            [str(carbon_python), str(Path(__file__).with_name("sdk_driver.py")), str(config)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    return {
        "results": json.loads(done.stdout),
        "customer": customer,
        "ids": ids,
        "adele": adele,
        "alex": alex,
    }


def ok(sdk_run: dict, name: str):
    result = sdk_run["results"][name]
    assert result["ok"], f"{name}: {result}"
    return result["value"]


def failed(sdk_run: dict, name: str) -> dict:
    result = sdk_run["results"][name]
    assert not result["ok"], f"{name} should have failed: {result}"
    return result


def test_connect_sync_and_listings(sdk_run: dict, control: ControlStore, sandbox_server) -> None:
    assert ok(sdk_run, "oauth_url")["oauth_url"].startswith(sandbox_server.authority)
    assert ok(sdk_run, "sync") == {"success": True}
    assert ok(sdk_run, "sync_async") == {"success": True}
    syncs = [r.payload for r in control.requests(customer_id=sdk_run["customer"]) if r.kind == "sync"]
    first = next(p for p in syncs if p["request_id"] == "sdk-req")
    assert first["filter_text"] == "after:2024/01/07 AND (category:Personal OR category:Test)"
    assert (first["folder"], first["sync_attachments"], first["incremental_sync"]) == ("Inbox", True, True)
    assert first["data_source_id"] == sdk_run["adele"].id
    bad = failed(sdk_run, "bad_filter")
    assert bad["status"] == 422
    assert "did you mean 'category'" in bad["body"]["detail"][0]["msg"]
    folders = ok(sdk_run, "folders")["folders"]
    assert {"Inbox", "Inbox/Receipts/2024"} <= {f["path"] for f in folders}
    assert ok(sdk_run, "categories")["categories"]


def test_files_resync_links_and_deletes(sdk_run: dict, control: ControlStore) -> None:
    files = ok(sdk_run, "files")
    assert files["count"] == 7
    assert [f["id"] for f in files["results"]] == sorted(f["id"] for f in files["results"])
    assert all(f["presigned_url"] for f in files["results"])
    assert ok(sdk_run, "files_async")["count"] == 8  # with the attachment
    assert ok(sdk_run, "resync")["sync_status"] == "QUEUED_FOR_SYNC"
    assert failed(sdk_run, "resync_unknown")["status"] == 404
    assert ok(sdk_run, "parsed_fetch")["text"] == "Body of message 1"
    raw = ok(sdk_run, "raw_fetch")
    assert raw["type"].startswith("message/rfc822")
    assert "Subject: Quarterly report 1" in raw["text"]
    assert ok(sdk_run, "delete_many") == {"success": True}
    assert ok(sdk_run, "delete_v2") == {"success": True}
    deletes = [
        r.payload for r in control.requests(customer_id=sdk_run["customer"]) if r.kind == "delete_files"
    ]
    ids = sdk_run["ids"]
    assert {"file_ids": ids[4:5], "preserve_file_record": False, "send_webhook": False} in deletes
    assert {"file_ids": ids[5:7], "preserve_file_record": True, "send_webhook": True} in deletes


def test_users_and_tokens(sdk_run: dict, control: ControlStore) -> None:
    assert ok(sdk_run, "update_users") == {"success": True}
    assert ok(sdk_run, "update_users_all") == {"success": True}
    assert failed(sdk_run, "bad_interval")["status"] == 422  # the SDK does not check the allowed set
    listed = ok(sdk_run, "list_users")
    assert listed["count"] == 2
    user = ok(sdk_run, "user")
    assert user["organization_supplied_user_id"] == sdk_run["customer"]
    assert user["auto_sync_enabled_sources"] == ["OUTLOOK"]
    assert ok(sdk_run, "whoami")["num_files_synced"] == 7
    assert ok(sdk_run, "whoami_token")["organization_supplied_user_id"] == sdk_run["customer"]
    assert ok(sdk_run, "files_both_headers")["count"] == 8
    assert ok(sdk_run, "delete_users") == {"success": True}
    assert control.customer("sdk-other@example.com") is None
    assert control.customer(sdk_run["customer"]).interval_minutes == 360  # type: ignore[union-attr]


def test_data_sources_and_webhooks(sdk_run: dict, control: ControlStore) -> None:
    sources = ok(sdk_run, "data_sources")
    assert sources["count"] == 2
    assert {s["data_source_external_id"] for s in sources["results"]} == {
        "adele@contoso.test",
        "alex@contoso.test",
    }
    assert all(s["token"] is None for s in sources["results"])
    hook = ok(sdk_run, "add_webhook")
    assert len(hook["signing_key"]) == 32
    listed = ok(sdk_run, "webhooks")
    assert hook["id"] in [w["id"] for w in listed["results"]]
    assert ok(sdk_run, "delete_webhook") == {"success": True}
    assert ok(sdk_run, "revoke") == {"success": True}
    assert control.connection(sdk_run["alex"].id).revoked  # type: ignore[union-attr]
