"""`mailroom customers` and `mailroom sync` as a person runs them: subprocesses configured by MAILROOM_*."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from pipelines.graph import DeviceCodeSignIn, EncryptedTokenCache
from pipelines.settings import Settings
from sandbox import AdminClient, SandboxInfo
from tests.defs.harness import sandbox_env
from tests.sync.conftest import MAILBOX, graph_settings
from tests.sync.truth import differences, expected_messages, folder_ids, stored_emails

MAILROOM = Path(sys.executable).parent / "mailroom"


@pytest.fixture
def environment(sandbox_server: SandboxInfo, fresh_sandbox: SandboxInfo, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
    env.update(
        {
            "MAILROOM_DATA_DIR": str(tmp_path / "data"),
            "MAILROOM_SECRET_KEY": Fernet.generate_key().decode(),
            **sandbox_env(sandbox_server),
        }
    )
    return env


def mailroom(env: dict[str, str], *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([MAILROOM, *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == code, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def test_add_a_customer_sync_it_and_remove_it(
    environment: dict[str, str], sandbox_admin: AdminClient
) -> None:
    added = mailroom(environment, "customers", "add", "acme", "--mailbox", MAILBOX, "--interval", "6h")
    assert "auto-sync every 6 h" in added.stdout
    [listed] = [
        json.loads(line) for line in mailroom(environment, "customers", "list", "--json").stdout.split()
    ]
    assert listed["customer_id"] == "acme"
    assert listed["interval_minutes"] == 360
    assert listed["connections"][0]["mailbox"] == MAILBOX
    assert listed["connections"][0]["auth"] == "app"

    first = json.loads(
        mailroom(
            environment, "sync", "--customer", "acme", "--folder", "Inbox/Receipts", "--subfolders", "--json"
        ).stdout
    )
    assert first["status"] == "succeeded"
    assert sorted(f["path"] for f in first["folders"]) == [
        "Inbox/Receipts",
        "Inbox/Receipts/2023",
        "Inbox/Receipts/2024",
    ]
    settings = Settings(data_dir=Path(environment["MAILROOM_DATA_DIR"]))
    truth = sandbox_admin.ground_truth(MAILBOX)
    expected = expected_messages(truth, folder_ids(truth, "Inbox/Receipts", subfolders=True))
    assert differences(stored_emails(settings.mail_store_path("acme")), expected) == []
    assert first["counts"]["inserted"] == len(expected)

    again = mailroom(environment, "sync", "-c", "acme", "-f", "Inbox/Receipts", "--subfolders").stdout
    assert "succeeded" in again
    assert "incremental" in again
    assert "Graph lists every message in the folder" in again

    refused = mailroom(environment, "sync", "-c", "acme", "--filter", "categroy:x", code=1)
    assert "did you mean 'category'" in refused.stderr
    assert "Traceback" not in refused.stderr
    unknown = mailroom(environment, "sync", "-c", "nobody", code=1)
    assert "no customer 'nobody'" in unknown.stderr
    missing = mailroom(environment, "sync", "-c", "acme", "-f", "Inbox/Recepits", code=1)
    assert "did you mean 'Inbox/Receipts'" in missing.stderr

    removed = mailroom(environment, "customers", "remove", "acme", "--yes")
    assert "mail store deleted" in removed.stdout
    assert not settings.mail_store_path("acme").exists()
    assert mailroom(environment, "customers", "list", "--json").stdout.strip() == ""
    mailroom(environment, "customers", "remove", "acme", "--yes", code=1)


def test_a_delegated_connection_from_a_connect_cache_file(
    environment: dict[str, str], sandbox_server: SandboxInfo, sandbox_admin: AdminClient, tmp_path: Path
) -> None:
    cache_file = tmp_path / "megan.cache"
    cache = EncryptedTokenCache(key=environment["MAILROOM_SECRET_KEY"])
    signin = DeviceCodeSignIn(graph_settings(sandbox_server), cache)
    code = signin.start()
    sandbox_admin.approve_device(code.user_code, "megan@contoso.test")
    signin.finish(code)
    cache.write(cache_file)

    added = mailroom(
        environment, "customers", "add", "megan-co", "--auth", "delegated", "--token-cache", str(cache_file)
    )
    assert "megan@contoso.test (delegated)" in added.stdout
    result = json.loads(mailroom(environment, "sync", "-c", "megan-co", "--json").stdout)
    assert result["mailbox"] == "megan@contoso.test"
    assert result["counts"]["inserted"] > 0

    wrong = mailroom(environment, "customers", "add", "x", "--auth", "app", code=2)
    assert "--mailbox" in wrong.stderr
    bad = mailroom(environment, "customers", "add", "x", "--mailbox", MAILBOX, "--interval", "2m", code=2)
    assert "5 minutes" in bad.stderr
