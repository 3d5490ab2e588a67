"""`MessageFacts`: what a filter can ask about a message, and where Graph's JSON holds each fact."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class MessageFacts:
    """A message as the evaluator sees it; the Graph client builds these from its models.

    `received_at` must be timezone-aware (None: unknown, so no date term matches). Addresses and categories
    are kept as Graph gives them; the evaluator compares them case-insensitively.
    """

    received_at: datetime | None = None
    categories: tuple[str, ...] = ()
    sender: str | None = None
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    subject: str = ""
    importance: str = "normal"
    is_read: bool = False
    is_flagged: bool = False
    has_attachments: bool = False

    def __post_init__(self) -> None:
        if self.received_at is not None and self.received_at.utcoffset() is None:
            raise ValueError(f"MessageFacts.received_at must be timezone-aware, got {self.received_at!r}")
        for name in ("categories", "to", "cc"):
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, Sequence):
                raise ValueError(f"MessageFacts.{name} must be a sequence of strings, got {value!r}")
            if not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))

    @classmethod
    def from_graph(cls, message: Mapping[str, Any]) -> MessageFacts:
        """The facts in a Graph message dict (absent properties read as Graph's empty values)."""
        received = message.get("receivedDateTime")
        return cls(
            received_at=graph_time(received) if received else None,
            categories=tuple(message.get("categories") or ()),
            sender=graph_sender(message),
            to=graph_addresses(message, "toRecipients"),
            cc=graph_addresses(message, "ccRecipients"),
            subject=message.get("subject") or "",
            importance=message.get("importance") or "normal",
            is_read=message.get("isRead") is True,
            is_flagged=graph_flagged(message),
            has_attachments=message.get("hasAttachments") is True,
        )


def graph_time(value: str) -> datetime:
    """A Graph DateTimeOffset string as an aware UTC datetime (a string without an offset is taken as UTC)."""
    moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.utcoffset() is None else moment.astimezone(UTC)


def graph_utc_day(value: str) -> str:
    """The UTC calendar day (`YYYY-MM-DD`) of a Graph DateTimeOffset string."""
    # Graph writes UTC with a Z; its first ten characters are then the day, and slicing is far cheaper
    # than parsing. Anything else (an offset, no zone) takes the slow, exact road.
    if value.endswith("Z"):
        return value[:10]
    return graph_time(value).date().isoformat()


def graph_sender(message: Mapping[str, Any]) -> str | None:
    """The `from` address of a Graph message dict (None on drafts and when not selected)."""
    sender = message.get("from")
    if not sender:
        return None
    return (sender.get("emailAddress") or {}).get("address")


def graph_addresses(message: Mapping[str, Any], field: str) -> tuple[str, ...]:
    """The addresses in a Graph recipient list (`toRecipients`, `ccRecipients`), skipping empty entries."""
    out = []
    for recipient in message.get(field) or ():
        address = ((recipient or {}).get("emailAddress") or {}).get("address")
        if address:
            out.append(address)
    return tuple(out)


def graph_flagged(message: Mapping[str, Any]) -> bool:
    """Whether a Graph message's follow-up flag is set (`flagged`; `complete` is not)."""
    flag = message.get("flag")
    return bool(flag) and flag.get("flagStatus") == "flagged"
