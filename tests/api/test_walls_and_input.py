"""Tenant walls, authentication, bad input and secrets: what the API refuses, how, and what it never says."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from pipelines.api import ApiProcess
from pipelines.store import ControlStore
from tests.api.conftest import as_customer
from tests.api.mail import email, fill
from tests.api.receiver import Receiver


@pytest.fixture
def two_customers(api_data_dir: Path, customer: str) -> tuple[str, list[int], str]:
    """Customer A with 5 emails, customer B with 3; returns A, A's file ids, B."""
    other = f"other-{customer}"
    store = fill(api_data_dir, customer, [email(n) for n in range(1, 6)])
    fill(api_data_dir, other, [email(n) for n in range(100, 103)])
    return (
        customer,
        sorted(k.file_id for k in store.known([f"AAMk-{n:06d}" for n in range(1, 6)]).values()),
        other,
    )


def test_a_customer_never_reaches_anothers_files(
    client: httpx.Client, control: ControlStore, two_customers: tuple[str, list[int], str]
) -> None:
    owner, ids, stranger = two_customers
    as_stranger = as_customer(stranger)
    # Each store numbers its own files, so the owner's ids may name files of the stranger too: whatever
    # ids are sent, the answers hold the caller's own emails only.
    seen = client.post("/user_files_v2", json={"filters": {"ids": ids}}, headers=as_stranger).json()
    own = client.post("/user_files_v2", json={"pagination": {"limit": 100}}, headers=as_stranger).json()
    for answer in (seen, own):
        assert {f["organization_supplied_user_id"] for f in answer["results"]} <= {stranger}
        assert {f["external_file_id"] for f in answer["results"]} <= {
            f"AAMk-{n:06d}" for n in range(100, 103)
        }
    assert own["count"] == 3
    by_owner = client.post("/user_files_v2", json={"filters": {"external_file_ids": ["AAMk-000001"]}},
                           headers=as_stranger).json()  # fmt: skip
    assert by_owner == {"results": [], "count": 0}
    assert client.post("/resync_file", json={"file_id": 999_999}, headers=as_stranger).status_code == 404
    assert client.get("/raw_file/999999", headers=as_stranger).status_code == 404
    assert client.get("/parsed_file/999999", headers=as_stranger).status_code == 404
    client.post("/delete_files_v2", json={"filters": {"ids": [999_999]}}, headers=as_stranger)
    assert [r.kind for r in control.requests(customer_id=stranger)] == []
    assert [r.kind for r in control.requests(customer_id=owner)] == []


def test_data_sources_and_listings_are_walled(
    client: httpx.Client, control: ControlStore, customer: str
) -> None:
    (owner,) = control.update_customers([customer])
    connection = control.save_connection(owner.id, "adele@contoso.test", auth_kind="app")
    stranger = as_customer(f"stranger-{customer}")
    assert client.post("/user_data_sources", json={}, headers=stranger).json() == {"results": [], "count": 0}
    for path in ("/integrations/outlook/user_folders", "/integrations/outlook/user_categories"):
        answer = client.get(path, params={"data_source_id": connection.id}, headers=stranger)
        assert answer.status_code == 404
        assert "no data source" in answer.json()["detail"]
    sync = {"filters": {}, "data_source_id": connection.id}
    assert client.post("/integrations/outlook/sync", json=sync, headers=stranger).status_code == 404
    revoke = client.post("/revoke_access_token", json={"data_source_id": connection.id}, headers=stranger)
    assert revoke.status_code == 404
    assert not control.connection(connection.id).revoked  # type: ignore[union-attr]
    mine = client.post("/user_data_sources", json={}, headers=as_customer(customer)).json()
    assert [s["id"] for s in mine["results"]] == [connection.id]
    assert mine["results"][0]["token"] is None


def test_every_key_speaks_for_the_one_organization(
    api: ApiProcess, webhook_client: httpx.Client, control: ControlStore, customer: str
) -> None:
    """Mailroom serves one organization per deployment (mail stores and runs key on the customer id), so
    a second key is a second credential of the same organization, not a second tenant."""
    _, other_key = control.create_api_key("second key")
    mine = webhook_client.post("/add_webhook", json={"url": "http://127.0.0.1:9/mine"}).json()
    webhook_client.post("/update_users", json={"customer_ids": [customer]})
    with httpx.Client(
        base_url=api.url, headers={"authorization": f"Bearer {other_key}"}, trust_env=False
    ) as other:
        assert [h["id"] for h in other.post("/webhooks", json={}).json()["results"]] == [mine["id"]]
        user = other.post("/user", json={"customer_id": customer}).json()
    assert (user["organization_id"], mine["organization_id"]) == (1, 1)


@pytest.mark.parametrize(
    ("headers", "path"),
    [
        ({}, "/whoami"),
        ({"authorization": "Bearer mr_not-a-key", "customer-id": "x"}, "/whoami"),
        ({"authorization": "Token not-a-token"}, "/whoami"),
        ({"authorization": "Basic dXNlcjpwYXNz"}, "/whoami"),
        ({}, "/list_users"),
    ],
)
def test_missing_or_wrong_credentials_are_401(api: ApiProcess, headers: dict[str, str], path: str) -> None:
    method = "GET" if path == "/whoami" else "POST"
    answer = httpx.request(method, f"{api.url}{path}", headers=headers, json={}, trust_env=False)
    assert answer.status_code == 401
    assert isinstance(answer.json()["detail"], str)
    assert "not-a-key" not in answer.text


def test_bearer_without_customer_id_and_a_revoked_key(api: ApiProcess, control: ControlStore) -> None:
    key, plain = control.create_api_key("short-lived")
    auth = {"authorization": f"Bearer {plain}"}
    answer = httpx.get(f"{api.url}/whoami", headers=auth, trust_env=False)
    assert answer.status_code == 401
    assert "customer-id" in answer.json()["detail"]
    assert httpx.post(f"{api.url}/list_users", json={}, headers=auth, trust_env=False).status_code == 200
    control.revoke_api_key(key.id)
    assert httpx.post(f"{api.url}/list_users", json={}, headers=auth, trust_env=False).status_code == 401


@pytest.mark.parametrize(
    ("path", "body", "loc", "words"),
    [
        (
            "/update_users",
            {"customer_ids": ["a"], "auto_sync_interval": 5},
            ["body", "auto_sync_interval"],
            "3",
        ),
        ("/update_users", {"customer_ids": [str(i) for i in range(101)]}, ["body", "customer_ids"], "100"),
        ("/update_users", {"customer_ids": []}, ["body", "customer_ids"], "at least 1"),
        (
            "/update_users",
            {"customer_ids": ["a"], "auto_sync_enabled_sources": ["FOO"]},
            ["body", "auto_sync_enabled_sources"],
            "OUTLOOK",
        ),
        ("/update_users", {"customer_ids": ["a"], "max_files": -2}, ["body", "max_files"], "-1"),
        ("/update_users", {"customer_ids": ["x" * 300]}, ["body", "customer_ids", 0], "256"),
        ("/list_users", {"pagination": {"limit": 5000}}, ["body", "pagination", "limit"], "1000"),
        ("/add_webhook", {"url": "ftp://example.com/hook"}, ["body", "url"], "http"),
        ("/add_webhook", {"url": "https://user:pw@example.com/hook"}, ["body", "url"], "credentials"),
        ("/add_webhook", {"url": "not a url"}, ["body", "url"], "http"),
        ("/add_webhook", {}, ["body", "url"], "required"),
    ],
)
def test_org_routes_answer_bad_input_with_fastapi_422s(
    client: httpx.Client, path: str, body: dict, loc: list, words: str
) -> None:
    answer = client.post(path, json=body)
    assert answer.status_code == 422, answer.text
    problems = [d for d in answer.json()["detail"] if d["loc"][: len(loc)] == loc]
    assert problems  # a union (a list of sources or "ALL") reports each branch
    assert all(set(problem) == {"loc", "msg", "type"} for problem in problems)
    assert any(words in problem["msg"] for problem in problems)
    assert "pw@" not in answer.text


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"filters": {"key": "categroy", "value": "x"}}, "did you mean 'category'"),
        ({"filters": {"key": "after", "value": "2024/02/30"}}, "2024/02/30"),
        ({"filters": {"AND": [{"key": "from", "value": "a@b.c"}, {"OR": "nope"}]}}, "$.AND[1].OR"),
        ({"filters": "after:2024/01/01 AND"}, "column"),
        ({}, "required"),
    ],
)
def test_bad_filters_are_422_with_the_filter_errors_message(
    client: httpx.Client, control: ControlStore, customer: str, body: dict, words: str
) -> None:
    (owner,) = control.update_customers([customer])
    control.save_connection(owner.id, "adele@contoso.test", auth_kind="app")
    answer = client.post("/integrations/outlook/sync", json=body, headers=as_customer(customer))
    assert answer.status_code == 422, answer.text
    (problem,) = answer.json()["detail"]
    assert problem["loc"] == ["body", "filters"]
    assert words in problem["msg"]
    assert control.requests(customer_id=customer) == []


@pytest.mark.parametrize(
    "filters",
    [
        {"ids": []},
        {"external_file_ids": []},
        {"sync_statuses": [], "name": "Report"},
        {"source": []},
        {"name": ""},
    ],
)
def test_a_delete_with_an_empty_list_deletes_nothing_and_says_why(
    client: httpx.Client, control: ControlStore, two_customers: tuple[str, list[int], str], filters: dict
) -> None:
    # An empty list filters nothing (as in a listing): a client whose computed ids came out empty deleted
    # the customer's every file.
    owner, ids, _ = two_customers
    answer = client.post("/delete_files_v2", json={"filters": filters}, headers=as_customer(owner))
    assert answer.status_code == 422, answer.text
    (name,) = [k for k, v in filters.items() if v in ([], "")]
    (problem,) = answer.json()["detail"]
    assert problem["loc"] == ["body", "filters", name]
    what = "empty text" if filters[name] == "" else "an empty list"
    assert problem["msg"].startswith(f"{name} is {what}, which filters nothing")
    assert control.requests(customer_id=owner) == []
    # The same lists still mean "no filter" in a listing, and naming files still deletes them.
    listed = client.post("/user_files_v2", json={"filters": filters}, headers=as_customer(owner)).json()
    assert listed["count"] > 0
    named = client.post("/delete_files_v2", json={"filters": {"ids": ids[:1]}}, headers=as_customer(owner))
    assert named.json() == {"success": True}
    (request,) = control.requests(customer_id=owner)
    assert request.payload["file_ids"] == ids[:1]


def test_delete_users_checks_each_customer_id(client: httpx.Client, control: ControlStore) -> None:
    control.update_customers(["kept"])
    for bad, words in (("", "must not be empty"), ("x" * 300, "256"), ("a\nb", "control characters")):
        answer = client.post("/delete_users", json={"customer_ids": ["kept", bad]})
        assert answer.status_code == 422, answer.text
        (problem,) = answer.json()["detail"]
        assert problem["loc"] == ["body", "customer_ids", 1]
        assert words in problem["msg"]
    assert control.customer("kept") is not None  # nothing was deleted
    assert control.requests(customer_id="kept") == []


def test_a_non_ascii_customer_id_names_one_customer_in_a_body_and_in_either_header_encoding(
    client: httpx.Client, control: ControlStore
) -> None:
    # curl sends the header's UTF-8 bytes, which were read as Latin-1: `Zoë` became a new customer `ZoÃ«`.
    assert client.post("/update_users", json={"customer_ids": ["Zoë", "東京"]}).json() == {"success": True}
    zoe, tokyo = control.customer("Zoë"), control.customer("東京")
    assert zoe is not None
    assert tokyo is not None
    for header, pk in (
        ("Zoë".encode(), zoe.id),
        ("Zoë".encode("latin-1"), zoe.id),
        ("東京".encode(), tokyo.id),
    ):
        answer = client.get("/whoami", headers={"customer-id": header})  # type: ignore[dict-item]
        assert answer.status_code == 200, answer.text
        assert answer.json()["id"] == pk
    assert (
        client.get("/whoami", headers={"customer-id": b"Zo\xc3"}).json()["organization_supplied_user_id"]
        == "ZoÃ"
    )
    assert control.customer("ZoÃ«") is None


def test_user_routes_check_customer_ids_and_ids(client: httpx.Client, customer: str) -> None:
    long_id = {"customer-id": "c" * 300}
    answer = client.get("/whoami", headers=long_id)
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["header", "customer-id"]
    assert client.get("/raw_file/not-a-number", headers=as_customer(customer)).status_code == 422
    files = client.post(
        "/user_files_v2", json={"filters": {"request_ids": ["r"] * 101}}, headers=as_customer(customer)
    )
    assert files.status_code == 422
    both = {"filters": {"root_files_only": True, "parent_file_ids": [1]}}
    mixed = client.post("/user_files_v2", json=both, headers=as_customer(customer))
    assert mixed.status_code == 422
    assert "root_files_only" in mixed.json()["detail"][0]["msg"]
    not_json = client.post(
        "/user_files_v2",
        content=b"{nope",
        headers={**as_customer(customer), "content-type": "application/json"},
    )
    assert not_json.status_code == 422


def test_bodies_over_the_limit_are_refused(client: httpx.Client) -> None:
    big = {"customer_ids": ["a"], "padding": "x" * (2 << 20)}
    answer = client.post("/update_users", json=big)
    assert answer.status_code == 413
    limit = 1 << 20
    assert answer.json() == {
        "detail": f"the request body is larger than {limit} bytes (the limit is MAILROOM_API_MAX_BODY_BYTES)"
    }

    def chunks():
        for _ in range(40):
            yield b"x" * 65536

    streamed = client.post("/update_users", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413


def test_a_fourth_webhook_is_refused(client: httpx.Client) -> None:
    before = client.post("/webhooks", json={}).json()["count"]
    made = []
    try:
        for n in range(3 - before):
            answer = client.post("/add_webhook", json={"url": f"https://hooks.example.com/{n}"})
            assert answer.status_code == 200
            made.append(answer.json()["id"])
        fourth = client.post("/add_webhook", json={"url": "https://hooks.example.com/4"})
        assert fourth.status_code == 409
        assert "at most 3" in fourth.json()["detail"]
    finally:
        for hook in made:
            client.delete(f"/delete_webhook/{hook}")
    assert client.delete("/delete_webhook/987654").status_code == 404


def test_nothing_secret_in_answers_or_the_log(
    api: ApiProcess, client: httpx.Client, control: ControlStore, api_key: str, customer: str
) -> None:
    hook = client.post("/add_webhook", json={"url": "https://hooks.example.com/secret-test"}).json()
    # A receiver whose URL carries its own token: delivered to, never written to the log.
    with Receiver() as receiver:
        local = client.post("/add_webhook", json={"url": f"{receiver.url}?token=RECEIVER-SECRET-7"}).json()
        try:
            assert len(hook["signing_key"]) == 32
            listed = client.post("/webhooks", json={}).text
            assert hook["signing_key"] not in listed
            assert "signing_key" not in listed
            token = client.get("/auth/v1/access_token", headers=as_customer(customer)).json()
            link = client.post(
                "/user_files_v2", json={"include_raw_file": True}, headers=as_customer(customer)
            ).status_code
            assert link == 200
            client.get("/integrations/outlook?code=the-auth-code&state=some-state")
            owner = control.customer(customer)
            assert owner is not None
            connection = control.save_connection(owner.id, "secret-test@contoso.test", auth_kind="app")
            client.post(
                "/revoke_access_token", json={"data_source_id": connection.id}, headers=as_customer(customer)
            )
            (got,) = receiver.wait_for(lambda r: any(b"REVOKE" in x.body for x in r))
            assert got.path == "/hook?token=RECEIVER-SECRET-7"
        finally:
            client.delete(f"/delete_webhook/{hook['id']}")
            client.delete(f"/delete_webhook/{local['id']}")
    log = api.log_tail(200_000)
    for secret in (
        api_key,
        hook["signing_key"],
        local["signing_key"],
        token["access_token"],
        token["refresh_token"],
        "the-auth-code",
        "RECEIVER-SECRET-7",
    ):
        assert secret not in log
    assert "POST /webhooks 200" in log
