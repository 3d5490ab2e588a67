"""`outlook_auto_sync_schedule`: hourly, a sync run for each auto-synced customer whose interval has passed.

A customer is auto-synced when `/update_users` enabled OUTLOOK (or "ALL") for it; its interval is 24 h unless
set (3, 6 or 12 h through the API; any interval of 5 minutes or more from the CLI, which needs a schedule
that ticks as often: MAILROOM_AUTO_SYNC_CRON). Due customers without a live connection or a partition are
skipped with a log line, and so is a customer whose previous sync is still queued or running. The run key
is the customer and the tick, so a tick evaluated twice (after a daemon restart) requests each run once.

`check_outlook_freshness_schedule` runs the freshness check over every customer at half past each hour.
"""

import os
from collections.abc import Iterator

import dagster as dg

from pipelines.defs import _tags
from pipelines.defs._clock import partitions_in_flight, sync_clocks
from pipelines.defs.jobs import check_outlook_freshness_job, sync_outlook_job
from pipelines.defs.partitions import customer_partitions
from pipelines.defs.resources import MailroomStores

TRIGGER = "schedule"


# Hourly unless the deployment asks for more: `*/5 * * * *` makes 5-minute intervals real. Read when the code
# location loads; the tests use it to see the daemon tick within a minute.
AUTO_SYNC_CRON = os.environ.get("MAILROOM_AUTO_SYNC_CRON") or "0 * * * *"


@dg.schedule(
    job=sync_outlook_job,
    cron_schedule=AUTO_SYNC_CRON,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Hourly: sync every customer with Outlook auto-sync whose interval has passed.",
)
def outlook_auto_sync_schedule(
    context: dg.ScheduleEvaluationContext, stores: MailroomStores
) -> Iterator[dg.RunRequest | dg.SkipReason]:
    now = context.scheduled_execution_time
    control = stores.control()
    auto_synced = control.auto_sync_customers()
    pks = {customer.customer_id: customer.id for customer, _ in auto_synced}
    partitions = set(customer_partitions(context.instance))
    busy = partitions_in_flight(context.instance, sync_outlook_job.name)
    requested = 0
    for clock in sync_clocks(auto_synced):
        if not clock.is_due(now):
            continue
        customer_id = clock.customer_id
        if customer_id not in partitions:
            context.log.warning(
                f"{customer_id!r} is due but has no Dagster partition (add it with `mailroom customers add`)"
            )
        elif customer_id in busy:
            context.log.info(f"{customer_id!r} is due but its previous sync is still queued or running")
        elif not control.connections(pks[customer_id], include_revoked=False):
            context.log.info(f"{customer_id!r} is due but has no live Outlook connection; skipped")
        else:
            requested += 1
            yield dg.RunRequest(
                run_key=f"{customer_id}@{now:%Y-%m-%dT%H:%M}",
                partition_key=customer_id,
                tags=_tags.run_tags(customer_id, TRIGGER),
            )
    if not requested:
        yield dg.SkipReason(
            f"no customer due at {now:%Y-%m-%d %H:%M} UTC ({len(auto_synced)} with auto-sync)"
        )


check_outlook_freshness_schedule = dg.ScheduleDefinition(
    name="check_outlook_freshness_schedule",
    job=check_outlook_freshness_job,
    cron_schedule="30 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Hourly: check that every auto-synced customer synced within its interval.",
)
