"""Who may read what: 401 for missing, malformed, forged, expired and revoked tokens; 403 and 404 cases."""

import pytest

from sandbox import AdminClient, SandboxInfo
from tests.sandbox.conftest import ADELE, graph_client

INBOX = f"/users/{ADELE}/mailFolders/inbox"


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        ("", "Access token is empty."),
        ("Basic abc", "Access token is empty."),
        ("Bearer nodots", "IDX14100: JWT is not well formed"),
        ("Bearer a.b.c", "IDX14100: JWT is not well formed"),
    ],
)
def test_unusable_tokens_are_401(fresh_sandbox: SandboxInfo, authorization: str, message: str) -> None:
    with graph_client(fresh_sandbox, "unused") as graph:
        response = graph.get(INBOX, headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert response.json()["error"]["message"].startswith(message)
    assert "Bearer" in response.headers["WWW-Authenticate"]


def test_forged_expired_and_revoked_tokens(fresh_sandbox: SandboxInfo, sandbox_admin: AdminClient) -> None:
    token = sandbox_admin.mint_token()
    head, body, signature = token.split(".")
    forged = f"{head}.{body}.{signature[:-2]}AA"
    with graph_client(fresh_sandbox, forged) as graph:
        assert "Invalid signature" in graph.get(INBOX).json()["error"]["message"]
    with graph_client(fresh_sandbox, token) as graph:
        assert graph.get(INBOX).status_code == 200
        sandbox_admin.expire_tokens(token=token)
        expired = graph.get(INBOX)
    assert expired.status_code == 401
    assert expired.json()["error"]["message"] == "Lifetime validation failed, the token is expired."
    user_token = sandbox_admin.mint_token(user=ADELE)
    later = sandbox_admin.mint_token(user="alex@contoso.test")
    sandbox_admin.revoke_tokens(user=ADELE)
    with graph_client(fresh_sandbox, user_token) as graph:
        assert (
            graph.get("/me/mailFolders/inbox").json()["error"]["message"] == "Access token has been revoked."
        )
    with graph_client(fresh_sandbox, later) as graph:
        assert graph.get("/me/mailFolders/inbox").status_code == 200
    fresh = sandbox_admin.mint_token(user=ADELE)
    with graph_client(fresh_sandbox, fresh) as graph:
        assert graph.get("/me/mailFolders/inbox").status_code == 200


def test_forbidden_and_missing_mailboxes(fresh_sandbox: SandboxInfo, sandbox_admin: AdminClient) -> None:
    with graph_client(fresh_sandbox, sandbox_admin.mint_token()) as app_only:
        me = app_only.get("/me/mailFolders")
        assert me.status_code == 403
        assert "delegated" in me.json()["error"]["message"]
        unlicensed = app_only.get("/users/diego@contoso.test/messages")
        assert unlicensed.status_code == 404
        assert unlicensed.json()["error"]["code"] == "MailboxNotEnabledForRESTAPI"
        unknown = app_only.get("/users/nobody@contoso.test/messages")
        assert unknown.json()["error"]["code"] == "ErrorInvalidUser"
        assert app_only.get(f"/users/{ADELE}").status_code == 403
    with graph_client(fresh_sandbox, sandbox_admin.mint_token(user=ADELE)) as delegated:
        assert delegated.get("/me").json()["userPrincipalName"] == ADELE
        assert delegated.get("/users/alex@contoso.test/messages").status_code == 403
        by_id = delegated.get(f"/users/{delegated.get('/me').json()['id']}/mailFolders/inbox")
        assert by_id.status_code == 200
    with graph_client(
        fresh_sandbox, sandbox_admin.mint_token(user=ADELE, scopes=["User.Read"])
    ) as profile_only:
        assert profile_only.get("/me").status_code == 200
        refused = profile_only.get("/me/messages")
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "ErrorAccessDenied"
    with graph_client(fresh_sandbox, sandbox_admin.mint_token(roles=["User.Read.All"])) as no_mail:
        assert no_mail.get(f"/users/{ADELE}/messages").status_code == 403
    refused = [e for e in sandbox_admin.log() if e["status"] == 403]
    assert refused
    assert all(e["route"].startswith("GET /") and e["code"] == "ErrorAccessDenied" for e in refused)
