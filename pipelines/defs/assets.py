"""The assets per customer partition: the synced Outlook emails, and the full-text index derived from them."""

from collections.abc import Iterator

import dagster as dg

from pipelines.defs import _report
from pipelines.defs._clock import last_materialization
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
    """Sync the customer's mailbox (its folder and filter, or the run's) into its mail store."""
    from pipelines import sync

    customer_id = context.partition_key
    tree = config.filter_tree()
    engine_settings = settings(stores, graph)
    with carrying_out(stores, config.request_id, context.run.run_id):
        try:
            result = sync.sync_customer(
                engine_settings,
                customer_id,
                folder=config.folder,
                subfolders=config.subfolders,
                filter=tree,
                attachments=config.attachments,
                data_source_id=config.data_source_id,
                trigger=context.run.tags.get("trigger"),
                request_id=str(config.request_id) if config.request_id is not None else None,
                orchestrator_run_id=context.run.run_id,
            )
        except sync.SyncError as error:
            raise dg.Failure(description=str(error)) from None
    store = stores.mail(customer_id)
    counts = store.counts()
    return dg.MaterializeResult(
        metadata={
            "changed": result.changed,
            "emails": counts.emails,
            "attachments": counts.attachments,
            "tombstones": counts.tombstones,
            "outcomes": dg.MetadataValue.json(_report.nonzero(result.counts())),
            "folders": dg.MetadataValue.md(_report.bullet_list(result.folders)),
            "plan": dg.MetadataValue.md(f"```\n{result.plan}\n```"),
            "last_sync": dg.MetadataValue.timestamp(result.finished_at),
            "preview": dg.MetadataValue.md(_report.preview(store.newest(PREVIEW_ROWS))),
            "store": dg.MetadataValue.path(str(store.path)),
        }
    )


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
    """Rebuild the index when this run's sync changed something (or no index was ever built)."""
    customer_id = context.partition_key
    upstream = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=outlook_emails.key, asset_partitions=[customer_id]), limit=1
    ).records
    synced_here = bool(upstream) and upstream[0].run_id == context.run.run_id
    if synced_here:
        changed = upstream[0].asset_materialization.metadata.get("changed")
        built = last_materialization(context.instance, context.assets_def.key, customer_id) is not None
        if built and changed is not None and not changed.value:
            context.log.info("the sync changed nothing; the index stays as it is")
            return
    indexed = stores.mail(customer_id).rebuild_search_index()
    yield dg.MaterializeResult(metadata={"indexed_emails": indexed})
