"""A sync of 10,000 messages killed with SIGKILL at random (seeded) moments, several times, with the mailbox
changing in between, then run to the end: the store equals the ground truth, no duplicate, nothing lost."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from pipelines.settings import Settings
from sandbox import AdminClient, SandboxProcess
from tests.sync.conftest import MAILBOX
from tests.sync.truth import differences, duplicates, expected_messages, stored_emails

pytestmark = pytest.mark.slow

MAILROOM = Path(sys.executable).parent / "mailroom"
KILLS = 5
SEED = 20240107


def test_killed_runs_resume_and_end_equal_to_the_mailbox(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    with (
        SandboxProcess(seed=3, messages=10_000, startup_timeout=120) as info,
        AdminClient.for_sandbox(info) as admin,
    ):
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
        env.update(
            {
                "MAILROOM_DATA_DIR": str(tmp_path / "data"),
                "MAILROOM_SECRET_KEY": Fernet.generate_key().decode(),
                "MAILROOM_GRAPH_URL": info.graph_url,
                "MAILROOM_AUTHORITY": info.authority,
                "MAILROOM_CLIENT_ID": info.client_id,
                "MAILROOM_CLIENT_SECRET": info.client_secret.get_secret_value(),
                "MAILROOM_CA_BUNDLE": str(info.ca_cert),
            }
        )
        subprocess.run(
            [MAILROOM, "customers", "add", "crash", "--mailbox", MAILBOX],
            env=env,
            check=True,
            capture_output=True,
        )
        command = [MAILROOM, "sync", "-c", "crash", "-f", "msgfolderroot", "--subfolders", "--json"]
        truth = admin.ground_truth(MAILBOX)
        assert len(truth["messages"]) > 10_000
        victims = [m for m in truth["messages"] if m["folderPath"] and m["folderPath"][0] == "Inbox"]
        rng.shuffle(victims)

        killed_after = []
        for kill in range(KILLS):
            # Its own session, so the kill takes its HTML-conversion workers too (they are its group).
            run = subprocess.Popen(
                command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
            )
            delay = rng.uniform(1.5, 7.0)
            time.sleep(delay)
            if run.poll() is None:
                os.killpg(run.pid, signal.SIGKILL)
                killed_after.append(round(delay, 2))
            run.wait(timeout=30)
            # The mailbox does not stand still between runs.
            for message in victims[kill * 6 : kill * 6 + 2]:
                admin.delete_message(MAILBOX, message["id"])
            for message in victims[kill * 6 + 2 : kill * 6 + 4]:
                admin.update_message(MAILBOX, message["id"], categories=["Travel"], flag="flagged")
            for message in victims[kill * 6 + 4 : kill * 6 + 6]:
                admin.move_message(MAILBOX, message["id"], "archive")
            admin.add_message(MAILBOX, subject=f"Arrived after kill {kill}", folder="Inbox/Receipts/2024")
        assert len(killed_after) >= KILLS - 1, killed_after  # nearly every run was killed part-way

        final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        assert final.returncode == 0, final.stderr
        result = json.loads(final.stdout)
        assert {f["round"] for f in result["folders"]} <= {"resumed", "incremental", "first"}
        assert "resumed" in {f["round"] for f in result["folders"]} or "incremental" in {
            f["round"] for f in result["folders"]
        }

        truth = admin.ground_truth(MAILBOX)
        synced = [f["folder_id"] for f in result["folders"]]
        expected = expected_messages(truth, synced)
        path = Settings(data_dir=tmp_path / "data").mail_store_path("crash")
        stored = stored_emails(path)
        assert len(expected) > 10_000
        assert differences(stored, expected) == []
        assert duplicates(path) == 0
        store = Settings(data_dir=tmp_path / "data").mail_store("crash", read_only=True)
        runs = store.runs(limit=20)
        assert runs[0].status == "succeeded"
        assert all(r.status == "failed" and "interrupted" in (r.error or "") for r in runs[1:])
        assert store.integrity().ok
