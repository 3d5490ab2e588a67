"""`api_requests_sensor`: turns the requests the HTTP API recorded into partitions and runs, in one result.

Each tick claims queued requests from the control store (marking them submitted), plans each one
(`_requests.plan_request`), and returns one `SensorResult` that adds the partitions that are missing (those
the requests need, and those of every auto-synced customer, however it was created) and requests a run per
request with the request id as run key, so a request never becomes two runs. A request that cannot become a
run is marked failed with its reason at once and never holds up the others. A request claimed again after
its lease ran out (the tick that claimed it died, or its run is still queued) is reconciled with the run
Dagster already has for its run key instead of being requested again. Nothing here opens a mail store: the
sensor reads the control store and the Dagster instance only.
"""

import dagster as dg

from pipelines.defs._clock import FINISHED
from pipelines.defs._errors import BadRequest
from pipelines.defs._request_status import failure_reason
from pipelines.defs._requests import plan_request
from pipelines.defs.jobs import delete_customer_job, delete_emails_job, resync_emails_job, sync_outlook_job
from pipelines.defs.partitions import customer_partitions, customers
from pipelines.defs.resources import MailroomStores
from pipelines.store import ControlStore, Request

BATCH = 500  # requests per tick (about 1 s of work); the rest wait for the next one


@dg.sensor(
    jobs=[sync_outlook_job, resync_emails_job, delete_emails_job, delete_customer_job],
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Turn requests recorded by the HTTP API into customer partitions and runs.",
)
def api_requests_sensor(
    context: dg.SensorEvaluationContext, stores: MailroomStores
) -> dg.SensorResult | dg.SkipReason:
    control = stores.control()
    partitions = set(customer_partitions(context.instance))
    # Every auto-synced customer gets its partition, however it was created, so the schedule can sync it.
    new_partitions = sorted({c.customer_id for c, _ in control.auto_sync_customers()} - partitions)
    partitions.update(new_partitions)
    claimed = control.claim_requests(limit=BATCH)
    if not claimed and not new_partitions:
        return dg.SkipReason("no recorded requests")
    earlier = _runs_by_key(context.instance, claimed)
    runs: list[dg.RunRequest] = []
    for request in claimed:
        run = earlier.get(request.run_key)
        if run is not None:
            _reconcile(control, request, run)
            continue
        try:
            plan = plan_request(request, control)
        except BadRequest as error:
            context.log.warning(
                f"request {request.id} ({request.kind} for {request.customer_id!r}) refused: {error}"
            )
            control.finish_request(request.id, error=str(error))
            continue
        except Exception as error:  # one broken request must not stop the others; its reason is kept
            context.log.exception(f"request {request.id} could not be planned")
            control.finish_request(request.id, error=failure_reason(error))
            continue
        if plan.partition not in partitions:
            partitions.add(plan.partition)
            new_partitions.append(plan.partition)
        if plan.run is None:
            control.finish_request(request.id)
        else:
            runs.append(plan.run)
    return dg.SensorResult(
        run_requests=runs,
        dynamic_partitions_requests=[customers.build_add_request(new_partitions)] if new_partitions else [],
    )


def _runs_by_key(instance: dg.DagsterInstance, requests: list[Request]) -> dict[str, dg.DagsterRun]:
    """Runs Dagster already made for these requests' run keys (from an earlier claim of the same request)."""
    if not requests:
        return {}
    keys = [request.run_key for request in requests]
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/run_key": keys}))
    return {run.tags["dagster/run_key"]: run for run in runs}


def _reconcile(control: ControlStore, request: Request, run: dg.DagsterRun) -> None:
    if run.status == dg.DagsterRunStatus.SUCCESS:
        control.finish_request(request.id)
    elif run.status in FINISHED:
        control.finish_request(
            request.id, error=f"run {run.run_id} ended {run.status.value}; see the Dagster UI"
        )
    else:
        control.mark_request_running(request.id, run.run_id)
