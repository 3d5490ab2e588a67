"""Connecting an Outlook mailbox through the OAuth routes against the sandbox's sign-in, following the
redirects with httpx as a browser would; then the folder and category listings with the stored tokens."""

from __future__ import annotations

import json
import ssl
from urllib.parse import parse_qs, urlsplit

import httpx

from pipelines.graph import EncryptedTokenCache
from pipelines.store import ControlStore
from tests.api.receiver import Receiver


def browser(sandbox_server) -> httpx.Client:
    return httpx.Client(
        verify=ssl.create_default_context(cafile=str(sandbox_server.ca_cert)), trust_env=False, timeout=30
    )


def test_connect_a_mailbox_then_list_its_folders_and_categories(
    webhook_client: httpx.Client, control: ControlStore, sandbox_server, sandbox_admin, secret_key: str
) -> None:
    client = webhook_client
    me = {"customer-id": "connector@example.com"}
    with Receiver() as receiver:
        client.post("/add_webhook", json={"url": receiver.url})
        started = client.post(
            "/integrations/oauth_url",
            json={"service": "OUTLOOK", "request_id": "connect-1", "data_source_tags": {"team": "blue"}},
            headers=me,
        )
        assert started.status_code == 200, started.text
        url = started.json()["oauth_url"]
        sent = parse_qs(urlsplit(url).query)
        assert url.startswith(f"{sandbox_server.authority}/oauth2/v2.0/authorize")
        assert sent["code_challenge_method"] == ["S256"]
        assert sent["redirect_uri"] == [
            f"{client.base_url}/integrations/outlook".replace("//integ", "/integ")
        ]
        assert {"Mail.Read", "User.Read"} <= set(sent["scope"][0].split())

        sandbox_admin.set_signin(user="megan@contoso.test")
        try:
            with browser(sandbox_server) as visit:
                landed = visit.get(url, follow_redirects=True)
        finally:
            sandbox_admin.set_signin(user=None)
        assert landed.status_code == 200, landed.text
        assert "megan@contoso.test is connected" in landed.text
        assert [r.status_code for r in landed.history] == [302]

        (event,) = receiver.wait_for(lambda r: len(r) >= 1)
    payload = json.loads(json.loads(event.body)["payload"])
    assert payload["webhook_type"] == "ADD"
    assert payload["customer_id"] == "connector@example.com"
    assert payload["obj"]["additional_information"]["data_source_external_id"] == "megan@contoso.test"

    sources = client.post("/user_data_sources", json={}, headers=me).json()
    (source,) = sources["results"]
    assert source["data_source_external_id"] == "megan@contoso.test"
    assert (source["sync_status"], source["last_sync_action"], source["token"]) == (
        "QUEUED_FOR_SYNCING",
        "ADD",
        None,
    )
    assert source["tags"] == {"team": "blue"}
    sealed = control.token_cache(source["id"])
    assert sealed is not None
    assert b"megan" not in sealed
    assert EncryptedTokenCache.open(sealed, key=secret_key).account
    recorded = control.requests(customer_id="connector@example.com")
    (sync,) = [r.payload for r in recorded if r.kind == "sync"]
    assert (sync["trigger"], sync["request_id"], sync["folder"]) == ("connect", "connect-1", "Inbox")

    folders = client.get("/integrations/outlook/user_folders", headers=me)
    assert folders.status_code == 200, folders.text
    paths = {f["path"] for f in folders.json()["folders"]}
    assert "Posteingang" in paths  # megan's mailbox is German
    categories = client.get("/integrations/outlook/user_categories", headers=me)
    assert categories.status_code == 200, categories.text
    assert all({"id", "display_name", "color"} <= set(c) for c in categories.json()["categories"])

    with browser(sandbox_server) as visit:  # the same sign-in link cannot connect twice
        again = visit.get(url, follow_redirects=True)
    assert again.status_code == 400
    assert "unknown, expired or already used" in again.text


def test_a_declined_sign_in_connects_nothing_and_sends_cancel(
    webhook_client: httpx.Client, control: ControlStore, sandbox_server, sandbox_admin
) -> None:
    client = webhook_client
    me = {"customer-id": "decliner@example.com"}
    with Receiver() as receiver:
        client.post("/add_webhook", json={"url": receiver.url})
        url = client.post("/integrations/oauth_url", json={"service": "OUTLOOK"}, headers=me).json()[
            "oauth_url"
        ]
        sandbox_admin.set_signin(deny_next=True)
        with browser(sandbox_server) as visit:
            landed = visit.get(url, follow_redirects=True)
        (event,) = receiver.wait_for(lambda r: len(r) >= 1)
    assert landed.status_code == 400
    assert "declined" in landed.text
    assert json.loads(json.loads(event.body)["payload"])["webhook_type"] == "CANCEL"
    assert client.post("/user_data_sources", json={}, headers=me).json()["count"] == 0


def test_oauth_url_honours_the_tenant_and_refuses_other_services(
    client: httpx.Client, sandbox_server
) -> None:
    me = {"customer-id": "tenant-picker@example.com"}
    url = client.post(
        "/integrations/oauth_url", json={"service": "OUTLOOK", "microsoft_tenant": "contoso.test"}, headers=me
    ).json()["oauth_url"]
    host = sandbox_server.authority.rsplit("/", 1)[0]
    assert url.startswith(f"{host}/contoso.test/oauth2/v2.0/authorize")
    gmail = client.post("/integrations/oauth_url", json={"service": "GMAIL"}, headers=me)
    assert gmail.status_code == 422
    assert "Outlook" in gmail.json()["detail"][0]["msg"]
    unknown = client.post(
        "/integrations/oauth_url", json={"service": "OUTLOOK", "data_source_id": 424242}, headers=me
    )
    assert unknown.status_code == 404


def test_listings_need_a_connection(client: httpx.Client) -> None:
    answer = client.get(
        "/integrations/outlook/user_folders", headers={"customer-id": "never-connected@example.com"}
    )
    assert answer.status_code == 404
    assert "oauth_url" in answer.json()["detail"]
