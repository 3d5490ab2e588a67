"""Filling a customer's mail store through the store's write API, as a sync run would (tests only: the API
process itself never writes the mail store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipelines.store import Address, AttachmentRow, Cursor, EmailRow, MailStore, Page

BASE = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
FINGERPRINT = "api-tests"


def email(n: int, *, folder: str = "inbox", data_source_id: int | None = None, **changes: object) -> EmailRow:
    values: dict[str, object] = {
        "message_id": f"AAMk-{n:06d}",
        "folder_id": folder,
        "folder_path": "Inbox" if folder == "inbox" else folder,
        "internet_message_id": f"<{n}@mail.example.com>",
        "subject": f"Quarterly report {n}" if n % 2 else f"Invoice {n}",
        "from_name": "Ada Lovelace",
        "from_address": "ada@example.com",
        "to_recipients": (Address("Bob", "bob@example.com"),),
        "received_at": BASE + timedelta(minutes=n),
        "sent_at": BASE + timedelta(minutes=n, seconds=-5),
        "categories": ("Work",),
        "is_read": False,
        "has_attachments": False,
        "web_link": f"https://outlook.example.com/owa/?ItemID={n}",
        "change_key": f"ck-{n}",
        "body_content_type": "html",
        "body_html": f"<p>Body of message {n}</p>",
        "body_text": f"Body of message {n}",
        "data_source_id": data_source_id,
    }
    values.update(changes)
    return EmailRow(**values)  # type: ignore[arg-type]


def with_attachment(n: int, **changes: object) -> EmailRow:
    """Email `n` with a small text attachment whose content is stored."""
    attachment = AttachmentRow(
        f"att-{n}",
        name=f"notes-{n}.txt",
        content_type="text/plain",
        size=11,
        content=b"hello notes",
        content_state="stored",
    )
    return email(n, has_attachments=True, attachments=(attachment,), **changes)


def fill(
    data_dir: Path, customer_id: str, rows: list[EmailRow], *, request_id: str | None = None
) -> MailStore:
    """Store `rows` as one round of the inbox, page by page (500 a page)."""
    store = MailStore.for_customer(data_dir, customer_id)
    store.start_round("inbox", FINGERPRINT)
    for start in range(0, len(rows), 500):
        chunk = rows[start : start + 500]
        last = start + 500 >= len(rows)
        cursor = Cursor(delta_link="delta") if last else Cursor(next_link=f"next-{start}")
        store.apply_page(Page("inbox", FINGERPRINT, upserts=chunk, cursor=cursor, request_id=request_id))
    return store
