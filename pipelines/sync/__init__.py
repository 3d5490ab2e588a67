"""The sync engine: plan, fetch, convert and store each customer's Outlook mail. Plain Python: it knows
nothing of Dagster or HTTP, so an asset, the CLI and the tests call the same functions.

    from pipelines.sync import SyncOptions, sync_customer
    result = sync_customer("team@carbon.ai", SyncOptions(folders=("inbox",), filter="after:2024/01/01"))
    result.counts.inserted, result.plan, result.folders

    resync_emails("team@carbon.ai", file_ids=[42])         # refetch, diff, write only if changed and in scope
    delete_emails("team@carbon.ai", file_ids=[42])         # content gone, tombstone kept (or message_ids=)
    delete_customer("team@carbon.ai")                      # the mail store and the control-store records

Each entry point is synchronous (it runs its own event loop, in a worker thread if the caller already has
one), takes `settings=` (default: `Settings()` from the environment) and returns a pydantic result. Errors
are `SyncError`s (see `_errors`). `sync_customer` takes `progress=`, called after each stored batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from pipelines.settings import Settings
from pipelines.store import FileQuery
from pipelines.sync._engine import Progress, normalise_filter, parse_filter, sync
from pipelines.sync._errors import (
    ConnectionNotFound,
    ConnectionRefused,
    CustomerNotFound,
    FolderNotFound,
    InvalidRequest,
    NotConfigured,
    SyncBusy,
    SyncError,
    SyncFailed,
)
from pipelines.sync._models import (
    Counts,
    CustomerDeleted,
    DeleteResult,
    EmailResync,
    FolderOutcome,
    ResyncResult,
    SyncOptions,
    SyncProgress,
    SyncResult,
)
from pipelines.sync._single import delete, resync
from pipelines.sync._single import delete_customer as _delete_customer
from pipelines.sync._single import upgrade_store as _upgrade_store

T = TypeVar("T")

__all__ = [
    "ConnectionNotFound",
    "ConnectionRefused",
    "Counts",
    "CustomerDeleted",
    "CustomerNotFound",
    "DeleteResult",
    "EmailResync",
    "FolderNotFound",
    "FolderOutcome",
    "InvalidRequest",
    "NotConfigured",
    "Progress",
    "ResyncResult",
    "SyncBusy",
    "SyncError",
    "SyncFailed",
    "SyncOptions",
    "SyncProgress",
    "SyncResult",
    "delete_customer",
    "delete_emails",
    "normalise_filter",
    "parse_filter",
    "resync_emails",
    "sync_customer",
    "upgrade_store",
]


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    # Called from async code (a notebook, an async asset): run on a loop of our own in another thread.
    with ThreadPoolExecutor(1, thread_name_prefix="mailroom-sync") as pool:
        return pool.submit(asyncio.run, coroutine).result()


def sync_customer(
    customer_id: str,
    options: SyncOptions | None = None,
    *,
    settings: Settings | None = None,
    progress: Progress | None = None,
) -> SyncResult:
    """Sync a customer's Outlook connection: the folders and filter of `options` (else the customer's
    defaults, else the Inbox and every message). Raises a SyncError; a run that began is recorded either way
    (`error.result` holds the failed run's record)."""
    return _run(sync(customer_id, options or SyncOptions(), settings or Settings(), progress))


def resync_emails(
    customer_id: str,
    *,
    file_ids: Sequence[int] = (),
    message_ids: Sequence[str] = (),
    attachments: bool = False,
    connection_id: int | None = None,
    request_id: str | None = None,
    settings: Settings | None = None,
) -> ResyncResult:
    """Fetch single emails again (by file id or immutable message id): report which stored fields differed,
    write only if something did, and lift a tombstone (an email deleted through Mailroom comes back). As a
    sync would, it stores only what the synced folders' filters select: a message now outside them is
    removed, and one the store never held is refused (outcome `out_of_scope`, with why in `detail`)."""
    return _run(
        resync(
            customer_id,
            file_ids,
            message_ids,
            attachments=attachments,
            connection_id=connection_id,
            request_id=request_id,
            settings=settings or Settings(),
        )
    )


def delete_emails(
    customer_id: str,
    *,
    file_ids: Sequence[int] = (),
    message_ids: Sequence[str] = (),
    query: FileQuery | None = None,
    keep_record: bool = False,
    send_webhook: bool = False,
    request_id: str | None = None,
    settings: Settings | None = None,
) -> DeleteResult:
    """Delete emails (or attachments) by file id, immutable message id and/or a file query
    (`/delete_files_v2`'s filters): their content and derived data go, a tombstone keeps later syncs from
    bringing them back; `keep_record` keeps the metadata row for a later resync; `send_webhook` queues
    Carbon's FILE_DELETED for each file deleted."""
    return delete(
        customer_id,
        file_ids,
        message_ids,
        query,
        keep_record=keep_record,
        send_webhook=send_webhook,
        request_id=request_id,
        settings=settings or Settings(),
    )


def delete_customer(
    customer_id: str, *, only_if_deleted: bool = False, settings: Settings | None = None
) -> CustomerDeleted:
    """Delete a customer's mail store and its records in the control store (connections, tokens).

    With `only_if_deleted` (what the run for the API's `/delete_users` passes) nothing is removed unless the
    customer is still marked deleted (`ControlStore.customer_deleted`): a run that comes late, after the
    purge and a new customer with the same id, leaves that customer alone and says so in `skipped`.
    Without it (an operator's `mailroom customers remove`) a live customer is marked deleted first."""
    return _delete_customer(customer_id, only_if_deleted=only_if_deleted, settings=settings or Settings())


def upgrade_store(customer_id: str, *, settings: Settings | None = None) -> tuple[int, int] | None:
    """Bring the customer's mail store to this version's schema now rather than at its next sync (the API's
    read-only readers refuse an older one): (version before, after), None if it has no store yet. Raises
    SyncBusy while a run holds the store (the run upgrades it)."""
    return _upgrade_store(customer_id, settings=settings or Settings())
