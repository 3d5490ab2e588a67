"""The engine under the sandbox's fault profiles: throttling, 5xx, dropped connections, replayed and empty
delta pages, 504s for large pages. The store must still equal the ground truth, with no request sent early
and never more than 4 in flight."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from pipelines.settings import Settings
from pipelines.sync import SyncOptions, sync_customer
from sandbox import AdminClient, SandboxInfo, SandboxProcess
from tests.sync.conftest import CUSTOMER, MAILBOX, graph_settings
from tests.sync.truth import differences, duplicates, expected_messages, folder_ids, stored_emails

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def faulty() -> Iterator[SandboxInfo]:
    with SandboxProcess(seed=11, messages=900, startup_timeout=120) as info:
        yield info


def _settings(info: SandboxInfo, tmp_path: Path) -> Settings:
    settings = Settings(
        data_dir=tmp_path / "data",
        secret_key=Fernet.generate_key().decode(),
        graph=graph_settings(info, max_attempts=12, backoff_base_s=0.05, backoff_cap_s=1.0),
    )
    control = settings.control_store()
    [customer] = control.update_customers([CUSTOMER])
    control.save_connection(customer.id, MAILBOX, auth_kind="app")
    return settings


@pytest.mark.parametrize("profile", ["flaky", "hostile"])
def test_a_faulty_graph_still_gives_the_exact_mailbox(
    faulty: SandboxInfo, tmp_path: Path, profile: str
) -> None:
    with AdminClient.for_sandbox(faulty) as admin:
        admin.reset(seed=11, messages=900, profile=profile)
        if profile == "hostile":
            # The profile's own 429s are a draw (seed 11 draws none in this run's 40-odd requests): two more
            # on the first delta pages make sure throttling is met, waited out and counted.
            admin.add_rule(path=r"/messages/delta", status=429, retry_after=1, times=2)
        settings = _settings(faulty, tmp_path)
        options = SyncOptions(folders=("inbox", "archive"), subfolders=True, batch_rows=100)
        first = sync_customer(CUSTOMER, options, settings=settings)
        if profile == "hostile":
            assert first.requests > len(first.folders)  # retries happened
            assert first.throttled_waits >= 2  # Graph's 429s were waited out, and counted
            assert first.throttled_seconds >= 2  # for at least their Retry-After each
            # The run record keeps the same figures as the result handed back.
            totals = settings.mail_store(CUSTOMER).runs(1)[0].totals
            assert (totals.requests, totals.throttled_waits, totals.throttled_seconds) == (
                first.requests,
                first.throttled_waits,
                first.throttled_seconds,
            )
        path = settings.mail_store_path(CUSTOMER)

        truth = admin.ground_truth(MAILBOX)
        inbox = [m for m in truth["messages"] if m["folderPath"] == ["Inbox"]]
        for message in inbox[:5]:
            admin.update_message(MAILBOX, message["id"], categories=["Travel"], isRead=True)
        for message in inbox[5:10]:
            admin.delete_message(MAILBOX, message["id"])
        for message in inbox[10:15]:
            admin.move_message(MAILBOX, message["id"], "Inbox/Receipts/2024")
        for message in inbox[15:18]:
            admin.move_message(MAILBOX, message["id"], "sentitems")
        for n in range(20):
            admin.add_message(MAILBOX, subject=f"Under fire {n}", folder="archive")
        sync_customer(CUSTOMER, options, settings=settings)

        truth = admin.ground_truth(MAILBOX)
        expected = expected_messages(truth, folder_ids(truth, "Inbox", "Archive", subfolders=True))
        assert differences(stored_emails(path), expected) == []
        assert duplicates(path) == 0
        counters = admin.counters(MAILBOX)
        assert counters["max_in_flight"] <= 4
        assert counters["violations"] == 0
        if profile == "hostile":
            assert counters["faults"] > 0
