"""A sync of 10,000 messages killed with SIGKILL at random (seeded) moments, several times, with the mailbox
changing in between, then run to the end: the store equals the ground truth, bodies too, no duplicate,
nothing lost.

The moments are drawn from the sync's progress, not the clock (a loaded machine can take seconds just to
start the CLI): each run is stopped at a seeded delta page (the sandbox holds that request and every one
after it), and killed once the store has grown, while the pages fetched before the held one are still being
converted and written. The hold keeps any run from finishing, so every kill must leave the store part-way:
rows stored but not all, a round in progress. That is asserted, so the test cannot pass by killing runs that
had not begun or had already ended.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import pytest
from cryptography.fernet import Fernet

from pipelines.settings import Settings
from pipelines.store import MailStore, StoreError
from sandbox import AdminClient, FaultRule, SandboxProcess
from tests.defs.harness import sandbox_env
from tests.sync.conftest import MAILBOX
from tests.sync.truth import differences, duplicates, expected_messages, stored_emails

pytestmark = pytest.mark.slow

MAILROOM = Path(sys.executable).parent / "mailroom"
KILLS = 5
SEED = 20240107
# A run is held at its 8th to 14th delta request: five runs stay well short of the ~120 a full sync makes.
PAGES = (8, 14)
HOLD_MS = 60_000  # the longest the sandbox holds a request
# How long a held run gets to store something: well within the hold (a guard against a hang, not a measure).
GROWTH_WAIT_S = 30


class Left(NamedTuple):
    """What a kill left in the store."""

    emails: int
    in_round: bool


def stored(store: MailStore) -> Left | None:
    """The emails stored and whether a round is under way (None: no store yet, or busy this instant)."""
    try:
        return Left(store.counts().emails, any(s.status == "in_round" for s in store.sync_states()))
    except StoreError:
        return None


def kill_when_grown(run: subprocess.Popen, store: MailStore, before: int) -> None:
    """SIGKILL the run and its conversion workers (its process group) as soon as the store holds more than
    `before` emails (or, in a run whose pages before the hold held nothing new, after GROWTH_WAIT_S)."""
    deadline = time.monotonic() + GROWTH_WAIT_S
    while time.monotonic() < deadline:
        now = stored(store)
        if now is not None and now.emails > before:
            break
        time.sleep(0.05)
    assert run.poll() is None, "a held run cannot have ended"
    os.killpg(run.pid, signal.SIGKILL)
    run.wait(timeout=30)


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
                **sandbox_env(info),
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

        store = Settings(data_dir=tmp_path / "data").mail_store("crash", read_only=True)
        left: list[Left] = []
        for kill in range(KILLS):
            pages = rng.randint(*PAGES)
            hold = FaultRule(path=r"/messages/delta", nth=pages, times=0, action="hold", delay_ms=HOLD_MS)
            admin.set_faults(rules=[hold])
            before = stored(store) or Left(0, False)
            # Its own session, so the kill takes its HTML-conversion workers too (they are its group).
            run = subprocess.Popen(
                command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
            )
            admin.wait_held(1, mailbox=MAILBOX, timeout=300)
            kill_when_grown(run, store, before.emails)
            admin.release()  # the held requests' client is gone
            admin.set_faults(rules=[])
            after = stored(store)
            assert after is not None  # nothing else holds the file now
            left.append(after)
            # The mailbox does not stand still between runs.
            for message in victims[kill * 6 : kill * 6 + 2]:
                admin.delete_message(MAILBOX, message["id"])
            for message in victims[kill * 6 + 2 : kill * 6 + 4]:
                admin.update_message(MAILBOX, message["id"], categories=["Travel"], flag="flagged")
            for message in victims[kill * 6 + 4 : kill * 6 + 6]:
                admin.move_message(MAILBOX, message["id"], "archive")
            admin.add_message(MAILBOX, subject=f"Arrived after kill {kill}", folder="Inbox/Receipts/2024")
        final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        assert final.returncode == 0, final.stderr
        result = json.loads(final.stdout)
        assert {f["round"] for f in result["folders"]} <= {"resumed", "incremental", "first"}
        assert "resumed" in {f["round"] for f in result["folders"]} or "incremental" in {
            f["round"] for f in result["folders"]
        }

        total = store.counts().emails
        # Every kill landed in the middle: rows stored but not all of them, a round in progress.
        assert all(0 < k.emails < total and k.in_round for k in left), (left, total)

        truth = admin.ground_truth(MAILBOX, bodies="html")
        synced = [f["folder_id"] for f in result["folders"]]
        expected = expected_messages(truth, synced)
        path = Settings(data_dir=tmp_path / "data").mail_store_path("crash")
        assert len(expected) > 10_000
        assert differences(stored_emails(path), expected, bodies=True) == []
        assert duplicates(path) == 0
        runs = store.runs(limit=20)
        assert runs[0].status == "succeeded"
        assert all(r.status == "failed" and "interrupted" in (r.error or "") for r in runs[1:])
        assert store.integrity().ok
