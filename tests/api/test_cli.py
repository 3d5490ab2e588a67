"""`mailroom api-keys create|list|revoke` and `mailroom api` as a person runs them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from pipelines.api import ApiProcess, ApiSettings
from tests.api.conftest import server_env

MAILROOM = str(Path(sys.executable).parent / "mailroom")


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MAILROOM, *args], env=env, capture_output=True, text=True, timeout=60, check=False)


def test_keys_are_created_listed_used_and_revoked(tmp_path: Path) -> None:
    env = server_env(tmp_path, Fernet.generate_key().decode(), None)
    created = run(env, "api-keys", "create", "billing app")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("mr_")
    assert "cannot be shown again" in created.stderr
    listed = run(env, "api-keys", "list")
    assert "billing app" in listed.stdout
    assert key not in listed.stdout
    assert key[:10] in listed.stdout
    with ApiProcess(env, log_path=tmp_path / "api.log") as api:
        auth = {"authorization": f"Bearer {key}"}
        assert httpx.post(f"{api.url}/list_users", json={}, headers=auth, trust_env=False).status_code == 200
        key_id = listed.stdout.split("\t")[0]
        assert run(env, "api-keys", "revoke", key_id).returncode == 0
        assert httpx.post(f"{api.url}/list_users", json={}, headers=auth, trust_env=False).status_code == 401
    again = run(env, "api-keys", "revoke", key_id)
    assert again.returncode == 2
    assert f"no live API key {key_id}" in again.stderr


def test_mailroom_api_explains_a_missing_secret_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
    env["MAILROOM_DATA_DIR"] = str(tmp_path)
    answer = run(env, "api", "--port", "0")
    assert answer.returncode == 2
    assert "MAILROOM_SECRET_KEY is not set" in answer.stderr
    assert "Traceback" not in answer.stderr
    bad_port = run(env | {"MAILROOM_SECRET_KEY": Fernet.generate_key().decode()}, "api", "--port", "70000")
    assert bad_port.returncode == 2
    assert "port" in bad_port.stderr


def test_mailroom_api_refuses_a_secret_key_that_is_no_fernet_key(tmp_path: Path) -> None:
    # It started, then answered /add_webhook with 503 "retry later" and /integrations/oauth_url with a 500.
    env = server_env(tmp_path, "not-a-fernet-key", None)
    answer = run(env, "api", "--port", "0")
    assert answer.returncode == 2
    assert (
        "mailroom: MAILROOM_SECRET_KEY is not a valid Fernet key (32 url-safe base64-encoded bytes"
        in answer.stderr
    )
    assert "not-a-fernet-key" not in answer.stderr + answer.stdout
    assert "Traceback" not in answer.stderr
    rotated = run(
        env | {"MAILROOM_SECRET_KEY": f"{Fernet.generate_key().decode()},oops"}, "api", "--port", "0"
    )
    assert rotated.returncode == 2
    assert "key 2 of 2 in MAILROOM_SECRET_KEY is not a valid Fernet key" in rotated.stderr


def test_mailroom_api_says_which_address_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        answer = run(server_env(tmp_path, Fernet.generate_key().decode(), None), "api", "--port", str(port))
    assert answer.returncode == 2
    assert f"mailroom: cannot listen on 127.0.0.1:{port}: Address already in use (another" in answer.stderr
    assert "Traceback" not in answer.stderr


def test_a_server_without_outlook_settings_names_the_variables_the_readme_sets(tmp_path: Path) -> None:
    # The README exports MAILROOM_CLIENT_ID and friends; the answer named only the MAILROOM_GRAPH_* twins.
    env = server_env(tmp_path, Fernet.generate_key().decode(), None)
    key = run(env, "api-keys", "create", "t").stdout.strip()
    with ApiProcess(env, log_path=tmp_path / "api.log") as api:
        answer = httpx.post(
            f"{api.url}/integrations/oauth_url",
            json={"service": "OUTLOOK"},
            headers={"authorization": f"Bearer {key}", "customer-id": "c"},
        )
    assert answer.status_code == 502
    message = answer.json()["detail"]
    assert message.startswith("Outlook is not configured on this server: set MAILROOM_CLIENT_ID, ")
    assert "MAILROOM_CLIENT_SECRET and MAILROOM_TENANT_ID" in message


ALL_INTERFACES = "0.0.0.0"  # noqa: S104 (refused below: the point of these tests)


def test_a_non_loopback_host_needs_public_said_explicitly(tmp_path: Path) -> None:
    env = server_env(tmp_path, Fernet.generate_key().decode(), None)
    refused = run(env, "api", "--host", ALL_INTERFACES, "--port", "0")
    assert refused.returncode == 2
    assert "0.0.0.0 is not a loopback address" in refused.stderr
    assert "--public" in refused.stderr
    assert "Traceback" not in refused.stderr
    by_env = run(env | {"MAILROOM_API_HOST": "192.0.2.10"}, "api", "--port", "0")
    assert by_env.returncode == 2
    assert "192.0.2.10 is not a loopback address" in by_env.stderr
    # python -m pipelines.api is the same command, and loads none of the CLI (api must not import cli).
    alone = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pipelines.api", "--host", ALL_INTERFACES, "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert alone.returncode == 2
    assert "0.0.0.0 is not a loopback address" in alone.stderr
    assert "pipelines.api._server" in alone.stderr  # importtime lists what was imported
    assert "pipelines.cli" not in alone.stderr


def test_loopback_hosts_and_public_ones_said_explicitly_are_settings() -> None:
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        assert ApiSettings(host=host).host == host
    assert ApiSettings(host=ALL_INTERFACES, public=True).host == ALL_INTERFACES
    with pytest.raises(ValidationError, match="not a loopback address"):
        ApiSettings(host="10.0.0.5")
