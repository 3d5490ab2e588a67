"""A mail store written by an older Mailroom is upgraded in place: version 1 (no round filters) to the latest,
with its rows and a round under way kept, and the round's filter recorded from then on."""

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pipelines.store import (
    Cursor,
    CustomerUpdate,
    MailStore,
    NotFound,
    Page,
    SchemaError,
    StoreError,
    StoreSettings,
)
from pipelines.store._migrations import latest, migrations
from pipelines.sync._lock import run_lock
from tests.store.conftest import email

FOLDER, FP = "inbox", "fp-v1"


def version_1_store(path: Path) -> None:
    """A file exactly as Mailroom wrote it at schema version 1: a round under way, one page stored."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at TIMESTAMPTZ NOT NULL)")
        con.execute(migrations("mail")[0].sql)
        con.execute("INSERT INTO schema_version VALUES (1, now())")
        con.execute(
            "INSERT INTO folder_sync_state "
            "VALUES (?, ?, 'in_round', 'next-2', NULL, false, 1, now(), NULL, now())",
            [FOLDER, FP],
        )
        con.execute("INSERT INTO file_ids VALUES (1, 'AAMk-00000', '', now())")


def test_a_version_1_store_is_upgraded_and_its_round_goes_on(data_dir: Path) -> None:
    path = data_dir / "old.duckdb"
    version_1_store(path)
    assert latest("mail") >= 2

    store = MailStore(path)
    [state] = store.sync_states()
    assert (state.status, state.next_link, state.pages, state.filter_text) == ("in_round", "next-2", 1, None)
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT max(version) FROM schema_version").fetchone()[0] == latest("mail")

    # The round begun under version 1 finishes; the file id given then is kept, the next one follows it.
    result = store.apply_page(
        Page(FOLDER, FP, upserts=[email(0), email(1)], cursor=Cursor(delta_link="delta-1"))
    )
    assert result.created_file_ids == (1, 2)
    assert store.get_email_by_message_id("AAMk-00000").file_id == 1
    assert store.sync_state(FOLDER, FP).status == "idle"


def test_a_round_records_its_filter_and_a_restart_keeps_it(store: MailStore) -> None:
    assert store.start_round(FOLDER, FP, filter_text="category:Work").filter_text == "category:Work"
    assert store.start_round(FOLDER, FP).filter_text == "category:Work"  # a restart after a 410
    assert store.start_round(FOLDER, "fp-other", filter_text="").filter_text == ""
    assert store.start_round("archive", FP).filter_text is None  # nothing recorded for it
    assert {(s.folder_id, s.fingerprint): s.filter_text for s in store.sync_states()} == {
        (FOLDER, FP): "category:Work",
        (FOLDER, "fp-other"): "",
        ("archive", FP): None,
    }


def test_upgrade_brings_a_store_to_the_latest_schema_without_a_sync(data_dir: Path) -> None:
    path = data_dir / "old.duckdb"
    version_1_store(path)
    reader = MailStore(path, read_only=True)
    with pytest.raises(SchemaError, match="the next sync migrates it"):
        reader.sync_states()  # what the API's readers meet until the store is upgraded

    assert MailStore(path).upgrade() == (1, latest("mail"))
    [state] = reader.sync_states()
    assert (state.next_link, state.pages) == ("next-2", 1)
    assert MailStore(path).upgrade() == (latest("mail"), latest("mail"))  # nothing left to do
    with pytest.raises(StoreError, match="read-only"):
        reader.upgrade()
    with pytest.raises(NotFound):
        MailStore(data_dir / "never-synced.duckdb").upgrade()


def test_mailroom_customers_upgrade_upgrades_every_customers_store(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILROOM_", "DAGSTER_"))}
    env |= {"MAILROOM_DATA_DIR": str(data)}
    settings = StoreSettings(data_dir=data)
    customers = ["old@example.com", "never-synced", "busy"]
    settings.control_store().update_customers(customers, CustomerUpdate())
    version_1_store(settings.mail_store_path("old@example.com"))
    version_1_store(settings.mail_store_path("busy"))

    with run_lock(settings.mail_store_path("busy"), customer_id="busy"):  # a sync under way
        done = subprocess.run(
            [Path(sys.executable).parent / "mailroom", "customers", "upgrade"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"old@example.com: schema 1 -> {latest('mail')}",
        "busy: busy with a run, which upgrades it",
    ]
    [state] = settings.mail_store("old@example.com", read_only=True).sync_states()
    assert state.next_link == "next-2"
    with pytest.raises(SchemaError):  # left to its run
        settings.mail_store("busy", read_only=True).sync_states()
