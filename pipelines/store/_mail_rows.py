"""Pure mapping between the store's rows and what DuckDB is handed: one JSON document per page, and hashes.

Why JSON: DuckDB 1.5's Python binding tries `import pandas` for every bound Python value when pandas is not
installed (about 35 µs each), so binding a page's 100 rows × 40 columns costs over 100 ms. A page travels
instead as one JSON string that DuckDB parses with `from_json` in about 2 ms.
"""

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from typing import Any

import orjson

from pipelines.store._mail_types import Address, AttachmentRow, EmailRow

_ADDRESSES = [{"name": "VARCHAR", "address": "VARCHAR"}]

# The synced fields of an email, in EmailRow's order, with their DuckDB types (the column names match).
EMAIL_FIELDS: tuple[tuple[str, Any], ...] = (
    ("message_id", "VARCHAR"),
    ("folder_id", "VARCHAR"),
    ("folder_path", "VARCHAR"),
    ("internet_message_id", "VARCHAR"),
    ("conversation_id", "VARCHAR"),
    ("data_source_id", "BIGINT"),
    ("subject", "VARCHAR"),
    ("from_name", "VARCHAR"),
    ("from_address", "VARCHAR"),
    ("sender_name", "VARCHAR"),
    ("sender_address", "VARCHAR"),
    ("to_recipients", _ADDRESSES),
    ("cc_recipients", _ADDRESSES),
    ("bcc_recipients", _ADDRESSES),
    ("reply_to", _ADDRESSES),
    ("received_at", "TIMESTAMPTZ"),
    ("sent_at", "TIMESTAMPTZ"),
    ("created_at", "TIMESTAMPTZ"),
    ("modified_at", "TIMESTAMPTZ"),
    ("categories", ["VARCHAR"]),
    ("importance", "VARCHAR"),
    ("is_read", "BOOLEAN"),
    ("flag_status", "VARCHAR"),
    ("has_attachments", "BOOLEAN"),
    ("web_link", "VARCHAR"),
    ("change_key", "VARCHAR"),
    ("body_content_type", "VARCHAR"),
    ("body_html", "VARCHAR"),
    ("body_text", "VARCHAR"),
    ("unique_body_text", "VARCHAR"),
    ("body_preview", "VARCHAR"),
    ("sync_status", "VARCHAR"),
    ("sync_error", "VARCHAR"),
)
EMAIL_COLUMNS: tuple[str, ...] = tuple(name for name, _ in EMAIL_FIELDS)
# Computed by the store beside the synced fields.
_EMAIL_EXTRA: tuple[tuple[str, str], ...] = (
    ("ordinal", "BIGINT"),
    ("size_bytes", "BIGINT"),
    ("content_hash", "VARCHAR"),
    ("attachments_given", "BOOLEAN"),
    ("attachments_hash", "VARCHAR"),
)
EMAIL_JSON_SCHEMA = orjson.dumps([dict(EMAIL_FIELDS + _EMAIL_EXTRA)]).decode()

ATTACHMENT_FIELDS: tuple[tuple[str, str], ...] = (
    ("message_id", "VARCHAR"),
    ("attachment_id", "VARCHAR"),
    ("name", "VARCHAR"),
    ("content_type", "VARCHAR"),
    ("size", "BIGINT"),
    ("is_inline", "BOOLEAN"),
    ("kind", "VARCHAR"),
    ("format", "VARCHAR"),
    ("content_id", "VARCHAR"),
    ("last_modified_at", "TIMESTAMPTZ"),
    ("content_state", "VARCHAR"),
    ("content_sha256", "VARCHAR"),
    ("ordinal", "BIGINT"),
)
ATTACHMENT_JSON_SCHEMA = orjson.dumps([dict(ATTACHMENT_FIELDS)]).decode()
STRING_LIST_SCHEMA = '["VARCHAR"]'
INT_LIST_SCHEMA = '["BIGINT"]'

assert tuple(f.name for f in fields(EmailRow) if f.name != "attachments") == EMAIL_COLUMNS


def _digest(value: object) -> str:
    return hashlib.blake2b(orjson.dumps(value), digest_size=16).hexdigest()


def content_hash(row: EmailRow) -> str:
    """A hash of every synced field (not the attachments): an equal hash means nothing to rewrite."""
    return _digest([getattr(row, name) for name in EMAIL_COLUMNS])


def size_bytes(row: EmailRow) -> int:
    """The size of the body as Graph sent it, which Carbon reports as the file's size."""
    body = row.body_html if row.body_html is not None else row.body_text
    return len(body.encode("utf-8")) if body else 0


def attachment_payloads(
    message_id: str, attachments: Sequence[AttachmentRow], max_content_bytes: int
) -> list[dict[str, Any]]:
    """The attachments of one message as JSON-ready dicts, without their content (see `attachment_contents`);
    content over `max_content_bytes` is recorded as too large."""
    out = []
    for ordinal, a in enumerate(attachments):
        content, state, sha = a.content, a.content_state, None
        if content is not None:
            if len(content) > max_content_bytes:
                content, state = None, "too_large"
            else:
                state, sha = "stored", hashlib.sha256(content).hexdigest()
        out.append(
            {
                "message_id": message_id,
                "attachment_id": a.attachment_id,
                "name": a.name,
                "content_type": a.content_type,
                "size": a.size,
                "is_inline": a.is_inline,
                "kind": a.kind,
                "format": a.format,
                "content_id": a.content_id,
                "last_modified_at": a.last_modified_at,
                "content_state": state,
                "content_sha256": sha,
                "ordinal": ordinal,
            }
        )
    return out


def attachment_contents(
    message_id: str, attachments: Sequence[AttachmentRow], max_content_bytes: int
) -> list[tuple[str, str, bytes]]:
    """(message id, attachment id, content) of the attachments whose content is stored.

    Content is bound to DuckDB as BLOB parameters, not carried in the page's JSON: base64 in JSON made
    DuckDB's JSON reader allocate about ten times the content's size (2 GiB for 180 MB of attachments).
    """
    return [
        (message_id, a.attachment_id, a.content)
        for a in attachments
        if a.content is not None and len(a.content) <= max_content_bytes
    ]


def attachments_hash(payloads: Iterable[Mapping[str, Any]]) -> str:
    """A hash of a message's attachments as stored (content by its SHA-256), order-insensitive."""
    keyed = sorted(
        ([v for k, v in p.items() if k != "ordinal"] for p in payloads),
        key=lambda item: str(item[1]),
    )
    return _digest(keyed)


def email_payload(
    row: EmailRow, ordinal: int, max_content_bytes: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One email as a JSON-ready dict for the `incoming` table, and its attachments' dicts.

    `ordinal` is the row's place in its page: new file ids are handed out in that order.
    """
    payload = {name: getattr(row, name) for name in EMAIL_COLUMNS}
    payload["ordinal"] = ordinal
    payload["size_bytes"] = size_bytes(row)
    payload["content_hash"] = content_hash(row)
    attachments: list[dict[str, Any]] = []
    if row.attachments is None:
        payload["attachments_given"], payload["attachments_hash"] = False, None
    else:
        attachments = attachment_payloads(row.message_id, row.attachments, max_content_bytes)
        payload["attachments_given"], payload["attachments_hash"] = True, attachments_hash(attachments)
    return payload, attachments


def to_json(value: object) -> str:
    """The JSON text DuckDB's `from_json` reads (datetimes as RFC 3339, dataclasses as objects)."""
    return orjson.dumps(value).decode()


def _addresses(value: Sequence[Mapping[str, str | None]] | None) -> tuple[Address, ...]:
    return tuple(Address(a["name"], a["address"]) for a in value or ())


def email_row_from_record(record: Mapping[str, Any]) -> EmailRow:
    """Rebuild an `EmailRow` from a stored `emails` row (a column → value mapping)."""
    values: dict[str, Any] = {name: record[name] for name in EMAIL_COLUMNS}
    for name in ("to_recipients", "cc_recipients", "bcc_recipients", "reply_to"):
        values[name] = _addresses(values[name])
    values["categories"] = tuple(values["categories"] or ())
    return EmailRow(**values)
