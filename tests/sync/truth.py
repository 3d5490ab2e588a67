"""Compare a customer's mail store with the sandbox's ground truth: what a correct sync must have stored.

Used by the end-to-end tests and by the crash test's driver. Reads the DuckDB file directly (read-only), so a
comparison sees exactly what is on disk.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

import filters

# Stored column -> how to read the same fact from Graph's JSON.
_FIELDS = {
    "subject": lambda m: m.get("subject"),
    "categories": lambda m: sorted(m.get("categories") or ()),
    "is_read": lambda m: m.get("isRead"),
    "flag_status": lambda m: (m.get("flag") or {}).get("flagStatus"),
    "importance": lambda m: m.get("importance"),
    "from_address": lambda m: ((m.get("from") or {}).get("emailAddress") or {}).get("address"),
    "change_key": lambda m: m.get("changeKey"),
    "internet_message_id": lambda m: m.get("internetMessageId"),
    "has_attachments": lambda m: m.get("hasAttachments"),
}

_LIVE = (
    "SELECT message_id, folder_id, folder_path, received_at, body_html, body_text, "  # noqa: S608 (constants)
    f"{', '.join(_FIELDS)} FROM emails WHERE removed_at IS NULL AND NOT file_contents_deleted"
)


def stored_emails(path: Path) -> dict[str, dict[str, Any]]:
    """Live emails (not removed, content not deleted) by message id, with the compared columns."""
    with duckdb.connect(str(path), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        cursor = con.execute(_LIVE)
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    for row in rows:
        row["categories"] = sorted(row["categories"] or ())
    return {row["message_id"]: row for row in rows}


def duplicates(path: Path) -> int:
    """Message ids stored more than once (never expected)."""
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(
            "SELECT count(*) FROM (SELECT message_id FROM emails GROUP BY ALL HAVING count(*) > 1)"
        ).fetchone()[0]


def expected_messages(
    truth: Mapping[str, Any], folder_ids: Iterable[str], tree: filters.Filter | None = None
) -> dict[str, dict[str, Any]]:
    """The messages a sync of `folder_ids` with filter `tree` must store, by id."""
    folders = set(folder_ids)
    keep = filters.compile(tree) if tree is not None else None
    return {
        m["id"]: m for m in truth["messages"] if m["parentFolderId"] in folders and (keep is None or keep(m))
    }


def differences(
    stored: Mapping[str, Mapping[str, Any]],
    expected: Mapping[str, Mapping[str, Any]],
    *,
    bodies: bool = False,
) -> list[str]:
    """Every way the store differs from what was expected, as readable lines (empty: they agree)."""
    problems = [
        f"missing {mid} ({expected[mid].get('subject')!r})" for mid in expected.keys() - stored.keys()
    ]
    problems += [
        f"unexpected {mid} ({stored[mid].get('subject')!r})" for mid in stored.keys() - expected.keys()
    ]
    for mid in stored.keys() & expected.keys():
        row, message = stored[mid], expected[mid]
        if row["folder_id"] != message["parentFolderId"]:
            problems.append(f"{mid}: folder {row['folder_id']} instead of {message['parentFolderId']}")
        for column, read in _FIELDS.items():
            if row[column] != read(message):
                problems.append(f"{mid}: {column} {row[column]!r} instead of {read(message)!r}")
        received = datetime.fromisoformat(message["receivedDateTime"].replace("Z", "+00:00"))
        if row["received_at"] != received:
            problems.append(f"{mid}: received_at {row['received_at']} instead of {received}")
        if bodies:
            body = (message.get("body") or {}).get("content") or ""
            if row["body_html"] != body:
                problems.append(f"{mid}: body_html differs")
            if message.get("body") is not None and row["body_text"] is None:
                problems.append(f"{mid}: no text body")
    return sorted(problems)


def folder_ids(truth: Mapping[str, Any], *paths: str, subfolders: bool = False) -> list[str]:
    """Ids of the folders at these display-name paths ('Inbox/Receipts'), with those below when asked."""
    found = []
    for folder in truth["folders"]:
        path = "/".join(folder.get("path") or ())
        for wanted in paths:
            if path == wanted or (subfolders and path.startswith(wanted + "/")):
                found.append(folder["id"])
                break
    return found
