"""The mail store: one DuckDB file per customer, written page by page by sync runs and read by everyone else.

Writes are units of work: each public write method opens the file, runs one transaction and closes it, so
a writer never holds the file between pages (DESIGN invariant 5). `apply_page` writes a page's rows, its
removals and the cursor that follows it in that one transaction (invariant 2). Readers open short connections,
read-only unless the store was opened for writing (DuckDB refuses two modes on one file in one process).
"""

import shutil
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson

from pipelines.store import _mail_sql as sql
from pipelines.store._duck import DEFAULT_LOCK_TIMEOUT, WRITER_MEMORY_LIMIT_MB, connection, load_fts
from pipelines.store._errors import ConflictError, NotFound, SchemaError, StoreError
from pipelines.store._mail_rows import (
    EMAIL_COLUMNS,
    attachment_contents,
    email_payload,
    email_row_from_record,
    to_json,
)
from pipelines.store._mail_types import (
    MAX_ID,
    AttachmentRecord,
    AttachmentRow,
    Cursor,
    DeleteResult,
    EmailRecord,
    EmailRow,
    EmailSummary,
    FilePage,
    FileQuery,
    FolderRow,
    Integrity,
    KnownMessage,
    Page,
    PageResult,
    ResyncResult,
    RunRecord,
    RunStart,
    RunTotals,
    SearchHit,
    SearchIndexStatus,
    StoreCounts,
    SyncState,
)
from pipelines.store._migrations import latest, pending
from pipelines.store._paths import derived_paths, mail_store_path
from pipelines.store._tags import TagValue, merge_tags, tag_pairs

# Attachment content above this stays out of the store (metadata only, content_state 'too_large').
# Kept inside the database rather than as files beside it: a file written outside the transaction could
# outlive a crash or a delete, and the file for a customer would no longer be the whole of its data.
DEFAULT_MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024
# Parsing a page's JSON into DuckDB takes up to about this many times its size.
PAYLOAD_MEMORY_FACTOR = 5


def _json_list(values: Sequence[Any]) -> str:
    return to_json(list(values))


def _file_id_list(file_ids: Sequence[int]) -> str:
    """File ids as the JSON list the statements read. An id no BIGINT can hold names no file: it is left out
    (so reported as not found) rather than failing the statement."""
    return _json_list([f for f in file_ids if -MAX_ID <= f <= MAX_ID])


def _rows(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


class MailStore:
    """One customer's mail store file.

    >>> store = MailStore.for_customer("/var/lib/mailroom", "team@carbon.ai")
    >>> store.start_round("inbox-id", "fp")
    >>> result = store.apply_page(Page("inbox-id", "fp", upserts=rows, cursor=Cursor(next_link=url)))
    """

    def __init__(
        self,
        path: str | Path,
        *,
        read_only: bool = False,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES,
    ) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.lock_timeout = lock_timeout
        self.max_attachment_bytes = max_attachment_bytes
        self._migrated = False

    @classmethod
    def for_customer(cls, data_dir: str | Path, customer_id: str, **options: Any) -> "MailStore":
        """The store of `customer_id` under `data_dir` (see `mail_store_path`)."""
        return cls(mail_store_path(data_dir, customer_id), **options)

    def __repr__(self) -> str:
        return f"MailStore({str(self.path)!r}, read_only={self.read_only})"

    def exists(self) -> bool:
        """Whether the file exists (a customer that was never synced has none)."""
        return self.path.exists()

    # -- connections -----------------------------------------------------------------------------------

    def _migrate(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute(sql.CREATE_SCHEMA_VERSION)
        for migration in pending("mail", con.execute(sql.CURRENT_VERSION).fetchone()[0]):
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(migration.sql)
                con.execute(sql.RECORD_VERSION, [migration.version])
                con.execute("COMMIT")
            except duckdb.Error as error:
                con.execute("ROLLBACK")
                raise SchemaError(f"mail store migration {migration.name} failed: {error}") from error
        self._migrated = True

    def _check_version(self, con: duckdb.DuckDBPyConnection) -> None:
        try:
            current = con.execute(sql.CURRENT_VERSION).fetchone()[0]
        except duckdb.CatalogException as error:
            raise SchemaError(f"{self.path.name} is not a Mailroom mail store") from error
        pending("mail", current)  # refuses a file newer than this code
        if current < latest("mail"):
            raise SchemaError(
                f"{self.path.name} is at schema version {current}; "
                f"the next sync migrates it to {latest('mail')}"
            )

    def upgrade(self) -> tuple[int, int]:
        """Bring the file to the schema this code writes now, rather than at its next sync (the API's readers
        refuse a file at an older version until then); returns (version before, version after)."""
        if self.read_only:
            raise StoreError(f"{self!r} was opened read-only; open it for writing to upgrade it")
        if not self.path.exists():
            raise NotFound(f"{self.path.name} does not exist")
        with connection(self.path, read_only=False, lock_timeout=self.lock_timeout) as con:
            con.execute(sql.CREATE_SCHEMA_VERSION)
            before = con.execute(sql.CURRENT_VERSION).fetchone()[0]
            self._migrate(con)
        return before, latest("mail")

    @contextmanager
    def _write(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One unit of work: open, migrate on first use, one transaction, close."""
        if self.read_only:
            raise StoreError(f"{self!r} was opened read-only; only sync runs write the mail store")
        with connection(self.path, read_only=False, lock_timeout=self.lock_timeout) as con:
            if not self._migrated:
                self._migrate(con)
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with connection(self.path, read_only=self.read_only, lock_timeout=self.lock_timeout) as con:
            if self.read_only:
                self._check_version(con)
            elif not self._migrated:
                self._migrate(con)
            yield con

    # -- writes: folders and rounds --------------------------------------------------------------------

    def upsert_folders(self, folders: Sequence[FolderRow]) -> None:
        """Record the mailbox's folders (replacing what was known of the same ids); the emails of a folder
        whose path changed (renamed, or moved) take the new one."""
        with self._write() as con:
            con.execute(sql.LOAD_FOLDERS, [_json_list(folders)])
            con.execute(sql.REPLACE_FOLDERS)
            con.execute(sql.INSERT_FOLDERS)
            con.execute(sql.RENAME_FOLDER_EMAILS)

    def forget_folders(self, folder_ids: Sequence[str]) -> None:
        """Drop the records of folders deleted from the mailbox, so the next run walks the tree again."""
        with self._write() as con:
            con.execute(sql.DELETE_FOLDERS, [_json_list(folder_ids)])

    def start_round(
        self, folder_id: str, fingerprint: str, *, sweep: bool = True, filter_text: str | None = None
    ) -> SyncState:
        """Begin a folder's round from scratch (first sync, a changed filter, or a restart after a 410).

        With `sweep` (the default, and what a restart needs) the rows of the folder that the round does not
        list again are removed when it ends, so deletions missed while the cursor was lost are not lost.
        `filter_text` is the canonical text of the filter the fingerprint was made from, recorded so that a
        resync can tell which messages the store is meant to hold; None keeps the text recorded for this
        folder and fingerprint (a restart).
        """
        with self._write() as con:
            if filter_text is None and (previous := _state(con, folder_id, fingerprint)) is not None:
                filter_text = previous.filter_text
            con.execute(sql.DELETE_STATE, [folder_id, fingerprint])
            con.execute(sql.DELETE_FOLDER_MARKS, [folder_id])
            con.execute(sql.INSERT_STATE, [folder_id, fingerprint, sweep, filter_text])
            state = _state(con, folder_id, fingerprint)
        assert state is not None  # just inserted in this transaction
        return state

    def forget_sync_state(self, folder_id: str | None = None) -> int:
        """Drop stored cursors (of one folder, or all), so the next sync lists from scratch."""
        with self._write() as con:
            if folder_id is None:
                con.execute(sql.DELETE_ALL_MARKS)
                return len(con.execute(sql.DELETE_ALL_STATES).fetchall())
            con.execute(sql.DELETE_FOLDER_MARKS, [folder_id])
            return len(con.execute(sql.DELETE_FOLDER_STATES, [folder_id]).fetchall())

    # -- writes: pages ---------------------------------------------------------------------------------

    def apply_page(self, page: Page) -> PageResult:
        """Store a page's messages, apply its removals and move its cursor on, all in one transaction.

        Idempotent: replaying a page changes nothing. A message already stored in another folder is moved; a
        message deleted through Mailroom is skipped (reason 'tombstoned'); a row whose content hash is
        unchanged is not rewritten. Removals only touch rows still in `page.folder_id`, so a move processed
        in the destination folder first is not undone by the source folder's `@removed`.
        """
        return self.apply_pages([page])[0]

    def apply_pages(self, pages: Sequence[Page]) -> list[PageResult]:
        """Several pages, of one folder or of several, applied in order in one transaction (each exactly as
        `apply_page` would): a writer that has more than one page ready pays the fixed cost of a transaction
        (opening the file, committing, checkpointing) once for all of them."""
        with self._write() as con:
            return [self._apply(con, page) for page in pages]

    def _apply(self, con: duckdb.DuckDBPyConnection, page: Page) -> PageResult:
        state = _state(con, page.folder_id, page.fingerprint)
        if state is None:
            raise ConflictError(
                f"no round for folder {page.folder_id!r} and filter {page.fingerprint!r}; "
                "call start_round first"
            )
        outcomes = self._upsert(con, page.upserts, page.request_id) if page.upserts else []
        if page.tags:
            _tag(con, [row.message_id for row in page.upserts] + list(page.seen), page.tags)
        removed = _remove(con, page.removals, folder_id=page.folder_id) if page.removals else []
        if state.sweep:
            _mark(con, page.folder_id, [row.message_id for row in page.upserts] + list(page.seen))
        finished = page.cursor.next_link is None
        swept = _sweep(con, page.folder_id) if finished and state.sweep else []
        self._advance(con, page.folder_id, page.fingerprint, page.cursor)
        return _page_result(outcomes, removed, swept, finished)

    def _advance(
        self, con: duckdb.DuckDBPyConnection, folder_id: str, fingerprint: str, cursor: Cursor
    ) -> None:
        if cursor.next_link is not None:
            con.execute(sql.ADVANCE_ROUND, [cursor.next_link, folder_id, fingerprint])
        else:
            con.execute(sql.FINISH_ROUND, [cursor.delta_link, folder_id, fingerprint])

    def _load_incoming(
        self, con: duckdb.DuckDBPyConnection, rows: Sequence[EmailRow]
    ) -> list[tuple[str, str, bytes]]:
        """Load a page into the `incoming` tables; returns the attachment content to set once inserted."""
        # The last occurrence of a message id in a page wins, as it would have if applied one by one.
        latest_rows = {row.message_id: row for row in rows}
        emails, attachments, contents = [], [], []
        for ordinal, row in enumerate(latest_rows.values()):
            payload, row_attachments = email_payload(row, ordinal, self.max_attachment_bytes)
            emails.append(payload)
            attachments.extend(row_attachments)
            if row.attachments:
                contents += attachment_contents(row.message_id, row.attachments, self.max_attachment_bytes)
        emails_json = to_json(emails)
        _room_for(con, len(emails_json), sum(len(content) for _, _, content in contents))
        con.execute(sql.LOAD_INCOMING, [emails_json])
        con.execute(sql.LOAD_INCOMING_ATTACHMENTS, [to_json(attachments)])
        return contents

    def _upsert(
        self, con: duckdb.DuckDBPyConnection, rows: Sequence[EmailRow], request_id: str | None
    ) -> list[tuple[str, int | None]]:
        """Insert, update, move or revive `rows`; returns (outcome, file_id) per distinct message id."""
        contents = self._load_incoming(con, rows)
        con.execute(sql.CLASSIFY)
        con.execute(sql.REGISTER_EMAIL_IDS)
        con.execute(sql.DELETE_REWRITTEN)
        con.execute(sql.INSERT_EMAILS, [request_id])
        con.execute(sql.DELETE_REPLACED_ATTACHMENTS)
        con.execute(sql.REGISTER_ATTACHMENT_IDS)
        con.execute(sql.INSERT_ATTACHMENTS)
        for message_id, attachment_id, content in contents:
            con.execute(sql.SET_ATTACHMENT_CONTENT, [content, message_id, attachment_id])
        return con.execute(sql.OUTCOMES).fetchall()

    # -- writes: single emails -------------------------------------------------------------------------

    def delete_files(
        self, file_ids: Sequence[int], *, keep_record: bool = False, request_id: str | None = None
    ) -> DeleteResult:
        """Delete emails or attachments through Mailroom: content and derived data go, a tombstone stays.

        With `keep_record` the file's metadata row is kept (Carbon's `preserve_file_record`), so the file can
        be resynced later. Deleting an email deletes its attachments with it. The search index, if any, is
        rebuilt in the same transaction so no deleted word stays searchable.
        """
        requested = sorted(set(file_ids))
        ids = _file_id_list(requested)
        with self._write() as con:
            targets = con.execute(sql.FILES_TO_DELETE, [ids, ids]).fetchall()
            already = {f for (f,) in con.execute(sql.TOMBSTONED_FILE_IDS, [ids]).fetchall()}
            doomed = [{"file_id": f, "message_id": m, "attachment_id": a} for f, m, a in targets]
            con.execute(sql.LOAD_DOOMED, [to_json(doomed)])
            con.execute(sql.REPLACE_TOMBSTONES)
            con.execute(sql.INSERT_TOMBSTONES, [keep_record, request_id])
            con.execute(sql.DELETE_ATTACHMENTS_OF_DOOMED_EMAILS)
            if keep_record:
                for statement in (sql.KEPT_EMAILS, sql.DELETE_KEPT_EMAILS, sql.REINSERT_KEPT_EMAILS):
                    con.execute(statement)
                for statement in (
                    sql.KEPT_ATTACHMENTS,
                    sql.DELETE_KEPT_ATTACHMENTS,
                    sql.REINSERT_KEPT_ATTACHMENTS,
                ):
                    con.execute(statement)
            else:
                con.execute(sql.DELETE_DOOMED_EMAILS)
                con.execute(sql.DELETE_DOOMED_ATTACHMENTS)
            con.execute(sql.FORGET_DOOMED_ATTACHMENT_HASHES)
            if _has_search_index(con):
                _build_search_index(con)
        now = {file_id for file_id, _, _ in targets}
        deleted = now | already
        return DeleteResult(
            deleted=tuple(f for f in requested if f in deleted),
            not_found=tuple(f for f in requested if f not in deleted),
            newly_deleted=tuple(f for f in requested if f in now and f not in already),
        )

    def apply_resync(self, row: EmailRow, *, request_id: str | None = None) -> ResyncResult:
        """Store a refetched email: lift its tombstone, report which fields differed, write only if needed."""
        with self._write() as con:
            lifted = bool(con.execute(sql.LIFT_TOMBSTONES, [row.message_id]).fetchall())
            self._load_incoming(con, [row])
            changed = _changed_fields(con)
            if changed or lifted:
                self._upsert(con, [row], request_id)
            file_id = con.execute(sql.EMAIL_FILE_ID, [row.message_id]).fetchone()
        if file_id is None:
            raise StoreError(f"resync of {row.message_id!r} stored nothing")
        written = bool(changed or lifted)
        return ResyncResult(file_id[0], changed_fields=changed, written=written, tombstone_lifted=lifted)

    def remove_messages(self, message_ids: Sequence[str]) -> tuple[int, ...]:
        """Mark messages gone from the mailbox wherever they are (a resync that found them deleted)."""
        with self._write() as con:
            return tuple(_remove(con, message_ids, folder_id=None))

    # -- writes: runs and search -----------------------------------------------------------------------

    def start_run(self, start: RunStart) -> int:
        """Record a sync run as running; returns its id for `finish_run`."""
        params = [
            start.trigger,
            start.request_id,
            start.orchestrator_run_id,
            start.plan,
            _json_list(start.folders),
        ]
        with self._write() as con:
            return con.execute(sql.START_RUN, params).fetchone()[0]

    def finish_run(self, run_id: int, totals: RunTotals, *, error: str | None = None) -> None:
        """Close a run with its counts; `error` makes it 'failed'."""
        t = totals
        params = [
            "failed" if error else "succeeded",
            *(t.seen, t.matched, t.fetched, t.inserted, t.updated, t.moved, t.unchanged, t.deleted),
            to_json(dict(t.skipped)),
            *(t.requests, t.throttled_waits, t.throttled_seconds),
            to_json(dict(t.details)),
            error,
            run_id,
        ]
        with self._write() as con:
            if not con.execute(sql.FINISH_RUN, params).fetchall():
                raise NotFound(f"no sync run {run_id} in {self.path.name}")

    def close_interrupted_runs(self, error: str) -> tuple[int, ...]:
        """Mark runs still 'running' as failed with `error`: their process died before finishing them.

        Call it only while holding the customer's run lock, when no run can be under way.
        """
        with self._write() as con:
            return tuple(sorted(r for (r,) in con.execute(sql.CLOSE_INTERRUPTED_RUNS, [error]).fetchall()))

    def has_search_index(self) -> bool:
        """Whether a full-text index has been built (a sync keeps an existing one up to date)."""
        with self._read() as con:
            return _has_search_index(con)

    def search_index_status(self) -> SearchIndexStatus:
        """'missing' (never built), 'stale' (an email was written since the last build) or 'current'."""
        with self._read() as con:
            if not _has_search_index(con):
                return "missing"
            return "stale" if con.execute(sql.SEARCH_INDEX_STALE).fetchone()[0] else "current"

    def rebuild_search_index(self) -> int:
        """(Re)build the full-text index over subject, sender and text; returns the emails indexed."""
        with self._write() as con:
            _build_search_index(con)
            return con.execute(sql.COUNT_LIVE).fetchone()[0]

    # -- reads -----------------------------------------------------------------------------------------

    def sync_state(self, folder_id: str, fingerprint: str) -> SyncState | None:
        """Where the folder's round stands for this filter fingerprint, or None if it never started."""
        with self._read() as con:
            return _state(con, folder_id, fingerprint)

    def sync_states(self) -> list[SyncState]:
        """Every stored round position."""
        with self._read() as con:
            return [SyncState(**r) for r in _rows(con.execute(sql.SELECT_STATES))]

    def known(self, message_ids: Sequence[str]) -> dict[str, KnownMessage]:
        """What the store knows of these message ids (file id, change key, folder, removed, tombstoned)."""
        with self._read() as con:
            found = con.execute(sql.KNOWN, [_json_list(message_ids)]).fetchall()
        return {m: KnownMessage(f, ck, folder, removed, tomb) for m, f, ck, folder, removed, tomb in found}

    def resolve_file_ids(self, file_ids: Sequence[int]) -> dict[int, tuple[str, str | None]]:
        """Map file ids (live, removed or tombstoned) to (message id, attachment id or None)."""
        with self._read() as con:
            found = con.execute(sql.RESOLVE_FILE_IDS, [_file_id_list(file_ids)]).fetchall()
        return {f: (m, a or None) for f, m, a in found}

    def get_email(self, file_id: int) -> EmailRecord | None:
        """The stored email with this file id (also removed or record-kept ones), or None."""
        with self._read() as con:
            found = _rows(con.execute(sql.EMAIL_BY_FILE_ID, [file_id]))
        return _email_record(found[0]) if found else None

    def get_email_by_message_id(self, message_id: str) -> EmailRecord | None:
        """The stored email with this immutable message id, or None."""
        with self._read() as con:
            found = _rows(con.execute(sql.EMAIL_BY_MESSAGE_ID, [message_id]))
        return _email_record(found[0]) if found else None

    def attachments(self, message_id: str, *, with_content: bool = False) -> list[AttachmentRecord]:
        """The stored attachments of a message; content only when asked (it may be large)."""
        query = sql.ATTACHMENTS_WITH_CONTENT if with_content else sql.ATTACHMENTS_WITHOUT_CONTENT
        with self._read() as con:
            return [_attachment_record(r) for r in _rows(con.execute(query, [message_id]))]

    def attachment(self, file_id: int) -> AttachmentRecord | None:
        """One stored attachment with its content (None if not stored), for `/raw_file`; None if unknown."""
        with self._read() as con:
            found = _rows(con.execute(sql.ATTACHMENT_BY_FILE_ID, [file_id]))
        return _attachment_record(found[0]) if found else None

    def list_files(self, query: FileQuery) -> FilePage:
        """Emails and attachments as files, filtered, ordered and paged for `/user_files_v2`."""
        page_sql, count_sql, params = sql.list_files(query)
        with self._read() as con:
            found = []
            if query.limit:
                found = con.execute(page_sql, [*params, query.limit, query.offset]).fetchall()
            total = found[0][-1] if found else con.execute(count_sql, params).fetchone()[0]
        return FilePage(results=tuple(sql.file_record(row[:-1]) for row in found), count=total)

    def files_by_extension(self) -> dict[tuple[str, str], int]:
        """How many files `list_files` shows by default (not removed), by kind and upper-case extension:
        `{("email", ""): 20, ("attachment", "PDF"): 3, ("attachment", "README"): 1}` (a name without a dot
        is its own extension, as `str.rpartition` has it)."""
        with self._read() as con:
            return {
                (kind, extension): n for kind, extension, n in con.execute(sql.FILES_BY_EXTENSION).fetchall()
            }

    def counts(self) -> StoreCounts:
        """How many emails (by sync status), removed rows, tombstones, attachments and folders are stored."""
        with self._read() as con:
            by_status = dict(con.execute(sql.COUNT_BY_STATUS).fetchall())
            removed, contents_deleted, characters = con.execute(
                sql.COUNT_REMOVED_DELETED_CHARACTERS
            ).fetchone()
            tombstones = con.execute(sql.COUNT_TOMBSTONES).fetchone()[0]
            attachments = con.execute(sql.COUNT_ATTACHMENTS).fetchone()[0]
            folders = con.execute(sql.COUNT_FOLDERS).fetchone()[0]
        return StoreCounts(
            emails=sum(by_status.values()),
            by_status=by_status,
            removed=removed,
            contents_deleted=contents_deleted,
            text_characters=characters,
            tombstones=tombstones,
            attachments=attachments,
            folders=folders,
        )

    def integrity(self) -> Integrity:
        """Duplicate message ids or file ids (never expected), and live emails stored without a body."""
        with self._read() as con:
            return Integrity(*con.execute(sql.INTEGRITY).fetchone())

    def folders(self) -> list[FolderRow]:
        """The folders recorded for this mailbox, by path."""
        with self._read() as con:
            return [FolderRow(**r) for r in _rows(con.execute(sql.SELECT_FOLDERS))]

    def folders_refreshed_at(self, data_source_id: int | None) -> datetime | None:
        """When the folders of one connection were last recorded (None: never)."""
        with self._read() as con:
            return con.execute(sql.FOLDERS_REFRESHED_AT, [data_source_id]).fetchone()[0]

    def newest(self, limit: int = 10) -> list[EmailSummary]:
        """The most recently received emails still in the store, for a preview."""
        with self._read() as con:
            return [EmailSummary(*r) for r in con.execute(sql.NEWEST, [limit]).fetchall()]

    def runs(self, limit: int = 10) -> list[RunRecord]:
        """The latest sync runs, newest first."""
        with self._read() as con:
            return [_run_record(r) for r in _rows(con.execute(sql.LATEST_RUNS, [limit]))]

    def last_run(self) -> RunRecord | None:
        """The latest sync run, or None."""
        found = self.runs(1)
        return found[0] if found else None

    def search(self, text: str, limit: int = 10) -> list[SearchHit]:
        """Full-text search (BM25) over subject, sender and text of the emails still stored."""
        with self._read() as con:
            if not _has_search_index(con):
                raise NotFound(f"{self.path.name} has no search index yet; it is built after a sync")
            load_fts(con)
            return [SearchHit(*r) for r in con.execute(sql.SEARCH, [text, limit]).fetchall()]


def _room_for(con: duckdb.DuckDBPyConnection, payload_bytes: int, content_bytes: int) -> None:
    """Raise this write's memory limit when its page is big: parsing the page's JSON takes a few times its
    size, attachment content stays in memory until the commit, and the writers' default limit (see `_duck`)
    is sized for ordinary pages."""
    needed = (PAYLOAD_MEMORY_FACTOR * payload_bytes + 2 * content_bytes) // 2**20 + 1
    if needed > WRITER_MEMORY_LIMIT_MB:
        con.execute(f"SET memory_limit = '{int(needed)}MB'")  # an int we computed, not a caller's value


def _state(con: duckdb.DuckDBPyConnection, folder_id: str, fingerprint: str) -> SyncState | None:
    found = _rows(con.execute(sql.SELECT_STATE, [folder_id, fingerprint]))
    return SyncState(**found[0]) if found else None


def _remove(
    con: duckdb.DuckDBPyConnection, message_ids: Sequence[str], *, folder_id: str | None
) -> list[int]:
    """Mark rows gone from the mailbox and drop their content; only rows still in `folder_id` if given."""
    if folder_id is None:
        con.execute(sql.SELECT_GONE_ANYWHERE, [_json_list(message_ids)])
    else:
        con.execute(sql.SELECT_GONE_IN_FOLDER, [_json_list(message_ids), folder_id])
    for statement in (sql.DELETE_GONE, sql.REINSERT_GONE, sql.DELETE_ATTACHMENTS_OF_GONE):
        con.execute(statement)
    return [file_id for file_id, _ in con.execute(sql.GONE).fetchall()]


def _tag(con: duckdb.DuckDBPyConnection, message_ids: Sequence[str], tags: Mapping[str, TagValue]) -> None:
    """Merge a sync's tags onto the live files a page listed (tombstoned ones are not in `emails`)."""
    if not message_ids:
        return
    ids = _json_list(message_ids)
    merges = []
    for (old,) in con.execute(sql.TAGS_OF_LISTED, [ids]).fetchall():
        merged = merge_tags(old, tags)
        if merged != old:
            merges.append({"old": old, "tags": merged, "pairs": tag_pairs(orjson.loads(merged))})
    if merges:
        con.execute(sql.SET_MERGED_TAGS, [to_json(merges), ids])


def _mark(con: duckdb.DuckDBPyConnection, folder_id: str, message_ids: Sequence[str]) -> None:
    if message_ids:
        con.execute(sql.MARK_SEEN, [folder_id, _json_list(message_ids), folder_id])


def _sweep(con: duckdb.DuckDBPyConnection, folder_id: str) -> list[int]:
    unseen = [m for (m,) in con.execute(sql.UNSEEN_IN_FOLDER, [folder_id, folder_id]).fetchall()]
    swept = _remove(con, unseen, folder_id=folder_id) if unseen else []
    con.execute(sql.DELETE_FOLDER_MARKS, [folder_id])
    return swept


def _changed_fields(con: duckdb.DuckDBPyConnection) -> tuple[str, ...]:
    found = con.execute(sql.CHANGED_FIELDS).fetchone()
    if found is None:
        return (*EMAIL_COLUMNS, "attachments")
    names = (*EMAIL_COLUMNS, "attachments", "removed")
    return tuple(name for name, differs in zip(names, found, strict=True) if differs)


def _has_search_index(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(con.execute(sql.HAS_SEARCH_INDEX).fetchone()[0])


def _build_search_index(con: duckdb.DuckDBPyConnection) -> None:
    load_fts(con)
    con.execute(sql.BUILD_SEARCH_INDEX)
    con.execute(sql.FORGET_SEARCH_INDEX_BUILDS)
    con.execute(sql.STAMP_SEARCH_INDEX)


def _page_result(
    outcomes: Sequence[tuple[str, int | None]], removed: Sequence[int], swept: Sequence[int], finished: bool
) -> PageResult:
    tally = Counter(outcome for outcome, _ in outcomes)
    return PageResult(
        inserted=tally["new"] + tally["revived"],
        updated=tally["updated"],
        moved=tally["moved"],
        unchanged=tally["unchanged"],
        removed=len(removed),
        swept=len(swept),
        skipped={"tombstoned": tally["tombstoned"]} if tally["tombstoned"] else {},
        created_file_ids=tuple(sorted(f for o, f in outcomes if o in ("new", "revived") and f is not None)),
        changed_file_ids=tuple(sorted(f for o, f in outcomes if o in ("updated", "moved") and f is not None)),
        removed_file_ids=tuple(sorted([*removed, *swept])),
        round_finished=finished,
    )


def _email_record(r: Mapping[str, Any]) -> EmailRecord:
    return EmailRecord(
        file_id=r["file_id"],
        row=email_row_from_record(r),
        content_hash=r["content_hash"],
        request_id=r["request_id"],
        first_seen_at=r["first_seen_at"],
        last_synced_at=r["last_synced_at"],
        removed_at=r["removed_at"],
        file_contents_deleted=r["file_contents_deleted"],
        size_bytes=r["size_bytes"],
    )


def _attachment_record(r: Mapping[str, Any]) -> AttachmentRecord:
    row = AttachmentRow(
        attachment_id=r["attachment_id"],
        name=r["name"],
        content_type=r["content_type"],
        size=r["size"],
        is_inline=r["is_inline"],
        kind=r["kind"],
        format=r["format"],
        content_id=r["content_id"],
        last_modified_at=r["last_modified_at"],
        content=r["content"],
        content_state=r["content_state"],
    )
    return AttachmentRecord(
        file_id=r["file_id"],
        parent_file_id=r["parent_file_id"],
        message_id=r["message_id"],
        row=row,
        content_sha256=r["content_sha256"],
        first_seen_at=r["first_seen_at"],
        last_synced_at=r["last_synced_at"],
    )


def _run_record(r: Mapping[str, Any]) -> RunRecord:
    totals = RunTotals(
        seen=r["seen"],
        matched=r["matched"],
        fetched=r["fetched"],
        inserted=r["inserted"],
        updated=r["updated"],
        moved=r["moved"],
        unchanged=r["unchanged"],
        deleted=r["deleted"],
        skipped=orjson.loads(r["skipped"]),
        requests=r["requests"],
        throttled_waits=r["throttled_waits"],
        throttled_seconds=r["throttled_seconds"],
        details=orjson.loads(r["details"]),
    )
    return RunRecord(
        run_id=r["run_id"],
        status=r["status"],
        started_at=r["started_at"],
        finished_at=r["finished_at"],
        trigger=r["trigger"],
        request_id=r["request_id"],
        orchestrator_run_id=r["orchestrator_run_id"],
        plan=r["plan"],
        folders=tuple(r["folders"] or ()),
        totals=totals,
        error=r["error"],
    )


def delete_mail_store(path: str | Path, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> bool:
    """Delete a customer's mail store and every file derived from it; False if there was none.

    Opens the file read-write first, so no process is using it at the moment it goes.
    """
    path = Path(path)
    if not path.exists():
        return False
    with connection(path, read_only=False, lock_timeout=lock_timeout):
        pass
    for derived in derived_paths(path):
        if derived.is_dir():
            shutil.rmtree(derived)
        else:
            derived.unlink(missing_ok=True)
    return True
