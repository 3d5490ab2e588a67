"""`mailroom api-keys create|list|revoke` and `mailroom api` as a person runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

from pipelines.api import ApiProcess
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
