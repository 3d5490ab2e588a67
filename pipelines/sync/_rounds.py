"""One folder's round, as a pipeline: list pages → gather a batch → prepare it → store it, in order.

Listing (the Graph client reads one page ahead), preparing (the filter, what the store already knows, bodies
by $batch, attachments, HTML to text in worker processes) and storing (the run's one writer commits every
batch that is ready in one DuckDB transaction, on the run's one store thread) overlap: while batch n is
written, batch n+1 is converted and batch n+2 listed.
Batches of a folder are stored strictly in order, each with the cursor that follows its last page, so a run
killed anywhere resumes from the last stored cursor (DESIGN invariant 2). Memory stays bounded whatever the
mailbox size: at most `IN_FLIGHT` prepared batches exist at once, over all folders.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import filters
from pipelines.graph import AttachmentTooLarge, DeltaPage, GraphError, Mailbox, Message, MessagePage
from pipelines.store import AttachmentRow, Cursor, EmailRow, KnownMessage, MailStore, Page, PageResult
from pipelines.sync._convert import BodyParts, Converter
from pipelines.sync._folders import SyncFolder
from pipelines.sync._models import Counts, SyncOptions
from pipelines.sync._plan import FolderPlan
from pipelines.sync._rows import (
    ATTACHMENT_EXPAND,
    FULL_SELECT,
    attachment_row,
    email_row,
    is_complete,
    needs_attachment_list,
)

T = TypeVar("T")

IN_FLIGHT = 4
"""Prepared batches alive at once across the run's folders (the bound on the run's memory)."""
ATTACHMENT_DOWNLOADS = 4
"""Attachment downloads at once (the mailbox's gate allows 4 requests in flight anyway)."""


@dataclass
class Batch:
    """Pages of one folder gathered for one transaction: the latest state of each id, and the cursor after
    the last page. A message removed and then listed again (or the reverse) keeps only its last state."""

    messages: dict[str, Message] = field(default_factory=dict)
    removed: dict[str, None] = field(default_factory=dict)
    cursor: Cursor = field(default_factory=Cursor)
    pages: int = 0

    def add(self, messages: Sequence[Message], removed: Sequence[str], cursor: Cursor) -> None:
        for message in messages:
            self.removed.pop(message.id, None)
            self.messages.pop(message.id, None)
            self.messages[message.id] = message
        for message_id in removed:
            self.messages.pop(message_id, None)
            self.removed[message_id] = None
        self.cursor = cursor
        self.pages += 1

    @property
    def size(self) -> int:
        return len(self.messages) + len(self.removed)


@dataclass
class Prepared:
    page: Page
    counts: Counts


class Store:
    """The run's access to its mail store: every call on one thread, in the order asked (so a batch written
    before a round restarts is stored before the restart, never after)."""

    def __init__(self, store: MailStore, executor: Executor) -> None:
        self.store = store
        self._executor = executor

    async def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        call = functools.partial(function, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)


@dataclass
class RoundContext:
    """What every batch of a run needs."""

    mailbox: Mailbox
    store: Store
    options: SyncOptions
    keep: filters.Predicate
    converter: Converter
    data_source_id: int
    check_known: bool  # False when the store was empty as the run began: nothing to compare with
    folders: Mapping[str, str]  # every folder the run syncs, id → display-name path (it may grow: `discover`)
    writer: Writer
    in_flight: asyncio.Semaphore
    on_stored: Callable[[SyncFolder, PageResult, Counts], None]
    # Called with the folders mail left a synced folder for, when the run does not sync them: a folder made
    # since the last walk may belong to the run, which then adds it to `folders`.
    discover: Callable[[set[str]], Awaitable[None]]


def _facts_filter(keep: filters.Predicate, message: Message) -> bool:
    return keep(message.to_facts())


async def list_pages(
    mailbox: Mailbox, folder: SyncFolder, plan: FolderPlan, *, listing: bool, link: str | None, page_size: int
) -> AsyncIterator[tuple[list[Message], list[str], Cursor]]:
    """The round's pages as (messages, removed ids, cursor after the page)."""
    if listing:
        pages: AsyncIterator[MessagePage] = mailbox.list_messages(
            folder.id, select=plan.select, filter=plan.odata_filter, link=link
        )
        async for page in pages:
            yield page.messages, [], Cursor(next_link=page.next_link)
        return
    delta: AsyncIterator[DeltaPage] = mailbox.delta(
        folder.id,
        link=link,
        select=plan.select if link is None else None,
        filter=plan.odata_filter if link is None else None,
        page_size=page_size,
    )
    async for page in delta:
        cursor = Cursor(next_link=page.next_link) if page.next_link else Cursor(delta_link=page.delta_link)
        yield page.messages, page.removed, cursor


class AttachmentIndex:
    """The attachment metadata of every message of a folder that has attachments, from one listing (100
    messages a request) rather than a $batch item per message: Graph counts each item of a $batch against
    the mailbox's budget of 10,000 requests per 10 minutes, which a first round over a big folder would
    otherwise spend on attachment lookups. Entries are handed out once, so the index shrinks as it is used."""

    def __init__(self, mailbox: Mailbox, folder_id: str) -> None:
        self._task = asyncio.create_task(self._load(mailbox, folder_id))

    @staticmethod
    async def _load(mailbox: Mailbox, folder_id: str) -> dict[str, tuple[AttachmentRow, ...]]:
        found: dict[str, tuple[AttachmentRow, ...]] = {}
        pages = mailbox.list_messages(
            folder_id, select=("id",), filter="hasAttachments eq true", expand=ATTACHMENT_EXPAND
        )
        async for page in pages:
            for message in page.messages:
                found[message.id] = tuple(attachment_row(a) for a in message.attachments or ())
        return found

    async def take(self, message_id: str) -> tuple[AttachmentRow, ...] | None:
        """The message's attachments as listed, or None if the listing did not have it (it is newer)."""
        return (await self._task).pop(message_id, None)

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def run_round(
    ctx: RoundContext,
    folder: SyncFolder,
    plan: FolderPlan,
    pages: AsyncIterator[tuple[list[Message], list[str], Cursor]],
    index: AttachmentIndex | None = None,
) -> int:
    """List, prepare and store one round of a folder; returns the number of pages. The first error (Graph,
    the store, a conversion) stops the round: what was stored stays, the rest is listed again next time."""
    queue: asyncio.Queue[asyncio.Task[Prepared] | None] = asyncio.Queue(maxsize=1)
    written: list[asyncio.Task[None]] = []
    held = 0  # in-flight permits this round holds: given back as its batches are stored, or at the end

    async def produce() -> int:
        nonlocal held
        count = 0
        batch = Batch()
        async for messages, removed, cursor in pages:
            batch.add(messages, removed, cursor)
            count += 1
            if batch.size >= ctx.options.batch_rows or cursor.next_link is None:
                await ctx.in_flight.acquire()
                held += 1
                await queue.put(asyncio.create_task(prepare(ctx, folder, plan, batch, index)))
                batch = Batch()
        # The last page of a round has no next link, so it was dispatched above with all before it.
        await queue.put(None)
        return count

    async def account(future: asyncio.Future[PageResult], counts: Counts) -> None:
        nonlocal held
        try:
            result = await future
        finally:
            held -= 1
            ctx.in_flight.release()
        ctx.on_stored(folder, result, counts)

    async def forward() -> None:
        # Batches reach the writer in listing order: each carries the cursor that follows it.
        while (task := await queue.get()) is not None:
            prepared = await task
            written.append(asyncio.create_task(account(ctx.writer.submit(prepared.page), prepared.counts)))

    producer = asyncio.create_task(produce())
    forwarder = asyncio.create_task(forward())
    try:
        done, _ = await asyncio.wait((producer, forwarder), return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if (error := task.exception()) is not None:
                raise error
        await forwarder
        count = await producer
        await asyncio.gather(*written)
        return count
    finally:
        for task in (producer, forwarder):
            task.cancel()
        await asyncio.gather(producer, forwarder, return_exceptions=True)
        while not queue.empty():
            if (leftover := queue.get_nowait()) is not None:
                leftover.cancel()
                await asyncio.gather(leftover, return_exceptions=True)
        # Batches handed to the writer are stored (or fail) whatever happens here: wait for them, so that
        # nothing this round queued can reach the store after a restart's start_round.
        await asyncio.gather(*written, return_exceptions=True)
        for _ in range(held):
            ctx.in_flight.release()


class Writer:
    """The run's one writer. Pages are handed over as they are ready; each transaction takes every page that
    is waiting (up to `max_rows` rows, in the order handed over), so a busy writer commits larger
    transactions and pays the fixed cost of one (opening the file, committing, checkpointing) less often."""

    def __init__(self, store: Store, max_rows: int) -> None:
        self._store = store
        self._max_rows = max_rows
        self._queue: asyncio.Queue[tuple[Page, asyncio.Future[PageResult]]] = asyncio.Queue()

    def submit(self, page: Page) -> asyncio.Future[PageResult]:
        future: asyncio.Future[PageResult] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((page, future))
        return future

    async def run(self) -> None:
        group: list[tuple[Page, asyncio.Future[PageResult]]] = []
        try:
            while True:
                group = [await self._queue.get()]
                rows = len(group[0][0].upserts)
                while rows < self._max_rows and not self._queue.empty():
                    item = self._queue.get_nowait()
                    group.append(item)
                    rows += len(item[0].upserts)
                try:
                    results = await self._store.call(self._store.store.apply_pages, [p for p, _ in group])
                except Exception as error:
                    for _, future in group:
                        future.set_exception(error)
                else:
                    for (_, future), result in zip(group, results, strict=True):
                        future.set_result(result)
                group = []
        finally:
            while not self._queue.empty():
                group.append(self._queue.get_nowait())
            for _, future in group:
                future.cancel()


async def prepare(
    ctx: RoundContext, folder: SyncFolder, plan: FolderPlan, batch: Batch, index: AttachmentIndex | None
) -> Prepared:
    """Turn a batch of listed messages into the store's page: filter, skip what is unchanged, fetch what is
    missing, record attachments, convert bodies."""
    counts = Counts(seen=len(batch.messages))
    removals, destinations = await _really_gone(ctx, folder, list(batch.removed))
    matched = []
    for message in batch.messages.values():
        if _facts_filter(ctx.keep, message):
            matched.append(message)
        else:
            removals.append(message.id)
    if len(matched) < len(batch.messages):
        counts.skipped["not_matched"] = len(batch.messages) - len(matched)
    counts.matched = len(matched)
    known: dict[str, KnownMessage] = {}
    if ctx.check_known and matched:
        known = await ctx.store.call(ctx.store.store.known, [m.id for m in matched])
    seen: list[str] = []
    todo: list[Message] = []
    for message in matched:
        record = known.get(message.id)
        if record is not None and record.tombstoned:
            counts.skipped["tombstoned"] = counts.skipped.get("tombstoned", 0) + 1
            seen.append(message.id)  # a tombstone kept with its record must not be swept as gone
        elif (
            record is not None
            and not record.removed
            and record.change_key == message.change_key
            and record.folder_id == folder.id
        ):
            counts.unchanged += 1
            seen.append(message.id)
        else:
            todo.append(message)

    full: dict[str, Message] = {}
    attachments: dict[str, tuple[AttachmentRow, ...]] = {}
    if plan.strategy == "pages":
        full = {m.id: m for m in todo if is_complete(m)}
        missing = [m.id for m in todo if m.id not in full]
    else:
        missing = [m.id for m in todo]
    if missing:
        # Bodies of the batch strategy, or delta entries that carried only what changed.
        fetched = await ctx.mailbox.get_messages(missing, select=FULL_SELECT, expand=ATTACHMENT_EXPAND)
        for message_id, message in fetched.items():
            if message is None:
                # Gone since it was listed: this round's @removed, or the next round's, takes it out.
                counts.skipped["gone"] = counts.skipped.get("gone", 0) + 1
                continue
            if not _facts_filter(ctx.keep, message):
                removals.append(message_id)  # changed since it was listed, and no longer matches
                counts.matched -= 1
                counts.skipped["not_matched"] = counts.skipped.get("not_matched", 0) + 1
                continue
            full[message_id] = message
            attachments[message_id] = tuple(attachment_row(a) for a in message.attachments or ())
    if destinations:
        # Moved to another folder the run syncs, yet stored here still: put it there (see `_really_gone`).
        fetched = await ctx.mailbox.get_messages(
            list(destinations), select=FULL_SELECT, expand=ATTACHMENT_EXPAND
        )
        for message_id, message in fetched.items():
            if message is None or message.parent_folder_id != destinations[message_id]:
                continue  # gone or moved again since: a later round sees to it
            if not _facts_filter(ctx.keep, message):
                removals.append(message_id)
                continue
            full[message_id] = message
            attachments[message_id] = tuple(attachment_row(a) for a in message.attachments or ())
    counts.fetched = len(full)
    listed = [m for m in full.values() if m.id not in attachments and needs_attachment_list(m)]
    if index is not None:
        for message in [m for m in listed if m.has_attachments]:
            if (rows := await index.take(message.id)) is not None:
                attachments[message.id] = rows
    listed = [m.id for m in listed if m.id not in attachments]
    if listed:
        answers = await ctx.mailbox.get_messages(listed, select=("id",), expand=ATTACHMENT_EXPAND)
        for message_id, message in answers.items():
            if message is not None:
                attachments[message_id] = tuple(attachment_row(a) for a in message.attachments or ())
    if ctx.options.attachments:
        await download_attachments(ctx.mailbox, ctx.options, attachments)

    order = list(full.values())
    parts: list[BodyParts] = [_body_parts(m) for m in order]
    texts = await ctx.converter.convert(parts)
    rows: list[EmailRow] = [
        email_row(
            message,
            folder_id=destinations.get(message.id, folder.id),
            folder_path=ctx.folders.get(destinations.get(message.id, folder.id), folder.path),
            data_source_id=ctx.data_source_id,
            body_text=text,
            unique_body_text=unique_text,
            attachments=attachments.get(message.id, ()),
        )
        for message, (text, unique_text) in zip(order, texts, strict=True)
    ]
    page = Page(
        folder_id=folder.id,
        fingerprint=plan.fingerprint,
        upserts=rows,
        removals=removals,
        seen=seen,
        cursor=batch.cursor,
        request_id=ctx.options.request_id,
        tags=ctx.options.tags,
    )
    return Prepared(page, counts)


async def _really_gone(
    ctx: RoundContext, folder: SyncFolder, removed: list[str]
) -> tuple[list[str], dict[str, str]]:
    """Of a round's `@removed` entries, the ids that really left the synced folders; and, by id, the folder
    the run syncs that each of the others is in now, when the store holds it elsewhere still.

    Graph reports a move out of a folder as a removal, and with immutable ids the message lives on: when it
    moved to another folder this run syncs, that folder's round stores the move (same row, same file id,
    content kept), so removing it here first would delete its content and bring it back as new. But that
    round may have listed it already, and this folder's batch listed before the move may have been stored
    after it, so the row can be here still: such a message is stored again where it is. A folder the run
    does not sync may be one made since the last walk, below a synced folder: the run is asked first
    (`discover`)."""
    if not removed:
        return removed, {}
    where = await ctx.mailbox.get_messages(removed, select=("parentFolderId",))
    elsewhere = {m.parent_folder_id for m in where.values() if m is not None and m.parent_folder_id}
    if unsynced := elsewhere - ctx.folders.keys():
        await ctx.discover(unsynced)
    gone, moved = [], {}
    for message_id in removed:
        found = where.get(message_id)
        if found is None or found.parent_folder_id not in ctx.folders:
            gone.append(message_id)
        elif found.parent_folder_id != folder.id:
            moved[message_id] = found.parent_folder_id
    if not moved:
        return gone, {}
    held = await ctx.store.call(ctx.store.store.known, list(moved))
    return gone, {
        message_id: target
        for message_id, target in moved.items()
        if (record := held.get(message_id)) is not None
        and not record.tombstoned
        and (record.removed or record.folder_id != target)
    }


def _body_parts(message: Message) -> BodyParts:
    body, unique = message.body, message.unique_body
    return (
        body.content_type if body else None,
        body.content if body else None,
        unique.content_type if unique else None,
        unique.content if unique else None,
    )


async def download_attachments(
    mailbox: Mailbox, options: SyncOptions, attachments: dict[str, tuple[AttachmentRow, ...]]
) -> None:
    """Fill in attachment content where `options` ask for it: streamed from `/$value`, capped; inline images
    only when asked, reference attachments (links to files elsewhere) never."""
    gate = asyncio.Semaphore(ATTACHMENT_DOWNLOADS)

    async def one(message_id: str, row: AttachmentRow) -> AttachmentRow:
        if row.kind == "reference":
            return _with(row, content_state="reference")
        if row.is_inline and not options.inline_attachments:
            return _with(row, content_state="inline_skipped")
        cap = options.max_attachment_bytes
        if row.size is not None and row.size > cap:
            return _with(row, content_state="too_large")
        async with gate:
            try:
                chunks = bytearray()
                async with mailbox.open_attachment(message_id, row.attachment_id, max_bytes=cap) as stream:
                    async for chunk in stream.chunks():
                        chunks += chunk
                    content_type = stream.content_type
            except AttachmentTooLarge:
                return _with(row, content_state="too_large")
            except GraphError as error:
                if error.status in (404, 405):
                    return _with(row, content_state="unavailable")
                raise
        fmt = row.format
        if row.kind == "item" and content_type:
            base = content_type.split(";")[0].strip().lower()
            fmt = {"message/rfc822": "eml", "text/calendar": "ics", "text/vcard": "vcf"}.get(base, fmt)
        return _with(row, content=bytes(chunks), content_state="stored", format=fmt)

    for message_id, rows in list(attachments.items()):
        attachments[message_id] = tuple(await asyncio.gather(*(one(message_id, r) for r in rows)))


def _with(row: AttachmentRow, **changes: Any) -> AttachmentRow:
    return replace(row, **changes)
