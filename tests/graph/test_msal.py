"""Real MSAL against the sandbox's sign-in endpoints over TLS: client credentials, the auth-code flow with
PKCE and nonce, the device code, refresh after forced expiry, and a sealed cache on disk."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from pipelines.graph import (
    KEY_VARIABLE,
    AuthCodeSignIn,
    AuthError,
    ClientCredentialsProvider,
    DelegatedTokenProvider,
    DeviceCodeSignIn,
    EncryptedTokenCache,
    GraphClient,
    TokenCacheError,
)

pytestmark = pytest.mark.anyio

REDIRECT = "http://localhost:8400/callback"


def browser_visit(auth_uri: str, ca_cert: Path) -> dict[str, str]:
    """What a browser does: open the sign-in page and come back to the redirect URI with its query."""
    with httpx.Client(verify=ssl.create_default_context(cafile=str(ca_cert)), trust_env=False) as browser:
        response = browser.get(auth_uri, follow_redirects=False)
    assert response.status_code in (302, 303), response.text[:300]
    location = response.headers["location"]
    assert location.startswith(REDIRECT)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def test_client_credentials_and_a_refresh_after_forced_expiry(sandbox_settings, sandbox_admin) -> None:
    provider = ClientCredentialsProvider(sandbox_settings)
    async with GraphClient(sandbox_settings, provider) as graph:
        adele = graph.user("adele@contoso.test")
        first = await adele.get_folder("inbox")
        sandbox_admin.expire_tokens(app=sandbox_settings.client_id)
        second = await adele.get_folder("inbox")
    assert first.id == second.id
    assert graph.stats.token_refreshes == 1
    assert graph.stats.by_status.get(401) == 1


async def test_a_wrong_client_secret_is_an_auth_error_without_the_secret(sandbox_settings) -> None:
    wrong = sandbox_settings.model_copy(update={"client_secret": SecretStr("definitely-wrong-secret")})
    provider = ClientCredentialsProvider(wrong, name="connection contoso-app")
    async with GraphClient(wrong, provider) as graph:
        with pytest.raises(
            AuthError, match="connection contoso-app: sign-in failed: invalid_client"
        ) as caught:
            await graph.user("adele@contoso.test").get_folder("inbox")
    assert "definitely-wrong-secret" not in str(caught.value)


async def test_auth_code_flow_with_pkce_then_silent_refresh_from_a_sealed_cache(
    sandbox_settings, sandbox_admin, tmp_path
) -> None:
    key = Fernet.generate_key()
    cache = EncryptedTokenCache(key=key)
    signin = AuthCodeSignIn(sandbox_settings, cache)
    flow = signin.start(REDIRECT, login_hint="alex@contoso.test")
    query = urlsplit(flow["auth_uri"]).query
    sent = parse_qs(query)
    assert sent["code_challenge_method"] == ["S256"]
    assert "nonce" in sent
    assert "code_verifier" not in query
    signed_in = signin.finish(flow, browser_visit(flow["auth_uri"], sandbox_settings.ca_bundle))
    assert signed_in.username == "alex@contoso.test"
    assert cache.client == "confidential"

    path = tmp_path / "alex.cache"
    assert cache.write(path)
    raw = path.read_bytes()
    assert b"alex@contoso.test" not in raw
    with pytest.raises(TokenCacheError):
        EncryptedTokenCache.read(path, key=Fernet.generate_key())

    reopened = EncryptedTokenCache.read(path, key=key)
    provider = DelegatedTokenProvider(sandbox_settings, reopened, name="connection alex")
    async with GraphClient(sandbox_settings, provider) as graph:
        inbox = await graph.me().get_folder("inbox")
        assert not reopened.changed  # the cached access token served
        sandbox_admin.expire_tokens(user="alex@contoso.test")
        again = await graph.me().get_folder("inbox")
    assert inbox.id == again.id
    assert graph.stats.token_refreshes == 1
    assert reopened.changed  # the refresh rotated tokens: store the cache back
    assert reopened.write(path)


async def test_a_revoked_sign_in_asks_for_a_new_connection(sandbox_settings, sandbox_admin) -> None:
    cache = EncryptedTokenCache(key=Fernet.generate_key())
    signin = AuthCodeSignIn(sandbox_settings, cache)
    flow = signin.start(REDIRECT, login_hint="megan@contoso.test")
    signin.finish(flow, browser_visit(flow["auth_uri"], sandbox_settings.ca_bundle))
    provider = DelegatedTokenProvider(sandbox_settings, cache, name="connection megan")
    async with GraphClient(sandbox_settings, provider) as graph:
        await graph.me().get_folder("inbox")
        sandbox_admin.revoke_tokens(user="megan@contoso.test")
        with pytest.raises(AuthError, match="connection megan") as caught:
            await graph.me().get_folder("inbox")
    assert "invalid_grant" in str(caught.value)


def test_a_callback_that_does_not_match_its_flow_is_refused(sandbox_settings) -> None:
    signin = AuthCodeSignIn(sandbox_settings, EncryptedTokenCache(key=Fernet.generate_key()))
    flow = signin.start(REDIRECT)
    with pytest.raises(AuthError, match="does not match its flow"):
        signin.finish(flow, {"code": "stolen", "state": "someone-elses"})


async def test_device_code_sign_in(sandbox_settings, sandbox_admin) -> None:
    cache = EncryptedTokenCache(key=Fernet.generate_key())
    signin = DeviceCodeSignIn(sandbox_settings, cache)
    code = signin.start()
    assert code.user_code in code.message
    assert sandbox_admin.approve_device(code.user_code, "adele@contoso.test")
    signed_in = signin.finish(code)
    assert signed_in.username == "adele@contoso.test"
    assert cache.client == "public"
    async with GraphClient(sandbox_settings, DelegatedTokenProvider(sandbox_settings, cache)) as graph:
        inbox = await graph.me().get_folder("inbox")
    assert inbox.display_name == "Inbox"


@pytest.mark.slow
def test_mailroom_connect_signs_in_at_a_terminal(
    sandbox_server, sandbox_settings, sandbox_admin, tmp_path
) -> None:
    key = Fernet.generate_key().decode()
    cache = tmp_path / "connections" / "adele.cache"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
    env |= {
        KEY_VARIABLE: key,
        "MAILROOM_GRAPH_CLIENT_ID": sandbox_server.client_id,
        "MAILROOM_GRAPH_TENANT": sandbox_server.tenant_id,
    }
    command = [
        str(Path(sys.executable).parent / "mailroom"),
        "connect",
        "--cache",
        str(cache),
        "--authority-host",
        str(sandbox_settings.authority_host),
        "--graph-url",
        sandbox_server.graph_url,
        "--ca-bundle",
        str(sandbox_server.ca_cert),
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        prompt = process.stderr.readline()
        user_code = next(
            word for word in prompt.replace(".", " ").split() if word.isupper() and len(word) >= 6
        )
        assert sandbox_admin.approve_device(user_code, "adele@contoso.test")
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "Signed in as adele@contoso.test" in out
    assert "Checked: Inbox holds" in out
    assert EncryptedTokenCache.read(cache, key=key).account
    with pytest.raises(TokenCacheError):
        EncryptedTokenCache.read(cache, key=Fernet.generate_key())


def test_mailroom_connect_says_what_is_wrong_with_its_settings(tmp_path) -> None:
    mailroom = str(Path(sys.executable).parent / "mailroom")
    result = subprocess.run(
        [mailroom, "connect", "--cache", str(tmp_path / "c"), "--graph-url", "http://graph.test/v1.0"],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")},
        check=False,
    )
    assert result.returncode == 2
    assert "graph_url" in result.stderr
    assert "https" in result.stderr
    assert "Traceback" not in result.stderr


def test_mailroom_connect_without_a_key_says_how_to_make_one(tmp_path) -> None:
    mailroom = str(Path(sys.executable).parent / "mailroom")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
    result = subprocess.run(
        [mailroom, "connect", "--cache", str(tmp_path / "c"), "--client-id", "x"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 1
    assert f"{KEY_VARIABLE} is not set" in result.stderr
    assert "Fernet.generate_key()" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "c").exists()
