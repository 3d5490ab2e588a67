"""What each recorded API request becomes: a partition to add and a run to request, or a reason to refuse it.

Pure apart from reading the control store; `api_requests_sensor` calls `plan_request` for each claimed request
and turns the plans into one `SensorResult`. Payloads are validated here, at the boundary, so a malformed or
unsatisfiable request is refused with a reason instead of failing a run (or the sensor) later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dagster as dg
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipelines import sync as engine
from pipelines.defs import _tags
from pipelines.defs._errors import BadRequest
from pipelines.defs.config import DeleteCustomerConfig, DeleteEmailsConfig, ResyncConfig, SyncConfig
from pipelines.defs.jobs import delete_customer_job, delete_emails_job, resync_emails_job, sync_outlook_job
from pipelines.store import ControlStore, Request, normalise_tags


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore")  # the API keeps Carbon's extra options (chunking) too


class SyncPayload(_Payload):
    data_source_id: int | None = None
    folder: str | None = None
    filters: dict[str, Any] | str | None = None
    filter_text: str = ""
    sync_attachments: bool = False
    tags: dict[str, Any] | None = None
    trigger: str = "api"


class ResyncPayload(_Payload):
    file_ids: list[int] = []
    message_ids: list[str] = []


class DeleteFilesPayload(_Payload):
    file_ids: list[int] = Field(min_length=1)
    preserve_file_record: bool = False
    send_webhook: bool = False  # FILE_DELETED is sent by the run, for the files it deleted


@dataclass(frozen=True, slots=True)
class RequestPlan:
    """A request's effect: the partition it needs, and the run to request (None: nothing to run)."""

    partition: str
    run: dg.RunRequest | None


def plan_request(request: Request, control: ControlStore) -> RequestPlan:
    """The plan for one request; raises `BadRequest` with a reason a person can act on."""
    key = request.customer_id
    if not key.strip():
        raise BadRequest("the request names no customer")
    deleting = request.kind == "delete_users"
    customer = control.customer(key, organization_id=request.organization_id, include_deleted=deleting)
    if customer is None:
        raise BadRequest(f"customer {key!r} does not exist (or was deleted)")
    try:
        config, job = _run_config(request, control, customer.id)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'payload'}: {e['msg']}" for e in error.errors()
        )
        raise BadRequest(f"malformed {request.kind} request: {problems}") from None
    if job is None:
        return RequestPlan(key, None)
    trigger = request.payload.get("trigger") if request.kind == "sync" else None
    run = dg.RunRequest(
        run_key=request.run_key,
        job_name=job,
        partition_key=key,
        run_config=dg.RunConfig(ops=config),
        tags=_tags.run_tags(key, str(trigger or "api"), request_id=request.id),
    )
    return RequestPlan(key, run)


def _run_config(
    request: Request, control: ControlStore, customer_pk: int
) -> tuple[dict[str, Any], str | None]:
    payload = request.payload
    match request.kind:
        case "update_users":
            return {}, None  # settings are in the control store already; the partition is all Dagster needs
        case "sync":
            sync = SyncPayload.model_validate(payload)
            live = control.connections(customer_pk, include_revoked=False)
            if sync.data_source_id is not None and all(c.id != sync.data_source_id for c in live):
                raise BadRequest(
                    f"data source {sync.data_source_id} is not a live connection of this customer"
                )
            if not live:
                raise BadRequest("the customer has no live Outlook connection to sync")
            text = sync.filter_text.strip()
            try:
                canonical = engine.normalise_filter(text or sync.filters) if (text or sync.filters) else ""
            except engine.InvalidRequest as error:
                raise BadRequest(f"bad filter: {error}") from None
            try:
                tags = normalise_tags(sync.tags)
            except ValueError as error:
                raise BadRequest(f"bad tags: {error}") from None
            config = SyncConfig(
                request_id=request.id,
                folders=[sync.folder] if sync.folder else [],
                filter=canonical,
                attachments=sync.sync_attachments,
                connection_id=sync.data_source_id,
                tags=tags,
            )
            return {"outlook_emails": config}, sync_outlook_job.name
        case "resync":
            resync = ResyncPayload.model_validate(payload)
            if not resync.file_ids and not resync.message_ids:
                raise BadRequest("a resync names no file ids and no message ids")
            config = ResyncConfig(
                request_id=request.id, file_ids=resync.file_ids, message_ids=resync.message_ids
            )
            return {"resync_emails": config}, resync_emails_job.name
        case "delete_files":
            delete = DeleteFilesPayload.model_validate(payload)
            config = DeleteEmailsConfig(
                request_id=request.id,
                file_ids=delete.file_ids,
                keep_record=delete.preserve_file_record,
                send_webhook=delete.send_webhook,
            )
            return {"delete_emails": config}, delete_emails_job.name
        case "delete_users":
            return {"delete_customer": DeleteCustomerConfig(request_id=request.id)}, delete_customer_job.name
    raise BadRequest(f"unknown request kind {request.kind!r}")
