"""Opening DuckDB files: retry another process's lock with jittered backoff, load full-text search offline."""

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import duckdb

from pipelines.store._errors import StoreBusy, StoreError, StoreNotFound
from pipelines.store._gate import gate

# DuckDB answers a lock conflict at once (no built-in wait); these bound how long we keep asking.
DEFAULT_LOCK_TIMEOUT = 30.0
_FIRST_DELAY = 0.005
_MAX_DELAY = 0.5
WRITER_MEMORY_LIMIT_MB = 128
ROW_GROUP_ROWS = 16_384
_LOCK_MESSAGES = ("Could not set lock", "Conflicting lock")
_MAGIC, _MAGIC_END = b"DUCK", 12  # a DuckDB file's header holds "DUCK" at bytes 8 to 11
T = TypeVar("T")


def is_lock_conflict(error: BaseException) -> bool:
    """True when DuckDB refused the file because another process holds its lock."""
    return isinstance(error, duckdb.IOException) and any(m in str(error) for m in _LOCK_MESSAGES)


def backoff_delays(timeout: float, rng: random.Random | None = None) -> Iterator[float]:
    """Full-jitter exponential delays whose sum stays within `timeout` seconds."""
    rng = rng or random.Random()
    spent, ceiling = 0.0, _FIRST_DELAY
    while spent < timeout:
        delay = min(rng.uniform(0, ceiling), timeout - spent)
        spent += delay
        ceiling = min(ceiling * 2, _MAX_DELAY)
        yield delay


def _connect_once(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    config: dict[str, object] = {
        # Never reach for the network: FTS comes from the wheel (load_fts), nothing else is needed.
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    }
    if not read_only:
        # A write is one page or a few: too small for DuckDB's threads to pay off, and a sync run needs the
        # machine's other cores for fetching and converting (measured: a third less CPU per row).
        config["threads"] = 1
        # Without a limit, the checkpoint that closes each write holds the table's trailing row groups in
        # memory, so a writer's peak grows with the mailbox (measured: 350 MiB at 20,000 emails, 600 MiB at
        # 80,000); with it DuckDB evicts and spills (to `<store>.tmp`) and the peak stays flat. A write of a
        # big page (attachment content) raises it for itself (`mail._room_for`).
        config["memory_limit"] = f"{WRITER_MEMORY_LIMIT_MB}MB"
        config["temp_directory"] = f"{path}.tmp"
        # A checkpoint rewrites the table's trailing row group whole, so its memory grows with the row group
        # until the group is full: DuckDB's default of 122,880 rows is 250 MB of emails. Row groups of
        # 16,384 bound it (measured over 100,000 emails: the writer's peak grew 61 MiB from 20,000 emails
        # with the default, 6 MiB with these). The size is an option of ATTACH, not of connect.
        con = duckdb.connect(":memory:", config=config)
        try:
            con.execute(f"ATTACH {_literal(path)} AS mail (ROW_GROUP_SIZE {ROW_GROUP_ROWS})")
            con.execute("USE mail")
        except BaseException:
            con.close()
            raise
    else:
        con = duckdb.connect(str(path), read_only=True, config=config)
    # Timestamps go in and come out in UTC whatever the machine's zone.
    con.execute("SET TimeZone = 'UTC'")
    return con


def _literal(path: Path) -> str:
    """A path as a SQL string literal (ATTACH and LOAD take no bound parameters)."""
    return "'" + str(path).replace("'", "''") + "'"


@contextmanager
def connection(
    path: Path, *, read_only: bool, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
) -> Iterator[duckdb.DuckDBPyConnection]:
    """One short-lived connection behind the store's gate; retries DuckDB's lock with jitter; always closes.

    The gate orders Mailroom's own processes (a waiting writer goes before new readers); the retries cover
    anything else that opens the file (a notebook, the DuckDB CLI). Each may wait up to `lock_timeout`.
    """
    if read_only and not path.exists():
        raise StoreNotFound(f"no mail store at {path}: nothing has been synced for this customer yet")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StoreError(
            f"cannot use the directory of mail store {path.name} ({path.parent}): {error.strerror or error}"
        ) from error
    with gate(path, writer=not read_only, timeout=lock_timeout):
        if read_only and not path.exists():
            raise StoreNotFound(f"no mail store at {path}: it was deleted")
        con = _open_with_retry(path, read_only, lock_timeout)
        try:
            yield con
        finally:
            con.close()


def retry_locked(attempt: Callable[[], T], path: Path, lock_timeout: float) -> T:
    """`attempt()` (opening or attaching the store at `path`), again after jittered backoff while another
    process holds the file's lock; StoreBusy once `lock_timeout` seconds are spent, StoreError for other
    refusals."""
    delays = backoff_delays(lock_timeout)
    while True:
        try:
            return attempt()
        except duckdb.IOException as error:
            if not is_lock_conflict(error):
                raise _refusal(path, error) from error
            delay = next(delays, None)
            if delay is None:
                raise StoreBusy(
                    f"mail store {path.name} stayed locked by another process for {lock_timeout:.0f} s"
                ) from error
            time.sleep(delay)


def _refusal(path: Path, error: duckdb.Error) -> StoreError:
    """Why DuckDB refused the file, for an operator. A file that is not DuckDB's (its header lacks DuckDB's
    magic bytes) is said to be so: DuckDB's own word for a SQLite file is a missing extension to install."""
    try:
        with path.open("rb") as file:
            header = file.read(_MAGIC_END)
    except OSError:
        header = None
    if header is not None and header[_MAGIC_END - len(_MAGIC) :] != _MAGIC:
        return StoreError(
            f"mail store {path.name} is not a DuckDB database ({path}); it is left as it is: move it aside "
            "to start this customer's store afresh, or put back a copy from a backup"
        )
    return StoreError(f"cannot open mail store {path.name}: {error}")


def _open_with_retry(path: Path, read_only: bool, lock_timeout: float) -> duckdb.DuckDBPyConnection:
    try:
        return retry_locked(lambda: _connect_once(path, read_only), path, lock_timeout)
    except duckdb.ConnectionException as error:
        # Same process, different read_only flag: a programming error, not contention.
        raise StoreError(
            f"mail store {path.name} is already open in this process in another mode: {error}"
        ) from error


def fts_extension_file() -> Path:
    """The FTS extension shipped by the `duckdb-extension-fts` wheel for the installed DuckDB version."""
    import duckdb_extension_fts

    version = duckdb.__version__
    found = Path(duckdb_extension_fts.__file__).parent / "extensions" / f"v{version}" / "fts.duckdb_extension"
    if not found.is_file():
        raise StoreError(
            f"full-text search needs duckdb-extension-fts built for duckdb {version}; "
            f"{found.parent} has none (pin both packages to the same version)"
        )
    return found


def load_fts(con: duckdb.DuckDBPyConnection) -> None:
    """Load FTS from the wheel's file: no INSTALL, so nothing is written to ~/.duckdb nor downloaded.

    `duckdb_extensions.import_extension` would INSTALL the same file into the home directory first; that
    package is not a dependency of `duckdb-extension-fts` 1.5.5 (so not in our lock), and loading the file
    directly also works where the home directory is read-only or empty (tested: empty HOME, no network).
    """
    con.execute(f"LOAD {_literal(fts_extension_file())}")  # the path is ours (site-packages)
