"""Asset checks on `outlook_emails`: ids unique and bodies present (in every sync run, for its customer),
and per-customer freshness against each customer's own auto-sync interval.

Dagster's freshness policies judge an asset as a whole, not a partition (reference/dagster.md §1.6), so
freshness is checked here: every auto-synced customer must have synced within its interval plus one
schedule period. The integrity checks open the mail store (they run inside runs); freshness reads only the
control store and the Dagster instance.
"""

from datetime import UTC, datetime

import dagster as dg

from pipelines.defs import _report
from pipelines.defs._clock import SyncClock, sync_clocks
from pipelines.defs.assets import outlook_emails
from pipelines.defs.partitions import customer_partitions
from pipelines.defs.resources import MailroomStores
from pipelines.store import Integrity, StoreNotFound


def _customers_in_scope(context: dg.AssetCheckExecutionContext) -> list[str]:
    """The run's customer in a partitioned run; every customer with a partition when run on its own."""
    if context.has_partition_key:
        return [context.partition_key]
    return customer_partitions(context.instance)


def _integrity(context: dg.AssetCheckExecutionContext, stores: MailroomStores) -> dict[str, Integrity]:
    found = {}
    for customer_id in _customers_in_scope(context):
        try:
            found[customer_id] = stores.mail(customer_id, read_only=True).integrity()
        except StoreNotFound:
            continue  # never synced: nothing to check
    return found


@dg.asset_check(asset=outlook_emails, blocking=True, description="No message id or file id is stored twice.")
def outlook_emails_ids_unique(
    context: dg.AssetCheckExecutionContext, stores: MailroomStores
) -> dg.AssetCheckResult:
    found = _integrity(context, stores)
    bad = {c: i for c, i in found.items() if i.duplicate_message_ids or i.duplicate_file_ids}
    return dg.AssetCheckResult(
        passed=not bad,
        metadata={
            "customers_checked": len(found),
            "duplicate_message_ids": sum(i.duplicate_message_ids for i in found.values()),
            "duplicate_file_ids": sum(i.duplicate_file_ids for i in found.values()),
            "customers_with_duplicates": dg.MetadataValue.md(_report.bullet_list(sorted(bad))),
        },
    )


@dg.asset_check(
    asset=outlook_emails, description="Every email that was not deleted has a body (HTML or text)."
)
def outlook_emails_have_bodies(
    context: dg.AssetCheckExecutionContext, stores: MailroomStores
) -> dg.AssetCheckResult:
    found = _integrity(context, stores)
    bad = {c: i.live_without_body for c, i in found.items() if i.live_without_body}
    return dg.AssetCheckResult(
        passed=not bad,
        metadata={
            "customers_checked": len(found),
            "emails_without_body": sum(bad.values()),
            "customers_affected": dg.MetadataValue.md(
                _report.bullet_list(f"{c}: {n}" for c, n in sorted(bad.items()))
            ),
        },
    )


@dg.asset_check(
    asset=outlook_emails,
    description="Every customer with Outlook auto-sync synced within its interval (plus one hourly tick).",
)
def outlook_emails_fresh(
    context: dg.AssetCheckExecutionContext, stores: MailroomStores
) -> dg.AssetCheckResult:
    now = datetime.now(UTC)
    scope = set(_customers_in_scope(context))
    clocks = [
        clock for clock in sync_clocks(stores.control().auto_sync_customers()) if clock.customer_id in scope
    ]
    stale = [clock for clock in clocks if clock.is_stale(now)]
    lines = [f"{clock.customer_id}: {_last_synced(clock)} (interval {clock.interval})" for clock in stale]
    return dg.AssetCheckResult(
        passed=not stale,
        metadata={
            "customers_checked": len(clocks),
            "stale_customers": len(stale),
            "stale": dg.MetadataValue.md(_report.bullet_list(lines)),
        },
    )


def _last_synced(clock: SyncClock) -> str:
    if clock.last_sync is None:
        return "never synced"
    return f"last synced {clock.last_sync:%Y-%m-%d %H:%M} UTC"
