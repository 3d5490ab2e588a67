"""Carbon's webhooks for what runs did, queued in the control store's outbox (the API's deliverer sends them;
nothing is queued when the organization has no webhook).

Which of Carbon's event types (`reference/carbon_api.md` §3.3) each outcome becomes:

- a sync: FILES_CREATED (the new file ids, a thousand to an event), FILE_READY for each new or changed file,
  then DATA_SOURCE_READY for the connection. A sync that fails sends the same for what it stored before it
  stopped (those files are in the store and listed), and DATA_SOURCE_READY with `sync_status: SYNC_ERROR` and
  the `sync_error_message`: Carbon's enum has no data-source error event, DATA_SOURCE_READY marks the end of a
  data source's sync, and SYNC_ERROR is the status `/user_data_sources` then reports. An invented type would
  fail receivers that validate with the SDK's enum.
- a resync: FILE_READY for each file fetched again, or FILE_ERROR with the `sync_error_message` for each
  file the failed resync named (the files known to have failed).
- a delete that asked for it (Carbon's `send_webhook`): FILE_DELETED for each file the run deleted.

Webhooks never fail the work they report: an outbox that cannot be written is logged and the run goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from pipelines.store import (
    Connection,
    ControlStore,
    Customer,
    StoreError,
    WebhookEvent,
    enqueue_webhook_events,
)
from pipelines.sync._models import SyncResult

log = logging.getLogger("pipelines.sync")

FILE_LIST_SIZE = 1000
"""File ids in one FILES_CREATED event (Carbon sends several for a large upload)."""


def announce_sync(
    control: ControlStore,
    customer: Customer,
    connection: Connection,
    result: SyncResult | None,
    request_id: str | None,
    *,
    error: str | None = None,
) -> None:
    """A sync's events: its files, then its data source, READY or (given `error`) SYNC_ERROR."""
    who = customer.customer_id
    events: list[WebhookEvent] = []
    if result is not None:
        created, changed = result.created_file_ids, result.changed_file_ids
        events += [
            WebhookEvent(
                "FILES_CREATED",
                who,
                "FILE_LIST",
                created[at : at + FILE_LIST_SIZE],
                {"request_id": request_id},
            )
            for at in range(0, len(created), FILE_LIST_SIZE)
        ]
        events += [WebhookEvent("FILE_READY", who, "FILE", f) for f in sorted({*created, *changed})]
    info = {"data_source_type": "OUTLOOK", "request_id": request_id, "sync_status": "READY"}
    if error is not None:
        info |= {"sync_status": "SYNC_ERROR", "sync_error_message": error}
    events.append(WebhookEvent("DATA_SOURCE_READY", who, "DATA_SOURCE", connection.id, info))
    _queue(control, customer, events, "sync")


def announce_resync(
    control: ControlStore,
    customer: Customer,
    file_ids: Iterable[int],
    request_id: str | None,
    *,
    error: str | None = None,
) -> None:
    """FILE_READY for each file fetched again, or FILE_ERROR (with why) for each file of a failed resync."""
    who = customer.customer_id
    if error is None:
        events = [
            WebhookEvent("FILE_READY", who, "FILE", f, {"request_id": request_id})
            for f in sorted(set(file_ids))
        ]
    else:
        info = {"request_id": request_id, "sync_error_message": error}
        events = [WebhookEvent("FILE_ERROR", who, "FILE", f, info) for f in sorted(set(file_ids))]
    _queue(control, customer, events, "resync")


def announce_deleted(control: ControlStore, customer: Customer, file_ids: Sequence[int]) -> None:
    """FILE_DELETED for each file a delete run deleted."""
    who = customer.customer_id
    _queue(control, customer, [WebhookEvent("FILE_DELETED", who, "FILE", f) for f in file_ids], "delete")


def _queue(control: ControlStore, customer: Customer, events: list[WebhookEvent], what: str) -> None:
    if not events:
        return
    try:
        enqueue_webhook_events(control, events, organization_id=customer.organization_id)
    except StoreError as error:
        # What the run did stands; only the notifications are lost.
        log.warning("the %s of %s: its webhooks were not queued: %s", what, customer.customer_id, error)
