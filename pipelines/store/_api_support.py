"""Control-store helpers added for the HTTP API: many requests in one transaction, Carbon webhook events.

`enqueue_webhook_event` is also what sync runs call for the events they cause (files created, ready, sync
errors): the outbox is shared, and whichever process runs the deliverer sends them.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from pipelines.store._control_types import Request, RequestKind
from pipelines.store.control import DEFAULT_ORGANIZATION_ID, ControlStore, _iso, _request


def record_requests(
    control: ControlStore,
    kind: RequestKind,
    items: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    organization_id: int = DEFAULT_ORGANIZATION_ID,
) -> list[Request]:
    """Queue one request per (customer id, payload) for the Dagster sensor, in one statement; returns them
    in the order given.

    `/update_users` names up to 100 customers: one INSERT over the JSON of them all costs about a quarter of
    100 INSERTs in one transaction.
    """
    now = _iso(control._now())
    named = orjson.dumps([[customer_id, dict(payload)] for customer_id, payload in items]).decode()
    with control._write() as con:
        rows = con.execute(
            """
            INSERT INTO requests (organization_id, customer_id, kind, payload, status, created_at, updated_at)
            SELECT ?, value ->> 0, ?, value ->> 1, 'queued', ?, ? FROM json_each(?) ORDER BY key
            RETURNING *
            """,
            (organization_id, kind, now, now, named),
        ).fetchall()
    return sorted((_request(row) for row in rows), key=lambda request: request.id)


def webhook_payload(
    event_type: str,
    *,
    customer_id: str,
    object_type: str,
    object_id: str | int | Sequence[str | int],
    additional_information: Mapping[str, Any] | None = None,
    timestamp: datetime | None = None,
) -> str:
    """Carbon's webhook payload, as the JSON string that goes in the body's `payload` field.

    Carbon coerces every value to a string on purpose (ids included), and writes `"null"` for empty
    additional information. The deliverer stamps `timestamp` again when it sends (it must equal the
    signature's `t`, and receivers may refuse an old one).
    """
    if isinstance(object_id, (str, int)):
        ids: str | list[str] = str(object_id)
    else:
        ids = [str(item) for item in object_id]
    info: dict[str, str] | str = (
        {key: "null" if value is None else str(value) for key, value in additional_information.items()}
        if additional_information
        else "null"
    )
    moment = timestamp or datetime.now(UTC)
    return orjson.dumps(
        {
            "webhook_type": event_type,
            "obj": {"object_type": object_type, "object_id": ids, "additional_information": info},
            "customer_id": customer_id,
            "timestamp": str(int(moment.timestamp())),
        }
    ).decode()


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One Carbon event for the outbox. Mailroom sends: ADD, CANCEL, REVOKE (object_type DATA_SOURCE),
    FILES_CREATED (FILE_LIST), FILE_READY, FILE_ERROR, FILE_DELETED (FILE), DATA_SOURCE_READY (DATA_SOURCE).
    """

    event_type: str
    customer_id: str
    object_type: str
    object_id: str | int | Sequence[str | int]
    additional_information: Mapping[str, Any] | None = None


def enqueue_webhook_events(
    control: ControlStore, events: Sequence[WebhookEvent], *, organization_id: int = DEFAULT_ORGANIZATION_ID
) -> int:
    """Put events in the outbox, once per active webhook of the organization, in one transaction.

    Returns how many deliveries were queued (none when the organization has no webhook).
    """
    now = control._now()
    queued = 0
    with control._write() as con:
        hooks = con.execute(
            "SELECT id FROM webhooks WHERE organization_id = ? AND status = 'ACTIVE' ORDER BY id",
            (organization_id,),
        ).fetchall()
        if not hooks:
            return 0
        for event in events:
            payload = webhook_payload(
                event.event_type,
                customer_id=event.customer_id,
                object_type=event.object_type,
                object_id=event.object_id,
                additional_information=event.additional_information,
                timestamp=now,
            )
            for hook in hooks:
                con.execute(
                    """
                    INSERT INTO webhook_deliveries (webhook_id, event_type, customer_id, payload, status,
                                                    next_attempt_at, created_at)
                    VALUES (?, ?, ?, ?, 'pending', ?, ?)
                    """,
                    (hook["id"], event.event_type, event.customer_id, payload, _iso(now), _iso(now)),
                )
                queued += 1
    return queued
