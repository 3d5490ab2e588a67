"""Store files that cannot be used: a file that is not a database, a mail store cut short, a directory
where a file goes, a file where the data directory goes. Each is a StoreError that names the file and says
what is wrong (never a raw sqlite3, DuckDB or OS error), and the file is left exactly as it was."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from pipelines.store import ControlStore, MailStore, Page, StoreError

JUNK = b"From: someone\r\nSubject: not a database at all\r\n\r\n" * 200


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_control_store_that_cannot_be_opened_is_a_store_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(JUNK)
    with pytest.raises(StoreError, match=r"junk\.sqlite3.*not a database"):
        ControlStore(junk).customer("acme")
    assert junk.read_bytes() == JUNK

    (tmp_path / "a-directory.sqlite3").mkdir()
    with pytest.raises(StoreError, match=r"a-directory\.sqlite3"):
        ControlStore(tmp_path / "a-directory.sqlite3").customer("acme")
    (tmp_path / "a-file").write_text("in the way")
    with pytest.raises(StoreError, match="a-file"):
        ControlStore(tmp_path / "a-file" / "control.sqlite3").customer("acme")


def test_a_mail_store_that_cannot_be_opened_is_a_store_error_and_left_alone(
    tmp_path: Path, store: MailStore
) -> None:
    store.start_round("inbox", "fp")
    store.apply_page(Page("inbox", "fp"))
    files = {}
    junk = files["junk"] = tmp_path / "junk.duckdb"
    junk.write_bytes(JUNK)
    cut = files["cut"] = tmp_path / "cut.duckdb"
    cut.write_bytes(store.path.read_bytes()[: 3 * 4096])
    lite = files["sqlite"] = tmp_path / "sqlite.duckdb"
    sqlite3.connect(lite).execute("CREATE TABLE t (x)").connection.close()
    before = {name: digest(path) for name, path in files.items()}
    for name, path in files.items():
        for read_only in (True, False):
            with pytest.raises(StoreError, match=rf"{path.name}.* not a DuckDB database|{path.name}.*read"):
                MailStore(path, read_only=read_only).counts()
        with pytest.raises(StoreError, match=path.name):
            MailStore(path).start_round("inbox", "fp")
        assert digest(path) == before[name], name

    (tmp_path / "a-file").write_text("in the way")
    with pytest.raises(StoreError, match="a-file"):
        MailStore(tmp_path / "a-file" / "x.duckdb").start_round("inbox", "fp")
