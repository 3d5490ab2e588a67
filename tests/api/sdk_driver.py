"""Runs inside the Carbon SDK's own venv: drives every Mailroom route through `carbon-python-sdk` 0.2.56 with
`validate=True`, and prints one JSON object of step results for the test to judge.

Usage: python sdk_driver.py CONFIG.json (host, api_key, customer_id, other_customer, data_source_id,
revoke_id, file_id, delete_ids, webhook_url).
"""

import asyncio
import json
import sys
import urllib.request

from carbon import Carbon
from carbon.exceptions import ApiException

with open(sys.argv[1]) as given:
    config = json.load(given)
host, key, me = config["host"], config["api_key"], config["customer_id"]
carbon = Carbon(host=host, api_key=key, customer_id=me)
results = {}


def plain(value):
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return json.loads(json.dumps(value, default=str))


def step(name, call):
    try:
        results[name] = {"ok": True, "value": plain(call())}
    except ApiException as error:
        body = error.body if isinstance(error.body, (dict, list, str)) else str(error.body)
        results[name] = {"ok": False, "status": error.status, "body": body}
    except Exception as error:  # reported, judged by the test
        results[name] = {"ok": False, "error": f"{type(error).__name__}: {error}"}
    return results[name].get("value")


def fetch(url):
    with urllib.request.urlopen(url, timeout=30) as response:  # a Mailroom link on 127.0.0.1
        return {
            "status": response.status,
            "type": response.headers["content-type"],
            "text": response.read().decode(),
        }


source = config["data_source_id"]
step("oauth_url", lambda: carbon.integrations.get_oauth_url(service="OUTLOOK", validate=True))
carbon_filter = {
    "AND": [
        {"key": "after", "value": "2024/01/07"},
        {"OR": [{"key": "category", "value": "Personal"}, {"key": "category", "value": "Test"}]},
    ]
}
step(
    "sync",
    lambda: carbon.integrations.sync_outlook(
        filters=carbon_filter,
        folder="Inbox",
        sync_attachments=True,
        incremental_sync=True,
        request_id="sdk-req",
        data_source_id=source,
        validate=True,
    ),
)
step(
    "sync_async",
    lambda: asyncio.run(carbon.integrations.async_outlook(filters={}, data_source_id=source, validate=True)),
)
step(
    "bad_filter",
    lambda: carbon.integrations.sync_outlook(
        filters={"key": "categroy", "value": "x"}, data_source_id=source, validate=True
    ),
)
step("folders", lambda: carbon.integrations.list_folders(data_source_id=source, validate=True))
step("categories", lambda: carbon.integrations.list_outlook_categories(data_source_id=source, validate=True))
step(
    "files",
    lambda: carbon.files.query_user_files(
        pagination={"limit": 5, "offset": 0},
        order_by="id",
        order_dir="asc",
        filters={"root_files_only": True},
        include_raw_file=True,
        validate=True,
    ),
)
step("files_async", lambda: asyncio.run(carbon.files.aquery_user_files(validate=True)))
step("resync", lambda: carbon.files.resync(file_id=config["file_id"], validate=True))
step("resync_unknown", lambda: carbon.files.resync(file_id=987654, validate=True))
parsed = step("parsed_file", lambda: carbon.files.get_parsed_file(file_id=config["file_id"], validate=True))
if parsed:
    step("parsed_fetch", lambda: fetch(parsed["presigned_url"]))
raw = step("raw_file", lambda: carbon.files.get_raw_file(file_id=config["file_id"], validate=True))
if raw:
    step("raw_fetch", lambda: fetch(raw["presigned_url"]))
step("delete_many", lambda: carbon.files.delete_many(file_ids=config["delete_ids"][:1], validate=True))
step(
    "delete_v2",
    lambda: carbon.files.delete_v2(
        filters={"ids": config["delete_ids"][1:]}, send_webhook=True, preserve_file_record=True, validate=True
    ),
)
step(
    "update_users",
    lambda: carbon.users.update_users(
        customer_ids=[me, config["other_customer"]],
        auto_sync_enabled_sources=["OUTLOOK"],
        auto_sync_interval=6,
        validate=True,
    ),
)
step(
    "update_users_all",
    lambda: carbon.users.update_users(
        customer_ids=[config["other_customer"]], auto_sync_enabled_sources="ALL", validate=True
    ),
)
step(
    "bad_interval", lambda: carbon.users.update_users(customer_ids=[me], auto_sync_interval=5, validate=True)
)
step(
    "list_users",
    lambda: carbon.users.list(
        filters={"customer_ids": [me, config["other_customer"]]}, include_count=True, validate=True
    ),
)
step("user", lambda: carbon.users.get(customer_id=me, validate=True))
step("whoami", lambda: carbon.users.who_am_i(validate=True))
step("data_sources", lambda: carbon.data_sources.query_user_data_sources(validate=True))
hook = step("add_webhook", lambda: carbon.webhooks.add_url(url=config["webhook_url"], validate=True))
step("webhooks", lambda: carbon.webhooks.urls(validate=True))
tokens = step("access_token", lambda: carbon.auth.get_access_token(validate=True))
if tokens:
    with_token = Carbon(host=host, access_token=tokens["access_token"])
    step("whoami_token", lambda: with_token.users.who_am_i(validate=True))
    both = Carbon(host=host, access_token=tokens["access_token"], api_key=key, customer_id=me)
    step("files_both_headers", lambda: both.files.query_user_files(validate=True))
step(
    "revoke",
    lambda: carbon.data_sources.revoke_access_token(data_source_id=config["revoke_id"], validate=True),
)
step("delete_users", lambda: carbon.users.delete(customer_ids=[config["other_customer"]], validate=True))
if hook:
    step("delete_webhook", lambda: carbon.webhooks.delete_url(webhook_id=hook["id"], validate=True))
print(json.dumps(results))
