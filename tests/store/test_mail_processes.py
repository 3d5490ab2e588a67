"""The mail store across processes: lock retries, SIGKILL at any moment, offline full-text search."""

import os
import random
import signal
import subprocess
import sys
import textwrap
from importlib.metadata import version
from pathlib import Path

import duckdb
import pytest

from pipelines.store import Cursor, MailStore, Page, StoreBusy
from pipelines.store._duck import fts_extension_file
from tests.store.conftest import email
from tests.store.crash_writer import PAGE_SIZE

ROOT = Path(__file__).resolve().parents[2]


def python(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE, text=True, env=env or os.environ.copy()
    )


def test_duckdb_and_its_fts_extension_are_pinned_together() -> None:
    assert version("duckdb") == duckdb.__version__ == "1.5.5"
    assert version("duckdb-extension-fts") == "1.5.5"
    assert fts_extension_file().parent.name == f"v{duckdb.__version__}"


def test_full_text_search_works_with_no_network_and_no_home(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    script = textwrap.dedent(
        f"""
        from pipelines.store import MailStore, Page, Cursor
        from tests.store.conftest import email
        s = MailStore({str(store)!r})
        s.start_round("inbox", "fp")
        s.apply_page(Page("inbox", "fp", upserts=[email(1, body_text="the kraken invoice")],
                          cursor=Cursor(delta_link="d")))
        s.rebuild_search_index()
        print([h.file_id for h in MailStore({str(store)!r}, read_only=True).search("kraken")])
        """
    )
    home = tmp_path / "home"
    home.mkdir()
    # Any download attempt would go to a closed port and fail.
    env = {
        **os.environ,
        "HOME": str(home),
        "http_proxy": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
    }
    child = python("-c", script, env=env)
    out, _ = child.communicate(timeout=120)
    assert child.returncode == 0
    assert out.strip() == "[1]"
    assert not (home / ".duckdb").exists(), "the extension must load from the wheel, not be installed"


HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def test_readers_and_writers_wait_for_another_process_lock(store: MailStore) -> None:
    store.start_round("inbox", "fp")
    holder = python("-c", HOLDER, str(store.path), "1.5")
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        impatient = MailStore(store.path, read_only=True, lock_timeout=0.2)
        with pytest.raises(StoreBusy, match="locked by another process"):
            impatient.counts()
        patient = MailStore(store.path, lock_timeout=60)
        result = patient.apply_page(Page("inbox", "fp", upserts=[email(1)], cursor=Cursor(delta_link="d")))
        assert result.inserted == 1
    finally:
        holder.wait(timeout=60)
    assert MailStore(store.path, read_only=True).counts().emails == 1


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "crash.duckdb"
    pages = 40
    rng = random.Random(20240501)
    for _ in range(4):
        writer = python("-m", "tests.store.crash_writer", str(path), str(pages))
        assert writer.stdout is not None
        for _ in range(rng.randint(1, 6)):
            if not writer.stdout.readline():
                break
        # Kill somewhere inside the next page's transaction or between two of them.
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=60)
        state = MailStore(path).sync_state("inbox", "fp")
        assert state is not None
        committed = state.pages
        with duckdb.connect(str(path), read_only=True) as con:
            rows, distinct, top = con.execute(
                "SELECT count(*), count(DISTINCT message_id), max(file_id) FROM emails"
            ).fetchone()
        assert rows == distinct == committed * PAGE_SIZE, "a page is in the store exactly when its cursor is"
        assert top == rows
        assert state.next_link == (f"page-{committed}" if committed < pages else None)
    finisher = python("-m", "tests.store.crash_writer", str(path), str(pages))
    finisher.communicate(timeout=300)
    assert finisher.returncode == 0
    store = MailStore(path, read_only=True)
    expected_removed = {f"AAMk-{p * PAGE_SIZE:05d}" for p in range(pages - 1)}
    with duckdb.connect(str(path), read_only=True) as con:
        live = {
            m for (m,) in con.execute("SELECT message_id FROM emails WHERE removed_at IS NULL").fetchall()
        }
        ids = [f for (f,) in con.execute("SELECT file_id FROM emails ORDER BY file_id").fetchall()]
    assert live == {f"AAMk-{n:05d}" for n in range(pages * PAGE_SIZE)} - expected_removed
    assert ids == list(range(1, pages * PAGE_SIZE + 1))
    state = store.sync_state("inbox", "fp")
    assert state is not None
    assert (state.status, state.delta_link) == ("idle", "delta-final")


READER = """
import sys, time
from pathlib import Path
from pipelines.store import MailStore
reader, stop, seen = MailStore(sys.argv[1], read_only=True, lock_timeout=60), Path(sys.argv[2]), []
deadline = time.monotonic() + 120
while not stop.exists() and time.monotonic() < deadline:
    seen.append(reader.counts().emails)
print(len(seen), seen == sorted(seen))
"""


def test_a_writer_is_not_starved_by_reader_processes(tmp_path: Path) -> None:
    # Without the store's gate, three processes reading in a loop keep DuckDB's lock held almost always,
    # and the writer's retries gave up (StoreBusy); with it, the writer goes ahead of new readers.
    path, stop = tmp_path / "busy.duckdb", tmp_path / "stop"
    MailStore(path).start_round("other-folder", "fp")
    readers = [python("-c", READER, str(path), str(stop)) for _ in range(3)]
    try:
        writer = python(
            "-c",
            "import sys\n"
            "from pipelines.store import MailStore\n"
            "from tests.store import crash_writer\n"
            "crash_writer.MailStore = lambda p: MailStore(p, lock_timeout=10)\n"
            "crash_writer.main(sys.argv[1], 4)",
            str(path),
        )
        out, _ = writer.communicate(timeout=300)
    finally:
        stop.touch()
        results = [reader.communicate(timeout=120)[0].split() for reader in readers]
    assert writer.returncode == 0
    assert out.split("\n")[:4] == ["page 0", "page 1", "page 2", "page 3"]
    for count, in_order in results:
        assert int(count) > 0
        assert in_order == "True", "readers see whole pages, in order"
    assert MailStore(path, read_only=True).counts().emails == 4 * PAGE_SIZE - 3
