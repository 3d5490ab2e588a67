"""The jobs, all partitioned by customer and run in-process (one process per run, so one writer per store).

- `sync_outlook_job`: sync the customer's mailbox (`outlook_emails`), then its search index, with the
  integrity checks. Launched by the schedule, the sensor, the CLI, the launchpad.
- `resync_emails_job`, `delete_emails_job`: fetch again, or delete, single emails by file or message id.
- `delete_customer_job`: delete the customer's mail store and control-store rows, then its partition.
- `check_outlook_freshness_job`: the freshness check over every customer (no partition), hourly.
"""

import dagster as dg

from pipelines import sync
from pipelines.defs import _tags
from pipelines.defs._request_status import carrying_out
from pipelines.defs.assets import email_search_index, outlook_emails
from pipelines.defs.checks import outlook_emails_fresh
from pipelines.defs.config import DeleteCustomerConfig, DeleteEmailsConfig, ResyncConfig
from pipelines.defs.partitions import customers, remove_customer_partition
from pipelines.defs.resources import MailroomStores, OutlookGraph, settings

# The launchpad and a raw `dagster job launch` give no trigger; the sensor, schedule and CLI override it.
_JOB_TAGS = {_tags.TRIGGER: _tags.MANUAL}

sync_outlook_job = dg.define_asset_job(
    "sync_outlook_job",
    selection=dg.AssetSelection.assets(outlook_emails, email_search_index)
    - dg.AssetSelection.checks(outlook_emails_fresh),
    executor_def=dg.in_process_executor,
    tags=_JOB_TAGS,
    description="Sync one customer's Outlook mail into its mail store, then its search index.",
)

check_outlook_freshness_job = dg.define_asset_job(
    "check_outlook_freshness_job",
    selection=dg.AssetSelection.checks(outlook_emails_fresh),
    executor_def=dg.in_process_executor,
    description="Check that every auto-synced customer synced within its interval.",
)


def _request_id(config: ResyncConfig | DeleteEmailsConfig) -> str | None:
    return None if config.request_id is None else str(config.request_id)


@dg.op(description="Fetch single emails again; write only what changed; lift tombstones.")
def resync_emails(
    context: dg.OpExecutionContext, config: ResyncConfig, stores: MailroomStores, graph: OutlookGraph
) -> dg.Output[None]:
    customer_id = _tags.run_customer(context)
    config.check_named("resync")
    engine_settings = settings(stores, graph)
    with carrying_out(stores, config.request_id, context.run.run_id):
        stores.refuse_deleted(customer_id)
        try:
            result = sync.resync_emails(
                customer_id,
                file_ids=config.file_ids,
                message_ids=config.message_ids,
                request_id=_request_id(config),
                settings=engine_settings,
            )
        except sync.SyncError as error:
            raise dg.Failure(description=str(error)) from None
    outcomes: dict[str, int] = {}
    for email in result.emails:
        outcomes[email.outcome] = outcomes.get(email.outcome, 0) + 1
    changed = any(e.outcome in _CHANGES_STORE and e.file_id is not None for e in result.emails)
    if changed:
        _refresh_search_index(context, stores, customer_id, "a resync")
    return dg.Output(None, metadata={"outcomes": dg.MetadataValue.json(outcomes)})


# Resync outcomes that wrote to or removed from the store
# (`out_of_scope` with a file id removed a stored row).
_CHANGES_STORE = frozenset({"updated", "inserted", "gone", "out_of_scope"})


def _refresh_search_index(
    context: dg.OpExecutionContext,
    stores: MailroomStores,
    customer_id: str,
    why: str,
    *,
    rebuilt: bool = False,
) -> None:
    """Rebuild the customer's search index after single emails changed, if it has one (the index is a
    snapshot: it would otherwise still find what was removed and miss what came), and record it as the
    index asset's materialization; `rebuilt` when the store already did it in the change's transaction."""
    store = stores.mail(customer_id)
    if not store.has_search_index():
        return
    metadata: dict[str, object] = {"rebuilt_by": why}
    if not rebuilt:
        metadata["indexed_emails"] = store.rebuild_search_index()
    context.log_event(
        dg.AssetMaterialization(asset_key=email_search_index.key, partition=customer_id, metadata=metadata)
    )


@dg.op(
    description="Delete single emails (content and derived data); a tombstone keeps them from coming back."
)
def delete_emails(
    context: dg.OpExecutionContext, config: DeleteEmailsConfig, stores: MailroomStores, graph: OutlookGraph
) -> dg.Output[None]:
    customer_id = _tags.run_customer(context)
    config.check_named("delete")
    engine_settings = settings(stores, graph)
    with carrying_out(stores, config.request_id, context.run.run_id):
        stores.refuse_deleted(customer_id)
        try:
            result = sync.delete_emails(
                customer_id,
                file_ids=config.file_ids,
                message_ids=config.message_ids,
                keep_record=config.keep_record,
                send_webhook=config.send_webhook,
                request_id=_request_id(config),
                settings=engine_settings,
            )
        except sync.SyncError as error:
            raise dg.Failure(description=str(error)) from None
    if result.newly_deleted:  # the store rebuilt the index in the delete's own transaction
        _refresh_search_index(context, stores, customer_id, "a delete", rebuilt=True)
    return dg.Output(
        None,
        metadata={
            "deleted": len(result.deleted),
            "not_found": dg.MetadataValue.json(result.not_found),
            "message_ids_not_found": dg.MetadataValue.json(result.message_ids_not_found),
        },
    )


@dg.op(
    description="Delete the customer's mail store and control-store rows, then its partition, if the "
    "customer is still marked deleted."
)
def delete_customer(
    context: dg.OpExecutionContext, config: DeleteCustomerConfig, stores: MailroomStores, graph: OutlookGraph
) -> dg.Output[None]:
    customer_id = _tags.run_customer(context)
    if config.request_id is None and stores.control().customer(customer_id) is not None:
        # Launched by hand for a live customer: a success that deleted nothing would read as done.
        raise dg.Failure(
            description=f"customer {customer_id!r} is not deleted, so this run deletes nothing: "
            "delete_customer_job finishes a deletion made with /delete_users (which queues it); to delete "
            f"a customer at once, run `mailroom customers remove {customer_id} --yes`"
        )
    engine_settings = settings(stores, graph)
    with carrying_out(stores, config.request_id, context.run.run_id):
        try:
            result = sync.delete_customer(customer_id, only_if_deleted=True, settings=engine_settings)
        except sync.SyncError as error:
            raise dg.Failure(description=str(error)) from None
    if result.skipped is not None:
        context.log.warning(f"nothing deleted: {result.skipped}")
    # The partition goes with the customer; a customer created afresh under the id keeps it.
    live = result.skipped is not None and stores.control().customer(customer_id) is not None
    removed = not live and remove_customer_partition(context.instance, customer_id)
    return dg.Output(
        None,
        metadata={
            "mail_store_deleted": result.mail_store_deleted,
            "customer_purged": result.customer_purged,
            "partition_removed": removed,
            "skipped": result.skipped or "",
        },
    )


@dg.job(partitions_def=customers, executor_def=dg.in_process_executor, tags=_JOB_TAGS)
def resync_emails_job() -> None:
    """Fetch single emails of one customer again, by file id or message id."""
    resync_emails()


@dg.job(partitions_def=customers, executor_def=dg.in_process_executor, tags=_JOB_TAGS)
def delete_emails_job() -> None:
    """Delete single emails of one customer, by file id or message id."""
    delete_emails()


@dg.job(partitions_def=customers, executor_def=dg.in_process_executor, tags=_JOB_TAGS)
def delete_customer_job() -> None:
    """Delete a customer: its mail store, connections and settings, and its partition."""
    delete_customer()
