"""What the UI shows of a customer's mail store: Markdown previews and metadata, built by pure functions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from pipelines.store import EmailSummary
from pipelines.sync import FolderOutcome

_CELL_MAX = 80
_COUNT_ORDER = ("seen", "matched", "fetched", "inserted", "updated", "moved", "unchanged", "deleted")


def cell(value: object) -> str:
    """Text fit for a Markdown table cell: one line, pipes escaped, long text cut."""
    text = " ".join(str(value or "").split()).replace("\\", "\\\\").replace("|", "\\|")
    return text if len(text) <= _CELL_MAX else text[: _CELL_MAX - 1] + "…"


def preview(newest: Sequence[EmailSummary]) -> str:
    """A Markdown table of the newest messages (received, from, subject, folder, file id)."""
    if not newest:
        return "_No emails stored yet._"
    lines = ["| received (UTC) | from | subject | folder | file id |", "|---|---|---|---|---|"]
    for email in newest:
        received = email.received_at.strftime("%Y-%m-%d %H:%M") if email.received_at else ""
        lines.append(
            f"| {received} | {cell(email.from_address)} | {cell(email.subject) or '_(no subject)_'} "
            f"| {cell(email.folder_path)} | {email.file_id} |"
        )
    return "\n".join(lines)


def bullet_list(items: Iterable[str]) -> str:
    """A Markdown bullet list (or a note that it is empty)."""
    lines = [f"- {cell(item)}" for item in items]
    return "\n".join(lines) if lines else "_none_"


def outcomes(counts: Mapping[str, int], skipped: Mapping[str, int]) -> str:
    """A one-row Markdown table of a run's counts, in the order a message goes through them, and the
    reasons messages were skipped."""
    names = [name for name in _COUNT_ORDER if name in counts]
    table = "\n".join(
        [
            "| " + " | ".join(names) + " |",
            "|" + "---|" * len(names),
            "| " + " | ".join(str(counts[name]) for name in names) + " |",
        ]
    )
    if not skipped:
        return table
    reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(skipped.items()))
    return f"{table}\n\nskipped: {reasons}"


def folder_line(folder: FolderOutcome) -> str:
    """`Inbox: delta round (incremental), 3 pages`."""
    pages = f"{folder.pages} page" + ("" if folder.pages == 1 else "s")
    restarted = ", restarted after Graph forgot its link" if folder.restarted else ""
    return f"{folder.path}: {folder.round} round, {pages}{restarted}"
