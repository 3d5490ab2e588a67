"""Run tags, the same from every entry point: the sensor, the schedule, the CLI, the demo and the UI."""

from __future__ import annotations

import dagster as dg

PARTITION = "dagster/partition"  # what the per-customer run limit in dagster.yaml keys on
CUSTOMER = "customer"
TRIGGER = "trigger"  # api, schedule, cli, demo, or manual (the launchpad, a raw `dagster job launch`)
REQUEST = "mailroom/request"  # the control-store request a run carries out
RETRY_RUN = "dagster/auto_retry_run_id"  # set by the daemon on a failed run it launched again

MANUAL = "manual"


def run_tags(customer_id: str, trigger: str, *, request_id: int | None = None) -> dict[str, str]:
    """The tags of a run for one customer (the partition tag included, for `dagster job launch`)."""
    tags = {PARTITION: customer_id, CUSTOMER: customer_id, TRIGGER: trigger}
    if request_id is not None:
        tags[REQUEST] = str(request_id)
    return tags


def run_customer(context: dg.OpExecutionContext | dg.AssetExecutionContext) -> str:
    """The customer a run is for: its partition. Raises `dg.Failure` saying how to name one when the run
    has none (a bare `dagster job launch` without the partition tag). Gives a run launched without the
    `customer` tag (the launchpad, a bare `dagster job launch`) that tag, so that filtering runs by customer
    finds every run."""
    if not context.has_partition_key:
        raise dg.Failure(
            description=f"{context.job_name} runs for one customer and this run has none: launch it with "
            f"the tag {PARTITION}=<customer id> (`dagster job launch --tags "
            f'\'{{"{PARTITION}": "<customer id>"}}\'`), or pick a partition in the launchpad'
        )
    customer_id = context.partition_key
    if CUSTOMER not in context.run.tags:
        context.instance.add_run_tags(context.run.run_id, {CUSTOMER: customer_id})
    return customer_id
