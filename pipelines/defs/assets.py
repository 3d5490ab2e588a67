"""The assets per customer partition: the synced Outlook emails, and the full-text index derived from them."""

from collections.abc import Iterator

import dagster as dg

from pipelines import sync
from pipelines.defs import _report, _tags
from pipelines.defs._request_status import carrying_out
from pipelines.defs.config import SyncConfig
from pipelines.defs.partitions import customers
from pipelines.defs.resources import MailroomStores, OutlookGraph, settings

GROUP = "outlook"
PREVIEW_ROWS = 10


@dg.asset(
    partitions_def=customers,
    group_name=GROUP,
    kinds={"duckdb"},
    description=(
        "A customer's Outlook mail in its DuckDB mail store: the folders and messages its filter "
        "selects, kept equal to the mailbox by delta rounds."
    ),
)
def outlook_emails(
    context: dg.AssetExecutionContext, config: SyncConfig, stores: MailroomStores, graph: OutlookGraph
) -> dg.MaterializeResult:
    """Sync the customer's mailbox (the run's folders and filter, else the customer's) into its mail store."""
    customer_id = _tags.run_customer(context)
    options = sync.SyncOptions(
        folders=tuple(config.folders) or None,
        subfolders=config.subfolders,
        filter=config.filter_text(),
        one_off=config.one_off,
        attachments=config.attachments,
        connection_id=config.connection_id,
        tags=config.sync_tags(),
        trigger=context.run.tags.get("trigger"),
        request_id=None if config.request_id is None else str(config.request_id),
        orchestrator_run_id=context.run.run_id,
        rebuild_index=False,  # email_search_index, the next step, rebuilds it
    )
    engine_settings = settings(stores, graph)
    with carrying_out(stores, config.request_id, context.run.run_id):
        stores.refuse_deleted(customer_id)
        try:
            result = sync.sync_customer(
                customer_id, options, settings=engine_settings, progress=_progress_log(context)
            )
        except sync.SyncError as error:
            raise dg.Failure(description=str(error)) from None
    store = stores.mail(customer_id)
    held = store.counts()
    counts = result.counts
    changed = counts.inserted + counts.updated + counts.moved + counts.deleted
    return dg.MaterializeResult(
        metadata={
            "emails": held.emails,
            "changed": changed,
            "last_sync": dg.MetadataValue.timestamp(result.finished_at),
            "mailbox": result.mailbox,
            "outcomes": dg.MetadataValue.md(
                _report.outcomes(counts.model_dump(exclude={"skipped"}), counts.skipped)
            ),
            "folders": dg.MetadataValue.md(
                _report.bullet_list(_report.folder_line(f) for f in result.folders)
            ),
            "preview": dg.MetadataValue.md(_report.preview(store.newest(PREVIEW_ROWS))),
            "plan": dg.MetadataValue.md(
                f"```\n{result.plan}\n```\n\n{result.strategy}: {result.strategy_reason}"
            ),
            "attachments": held.attachments,
            "tombstones": held.tombstones,
            "requests": result.requests,
            "throttled_waits": result.throttled_waits,
            "store": dg.MetadataValue.path(str(store.path)),
        }
    )


def _progress_log(context: dg.AssetExecutionContext) -> sync.Progress:
    """Log each folder as it finishes (the per-batch calls would flood the event log)."""

    folders_done = 0

    def report(progress: sync.SyncProgress) -> None:
        nonlocal folders_done
        if progress.folders_done > folders_done or progress.done:
            folders_done = progress.folders_done
            context.log.info(
                f"{progress.folders_done} of {progress.folders_total} folders done: "
                f"{progress.seen} messages seen, {progress.stored} stored"
            )

    return report


@dg.asset(
    partitions_def=customers,
    group_name=GROUP,
    deps=[outlook_emails],
    kinds={"duckdb"},
    output_required=False,
    description="DuckDB full-text index (BM25) over the subject, sender and text of the customer's emails.",
)
def email_search_index(
    context: dg.AssetExecutionContext, stores: MailroomStores
) -> Iterator[dg.MaterializeResult]:
    """Rebuild the index after a sync that changed something (or when there is none yet); after a sync that
    changed nothing, record an observation saying why it was left as it is. Run on its own, rebuild it.

    The mail store says whether the index is current (an email written since its last build makes it
    stale), so a change whose rebuild never happened (a failed step, a CLI sync told not to rebuild) is
    picked up by the next run whatever that run's sync did.
    """
    customer_id = _tags.run_customer(context)
    store = stores.mail(customer_id)
    if not store.exists():  # opening it would create an empty store, and this an index of nothing
        raise dg.Failure(
            description=f"{customer_id!r} has no mail store yet, so nothing to index: sync it first "
            "(sync_outlook_job builds the index after the sync)"
        )
    status = store.search_index_status()
    if not _synced_in_this_run(context, customer_id):
        reason = "asked for on its own"
    elif status == "current":
        context.log_event(
            dg.AssetObservation(
                asset_key=context.asset_key,
                partition=customer_id,
                metadata={"skipped": "no email changed since the index was built"},
            )
        )
        return
    elif status == "missing":
        reason = "no index yet"
    else:
        reason = "emails changed since the index was built"
    yield dg.MaterializeResult(
        metadata={"indexed_emails": store.rebuild_search_index(), "rebuilt_by": "this step", "reason": reason}
    )


def _synced_in_this_run(context: dg.AssetExecutionContext, customer_id: str) -> bool:
    """Whether `outlook_emails` was materialized for this partition by this run."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=outlook_emails.key, asset_partitions=[customer_id]), limit=1
    ).records
    return bool(records) and records[0].run_id == context.run.run_id
