"""A sync run: customer → connection → folders → one round per folder → the run's record.

The run holds the customer's run lock throughout, records itself in the mail store (its plan, folders and
counts, or the error that stopped it), keeps the connection's status in the control store (SYNCING, READY,
SYNC_ERROR), rebuilds the full-text index when one exists and the run changed something (unless its options
leave that to Dagster's `email_search_index` asset), and queues Carbon's webhooks for what it did, or for the
error that stopped it (`_webhooks`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import filters
from pipelines.graph import (
    AuthError,
    FolderTree,
    GraphError,
    NotFoundError,
    SyncStateExpired,
)
from pipelines.settings import Settings
from pipelines.store import (
    Connection,
    Cursor,
    MailStore,
    Page,
    PageResult,
    RunStart,
    RunTotals,
    StoreBusy,
    StoreError,
    SyncState,
)
from pipelines.sync import _folders
from pipelines.sync._connect import Target, find_connection, find_customer, open_target
from pipelines.sync._convert import Converter, default_workers
from pipelines.sync._errors import (
    ConnectionRefused,
    FolderNotFound,
    InvalidRequest,
    SyncBusy,
    SyncError,
    SyncFailed,
)
from pipelines.sync._folders import SyncFolder
from pipelines.sync._lock import run_lock
from pipelines.sync._models import Counts, FolderOutcome, SyncOptions, SyncProgress, SyncResult
from pipelines.sync._plan import FolderPlan, RunPlan, folder_plan, plan_run
from pipelines.sync._rounds import (
    IN_FLIGHT,
    AttachmentIndex,
    RoundContext,
    Store,
    Writer,
    list_pages,
    run_round,
)
from pipelines.sync._webhooks import announce_sync

FOLDERS_AT_ONCE = 4
"""Folders listed at once (a mailbox takes 4 requests in flight; more folders would only queue)."""
GROUP_ROWS = 2000
"""At most this many rows in one store transaction (pages waiting for the writer are committed together)."""
LIGHT_PAGE_SIZE = 500
"""Page size of listings without bodies (the batch strategy): small pages of ids and a few properties."""

Progress = Callable[[SyncProgress], None]


def parse_filter(value: str | dict[str, Any] | None) -> filters.Filter:
    """A filter from text or Carbon JSON; InvalidRequest with the filter language's own explanation."""
    try:
        return filters.parse(value)
    except filters.FilterError as error:
        raise InvalidRequest(f"the filter is not valid: {error}") from None


def normalise_filter(value: str | dict[str, Any]) -> str:
    """A filter in either spelling as its canonical text (what `SyncOptions.filter` takes); InvalidRequest
    with the filter language's own explanation."""
    return filters.to_text(parse_filter(value))


@dataclass
class _Tally:
    """The run's running totals, updated as batches are stored."""

    counts: Counts = field(default_factory=Counts)
    created: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)
    stored: int = 0


class _Run:
    def __init__(
        self,
        settings: Settings,
        target: Target,
        db: Store,
        plan: RunPlan,
        options: SyncOptions,
        references: tuple[str, ...],
        check_known: bool,
        progress: Progress | None,
    ) -> None:
        self.settings = settings
        self.references = references
        self.target = target
        self.db = db
        self.store: MailStore = db.store
        self.plan = plan
        self.options = options
        self.progress = progress
        self.tally = _Tally()
        self.outcomes: dict[str, FolderOutcome] = {}
        self.folders: list[SyncFolder] = []
        self.later: list[SyncFolder] = []  # found mid-run: synced after the folders the run began with
        self.folders_done = 0
        self.walked = False  # whether this run walked the folder tree (else its folders are from records)
        self.known_folders: set[str] = set()  # every folder id of the mailbox the records or walk hold
        self._walking = asyncio.Lock()
        workers = default_workers() if options.convert_workers is None else options.convert_workers
        self.converter = Converter(workers)
        self.context = RoundContext(
            mailbox=target.mailbox,
            store=db,
            options=options,
            keep=filters.compile(plan.tree),
            converter=self.converter,
            data_source_id=target.connection.id,
            check_known=check_known,
            folders={},
            writer=Writer(db, GROUP_ROWS),
            in_flight=asyncio.Semaphore(IN_FLIGHT),
            on_stored=self._stored,
            discover=self.discover,
        )

    # -- folders -------------------------------------------------------------------------------------------

    async def resolve(self) -> list[SyncFolder]:
        """The folders the references name: from the records of the last walk when they do, else from a
        walk of the tree, which is recorded."""
        source, subfolders = self.target.connection.id, self.options.subfolders
        recorded = [r for r in await self.db.call(self.store.folders) if r.data_source_id == source]
        self.known_folders = {r.folder_id for r in recorded}
        if recorded:
            refreshed = await self.db.call(self.store.folders_refreshed_at, source)
            if not (subfolders and _folders.stale(refreshed)):
                found = _folders.from_records(recorded, self.references, subfolders=subfolders)
                if found is not None:
                    return found
        tree = await self._walk()
        return await _folders.resolve(self.target.mailbox, tree, self.references, subfolders=subfolders)

    async def _walk(self) -> FolderTree:
        tree, rows = await _folders.walk(self.target.mailbox, self.target.connection.id)
        self.walked = True
        self.known_folders = {r.folder_id for r in rows}
        await self.db.call(self.store.upsert_folders, rows)
        return tree

    async def _rewalk(self) -> None:
        """Walk the tree again mid-run, and add what the references name in it now that the run does not
        sync yet, to be synced after the folders it began with. A reference that names nothing now is left
        to the next run, which says so (FolderNotFound) before it begins."""
        tree = await self._walk()
        syncing = {f.id for f in self.folders}
        for reference in self.references:
            try:
                found = await _folders.resolve(
                    self.target.mailbox, tree, (reference,), subfolders=self.options.subfolders
                )
            except FolderNotFound:
                continue
            fresh = [f for f in found if f.id not in syncing]
            syncing.update(f.id for f in fresh)
            self.folders += fresh
            self.later += fresh
        self.context.folders = {f.id: f.path for f in self.folders}

    async def discover(self, folder_ids: set[str]) -> None:
        """Mail left a synced folder for these folders, which the run does not sync. With subfolders, one the
        records have never seen was made since the last walk, and may be below a synced folder: walk now
        (once a run), so the round does not remove mail that moved into it, and the run syncs it."""
        if not self.options.subfolders or self.walked or folder_ids <= self.known_folders:
            return
        async with self._walking:
            if not self.walked:
                await self._rewalk()

    # -- rounds --------------------------------------------------------------------------------------------

    async def sync_folder(self, folder: SyncFolder, stored: list[SyncState]) -> None:
        states = {s.fingerprint: s for s in stored if s.folder_id == folder.id}
        plan = folder_plan(self.plan, total=folder.total, existing=set(states))
        outcome = FolderOutcome(folder_id=folder.id, path=folder.path, round="first")
        self.outcomes[folder.id] = outcome
        listing = self.plan.mode == "listing"
        state = states.get(plan.fingerprint)
        link: str | None = None
        if state is not None and state.status == "in_round" and state.next_link:
            outcome.round, link = "resumed", state.next_link
        elif state is not None and state.status == "idle" and state.delta_link and not listing:
            outcome.round, link = "incremental", state.delta_link
        else:
            outcome.round = "listing" if listing else "first"
            await self._start(folder, plan, forget=state is None and bool(states))
        try:
            outcome.pages += await self._round(folder, plan, link, whole=outcome.round != "incremental")
            if outcome.round == "resumed" and not listing:
                # The round began in an earlier run, and Graph leaves changes made since its start to the
                # next round: take that one too, so the run ends with the mailbox as it was when it began.
                state = await self.db.call(self.store.sync_state, folder.id, plan.fingerprint)
                if state is not None and state.delta_link:
                    outcome.pages += await self._round(folder, plan, state.delta_link, whole=False)
        except SyncStateExpired:
            # Graph forgot the link: list the folder again, and remove afterwards what the listing no
            # longer shows (deletions made while the link was lost would otherwise be missed).
            outcome.restarted = True
            await self.db.call(self.store.start_round, folder.id, plan.fingerprint)
            outcome.pages += await self._round(folder, plan, None, whole=True)
        except NotFoundError:
            if await self._exists(folder):
                raise
            await self._gone(folder, plan)
        self.folders_done += 1
        self.report(folder)

    async def _start(self, folder: SyncFolder, plan: FolderPlan, *, forget: bool) -> None:
        if forget:
            # Another filter's rounds are stale once this one rewrites the folder's rows.
            await self.db.call(self.store.forget_sync_state, folder.id)
        # The round records its filter, so a resync between runs holds messages to it (`_scope`).
        await self.db.call(
            self.store.start_round,
            folder.id,
            plan.fingerprint,
            sweep=self.context.check_known,
            filter_text=self.plan.filter_text,
        )

    async def _round(self, folder: SyncFolder, plan: FolderPlan, link: str | None, *, whole: bool) -> int:
        """One round from `link` (None: from the start). `whole`: the round lists the whole folder (or what
        is left of it), so the attachments of its messages are worth one listing of their own."""
        settings = self.settings.graph
        page_size = settings.delta_page_size if plan.strategy == "pages" else LIGHT_PAGE_SIZE
        pages = list_pages(
            self.target.mailbox,
            folder,
            plan,
            listing=self.plan.mode == "listing",
            link=link,
            page_size=page_size,
        )
        # The batch strategy fetches bodies by $batch, attachments with them: no index needed.
        indexed = whole and plan.strategy == "pages"
        index = AttachmentIndex(self.target.mailbox, folder.id) if indexed else None
        try:
            return await run_round(self.context, folder, plan, pages, index)
        finally:
            if index is not None:
                await index.close()

    async def _exists(self, folder: SyncFolder) -> bool:
        try:
            await self.target.mailbox.get_folder(folder.id)
        except NotFoundError:
            return False
        return True

    async def _gone(self, folder: SyncFolder, plan: FolderPlan) -> None:
        """The folder was deleted from the mailbox: a sweep with nothing seen removes its rows."""
        await self.db.call(self.store.start_round, folder.id, plan.fingerprint)
        result = await self.db.call(self.store.apply_page, Page(folder.id, plan.fingerprint, cursor=Cursor()))
        await self.db.call(self.store.forget_sync_state, folder.id)
        # Its record goes too: resolved from it again, a path the folder had would keep naming nothing.
        await self.db.call(self.store.forget_folders, [folder.id])
        self.outcomes[folder.id].round = "gone"
        self._stored(folder, result, Counts())

    # -- accounting ----------------------------------------------------------------------------------------

    def _stored(self, folder: SyncFolder, result: PageResult, counts: Counts) -> None:
        stored = Counts(
            inserted=result.inserted,
            updated=result.updated,
            moved=result.moved,
            unchanged=result.unchanged,
            deleted=result.removed + result.swept,
            skipped=dict(result.skipped),
        )
        stored.add(counts)
        self.outcomes[folder.id].counts.add(stored)
        self.tally.counts.add(stored)
        self.tally.created.extend(result.created_file_ids)
        self.tally.changed.extend(result.changed_file_ids)
        self.tally.removed.extend(result.removed_file_ids)
        self.tally.stored += len(result.created_file_ids) + len(result.changed_file_ids) + result.unchanged
        self.report(folder)

    def report(self, folder: SyncFolder | None, *, done: bool = False) -> None:
        if self.progress is None:
            return
        totals = [f.total for f in self.folders]
        self.progress(
            SyncProgress(
                folders_total=len(self.folders),
                folders_done=self.folders_done,
                folder=folder.path if folder else None,
                seen=self.tally.counts.seen,
                stored=self.tally.stored,
                expected=sum(t or 0 for t in totals) if totals else None,
                done=done,
            )
        )

    async def run_folders(self, folders: list[SyncFolder]) -> None:
        gate = asyncio.Semaphore(FOLDERS_AT_ONCE)
        states = await self.db.call(self.store.sync_states)

        async def one(folder: SyncFolder) -> None:
            async with gate:
                await self.sync_folder(folder, states)

        self.context.folders = {f.id: f.path for f in self.folders}
        writer = asyncio.create_task(self.context.writer.run())
        try:
            async with asyncio.TaskGroup() as group:
                for folder in folders:
                    group.create_task(one(folder))
        except BaseExceptionGroup as errors:
            raise _first(errors) from None
        finally:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
            self.converter.close()

    async def run_later(self) -> None:
        """Sync the folders found mid-run. Folders resolved from the records of an earlier walk that turned
        out deleted call for a walk first: a path may now name another folder (one deleted and made anew
        under the same path, as people do)."""
        if not self.walked and any(o.round == "gone" for o in self.outcomes.values()):
            await self._rewalk()
        if self.later:
            found, self.later = self.later, []
            await self.run_folders(found)

    def totals(self, run_seconds: float) -> RunTotals:
        counts = self.tally.counts
        stats = self.target.graph.stats
        return RunTotals(
            seen=counts.seen,
            matched=counts.matched,
            fetched=counts.fetched,
            inserted=counts.inserted,
            updated=counts.updated,
            moved=counts.moved,
            unchanged=counts.unchanged,
            deleted=counts.deleted,
            skipped=dict(counts.skipped),
            requests=stats.requests,
            throttled_waits=stats.throttled,
            throttled_seconds=round(stats.waited_s, 3),
            details={
                "mode": self.plan.mode,
                "strategy": self.plan.strategy,
                "strategy_reason": self.plan.reason,
                "connection_id": self.target.connection.id,
                "mailbox": self.target.connection.mailbox,
                "retries": stats.retries,
                "seconds": round(run_seconds, 3),
                "folders": [o.model_dump() for o in self.outcomes.values()],
            },
        )


def _first(errors: BaseExceptionGroup) -> BaseException:
    """The first real error of a task group (a cancellation only when there is nothing else)."""
    leaves: list[BaseException] = []

    def collect(group: BaseExceptionGroup) -> None:
        for error in group.exceptions:
            if isinstance(error, BaseExceptionGroup):
                collect(error)
            else:
                leaves.append(error)

    collect(errors)
    return next((e for e in leaves if not isinstance(e, asyncio.CancelledError)), leaves[0])


def failure_of(error: BaseException, connection: Connection) -> SyncError:
    """The engine's error for whatever stopped a run."""
    if isinstance(error, SyncError):
        return error
    if isinstance(error, AuthError):
        name = f"connection {connection.id} ({connection.mailbox})"
        # The token provider's errors already begin with the connection's name: say it once.
        detail = str(error).removeprefix(f"{name}: ")
        return ConnectionRefused(f"Microsoft refused {name}: {detail}; the mailbox must be connected again")
    if isinstance(error, StoreBusy):
        return SyncBusy(str(error))
    if isinstance(error, GraphError | StoreError):
        return SyncFailed(f"the sync of {connection.mailbox} stopped: {error}")
    return SyncFailed(f"the sync of {connection.mailbox} stopped: {type(error).__name__}: {error}")


async def sync(
    customer_id: str, options: SyncOptions, settings: Settings, progress: Progress | None
) -> SyncResult:
    """Run a sync; a control store that fails outside the run (busy, unreadable) is a SyncFailed too."""
    try:
        return await _sync(customer_id, options, settings, progress)
    except StoreError as error:
        raise SyncFailed(
            f"the sync of customer {customer_id!r} could not use the control store: {error}"
        ) from error


async def _sync(
    customer_id: str, options: SyncOptions, settings: Settings, progress: Progress | None
) -> SyncResult:
    control = settings.control_store()
    customer = find_customer(control, customer_id)
    connection = find_connection(control, customer, options.connection_id)
    tree = parse_filter(options.filter if options.filter is not None else customer.default_filter)
    references = options.folders or (customer.default_folder or "inbox",)
    plan = plan_run(tree, one_off=options.one_off, strategy=options.strategy)
    store = settings.mail_store(customer.customer_id)
    with (
        run_lock(store.path, customer_id=customer.customer_id),
        ThreadPoolExecutor(1, thread_name_prefix="mailroom-store") as executor,
    ):
        db = Store(store, executor)
        try:
            await db.call(
                store.close_interrupted_runs, "interrupted: the run's process stopped before it finished"
            )
            held = await db.call(store.counts)
        except StoreError as error:
            raise failure_of(error, connection) from error
        check_known = bool(held.emails or held.removed or held.tombstones)
        started = datetime.now(UTC)
        run_id: int | None = None
        run: _Run | None = None
        try:
            async with open_target(settings, control, customer, connection) as target:
                run = _Run(settings, target, db, plan, options, references, check_known, progress)
                run.folders = await run.resolve()
                control.record_connection_sync(connection.id, status="SYNCING")
                start = RunStart(
                    plan=plan.explain(),
                    folders=tuple(f.path for f in run.folders),
                    trigger=options.trigger,
                    request_id=options.request_id,
                    orchestrator_run_id=options.orchestrator_run_id,
                )
                run_id = await db.call(store.start_run, start)
                run.report(None)
                await run.run_folders(list(run.folders))
                await run.run_later()
                finished = datetime.now(UTC)
                totals = run.totals((finished - started).total_seconds())
                await db.call(store.finish_run, run_id, totals)
                changed = totals.inserted + totals.updated + totals.moved + totals.deleted
                if changed and options.rebuild_index and await db.call(store.has_search_index):
                    await db.call(store.rebuild_search_index)
                run.report(None, done=True)
        except BaseException as error:
            # Ctrl-C and cancellation are recorded like any failure, then go on as themselves.
            failure = failure_of(error, connection)
            if run_id is None and _asked_directly(options) and isinstance(failure, InvalidRequest):
                # A folder that the caller named does not exist: their request was wrong, not the
                # connection, whose status (and Carbon's webhooks) stay as they were. A recorded request
                # (the API's, which set the status to QUEUED_FOR_SYNCING) learns its outcome from them, and
                # a default folder that is gone is the data source's problem: both are reported below.
                raise
            finished = datetime.now(UTC)
            if run is not None and run_id is not None:
                totals = run.totals((finished - started).total_seconds())
                # If the store is what failed, the run stays 'running' until the next run closes it.
                with contextlib.suppress(StoreError):
                    await db.call(store.finish_run, run_id, totals, error=str(failure))
                failure.result = _result(
                    customer_id, connection, run, run_id, started, finished, str(failure)
                )
            with contextlib.suppress(StoreError):  # the error that stopped the run is the one to report
                control.record_connection_sync(connection.id, status="SYNC_ERROR", error=str(failure))
            announce_sync(
                control, customer, connection, failure.result, options.request_id, error=str(failure)
            )
            if failure is error or not isinstance(error, Exception):
                raise
            raise failure from error
        control.record_connection_sync(connection.id, status="READY", synced=True)
        result = _result(customer_id, connection, run, run_id, started, finished, None)
        announce_sync(control, customer, connection, result, options.request_id)
        return result


def _asked_directly(options: SyncOptions) -> bool:
    """Whether the run's folders were named by whoever runs it now (the CLI, a Dagster launch), not taken
    from the customer's settings nor from a request recorded for later (`request_id`)."""
    return options.folders is not None and options.request_id is None


def _result(
    customer_id: str,
    connection: Connection,
    run: _Run,
    run_id: int,
    started: datetime,
    finished: datetime,
    error: str | None,
) -> SyncResult:
    stats = run.target.graph.stats
    return SyncResult(
        customer_id=customer_id,
        connection_id=connection.id,
        mailbox=connection.mailbox,
        run_id=run_id,
        status="failed" if error else "succeeded",
        error=error,
        plan=run.plan.explain(),
        strategy=run.plan.strategy,
        strategy_reason=run.plan.reason,
        folders=list(run.outcomes.values()),
        counts=run.tally.counts,
        requests=stats.requests,
        throttled_waits=stats.throttled,
        throttled_seconds=round(stats.waited_s, 3),
        created_file_ids=sorted(run.tally.created),
        changed_file_ids=sorted(run.tally.changed),
        removed_file_ids=sorted(run.tally.removed),
        started_at=started,
        finished_at=finished,
    )
