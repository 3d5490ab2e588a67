"""Fixtures for the store tests: a fresh mail store per test and a factory for email rows."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipelines.store import Address, EmailRow, MailStore

BASE_TIME = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def email(n: int, folder: str = "inbox", **changes: object) -> EmailRow:
    """A realistic email row numbered `n`; keyword arguments override fields."""
    values: dict[str, object] = {
        "message_id": f"AAMk-{n:05d}",
        "folder_id": folder,
        "folder_path": {"inbox": "Inbox", "archive": "Archive"}.get(folder, folder),
        "internet_message_id": f"<{n}@mail.example.com>",
        "conversation_id": f"conv-{n // 3}",
        "subject": f"Quarterly report {n}",
        "from_name": "Ada Lovelace",
        "from_address": "ada@example.com",
        "sender_name": "Ada Lovelace",
        "sender_address": "ada@example.com",
        "to_recipients": (Address("Bob", "bob@example.com"),),
        "cc_recipients": (Address(None, "carol@example.com"),),
        "received_at": BASE_TIME + timedelta(minutes=n),
        "sent_at": BASE_TIME + timedelta(minutes=n, seconds=-5),
        "categories": ("Work",),
        "importance": "normal",
        "is_read": False,
        "flag_status": "notFlagged",
        "has_attachments": False,
        "web_link": f"https://outlook.example.com/owa/?ItemID={n}",
        "change_key": f"ck-{n}-1",
        "body_content_type": "html",
        "body_html": f"<p>Body of message {n}</p>",
        "body_text": f"Body of message {n}",
        "unique_body_text": f"Body of message {n}",
        "body_preview": f"Body of message {n}",
    }
    values.update(changes)
    return EmailRow(**values)  # type: ignore[arg-type]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def store(data_dir: Path) -> MailStore:
    return MailStore.for_customer(data_dir, "team@carbon.ai")
