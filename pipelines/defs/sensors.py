"""`api_requests_sensor`: turns the requests the HTTP API recorded into partitions and runs, in one result.

Each tick claims queued requests from the control store (marking them submitted), plans each one
(`_requests.plan_request`), and returns one `SensorResult` that adds the partitions that are missing (those
the requests need, and those of every auto-synced customer, however it was created) and requests a run per
request with the request id as run key, so a request never becomes two runs. A request that cannot become a
run is marked failed with its reason at once and never holds up the others. A request claimed again after
its lease ran out (the tick that claimed it died, or its run is still queued) is reconciled with the run
Dagster already has for its run key instead of being requested again.

A run finishes its request when its op ends. A run whose process was killed, or that was canceled, never
does: so each tick also compares every request a run has taken with that run in the Dagster instance, follows
the daemon's retries, and settles the request once the last run has ended (succeeded, or failed with the
run's own failure message). Nothing here opens a mail store: the sensor reads the control store and the
Dagster instance only.
"""

import dagster as dg

from pipelines.defs import _tags
from pipelines.defs._clock import FINISHED
from pipelines.defs._errors import BadRequest
from pipelines.defs._request_status import failure_reason
from pipelines.defs._requests import plan_request
from pipelines.defs.jobs import delete_customer_job, delete_emails_job, resync_emails_job, sync_outlook_job
from pipelines.defs.partitions import customer_partitions, customers
from pipelines.defs.resources import MailroomStores
from pipelines.store import ControlStore, Request, requests_with_runs, settle_request

BATCH = 500  # requests per tick (about 1 s of work); the rest wait for the next one
_REASON_MAX = 1000


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
    settled = _settle_ended_runs(context, control)
    partitions = set(customer_partitions(context.instance))
    # Every auto-synced customer gets its partition, however it was created, so the schedule can sync it.
    new_partitions = sorted({c.customer_id for c, _ in control.auto_sync_customers()} - partitions)
    partitions.update(new_partitions)
    claimed = control.claim_requests(limit=BATCH)
    if not claimed and not new_partitions:
        done = f"; settled {settled} whose run ended without finishing them" if settled else ""
        return dg.SkipReason(f"no recorded requests{done}")
    earlier = _runs_by_key(context.instance, claimed)
    runs: list[dg.RunRequest] = []
    for request in claimed:
        run = earlier.get(request.run_key)
        if run is not None:
            _reconcile(context.instance, control, request, run)
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


def _reconcile(
    instance: dg.DagsterInstance, control: ControlStore, request: Request, run: dg.DagsterRun
) -> None:
    """A request claimed again whose run Dagster already has: finish it if that run (or its retry) has
    ended, else record the run that has it."""
    last, outcome = _outcome(instance, run)
    if outcome is None:
        control.mark_request_running(request.id, last.run_id)
    else:
        control.finish_request(request.id, error=outcome or None)


def _settle_ended_runs(context: dg.SensorEvaluationContext, control: ControlStore) -> int:
    """Settle the requests whose run has ended without finishing them; how many were settled."""
    taken = requests_with_runs(control, limit=BATCH)
    if not taken:
        return 0
    pairs = [(request, request.run_id) for request in taken if request.run_id]
    found = context.instance.get_runs(filters=dg.RunsFilter(run_ids=sorted({r for _, r in pairs})))
    runs = {run.run_id: run for run in found}
    settled = 0
    for request, run_id in pairs:
        run = runs.get(run_id)
        if run is None:
            outcome: str | None = f"its run {run_id} is no longer in the Dagster instance"
        else:
            _, outcome = _outcome(context.instance, run)
            if outcome is None:
                continue
        if settle_request(control, request.id, run_id, error=outcome or None):
            settled += 1
            context.log.warning(
                f"request {request.id} ({request.kind} for {request.customer_id!r}) "
                + (f"failed: {outcome}" if outcome else "succeeded, as its run did")
            )
    return settled


def _outcome(instance: dg.DagsterInstance, run: dg.DagsterRun) -> tuple[dg.DagsterRun, str | None]:
    """The last run of `run`'s retries and how it ended: "" for success, the reason for a failure or a
    cancellation, None while it is in flight or waiting for the daemon to retry it."""
    seen = {run.run_id}
    while run.status == dg.DagsterRunStatus.FAILURE and (retry := run.tags.get(_tags.RETRY_RUN)):
        retried = instance.get_run_by_id(retry)
        if retried is None or retried.run_id in seen:
            break
        seen.add(retried.run_id)
        run = retried
    if run.status not in FINISHED or run.is_complete_and_waiting_to_retry:
        return run, None
    if run.status == dg.DagsterRunStatus.SUCCESS:
        return run, ""
    return run, _ended(instance, run)


def _ended(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str:
    """Why a run failed or was canceled, in Dagster's words (the run's last failure or cancel event)."""
    kinds = {dg.DagsterEventType.RUN_FAILURE, dg.DagsterEventType.RUN_CANCELED}
    events = instance.all_logs(run.run_id, of_type=kinds)
    why = f": {events[-1].message}" if events and events[-1].message else ""
    text = f"run {run.run_id} ended {run.status.value}{why}; see the Dagster UI"
    return text if len(text) <= _REASON_MAX else text[: _REASON_MAX - 1] + "…"
