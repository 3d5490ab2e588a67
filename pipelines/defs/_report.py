"""What the UI shows of a customer's mail store: Markdown previews and metadata, built by pure functions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from pipelines.store import EmailSummary

_CELL_MAX = 80


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


def nonzero(counts: Mapping[str, int]) -> dict[str, int]:
    """The counts that are not zero, by name (what a person scanning a run wants to see)."""
    return {name: count for name, count in sorted(counts.items()) if count}
