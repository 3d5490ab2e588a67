"""The control store: one SQLite file (WAL, busy timeout) shared by the API, the Dagster sensors and the runs.

Each public method is one unit of work on its own short connection; writes run in `BEGIN IMMEDIATE`
transactions so concurrent writers queue on SQLite's lock (up to the busy timeout) instead of failing halfway.
Every statement is a literal with bound parameters.
"""

import sqlite3
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import orjson

from pipelines.store._control_types import (
    ApiKey,
    Connection,
    Customer,
    CustomerUpdate,
    Delivery,
    IssuedToken,
    OAuthState,
    Organization,
    Request,
    RequestKind,
    Webhook,
)
from pipelines.store._errors import ConflictError, NotFound, SchemaError, StoreBusy, StoreError
from pipelines.store._migrations import pending
from pipelines.store._secrets import SecretBox, hash_secret, new_signing_key, new_token

DEFAULT_ORGANIZATION_ID = 1
MAX_WEBHOOKS = 3  # per organization, as Carbon allows
DEFAULT_BUSY_TIMEOUT = 30.0
API_KEY_PREFIX = "mr_"
_LAST_USED_RESOLUTION = timedelta(minutes=1)  # how stale last_used_at may get before a lookup writes it

_CUSTOMER_UPDATABLE = (
    "auto_sync_sources",
    "auto_sync_interval_minutes",
    "default_folder",
    "default_filter",
    "max_files",
    "max_files_per_upload",
    "max_characters",
    "max_characters_per_file",
    "max_characters_per_upload",
)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ControlStore:
    """Customers, connections, requests, webhooks and their deliveries, API keys, access tokens, OAuth states.

    `secret_key` (default: MAILROOM_SECRET_KEY) encrypts webhook signing keys and OAuth flows; it is only
    needed by the methods that touch those. `clock` lets tests move time.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        secret_key: str | bytes | None = None,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._secret_key = secret_key
        self._box: SecretBox | None = None
        self._clock = clock
        self._migrated = False
        self._keeper: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return f"ControlStore({str(self.path)!r})"

    def _secrets(self) -> SecretBox:
        if self._box is None:
            self._box = SecretBox(self._secret_key)
        return self._box

    def _now(self) -> datetime:
        return self._clock()

    # -- connections and transactions ------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        con: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
            con.row_factory = sqlite3.Row
            con.execute("PRAGMA foreign_keys = ON")
            # Safe with WAL: a crash loses no committed transaction.
            con.execute("PRAGMA synchronous = NORMAL")
            if not self._migrated:
                self._migrate(con)
        except BaseException as error:
            if con is not None:
                con.close()
            if isinstance(error, sqlite3.OperationalError) and _locked(error):
                raise _busy_or(error, self.path) from error
            if not isinstance(error, sqlite3.Error | OSError):
                raise
            # Not a database, a directory where the file goes, a file where its directory goes, ...
            why = error.strerror if isinstance(error, OSError) and error.strerror else error
            raise StoreError(f"cannot open the control store {self.path}: {why}") from error
        if self._keeper is None:
            # One idle connection held while this store lives. When the last connection to a WAL database
            # closes, SQLite checkpoints and syncs, and the next write starts a new WAL with a sync of its
            # own: two fsyncs a call (1 to 15 ms each on the shared disk; /update_users made two calls). With
            # this one open, commits do not sync (synchronous=NORMAL) and checkpoints come every 1000 pages.
            keeper = sqlite3.connect(self.path, timeout=self.busy_timeout, check_same_thread=False)
            keeper.execute("PRAGMA schema_version").fetchall()  # a read joins the WAL; an idle open does not
            self._keeper = keeper
        return con

    def _migrate(self, con: sqlite3.Connection) -> None:
        con.execute("PRAGMA journal_mode = WAL")
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TEXT NOT NULL)"
        )
        current = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
        for migration in pending("control", current):
            try:
                con.execute("BEGIN IMMEDIATE")
                # Another process may have migrated while this one waited for the lock.
                if con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0] < (
                    migration.version
                ):
                    for statement in _statements(migration.sql):
                        con.execute(statement)
                    con.execute(
                        "INSERT INTO schema_version VALUES (?, ?)", (migration.version, _iso(self._now()))
                    )
                con.execute("COMMIT")
            except sqlite3.Error as error:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise SchemaError(f"control store migration {migration.name} failed: {error}") from error
        self._migrated = True

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        con = self._connect()
        try:
            yield con
        except sqlite3.OperationalError as error:
            raise _busy_or(error, self.path) from error
        finally:
            con.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        con = self._connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        except sqlite3.OperationalError as error:
            raise _busy_or(error, self.path) from error
        finally:
            con.close()

    # -- the organization ------------------------------------------------------------------------------

    def organization(self) -> Organization:
        """The one organization a deployment serves (id 1, 'default'); every API key belongs to it.

        Mail stores, Dagster partitions and the sync engine key on the customer id alone, so a second
        organization with a customer id the first one uses would share that customer's mail: the schema
        refuses to hold one (control migration 0002).
        """
        with self._read() as con:
            row = con.execute(
                "SELECT * FROM organizations WHERE id = ?", (DEFAULT_ORGANIZATION_ID,)
            ).fetchone()
        if row is None:
            raise NotFound(f"no organization {DEFAULT_ORGANIZATION_ID}")
        return Organization(row["id"], row["name"], _time(row["created_at"]))  # type: ignore[arg-type]

    # -- customers -------------------------------------------------------------------------------------

    def update_customers(
        self,
        customer_ids: Sequence[str],
        update: CustomerUpdate | None = None,
        *,
        organization_id: int = DEFAULT_ORGANIZATION_ID,
    ) -> list[Customer]:
        """Create customers that do not exist yet and apply the fields set on `update` to all of them; returns
        them in the order named. One transaction of three statements, however many ids.

        A customer marked deleted is never brought back: until the delete run purges its row, its
        connections, token caches and mail store would come back with it, so naming it raises
        ConflictError and changes nothing. Once purged, its id is new again and gets a fresh row, whose
        integer id was never given before (control migration 0003).
        """
        update = update or CustomerUpdate()
        given = update.model_fields_set
        values = update.model_dump()
        if "auto_sync_sources" in given and values["auto_sync_sources"] is not None:
            values["auto_sync_sources"] = orjson.dumps(values["auto_sync_sources"]).decode()
        settings: list[Any] = []
        for name in _CUSTOMER_UPDATABLE:
            settings += [name in given, values[name]]
        ids = list(dict.fromkeys(customer_ids))
        named = orjson.dumps(ids).decode()
        now = _iso(self._now())
        with self._write() as con:
            deleted = con.execute(
                """
                SELECT customer_id FROM customers
                WHERE organization_id = ? AND deleted_at IS NOT NULL
                  AND customer_id IN (SELECT value FROM json_each(?))
                ORDER BY id
                """,
                (organization_id, named),
            ).fetchall()
            if deleted:
                raise ConflictError(_being_deleted([r["customer_id"] for r in deleted]))
            con.execute(
                """
                INSERT INTO customers (id, organization_id, customer_id, created_at, updated_at)
                SELECT (SELECT last FROM customer_ids_given) + key + 1, ?, value, ?, ? FROM json_each(?)
                WHERE true
                ON CONFLICT (organization_id, customer_id) DO NOTHING
                """,
                (organization_id, now, now, named),
            )
            rows = con.execute(
                """
                UPDATE customers SET
                    auto_sync_sources = CASE WHEN ? THEN coalesce(?, auto_sync_sources)
                                             ELSE auto_sync_sources END,
                    auto_sync_interval_minutes = CASE WHEN ? THEN ? ELSE auto_sync_interval_minutes END,
                    default_folder = CASE WHEN ? THEN ? ELSE default_folder END,
                    default_filter = CASE WHEN ? THEN ? ELSE default_filter END,
                    max_files = CASE WHEN ? THEN ? ELSE max_files END,
                    max_files_per_upload = CASE WHEN ? THEN ? ELSE max_files_per_upload END,
                    max_characters = CASE WHEN ? THEN ? ELSE max_characters END,
                    max_characters_per_file = CASE WHEN ? THEN ? ELSE max_characters_per_file END,
                    max_characters_per_upload = CASE WHEN ? THEN ? ELSE max_characters_per_upload END,
                    updated_at = ?
                WHERE organization_id = ? AND customer_id IN (SELECT value FROM json_each(?))
                RETURNING *
                """,
                (*settings, now, organization_id, named),
            ).fetchall()
        found = {row["customer_id"]: _customer(row) for row in rows}
        return [found[customer_id] for customer_id in ids]

    def customer(
        self,
        customer_id: str,
        *,
        organization_id: int = DEFAULT_ORGANIZATION_ID,
        include_deleted: bool = False,
    ) -> Customer | None:
        """The customer with this (organization-supplied) id, or None."""
        with self._read() as con:
            row = con.execute(
                "SELECT * FROM customers WHERE organization_id = ? AND customer_id = ?",
                (organization_id, customer_id),
            ).fetchone()
        if row is None or (row["deleted_at"] and not include_deleted):
            return None
        return _customer(row)

    def customer_deleted(self, customer_id: str, *, organization_id: int = DEFAULT_ORGANIZATION_ID) -> bool:
        """Whether `customer_id` is marked deleted and its row still waits for `purge_customer`.

        The delete run asks this before it removes anything. True: the customer is still deleted, and stays
        so until purged (`update_customers` refuses to bring it back, and the API answers 404 or 409 for
        it meanwhile), so its mail store and rows may go. False: there is nothing to purge; either an
        earlier run purged it, or the id names a live customer created afresh after that purge, whose
        mail store must be left alone.
        """
        with self._read() as con:
            row = con.execute(
                """
                SELECT 1 FROM customers
                WHERE organization_id = ? AND customer_id = ? AND deleted_at IS NOT NULL
                """,
                (organization_id, customer_id),
            ).fetchone()
        return row is not None

    def customer_by_pk(self, pk: int) -> Customer | None:
        """The customer with this integer id (Carbon's organization_user id), or None."""
        with self._read() as con:
            row = con.execute("SELECT * FROM customers WHERE id = ?", (pk,)).fetchone()
        return _customer(row) if row is not None else None

    def list_customers(
        self,
        *,
        organization_id: int = DEFAULT_ORGANIZATION_ID,
        customer_ids: Sequence[str] | None = None,
        pks: Sequence[int] | None = None,
        order_by: Literal["created_at", "updated_at"] = "created_at",
        descending: bool = True,
        limit: int = 10,
        offset: int = 0,
        starting_id: int = 0,
    ) -> tuple[list[Customer], int]:
        """A page of live customers, and how many match in all; `starting_id` keeps only customers whose
        integer id is at least that (Carbon's id cursor), before `offset` counts."""
        params = {
            "org": organization_id,
            "start": starting_id,
            "all_ids": customer_ids is None,
            "ids": orjson.dumps(list(customer_ids or ())).decode(),
            "all_pks": pks is None,
            "pks": orjson.dumps(list(pks or ())).decode(),
            "order": order_by,
            "desc": descending,
            "limit": limit,
            "offset": offset,
        }
        with self._read() as con:
            rows = con.execute(
                """
                SELECT *, count(*) OVER () AS total FROM customers
                WHERE organization_id = :org AND deleted_at IS NULL AND id >= :start
                  AND (:all_ids OR customer_id IN (SELECT value FROM json_each(:ids)))
                  AND (:all_pks OR id IN (SELECT value FROM json_each(:pks)))
                ORDER BY
                    CASE WHEN :order = 'created_at' AND :desc THEN created_at END DESC,
                    CASE WHEN :order = 'created_at' AND NOT :desc THEN created_at END ASC,
                    CASE WHEN :order = 'updated_at' AND :desc THEN updated_at END DESC,
                    CASE WHEN :order = 'updated_at' AND NOT :desc THEN updated_at END ASC,
                    CASE WHEN :desc THEN id END DESC, id ASC
                LIMIT :limit OFFSET :offset
                """,
                params,
            ).fetchall()
            total = (
                rows[0]["total"]
                if rows
                else con.execute(
                    """
                SELECT count(*) FROM customers
                WHERE organization_id = :org AND deleted_at IS NULL AND id >= :start
                  AND (:all_ids OR customer_id IN (SELECT value FROM json_each(:ids)))
                  AND (:all_pks OR id IN (SELECT value FROM json_each(:pks)))
                """,
                    params,
                ).fetchone()[0]
            )
        return [_customer(r) for r in rows], total

    def auto_sync_customers(self) -> list[tuple[Customer, datetime | None]]:
        """Customers whose Outlook auto-sync is on, with when they last finished a sync (None: never)."""
        with self._read() as con:
            rows = con.execute(
                """
                SELECT c.*, (SELECT max(last_synced_at) FROM connections
                             WHERE customer_pk = c.id AND NOT revoked) AS last_sync
                FROM customers c WHERE c.deleted_at IS NULL ORDER BY c.id
                """
            ).fetchall()
        found = [(_customer(r), _time(r["last_sync"])) for r in rows]
        return [(customer, last) for customer, last in found if customer.outlook_auto_sync]

    def mark_customers_deleted(
        self, customer_ids: Sequence[str], *, organization_id: int = DEFAULT_ORGANIZATION_ID
    ) -> list[int]:
        """Hide customers from every listing at once (their data goes when the delete request runs)."""
        now = _iso(self._now())
        with self._write() as con:
            rows = con.execute(
                """
                UPDATE customers SET deleted_at = ?, updated_at = ?
                WHERE organization_id = ? AND deleted_at IS NULL
                  AND customer_id IN (SELECT value FROM json_each(?))
                RETURNING id
                """,
                (now, now, organization_id, orjson.dumps(list(customer_ids)).decode()),
            ).fetchall()
        return sorted(r["id"] for r in rows)

    def purge_customer(self, pk: int) -> bool:
        """Remove a customer and everything hanging off it (connections, tokens, OAuth states)."""
        with self._write() as con:
            return (
                con.execute("DELETE FROM customers WHERE id = ? RETURNING id", (pk,)).fetchone() is not None
            )

    # -- connections -----------------------------------------------------------------------------------

    def save_connection(
        self,
        customer_pk: int,
        mailbox: str,
        *,
        auth_kind: Literal["delegated", "app"],
        token_cache: bytes | None = None,
        tenant: str | None = None,
        metadata: dict[str, Any] | None = None,
        tags: dict[str, Any] | None = None,
    ) -> Connection:
        """Add an Outlook connection, or refresh the one of the same mailbox (lifting a revoke)."""
        now = _iso(self._now())
        with self._write() as con:
            row = con.execute(
                """
                INSERT INTO connections (customer_pk, mailbox, auth_kind, tenant, token_cache, metadata, tags,
                                         last_sync_action, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, 'ADD', ?, ?)
                ON CONFLICT (customer_pk, source, mailbox) DO UPDATE SET
                    auth_kind = excluded.auth_kind, tenant = excluded.tenant,
                    token_cache = coalesce(excluded.token_cache, token_cache),
                    metadata = excluded.metadata, tags = excluded.tags, revoked = 0, last_sync_action = 'ADD',
                    updated_at = excluded.updated_at
                RETURNING *
                """,
                (
                    customer_pk,
                    mailbox,
                    auth_kind,
                    tenant,
                    token_cache,
                    orjson.dumps(metadata or {}).decode(),
                    orjson.dumps(tags or {}).decode(),
                    now,
                    now,
                ),
            ).fetchone()
        return _connection(row)

    def connections(self, customer_pk: int, *, include_revoked: bool = True) -> list[Connection]:
        """A customer's connections, oldest first."""
        with self._read() as con:
            rows = con.execute(
                "SELECT * FROM connections WHERE customer_pk = ? AND (? OR NOT revoked) ORDER BY id",
                (customer_pk, include_revoked),
            ).fetchall()
        return [_connection(r) for r in rows]

    def connection(self, connection_id: int, *, customer_pk: int | None = None) -> Connection | None:
        """One connection; with `customer_pk`, only if it belongs to that customer (tenant walls)."""
        with self._read() as con:
            row = con.execute(
                "SELECT * FROM connections WHERE id = ? AND (? IS NULL OR customer_pk = ?)",
                (connection_id, customer_pk, customer_pk),
            ).fetchone()
        return _connection(row) if row is not None else None

    def token_cache(self, connection_id: int) -> bytes | None:
        """The sealed token cache of a connection (opaque bytes, as `pipelines.graph` sealed them)."""
        with self._read() as con:
            row = con.execute("SELECT token_cache FROM connections WHERE id = ?", (connection_id,)).fetchone()
        if row is None:
            raise NotFound(f"no connection {connection_id}")
        return row["token_cache"]

    def save_token_cache(self, connection_id: int, sealed: bytes) -> None:
        """Replace a connection's sealed token cache (after MSAL refreshed a token)."""
        with self._write() as con:
            found = con.execute(
                "UPDATE connections SET token_cache = ?, updated_at = ? WHERE id = ? RETURNING id",
                (sealed, _iso(self._now()), connection_id),
            ).fetchone()
        if found is None:
            raise NotFound(f"no connection {connection_id}")

    def record_connection_sync(
        self, connection_id: int, *, status: str, error: str | None = None, synced: bool = False
    ) -> None:
        """Set a connection's sync status (SYNCING, READY, SYNC_ERROR); `synced` stamps the finish time."""
        now = _iso(self._now())
        with self._write() as con:
            found = con.execute(
                """
                UPDATE connections SET sync_status = ?, sync_error = ?, updated_at = ?,
                    last_synced_at = CASE WHEN ? THEN ? ELSE last_synced_at END,
                    files_synced_at = CASE WHEN ? THEN ? ELSE files_synced_at END
                WHERE id = ? RETURNING id
                """,
                (status, error, now, synced, now, synced, now, connection_id),
            ).fetchone()
        if found is None:
            raise NotFound(f"no connection {connection_id}")

    def revoke_connection(self, connection_id: int, *, customer_pk: int) -> bool:
        """Revoke a connection: its token cache is erased and it is no longer synced."""
        with self._write() as con:
            return (
                con.execute(
                    """
                    UPDATE connections SET revoked = 1, token_cache = NULL, last_sync_action = 'REVOKE',
                        updated_at = ?
                    WHERE id = ? AND customer_pk = ? RETURNING id
                    """,
                    (_iso(self._now()), connection_id, customer_pk),
                ).fetchone()
                is not None
            )

    # -- requests --------------------------------------------------------------------------------------

    def record_request(
        self,
        kind: RequestKind,
        customer_id: str,
        payload: dict[str, Any],
        *,
        organization_id: int = DEFAULT_ORGANIZATION_ID,
    ) -> Request:
        """Queue a request for the Dagster sensor."""
        now = _iso(self._now())
        with self._write() as con:
            try:
                row = con.execute(
                    """
                    INSERT INTO requests (organization_id, customer_id, kind, payload, status, created_at,
                                          updated_at)
                    VALUES (?, ?, ?, ?, 'queued', ?, ?) RETURNING *
                    """,
                    (organization_id, customer_id, kind, orjson.dumps(payload).decode(), now, now),
                ).fetchone()
            except sqlite3.IntegrityError as error:
                raise ConflictError(f"cannot record a {kind!r} request: {error}") from None
        return _request(row)

    def claim_requests(self, *, limit: int = 100, lease: timedelta = timedelta(minutes=5)) -> list[Request]:
        """Queued requests, oldest first, marked submitted; also submitted ones whose run never started
        within `lease` (the tick that claimed them died). Dagster's run keys make a second launch a no-op.
        """
        now = self._now()
        with self._write() as con:
            rows = con.execute(
                """
                UPDATE requests SET status = 'submitted', submitted_at = ?, updated_at = ?
                WHERE id IN (
                    SELECT id FROM requests
                    WHERE status = 'queued' OR (status = 'submitted' AND run_id IS NULL AND submitted_at < ?)
                    ORDER BY id LIMIT ?)
                RETURNING *
                """,
                (_iso(now), _iso(now), _iso(now - lease), limit),
            ).fetchall()
        return sorted((_request(r) for r in rows), key=lambda r: r.id)

    def mark_request_running(self, request_id: int, run_id: str) -> None:
        """A run picked the request up."""
        self._set_request(request_id, "submitted", None, run_id)

    def finish_request(self, request_id: int, *, error: str | None = None) -> None:
        """The request succeeded, or failed with `error` (the reason is kept; it is not retried)."""
        self._set_request(request_id, "failed" if error else "succeeded", error, None, finished=True)

    def _set_request(
        self, request_id: int, status: str, reason: str | None, run_id: str | None, *, finished: bool = False
    ) -> None:
        now = _iso(self._now())
        with self._write() as con:
            found = con.execute(
                """
                UPDATE requests SET status = ?, reason = ?, run_id = coalesce(?, run_id), updated_at = ?,
                    finished_at = CASE WHEN ? THEN ? ELSE finished_at END
                WHERE id = ? RETURNING id
                """,
                (status, reason, run_id, now, finished, now, request_id),
            ).fetchone()
        if found is None:
            raise NotFound(f"no request {request_id}")

    def request(self, request_id: int) -> Request | None:
        """One request, or None."""
        with self._read() as con:
            row = con.execute("SELECT * FROM requests WHERE id = ?", (request_id,)).fetchone()
        return _request(row) if row is not None else None

    def requests(
        self,
        *,
        customer_id: str | None = None,
        organization_id: int = DEFAULT_ORGANIZATION_ID,
        limit: int = 50,
    ) -> list[Request]:
        """The latest requests (of one customer, or all), newest first."""
        with self._read() as con:
            rows = con.execute(
                """
                SELECT * FROM requests WHERE organization_id = ? AND (? IS NULL OR customer_id = ?)
                ORDER BY id DESC LIMIT ?
                """,
                (organization_id, customer_id, customer_id, limit),
            ).fetchall()
        return [_request(r) for r in rows]

    # -- webhooks and deliveries -----------------------------------------------------------------------

    def add_webhook(self, url: str, *, organization_id: int = DEFAULT_ORGANIZATION_ID) -> tuple[Webhook, str]:
        """Register a webhook URL; returns it with its signing key (32 hex characters), the only time in
        clear. At most three per organization.
        """
        signing_key = new_signing_key()
        sealed = self._secrets().encrypt(signing_key.encode("ascii"))
        now = _iso(self._now())
        with self._write() as con:
            count = con.execute(
                "SELECT count(*) FROM webhooks WHERE organization_id = ?", (organization_id,)
            ).fetchone()[0]
            if count >= MAX_WEBHOOKS:
                raise ConflictError(
                    f"an organization may have at most {MAX_WEBHOOKS} webhooks; "
                    "delete one before adding another"
                )
            row = con.execute(
                """
                INSERT INTO webhooks (organization_id, url, signing_key, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?) RETURNING *
                """,
                (organization_id, url, sealed, now, now),
            ).fetchone()
        return _webhook(row), signing_key

    def webhooks(self, *, organization_id: int = DEFAULT_ORGANIZATION_ID) -> list[Webhook]:
        """The organization's webhooks, oldest first (never with their keys)."""
        with self._read() as con:
            rows = con.execute(
                "SELECT * FROM webhooks WHERE organization_id = ? ORDER BY id", (organization_id,)
            ).fetchall()
        return [_webhook(r) for r in rows]

    def delete_webhook(self, webhook_id: int, *, organization_id: int = DEFAULT_ORGANIZATION_ID) -> bool:
        """Remove a webhook (and its delivery log); False if the organization has no such webhook."""
        with self._write() as con:
            row = con.execute(
                "DELETE FROM webhooks WHERE id = ? AND organization_id = ? RETURNING id",
                (webhook_id, organization_id),
            ).fetchone()
        return row is not None

    def webhook_signing_key(self, webhook_id: int) -> str:
        """The decrypted signing key, for signing a delivery."""
        with self._read() as con:
            row = con.execute("SELECT signing_key FROM webhooks WHERE id = ?", (webhook_id,)).fetchone()
        if row is None:
            raise NotFound(f"no webhook {webhook_id}")
        return self._secrets().decrypt(row["signing_key"]).decode("ascii")

    def enqueue_deliveries(
        self,
        event_type: str,
        payload: str,
        *,
        customer_id: str | None = None,
        organization_id: int = DEFAULT_ORGANIZATION_ID,
    ) -> list[int]:
        """Put an event in the outbox once per active webhook of the organization; returns delivery ids."""
        now = _iso(self._now())
        with self._write() as con:
            rows = con.execute(
                """
                INSERT INTO webhook_deliveries (webhook_id, event_type, customer_id, payload, status,
                                                next_attempt_at, created_at)
                SELECT id, ?, ?, ?, 'pending', ?, ? FROM webhooks
                WHERE organization_id = ? AND status = 'ACTIVE' ORDER BY id
                RETURNING id
                """,
                (event_type, customer_id, payload, now, now, organization_id),
            ).fetchall()
        return sorted(r["id"] for r in rows)

    def claim_due_deliveries(
        self,
        *,
        limit: int = 50,
        lease: timedelta = timedelta(seconds=60),
        per_webhook: int | None = None,
        max_webhooks: int | None = None,
        skip_webhooks: Collection[int] = (),
    ) -> list[Delivery]:
        """Pending deliveries whose time has come, oldest first; each is pushed `lease` into the future so a
        second sender does not take it too, until `record_delivery_attempt` settles it.

        A sender that sends to several webhooks at once takes at most `per_webhook` deliveries for each of
        at most `max_webhooks` webhooks, none of those in `skip_webhooks` (the ones it is still sending to),
        so one slow receiver's backlog never fills a claim that others' events wait behind.
        """
        now = self._now()
        with self._write() as con:
            rows = con.execute(
                """
                WITH due AS (
                    SELECT id, webhook_id, next_attempt_at,
                           row_number() OVER (PARTITION BY webhook_id ORDER BY next_attempt_at, id) AS n
                    FROM webhook_deliveries
                    WHERE status = 'pending' AND next_attempt_at <= ?
                      AND webhook_id NOT IN (SELECT value FROM json_each(?))
                ), hooks AS (
                    SELECT webhook_id FROM due WHERE n = 1 ORDER BY next_attempt_at, id LIMIT ?
                )
                UPDATE webhook_deliveries SET next_attempt_at = ?
                WHERE id IN (SELECT id FROM due
                             WHERE n <= ? AND webhook_id IN (SELECT webhook_id FROM hooks)
                             ORDER BY next_attempt_at, id LIMIT ?)
                RETURNING id
                """,
                (_iso(now), orjson.dumps(sorted(skip_webhooks)).decode(),
                 -1 if max_webhooks is None else max_webhooks, _iso(now + lease),
                 limit if per_webhook is None else per_webhook, limit),
            ).fetchall()  # fmt: skip
            found = [self._delivery(con, r["id"]) for r in rows]
        return sorted(found, key=lambda d: d.id)

    def record_delivery_attempt(
        self,
        delivery_id: int,
        *,
        delivered: bool,
        status_code: int | None = None,
        error: str | None = None,
        retry_in: timedelta | None = None,
    ) -> Delivery:
        """Log an attempt: delivered, or pending again after `retry_in`, or failed when there is no retry."""
        now = self._now()
        status = "delivered" if delivered else ("pending" if retry_in is not None else "failed")
        next_at = now + (retry_in or timedelta())
        with self._write() as con:
            found = con.execute(
                """
                UPDATE webhook_deliveries SET status = ?, attempts = attempts + 1, last_status_code = ?,
                    last_error = ?, next_attempt_at = ?, delivered_at = CASE WHEN ? THEN ? ELSE NULL END
                WHERE id = ? RETURNING id
                """,
                (status, status_code, error, _iso(next_at), delivered, _iso(now), delivery_id),
            ).fetchone()
            if found is None:
                raise NotFound(f"no webhook delivery {delivery_id}")
            return self._delivery(con, delivery_id)

    def deliveries(self, *, webhook_id: int | None = None, limit: int = 50) -> list[Delivery]:
        """The delivery log, newest first."""
        with self._read() as con:
            rows = con.execute(
                """
                SELECT d.*, w.url FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
                WHERE ? IS NULL OR d.webhook_id = ? ORDER BY d.id DESC LIMIT ?
                """,
                (webhook_id, webhook_id, limit),
            ).fetchall()
        return [_delivery(r) for r in rows]

    def _delivery(self, con: sqlite3.Connection, delivery_id: int) -> Delivery:
        row = con.execute(
            """
            SELECT d.*, w.url FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = ?
            """,
            (delivery_id,),
        ).fetchone()
        return _delivery(row)

    # -- API keys, access tokens, OAuth states ---------------------------------------------------------

    def create_api_key(self, name: str) -> tuple[ApiKey, str]:
        """A new API key of the organization; the plain key is returned this once and only its hash is
        stored."""
        plain = new_token(API_KEY_PREFIX)
        with self._write() as con:
            row = con.execute(
                """
                INSERT INTO api_keys (organization_id, name, key_hash, prefix, created_at)
                VALUES (?, ?, ?, ?, ?) RETURNING *
                """,
                (DEFAULT_ORGANIZATION_ID, name, hash_secret(plain), plain[:10], _iso(self._now())),
            ).fetchone()
        return _api_key(row), plain

    def authenticate_api_key(self, plain: str) -> ApiKey | None:
        """The live key matching `plain`, or None (unknown or revoked)."""
        now = self._now()
        with self._read() as con:
            row = con.execute(
                "SELECT * FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL", (hash_secret(plain),)
            ).fetchone()
        if row is None:
            return None
        last = _time(row["last_used_at"])
        if last is None or now - last > _LAST_USED_RESOLUTION:
            with self._write() as con:
                con.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (_iso(now), row["id"]))
        return _api_key(row)

    def api_keys(self, *, organization_id: int = DEFAULT_ORGANIZATION_ID) -> list[ApiKey]:
        """The organization's keys (prefixes only), oldest first."""
        with self._read() as con:
            rows = con.execute(
                "SELECT * FROM api_keys WHERE organization_id = ? ORDER BY id", (organization_id,)
            ).fetchall()
        return [_api_key(r) for r in rows]

    def revoke_api_key(self, key_id: int, *, organization_id: int = DEFAULT_ORGANIZATION_ID) -> bool:
        """Revoke a key; False if the organization has no such live key."""
        with self._write() as con:
            row = con.execute(
                """
                UPDATE api_keys SET revoked_at = ? WHERE id = ? AND organization_id = ? AND revoked_at IS NULL
                RETURNING id
                """,
                (_iso(self._now()), key_id, organization_id),
            ).fetchone()
        return row is not None

    def issue_access_token(
        self,
        customer_pk: int,
        *,
        ttl: timedelta = timedelta(hours=1),
        refresh_ttl: timedelta = timedelta(days=30),
    ) -> IssuedToken:
        """A short-lived token for one customer (and a refresh token); only their hashes are stored."""
        access, refresh = new_token("mrt_"), new_token("mrr_")
        now = self._now()
        with self._write() as con:
            try:
                con.execute(
                    """
                    INSERT INTO access_tokens (customer_pk, access_hash, refresh_hash, expires_at,
                                               refresh_expires_at, created_at)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """,
                    (customer_pk, hash_secret(access), hash_secret(refresh), _iso(now + ttl),
                     _iso(now + refresh_ttl), _iso(now)),
                )  # fmt: skip
            except sqlite3.IntegrityError:
                raise NotFound(f"no customer {customer_pk}") from None
        return IssuedToken(access, refresh, now + ttl)

    def authenticate_access_token(self, plain: str) -> Customer | None:
        """The live customer an unexpired, unrevoked access token belongs to, or None."""
        with self._read() as con:
            row = con.execute(
                """
                SELECT c.* FROM access_tokens t JOIN customers c ON c.id = t.customer_pk
                WHERE t.access_hash = ? AND t.revoked_at IS NULL AND t.expires_at > ? AND c.deleted_at IS NULL
                """,
                (hash_secret(plain), _iso(self._now())),
            ).fetchone()
        return _customer(row) if row is not None else None

    def revoke_access_tokens(self, customer_pk: int) -> int:
        """Revoke every token of a customer; returns how many were live."""
        with self._write() as con:
            rows = con.execute(
                """
                UPDATE access_tokens SET revoked_at = ? WHERE customer_pk = ? AND revoked_at IS NULL
                RETURNING id
                """,
                (_iso(self._now()), customer_pk),
            ).fetchall()
        return len(rows)

    def save_oauth_state(
        self,
        state: str,
        customer_pk: int,
        flow: dict[str, Any],
        *,
        payload: dict[str, Any] | None = None,
        ttl: timedelta = timedelta(minutes=15),
    ) -> None:
        """Keep a connect flow until its callback: MSAL's flow encrypted, the request's options as JSON."""
        sealed = self._secrets().encrypt(orjson.dumps(flow))
        now = self._now()
        with self._write() as con:
            con.execute(
                """
                INSERT INTO oauth_states (state_hash, customer_pk, flow, payload, created_at, expires_at)
                VALUES (?, ?, ?, ?, ?, ?)
                """,
                (hash_secret(state), customer_pk, sealed, orjson.dumps(payload or {}).decode(), _iso(now),
                 _iso(now + ttl)),
            )  # fmt: skip

    def consume_oauth_state(self, state: str) -> OAuthState | None:
        """The flow for `state`, once: a second use, an unknown or an expired state gives None."""
        now = _iso(self._now())
        with self._write() as con:
            row = con.execute(
                """
                UPDATE oauth_states SET consumed_at = ?
                WHERE state_hash = ? AND consumed_at IS NULL AND expires_at > ?
                RETURNING customer_pk, flow, payload, created_at
                """,
                (now, hash_secret(state), now),
            ).fetchone()
        if row is None:
            return None
        flow = orjson.loads(self._secrets().decrypt(row["flow"]))
        return OAuthState(row["customer_pk"], flow, orjson.loads(row["payload"]), _time(row["created_at"]))  # type: ignore[arg-type]

    def prune(self, *, older_than: timedelta = timedelta(days=30)) -> int:
        """Drop used or expired OAuth states, expired or revoked access tokens, and settled deliveries
        over `older_than`; returns how many rows went. The API's webhook deliverer calls it periodically.

        A token row goes once its access token expires: Mailroom accepts no refresh token anywhere (Carbon
        documents no route for one), so nothing can use the row after that.
        """
        now = self._now()
        cutoff = _iso(now - older_than)
        with self._write() as con:
            gone = con.execute(
                "DELETE FROM oauth_states WHERE expires_at < ? OR consumed_at IS NOT NULL RETURNING 1",
                (_iso(now),),
            ).fetchall()
            gone += con.execute(
                "DELETE FROM access_tokens WHERE expires_at < ? OR revoked_at IS NOT NULL RETURNING 1",
                (_iso(now),),
            ).fetchall()
            gone += con.execute(
                "DELETE FROM webhook_deliveries WHERE status <> 'pending' AND created_at < ? RETURNING 1",
                (cutoff,),
            ).fetchall()
        return len(gone)


def _statements(script: str) -> Iterator[str]:
    """The statements of a SQL file, one by one (executescript would commit the open transaction first)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer
            buffer = ""
    if buffer.strip() and not all(
        part.strip().startswith("--") for part in buffer.splitlines() if part.strip()
    ):
        raise SchemaError(f"unterminated statement at the end of a migration: {buffer.strip()[:80]!r}")


def _being_deleted(customer_ids: Sequence[str]) -> str:
    shown = ", ".join(repr(c) for c in customer_ids[:5])
    more = f" and {len(customer_ids) - 5} more" if len(customer_ids) > 5 else ""
    return (
        f"customer {shown}{more} was deleted and its data is still being removed; the id can be used "
        "again once the delete run has finished"
    )


def _locked(error: sqlite3.OperationalError) -> bool:
    return "locked" in str(error) or "busy" in str(error)


def _busy_or(error: sqlite3.OperationalError, path: Path) -> StoreError:
    if _locked(error):
        return StoreBusy(f"control store {path.name} stayed locked past the busy timeout")
    return StoreError(f"control store {path.name}: {error}")


def _customer(row: sqlite3.Row) -> Customer:
    return Customer(
        id=row["id"],
        organization_id=row["organization_id"],
        customer_id=row["customer_id"],
        auto_sync_sources=orjson.loads(row["auto_sync_sources"]),
        auto_sync_interval_minutes=row["auto_sync_interval_minutes"],
        default_folder=row["default_folder"],
        default_filter=row["default_filter"],
        max_files=row["max_files"],
        max_files_per_upload=row["max_files_per_upload"],
        max_characters=row["max_characters"],
        max_characters_per_file=row["max_characters_per_file"],
        max_characters_per_upload=row["max_characters_per_upload"],
        created_at=_time(row["created_at"]),  # type: ignore[arg-type]
        updated_at=_time(row["updated_at"]),  # type: ignore[arg-type]
        deleted_at=_time(row["deleted_at"]),
    )


def _connection(row: sqlite3.Row) -> Connection:
    return Connection(
        id=row["id"],
        customer_pk=row["customer_pk"],
        source=row["source"],
        mailbox=row["mailbox"],
        auth_kind=row["auth_kind"],
        tenant=row["tenant"],
        sync_status=row["sync_status"],
        sync_error=row["sync_error"],
        revoked=bool(row["revoked"]),
        last_sync_action=row["last_sync_action"],
        enable_auto_sync=None if row["enable_auto_sync"] is None else bool(row["enable_auto_sync"]),
        last_synced_at=_time(row["last_synced_at"]),
        files_synced_at=_time(row["files_synced_at"]),
        metadata=orjson.loads(row["metadata"]),
        tags=orjson.loads(row["tags"]),
        created_at=_time(row["created_at"]),  # type: ignore[arg-type]
        updated_at=_time(row["updated_at"]),  # type: ignore[arg-type]
    )


def _request(row: sqlite3.Row) -> Request:
    return Request(
        id=row["id"],
        organization_id=row["organization_id"],
        customer_id=row["customer_id"],
        kind=row["kind"],
        payload=orjson.loads(row["payload"]),
        status=row["status"],
        reason=row["reason"],
        run_id=row["run_id"],
        created_at=_time(row["created_at"]),  # type: ignore[arg-type]
        updated_at=_time(row["updated_at"]),  # type: ignore[arg-type]
        submitted_at=_time(row["submitted_at"]),
        finished_at=_time(row["finished_at"]),
    )


def _webhook(row: sqlite3.Row) -> Webhook:
    return Webhook(
        id=row["id"],
        organization_id=row["organization_id"],
        url=row["url"],
        status=row["status"],
        status_reason=row["status_reason"],
        created_at=_time(row["created_at"]),  # type: ignore[arg-type]
        updated_at=_time(row["updated_at"]),  # type: ignore[arg-type]
    )


def _delivery(row: sqlite3.Row) -> Delivery:
    return Delivery(
        id=row["id"],
        webhook_id=row["webhook_id"],
        url=row["url"],
        event_type=row["event_type"],
        customer_id=row["customer_id"],
        payload=row["payload"],
        status=row["status"],
        attempts=row["attempts"],
        next_attempt_at=_time(row["next_attempt_at"]),  # type: ignore[arg-type]
        last_status_code=row["last_status_code"],
        last_error=row["last_error"],
        created_at=_time(row["created_at"]),  # type: ignore[arg-type]
        delivered_at=_time(row["delivered_at"]),
    )


def _api_key(row: sqlite3.Row) -> ApiKey:
    return ApiKey(
        id=row["id"],
        organization_id=row["organization_id"],
        name=row["name"],
        prefix=row["prefix"],
        created_at=_time(row["created_at"]),  # type: ignore[arg-type]
        last_used_at=_time(row["last_used_at"]),
        revoked_at=_time(row["revoked_at"]),
    )
