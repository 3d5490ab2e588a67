"""The API's shared reader: mail stores attached read-only to one in-memory DuckDB, released for writers."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.store import FileQuery, MailStore, StoreNotFound, mail_store_path
from pipelines.store._api_reads import SharedReader
from tests.api.mail import email, fill, with_attachment

WRITER = """
import sys, time
from tests.api.mail import email, fill, with_attachment
started = time.monotonic()
fill(__import__("pathlib").Path(sys.argv[1]), sys.argv[2], [email(n) for n in range(1, 16)])
print(time.monotonic() - started)
"""


@pytest.fixture
def reader() -> Iterator[SharedReader]:
    shared = SharedReader(lock_timeout=20, idle_s=5.0, poll_s=0.02)
    yield shared
    shared.close()


def test_a_writer_in_another_process_gets_the_store_while_it_is_attached(
    reader: SharedReader, tmp_path: Path
) -> None:
    fill(tmp_path, "c", [email(n) for n in range(1, 6)])
    path = mail_store_path(tmp_path, "c")
    assert reader.list_files(path, FileQuery()).count == 5
    assert reader._attached  # kept attached: idle_s is 5 s here
    root = Path(__file__).resolve().parents[2]
    command = [sys.executable, "-c", WRITER, str(tmp_path), "c"]
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) < 5  # the reader yielded at once, not after its idle time
    page = reader.list_files(path, FileQuery(limit=100))
    assert page.count == 15  # attached again, after the write: no stale answer survives


def test_an_idle_store_is_let_go_and_a_missing_one_is_not_found(tmp_path: Path) -> None:
    shared = SharedReader(idle_s=0.1, poll_s=0.02)
    try:
        fill(tmp_path, "c", [email(1)])
        path = mail_store_path(tmp_path, "c")
        assert [r.message_id for r in shared.list_files(path, FileQuery()).results] == ["AAMk-000001"]
        deadline = time.monotonic() + 5
        while shared._attached and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not shared._attached
        with pytest.raises(StoreNotFound):
            shared.list_files(mail_store_path(tmp_path, "nobody"), FileQuery())
    finally:
        shared.close()


QUERIES = [
    FileQuery(limit=7, offset=3, order_by="id", order_dir="desc"),
    FileQuery(name_contains="invoice", limit=50, order_by="name"),
    FileQuery(file_ids=[2, 4, 6], limit=5),
    FileQuery(limit=0),
    FileQuery(limit=100, include_removed=True, order_by="file_size"),
    FileQuery(kinds=["attachment"], order_by="name", order_dir="desc"),
    FileQuery(parent_file_ids=[4], include_removed=True),
    FileQuery(limit=5, offset=28, order_by="created_at", order_dir="desc"),
    FileQuery(limit=5, offset=100),
    *(FileQuery(limit=4, offset=o, order_by=by, order_dir=d)
      for o in (0, 9, 33) for by in ("updated_at", "name", "last_sync", "id") for d in ("asc", "desc")),
    # Last, so that they run where the files are loaded (the copy holds names lower-cased).
    FileQuery(name_contains="REPORT 1", limit=50, order_by="name", order_dir="desc"),
    FileQuery(name_contains="", limit=50, include_removed=True),
    FileQuery(name_contains="Notes-", kinds=["attachment"], limit=50),
]  # fmt: skip


def mailbox(tmp_path: Path, customer: str) -> MailStore:
    """30 emails (every 4th with an attachment, so 37 files), one removed from the mailbox and one deleted."""
    store = fill(tmp_path, customer, [with_attachment(n) if n % 4 == 0 else email(n) for n in range(1, 31)])
    store.remove_messages(["AAMk-000007"])
    store.delete_files([11])
    return store


@pytest.mark.parametrize("keep_files", [100_000, 0], ids=["files loaded", "files over the budget"])
def test_the_reader_agrees_with_the_mail_store(tmp_path: Path, keep_files: int) -> None:
    store = mailbox(tmp_path, "c")
    path = mail_store_path(tmp_path, "c")
    expected = [store.list_files(query) for query in QUERIES]  # first: the store's writes detach readers
    shared = SharedReader(lock_timeout=20, idle_s=60, keep_files=keep_files)
    try:
        for _ in range(2):  # the second time round, from what the reader kept
            for query, page in zip(QUERIES, expected, strict=True):
                assert shared.list_files(path, query) == page, query
        (entry,) = shared._attached.values()
        assert (entry.files is not None) == bool(keep_files)  # loaded after a few pages, if they fit ...
        assert (entry.source != "files") == bool(keep_files)  # ... and filtered in memory from then on
    finally:
        shared.close()
    assert shared._kept == 0  # detaching gave the files' share back


def test_pandas_is_not_looked_for_at_every_bound_parameter(tmp_path: Path) -> None:
    fill(tmp_path, "c", [email(1)])
    script = f"""
import importlib.machinery, importlib.util, sys
from pathlib import Path
from pipelines.store import FileQuery, mail_store_path
from pipelines.store._api_reads import SharedReader
if importlib.util.find_spec("pandas") is not None:
    sys.exit(0)  # installed: nothing to remember
searches = []
find = importlib.machinery.PathFinder.find_spec
def counting(name, *args):
    searches.append(name)
    return find(name, *args)
importlib.machinery.PathFinder.find_spec = counting
reader = SharedReader()
path = mail_store_path(Path({str(tmp_path)!r}), "c")
for n in range(5):
    assert reader.list_files(path, FileQuery(name_contains=str(n), message_ids=["x", "y"])).count == 0
reader.close()
print(searches.count("pandas"))
"""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in ("", "1")  # the one look when the reader starts, then never again


def test_a_store_held_by_a_writer_holds_up_only_its_own_readers(reader: SharedReader, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from pipelines.store._gate import gate

    fill(tmp_path, "a", [email(1)])
    fill(tmp_path, "b", [email(2)])
    a, b = mail_store_path(tmp_path, "a"), mail_store_path(tmp_path, "b")
    with ThreadPoolExecutor(1) as pool:
        with gate(a, writer=True, timeout=5):  # a sync run's unit of work on customer a
            waiting = pool.submit(reader.list_files, a, FileQuery())
            time.sleep(0.3)
            assert not waiting.done()  # a's reader queues behind the writer ...
            assert reader.list_files(b, FileQuery()).count == 1  # ... b's is answered meanwhile:
            assert not waiting.done()  # a is still held, so b's answer did not wait for a's writer
        assert waiting.result(timeout=10).count == 1
