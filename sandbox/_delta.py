"""Delta rounds on a folder's messages, computed from the mailbox's change log.

A round starts with a request without tokens: it notes the mailbox's change sequence (the watermark) and
lists what was in the folder (most recent first; with a ``receivedDateTime ge|gt`` filter, at most 5,000).
Later rounds start from a delta link's watermark and list the changes since: items that arrived or changed
in the folder, and ``@removed`` (reason ``deleted``) for messages deleted or moved out. A message that
changes while a round is being paged is left for the next round, so nothing is lost between rounds.

Tokens are opaque keys into server-side round states (as in Exchange, they live in a bounded cache):
an evicted or invalidated token answers 410 ``SyncStateNotFound`` with a ``Location`` to start again.
With the fault profile's rates, pages may replay an item of the previous page, or come back empty with a
next link.
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
import secrets
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

from sandbox._errors import GraphFault
from sandbox._model import Folder, Mailbox, Message
from sandbox._odata import parse_datetime

MAX_STATES = 20_000
FILTERED_ROUND_CAP = 5_000
_RECEIVED_FILTER = re.compile(
    r"^\s*receivedDateTime\s+(ge|gt)\s+(\d{4}-\d{2}-\d{2}(?:T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})?)?)\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of a round: an item to show, or a removal of the id it had (``moves`` for mutable ids)."""

    serial: int
    removed: bool = False
    moves: int = 0


@dataclass(frozen=True, slots=True)
class RoundState:
    mailbox: int
    folder: int
    generation: int
    select: tuple[str, ...] | None
    received: tuple[str, dt.datetime] | None
    change_type: str | None
    base: int  # changes after this sequence number; -1 for an initial round
    watermark: int  # ... up to and including this one
    entries: tuple[Entry, ...] = ()
    cursor: int = 0
    previous: tuple[int, ...] = ()
    complete: bool = False  # a delta link: the next request starts a new round from ``watermark``


def parse_initial(query: dict[str, str]) -> tuple[tuple[str, dt.datetime] | None, str | None]:
    """Validate the query options of a round's first request; returns (received filter, changeType)."""
    received = None
    text = query.get("$filter")
    if text is not None:
        match = _RECEIVED_FILTER.match(text)
        if match is None:
            raise GraphFault(
                400,
                "ErrorInvalidUrlQuery",
                "The '$filter' parameter value is not supported for "
                "'Messages' resource; only a value of 'receivedDateTime ge value' is supported.",
            )
        try:
            received = (match.group(1).lower(), parse_datetime(match.group(2)))
        except ValueError:
            raise GraphFault(
                400, "ErrorInvalidUrlQuery", f"'{match.group(2)}' is not a valid date."
            ) from None
    orderby = query.get("$orderby")
    if orderby is not None and " ".join(orderby.split()).lower() != "receiveddatetime desc":
        raise GraphFault(
            400,
            "ErrorInvalidUrlQuery",
            "The '$orderby' parameter value is not supported for "
            "'Messages' resource; only a value of 'receivedDateTime desc' is supported.",
        )
    if "$search" in query:
        raise GraphFault(
            400, "ErrorInvalidUrlQuery", "The query parameter '$search' is not supported with delta."
        )
    change_type = query.get("changeType")
    if change_type is not None and change_type not in {"created", "updated", "deleted"}:
        raise GraphFault(
            400,
            "ErrorInvalidUrlQuery",
            f"The value '{change_type}' of 'changeType' is not supported; use created, updated or deleted.",
        )
    return received, change_type


def _passes(msg: Message, received: tuple[str, dt.datetime] | None) -> bool:
    if received is None:
        return True
    stamp = msg.received
    limit = received[1].timestamp()
    return stamp >= limit if received[0] == "ge" else stamp > limit


class DeltaRounds:
    """Round states by token, bounded like Exchange's sync-state cache."""

    def __init__(self) -> None:
        self._states: OrderedDict[str, RoundState] = OrderedDict()

    def clear(self) -> None:
        self._states.clear()

    def put(self, state: RoundState) -> str:
        token = secrets.token_urlsafe(24)
        self._states[token] = state
        if len(self._states) > MAX_STATES:
            self._states.popitem(last=False)
        return token

    def get(self, token: str) -> RoundState | None:
        state = self._states.get(token)
        if state is not None:
            self._states.move_to_end(token)
        return state


def start_round(
    mb: Mailbox,
    folder: Folder,
    select: tuple[str, ...] | None,
    received: tuple[str, dt.datetime] | None,
    change_type: str | None,
    base: int = -1,
) -> RoundState:
    """A new round: the folder's content (base -1) or its changes after ``base``."""
    generation = mb.delta_generation + mb.folder_generations.get(folder.serial, 0)
    if base < 0:
        messages = mb.messages
        serials = [s for s in folder.members if _passes(messages[s], received)]
        serials.sort(key=lambda s: (messages[s].received, s), reverse=True)
        if received is not None:
            del serials[FILTERED_ROUND_CAP:]
        if change_type in {"updated", "deleted"}:
            serials = []
        entries = tuple(Entry(s) for s in serials)
    else:
        entries = _changes(mb, folder, base, received)
    return RoundState(
        mb.number, folder.serial, generation, select, received, change_type, base, mb.seq, entries
    )


def _changes(
    mb: Mailbox, folder: Folder, base: int, received: tuple[str, dt.datetime] | None
) -> tuple[Entry, ...]:
    start = bisect.bisect_right(mb.log, base, key=lambda change: change.seq)
    latest: dict[int, int] = {}
    removals: dict[int, list[int]] = {}
    order: dict[int, int] = {}
    fid = folder.serial
    for position, change in enumerate(mb.log[start:]):
        if change.folder_from != fid and change.folder_to != fid:
            continue
        serial = change.serial
        order[serial] = position
        latest[serial] = change.folder_to == fid
        if change.folder_from == fid and change.folder_to != fid:
            removals.setdefault(serial, []).append(change.moves_before)
    entries: list[Entry] = []
    items = 0
    for serial in sorted(order, key=order.__getitem__):
        for moves in removals.get(serial, ()):
            entries.append(Entry(serial, removed=True, moves=moves))
        if latest[serial]:
            msg = mb.messages.get(serial)
            if msg is not None and _passes(msg, received):
                if received is not None and items >= FILTERED_ROUND_CAP:
                    continue
                items += 1
                entries.append(Entry(serial))
    return tuple(entries)


@dataclass(slots=True)
class Page:
    """One delta page: the entries to show and the state its link will continue from."""

    items: list[Message | Entry]
    next_state: RoundState


def next_page(mb: Mailbox, state: RoundState, size: int, *, replay: bool, empty: bool) -> Page:
    """Take up to ``size`` items from ``state``; removed entries show as ``Entry``, items as ``Message``."""
    out: list[Message | Entry] = []
    shown: list[int] = []
    if empty and state.cursor < len(state.entries):
        return Page(out, replace(state, previous=()))
    if replay and state.previous:
        again = mb.messages.get(state.previous[-1])
        if again is not None and again.folder == state.folder and again.change_seq <= state.watermark:
            out.append(again)
    cursor = state.cursor
    while cursor < len(state.entries) and len(shown) < size:
        entry = state.entries[cursor]
        cursor += 1
        if entry.removed:
            if state.change_type in {"created", "updated"}:
                continue
            current = mb.messages.get(entry.serial)
            if current is not None and current.folder == state.folder and current.moves == entry.moves:
                continue
            out.append(entry)
            shown.append(-entry.serial)
            continue
        msg = mb.messages.get(entry.serial)
        if msg is None or msg.folder != state.folder or msg.change_seq > state.watermark:
            continue
        if state.change_type == "deleted":
            continue
        if state.base >= 0 and state.change_type is not None:
            created = msg.arrived_seq > state.base
            if (state.change_type == "created") != created:
                continue
        out.append(msg)
        shown.append(entry.serial)
    done = cursor >= len(state.entries)
    following = replace(state, cursor=cursor, previous=tuple(s for s in shown if s > 0), complete=done)
    return Page(out, following)


def removed_json(message_id: str) -> dict[str, Any]:
    return {"@odata.type": "#microsoft.graph.message", "id": message_id, "@removed": {"reason": "deleted"}}
