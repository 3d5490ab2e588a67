"""The real `msal` library completes every flow against the sandbox; errors have Microsoft's shapes."""

import hashlib
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import msal
import pytest
import requests

from sandbox import AdminClient, SandboxInfo, ssl_context
from tests.sandbox.conftest import graph_client

REDIRECT = "http://localhost:8400/callback"
pytestmark = pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended:UserWarning")


@pytest.fixture
def session(fresh_sandbox: SandboxInfo) -> Iterator[requests.Session]:
    """What MSAL needs here: trust the sandbox's CA, ignore REQUESTS_CA_BUNDLE (graph.md §7)."""
    http = requests.Session()
    http.trust_env = False
    http.verify = str(fresh_sandbox.ca_cert)
    yield http
    http.close()


def confidential(
    info: SandboxInfo, http: requests.Session, secret: str | None = None
) -> msal.ClientApplication:
    return msal.ConfidentialClientApplication(
        info.client_id,
        client_credential=secret or info.client_secret.get_secret_value(),
        authority=info.authority,
        instance_discovery=False,
        http_client=http,
    )


def sign_in(
    info: SandboxInfo, app: msal.ClientApplication, **extra: Any
) -> tuple[dict[str, Any], dict[str, str]]:
    """Start the auth-code flow and follow /authorize as a browser would; returns (flow, callback query)."""
    flow = app.initiate_auth_code_flow(["Mail.Read", "User.Read"], redirect_uri=REDIRECT, **extra)
    with httpx.Client(verify=ssl_context(info.ca_cert), trust_env=False) as browser:
        response = browser.get(flow["auth_uri"])
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    return flow, {k: v[0] for k, v in parse_qs(location.query).items()}


def test_client_credentials(fresh_sandbox: SandboxInfo, session: requests.Session) -> None:
    app = confidential(fresh_sandbox, session)
    result = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    assert "access_token" in result, result
    assert result["token_source"] == "identity_provider"
    again = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    assert again["token_source"] == "cache"
    with graph_client(fresh_sandbox, result["access_token"]) as graph:
        assert graph.get("/users/alex@contoso.test/mailFolders/inbox").status_code == 200


def test_client_credentials_errors(fresh_sandbox: SandboxInfo, session: requests.Session) -> None:
    wrong = confidential(fresh_sandbox, session, secret="not-the-secret")
    result = wrong.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000215]
    assert result["error_description"].startswith("AADSTS7000215:")
    raw = session.post(
        fresh_sandbox.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": fresh_sandbox.client_id,
            "client_secret": fresh_sandbox.client_secret.get_secret_value(),
            "scope": "Mail.Read",
        },
    )
    assert raw.status_code == 400
    assert raw.json()["error"] == "invalid_scope"
    assert fresh_sandbox.client_secret.get_secret_value() not in raw.text
    unknown = session.get(
        fresh_sandbox.authority.rsplit("/", 1)[0] + "/nope.example/v2.0/.well-known/openid-configuration"
    )
    assert unknown.status_code == 400
    assert unknown.json()["error"] == "invalid_tenant"


def test_auth_code_with_pkce_and_nonce_then_refresh(
    fresh_sandbox: SandboxInfo, session: requests.Session, sandbox_admin: AdminClient
) -> None:
    app = confidential(fresh_sandbox, session)
    flow, params = sign_in(fresh_sandbox, app, login_hint="alex@contoso.test")
    assert params["state"] == flow["state"]
    result = app.acquire_token_by_auth_code_flow(flow, params)
    assert "access_token" in result, result
    assert result["id_token_claims"]["preferred_username"] == "alex@contoso.test"
    assert result["id_token_claims"]["nonce"] == hashlib.sha256(flow["nonce"].encode()).hexdigest()
    [account] = app.get_accounts()
    assert account["username"] == "alex@contoso.test"
    assert app.acquire_token_silent(["Mail.Read"], account=account)["token_source"] == "cache"

    sandbox_admin.expire_tokens(user="alex@contoso.test")
    with graph_client(fresh_sandbox, result["access_token"]) as graph:
        assert graph.get("/me/mailFolders/inbox").status_code == 401
    refreshed = app.acquire_token_silent(["Mail.Read"], account=account, force_refresh=True)
    assert refreshed is not None
    assert refreshed["token_source"] == "identity_provider"
    with graph_client(fresh_sandbox, refreshed["access_token"]) as graph:
        assert graph.get("/me/mailFolders/inbox").json()["displayName"] == "Inbox"

    code_again = session.post(
        fresh_sandbox.token_url,
        data={
            "grant_type": "authorization_code",
            "client_id": fresh_sandbox.client_id,
            "code": params["code"],
            "redirect_uri": REDIRECT,
            "client_secret": fresh_sandbox.client_secret.get_secret_value(),
        },
    )
    assert code_again.json()["error_codes"] == [54005]

    sandbox_admin.revoke_tokens(user="alex@contoso.test")
    revoked = app.acquire_token_silent_with_error(["Mail.Read"], account=account, force_refresh=True)
    assert revoked["error"] == "invalid_grant"
    assert revoked["error_codes"] == [50173]


def test_pkce_mismatch_is_refused(fresh_sandbox: SandboxInfo, session: requests.Session) -> None:
    app = confidential(fresh_sandbox, session)
    flow, params = sign_in(fresh_sandbox, app)
    flow["code_verifier"] = "x" * 43
    result = app.acquire_token_by_auth_code_flow(flow, params)
    assert result["error"] == "invalid_grant"
    assert result["error_codes"] == [501481]


def test_authorize_errors(
    fresh_sandbox: SandboxInfo, session: requests.Session, sandbox_admin: AdminClient
) -> None:
    authorize = f"{fresh_sandbox.authority}/oauth2/v2.0/authorize"
    common = {"client_id": fresh_sandbox.client_id, "response_type": "code", "scope": "Mail.Read"}
    with httpx.Client(verify=ssl_context(fresh_sandbox.ca_cert), trust_env=False) as browser:
        foreign = browser.get(authorize, params={**common, "redirect_uri": "https://evil.example/cb"})
        assert foreign.status_code == 400
        assert "AADSTS50011" in foreign.text
        unknown_app = browser.get(authorize, params={**common, "client_id": "nope", "redirect_uri": REDIRECT})
        assert "AADSTS700016" in unknown_app.text
        sandbox_admin.set_signin(deny_next=True)
        denied = browser.get(authorize, params={**common, "redirect_uri": REDIRECT, "state": "s1"})
        query = parse_qs(urlsplit(denied.headers["location"]).query)
        assert query["error"] == ["access_denied"]
        assert query["state"] == ["s1"]
        bad_scope = browser.get(
            authorize, params={**common, "redirect_uri": REDIRECT, "scope": "Calendars.Read"}
        )
        assert parse_qs(urlsplit(bad_scope.headers["location"]).query)["error"] == ["invalid_scope"]


def test_device_code_approved_on_the_web_page(fresh_sandbox: SandboxInfo, session: requests.Session) -> None:
    app = msal.PublicClientApplication(
        fresh_sandbox.client_id,
        authority=fresh_sandbox.authority,
        instance_discovery=False,
        http_client=session,
    )
    flow = app.initiate_device_flow(scopes=["Mail.Read"])
    assert flow["user_code"] in flow["message"]

    def approve() -> None:
        with httpx.Client(verify=ssl_context(fresh_sandbox.ca_cert), trust_env=False) as browser:
            assert "Enter code" in browser.get(flow["verification_uri"]).text
            done = browser.post(
                flow["verification_uri"],
                data={"user_code": flow["user_code"], "user": "megan@contoso.test", "decision": "approve"},
            )
            assert done.status_code == 200

    approver = threading.Timer(0.5, approve)
    approver.start()
    result = app.acquire_token_by_device_flow(flow)
    approver.join()
    assert "access_token" in result, result
    assert result["id_token_claims"]["preferred_username"] == "megan@contoso.test"
    with graph_client(fresh_sandbox, result["access_token"]) as graph:
        assert graph.get("/me/mailFolders/inbox").json()["displayName"] == "Posteingang"


def test_device_code_declined(
    fresh_sandbox: SandboxInfo, session: requests.Session, sandbox_admin: AdminClient
) -> None:
    app = msal.PublicClientApplication(
        fresh_sandbox.client_id,
        authority=fresh_sandbox.authority,
        instance_discovery=False,
        http_client=session,
    )
    flow = app.initiate_device_flow(scopes=["Mail.Read"])
    pending = session.post(
        fresh_sandbox.token_url,
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "client_id": fresh_sandbox.client_id,
            "device_code": flow["device_code"],
        },
    )
    assert pending.json()["error"] == "authorization_pending"
    assert sandbox_admin.approve_device(flow["user_code"], "adele@contoso.test", deny=True) == "declined"
    result = app.acquire_token_by_device_flow(flow)
    assert result["error"] == "authorization_declined"
