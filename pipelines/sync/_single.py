"""Single emails and whole customers: resync (refetch, diff, write only if changed), delete, delete all.

Each holds the customer's run lock, so it never interleaves with a sync run's pages. A resync keeps the store
to what the synced folders' filters select (`_scope`), as a sync does: a message refetched outside them is
removed, or not stored, rather than written under a folder no round would ever clear it from.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from pipelines.graph import GraphError, Message
from pipelines.settings import Settings
from pipelines.store import AttachmentRow, FileQuery, MailStore, StoreError
from pipelines.sync import _folders
from pipelines.sync._connect import Target, find_connection, find_customer, open_target
from pipelines.sync._convert import convert
from pipelines.sync._engine import failure_of
from pipelines.sync._errors import InvalidRequest, SyncError
from pipelines.sync._lock import run_lock, run_lock_path
from pipelines.sync._models import (
    CustomerDeleted,
    DeleteResult,
    EmailResync,
    ResyncResult,
    SyncOptions,
)
from pipelines.sync._rounds import Store, download_attachments
from pipelines.sync._rows import ATTACHMENT_EXPAND, FULL_SELECT, attachment_row, email_row
from pipelines.sync._scope import scope_of
from pipelines.sync._webhooks import announce_deleted, announce_resync

_READY = ("updated", "unchanged", "inserted")
"""Resync outcomes that leave the file in the store as Outlook has it (Carbon's FILE_READY)."""


async def resync(
    customer_id: str,
    file_ids: Sequence[int],
    message_ids: Sequence[str],
    *,
    attachments: bool,
    connection_id: int | None,
    request_id: str | None,
    settings: Settings,
) -> ResyncResult:
    if not file_ids and not message_ids:
        raise InvalidRequest("name the emails to resync by file id or message id")
    control = settings.control_store()
    customer = find_customer(control, customer_id)
    connection = find_connection(control, customer, connection_id)
    store = settings.mail_store(customer.customer_id)
    emails: list[EmailResync] = []
    wanted: dict[str, int | None] = {}
    with run_lock(store.path, customer_id=customer.customer_id), ThreadPoolExecutor(1) as executor:
        db = Store(store, executor)
        try:
            wanted = await _targets(db, file_ids, message_ids, emails)
            scope = scope_of(await db.call(store.sync_states) if store.exists() else [])
            async with open_target(settings, control, customer, connection) as target:
                fetched = await target.mailbox.get_messages(
                    list(wanted), select=FULL_SELECT, expand=ATTACHMENT_EXPAND
                )
                paths = await _paths(db, target, fetched, connection.id)
                options = SyncOptions(attachments=attachments, request_id=request_id)
                for message_id, file_id in wanted.items():
                    message = fetched.get(message_id)
                    if message is None:
                        removed = await db.call(store.remove_messages, [message_id])
                        emails.append(
                            EmailResync(
                                file_id=file_id or (removed[0] if removed else None),
                                message_id=message_id,
                                outcome="gone",
                            )
                        )
                        continue
                    folder_id = message.parent_folder_id or ""
                    refusal = scope.refusal(message, paths.get(folder_id, folder_id))
                    if refusal is not None:
                        emails.append(await _leave_out(db, message_id, file_id, refusal))
                        continue
                    rows = {message_id: tuple(attachment_row(a) for a in message.attachments or ())}
                    if attachments:
                        await download_attachments(target.mailbox, options, rows)
                    row, new = rows[message_id], file_id is None
                    emails.append(await _write(db, message, row, paths, connection.id, request_id, new=new))
                requests = target.graph.stats.requests
        except (SyncError, GraphError, StoreError) as error:
            failure = failure_of(error, connection)
            known = [f for f in wanted.values() if f is not None]
            announce_resync(control, customer, known, request_id, error=str(failure))
            if failure is error:
                raise
            raise failure from error
    ready = [e.file_id for e in emails if e.file_id is not None and e.outcome in _READY]
    announce_resync(control, customer, ready, request_id)
    return ResyncResult(customer_id=customer.customer_id, emails=emails, requests=requests)


async def _targets(
    db: Store, file_ids: Sequence[int], message_ids: Sequence[str], emails: list[EmailResync]
) -> dict[str, int | None]:
    """Message id → file id (None when the store never held it) of everything to refetch; file ids the
    store does not know go straight into `emails` as unknown. An attachment's file brings its email."""
    store = db.store
    if not store.exists():
        emails += [EmailResync(file_id=f, message_id="", outcome="unknown") for f in dict.fromkeys(file_ids)]
        return dict.fromkeys(message_ids)
    wanted: dict[str, None] = {}
    if file_ids:
        resolved = await db.call(store.resolve_file_ids, list(file_ids))
        for file_id in dict.fromkeys(file_ids):
            if file_id in resolved:
                wanted[resolved[file_id][0]] = None
            else:
                emails.append(EmailResync(file_id=file_id, message_id="", outcome="unknown"))
    wanted.update(dict.fromkeys(message_ids))
    known = await db.call(store.known, list(wanted))
    return {m: known[m].file_id if m in known else None for m in wanted}


async def _paths(
    db: Store, target: Target, fetched: dict[str, Message | None], source: int
) -> dict[str, str]:
    """Folder id → display-name path for the folders the messages are in (walking the tree if one is new)."""
    store: MailStore = db.store
    recorded = {r.folder_id: r.path for r in await db.call(store.folders) if r.data_source_id == source}
    needed = {m.parent_folder_id for m in fetched.values() if m is not None and m.parent_folder_id}
    if needed - set(recorded):
        _, rows = await _folders.walk(target.mailbox, source)
        await db.call(store.upsert_folders, rows)
        recorded.update({r.folder_id: r.path for r in rows})
    return recorded


async def _leave_out(db: Store, message_id: str, file_id: int | None, refusal: str) -> EmailResync:
    """A refetched message the store must not hold: its row, if live, is removed as a round would remove it
    (content gone, file id kept for when it comes back); a tombstone stays, since nothing was restored."""
    removed = await db.call(db.store.remove_messages, [message_id]) if file_id is not None else ()
    return EmailResync(
        file_id=file_id,
        message_id=message_id,
        outcome="out_of_scope",
        detail=f"{'removed from the store' if removed else 'not stored'}: {refusal}",
    )


async def _write(
    db: Store,
    message: Message,
    attachments: tuple[AttachmentRow, ...],
    paths: dict[str, str],
    source: int,
    request_id: str | None,
    *,
    new: bool,
) -> EmailResync:
    """Store a refetched message in scope. `new`: the store never held it (it arrived since the last sync),
    so every field is new rather than changed."""
    body, unique = message.body, message.unique_body
    [(text, unique_text)] = convert(
        [
            (
                body.content_type if body else None,
                body.content if body else None,
                unique.content_type if unique else None,
                unique.content if unique else None,
            )
        ]
    )
    folder_id = message.parent_folder_id or ""
    row = email_row(
        message,
        folder_id=folder_id,
        folder_path=paths.get(folder_id, folder_id),
        data_source_id=source,
        body_text=text,
        unique_body_text=unique_text,
        attachments=attachments,
    )
    result = await db.call(db.store.apply_resync, row, request_id=request_id)
    if new:
        return EmailResync(file_id=result.file_id, message_id=message.id, outcome="inserted")
    return EmailResync(
        file_id=result.file_id,
        message_id=message.id,
        outcome="updated" if result.written else "unchanged",
        changed_fields=list(result.changed_fields),
        tombstone_lifted=result.tombstone_lifted,
    )


def delete(
    customer_id: str,
    file_ids: Sequence[int],
    message_ids: Sequence[str],
    query: FileQuery | None,
    *,
    keep_record: bool,
    send_webhook: bool,
    request_id: str | None,
    settings: Settings,
) -> DeleteResult:
    if not file_ids and not message_ids and query is None:
        raise InvalidRequest("name the emails to delete by file id, message id or with a file query")
    store = settings.mail_store(customer_id)
    if not store.exists():
        return DeleteResult(
            customer_id=customer_id,
            deleted=[],
            not_found=sorted(set(file_ids)),
            message_ids_not_found=list(dict.fromkeys(message_ids)),
            record_kept=keep_record,
        )
    with run_lock(store.path, customer_id=customer_id):
        ids = list(file_ids)
        known = store.known(list(message_ids)) if message_ids else {}
        ids += [known[m].file_id for m in message_ids if m in known]
        if query is not None:
            ids += _query_ids(store, query)
        result = store.delete_files(ids, keep_record=keep_record, request_id=request_id)
    if send_webhook and result.newly_deleted:  # a repeated delete announces nothing again
        control = settings.control_store()
        customer = control.customer(customer_id, include_deleted=True)
        if customer is not None:
            announce_deleted(control, customer, result.newly_deleted)
    return DeleteResult(
        customer_id=customer_id,
        deleted=list(result.deleted),
        newly_deleted=list(result.newly_deleted),
        not_found=list(result.not_found),
        message_ids_not_found=[m for m in dict.fromkeys(message_ids) if m not in known],
        record_kept=keep_record,
    )


def _query_ids(store: MailStore, query: FileQuery) -> list[int]:
    ids: list[int] = []
    page = query.model_copy(update={"limit": 1000, "offset": 0, "order_by": "id", "order_dir": "asc"})
    while True:
        found = store.list_files(page)
        ids += [f.file_id for f in found.results]
        if len(found.results) < page.limit:
            return ids
        page = page.model_copy(update={"min_file_id": found.results[-1].file_id + 1})


def delete_customer(customer_id: str, *, only_if_deleted: bool, settings: Settings) -> CustomerDeleted:
    control = settings.control_store()
    if only_if_deleted and not control.customer_deleted(customer_id):
        # Purged by an earlier run, or the id now names a customer created afresh since: not ours to touch.
        live = control.customer(customer_id) is not None
        return CustomerDeleted(
            customer_id=customer_id,
            mail_store_deleted=False,
            customer_purged=False,
            skipped=(
                f"customer {customer_id!r} is no longer marked deleted: "
                + ("the id names a customer created since, whose mail stays" if live else "already purged")
            ),
        )
    # A live customer is hidden first, so that nothing (the API's /update_users) brings it back mid-way.
    control.mark_customers_deleted([customer_id])
    customer = control.customer(customer_id, include_deleted=True)
    path = settings.mail_store_path(customer_id)
    with run_lock(path, customer_id=customer_id):
        deleted = settings.delete_mail_store(customer_id)
    run_lock_path(path).unlink(missing_ok=True)
    purged = control.purge_customer(customer.id) if customer is not None else False
    return CustomerDeleted(customer_id=customer_id, mail_store_deleted=deleted, customer_purged=purged)


def upgrade_store(customer_id: str, *, settings: Settings) -> tuple[int, int] | None:
    """Bring a customer's mail store to this code's schema under its run lock (so never beneath a running
    sync, which may be an older Mailroom's); (version before, after), or None if it has no store. Raises
    SyncBusy if a run holds the store: that run upgrades it when it next opens it."""
    store = settings.mail_store(customer_id)
    if not store.exists():
        return None
    with run_lock(store.path, customer_id=customer_id):
        if not store.exists():  # purged while we waited for nothing: do not create an empty one
            return None
        return store.upgrade()
