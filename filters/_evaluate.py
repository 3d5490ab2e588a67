"""The local evaluator, the truth of what a filter means: compile a tree once into closures, then call them.

A tree compiles to two closure trees, one reading Graph's JSON dicts and one reading `MessageFacts`, so no
message is converted on the hot path. Semantics (the README's table): text comparisons are case-insensitive
(`str.casefold`); `category`, `to` and `cc` match when any element matches; `subject` is a substring test;
dates compare the UTC day of `receivedDateTime` (`after:D` is day ≥ D, `before:D` is day < D); an absent
property never matches a term (so `NOT` of that term matches).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

from filters._facts import MessageFacts, graph_addresses, graph_flagged, graph_sender, graph_utc_day
from filters._tree import (
    After,
    And,
    Before,
    Category,
    Cc,
    Filter,
    From,
    HasAttachment,
    Importance,
    IsFlagged,
    IsRead,
    IsUnread,
    MatchAll,
    Not,
    Or,
    Subject,
    To,
)

GraphMessage = Mapping[str, Any]
Message = GraphMessage | MessageFacts

# The Graph property each leaf reads, in the order `required_fields` lists them.
_FIELDS: dict[type, str] = {
    Category: "categories",
    After: "receivedDateTime",
    Before: "receivedDateTime",
    From: "from",
    To: "toRecipients",
    Cc: "ccRecipients",
    Subject: "subject",
    Importance: "importance",
    IsRead: "isRead",
    IsUnread: "isRead",
    IsFlagged: "flag",
    HasAttachment: "hasAttachments",
}
_FIELD_ORDER = tuple(dict.fromkeys(_FIELDS.values()))


@dataclass(frozen=True, slots=True)
class Predicate:
    """A compiled filter: call it on a Graph dict or a `MessageFacts` (hot loops: `.graph`, `.facts`)."""

    tree: Filter
    graph: Callable[[GraphMessage], bool]
    facts: Callable[[MessageFacts], bool]

    def __call__(self, message: Message) -> bool:
        if type(message) is dict:
            return self.graph(message)
        if isinstance(message, MessageFacts):
            return self.facts(message)
        if isinstance(message, Mapping):
            return self.graph(message)
        raise TypeError(
            f"a filter evaluates a Graph message dict or filters.MessageFacts, not {type(message)!r}"
        )


@functools.lru_cache(maxsize=1024)
def compile_filter(tree: Filter) -> Predicate:
    """Compile a tree into a `Predicate` (cached: compiling the same tree twice returns the same object)."""
    return Predicate(tree, _on_graph(tree), _on_facts(tree))


def matches(tree: Filter, message: Message) -> bool:
    """Whether a message (a Graph dict or `MessageFacts`) matches the filter."""
    return compile_filter(tree)(message)


def required_fields(tree: Filter) -> tuple[str, ...]:
    """The Graph `$select` properties the evaluator reads for this tree (none for `MatchAll`)."""
    wanted = {_FIELDS[type(leaf)] for leaf in _leaves(tree)}
    return tuple(name for name in _FIELD_ORDER if name in wanted)


def _leaves(tree: Filter) -> list[Filter]:
    out: list[Filter] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, And | Or):
            todo.extend(node.children)
        elif isinstance(node, Not):
            todo.append(node.child)
        elif not isinstance(node, MatchAll):
            out.append(node)
    return out


def _always(_: object) -> bool:
    return True


def _combined(
    tree: And | Or | Not, compile_child: Callable[[Filter], Callable[[Any], bool]]
) -> Callable[[Any], bool]:
    if isinstance(tree, Not):
        inner = compile_child(tree.child)
        return lambda m: not inner(m)
    parts = tuple(compile_child(child) for child in tree.children)
    # Plain loops, not all()/any() over a generator: the generator's frame costs more than the leaves.
    if isinstance(tree, And):

        def every(m: Any) -> bool:
            for part in parts:  # noqa: SIM110
                if not part(m):
                    return False
            return True

        return every

    def some(m: Any) -> bool:
        for part in parts:  # noqa: SIM110
            if part(m):
                return True
        return False

    return some


def _on_graph(tree: Filter) -> Callable[[GraphMessage], bool]:
    if isinstance(tree, MatchAll):
        return _always
    if isinstance(tree, And | Or | Not):
        return _combined(tree, _on_graph)
    if isinstance(tree, Category):
        want = tree.name.casefold()
        return lambda m: any(c.casefold() == want for c in m.get("categories") or ())
    if isinstance(tree, After):
        day = tree.day.isoformat()
        return lambda m: bool(m.get("receivedDateTime")) and graph_utc_day(m["receivedDateTime"]) >= day
    if isinstance(tree, Before):
        day = tree.day.isoformat()
        return lambda m: bool(m.get("receivedDateTime")) and graph_utc_day(m["receivedDateTime"]) < day
    if isinstance(tree, From):
        want = tree.address.casefold()
        return lambda m: (graph_sender(m) or "").casefold() == want
    if isinstance(tree, To | Cc):
        want = tree.address.casefold()
        field = _FIELDS[type(tree)]
        return lambda m: any(a.casefold() == want for a in graph_addresses(m, field))
    if isinstance(tree, Subject):
        want = tree.text.casefold()
        return lambda m: want in (m.get("subject") or "").casefold()
    if isinstance(tree, Importance):
        want = tree.level
        return lambda m: (m.get("importance") or "").lower() == want
    if isinstance(tree, HasAttachment):
        return lambda m: m.get("hasAttachments") is True
    if isinstance(tree, IsFlagged):
        return graph_flagged
    if isinstance(tree, IsRead):
        return lambda m: m.get("isRead") is True
    if isinstance(tree, IsUnread):
        return lambda m: m.get("isRead") is not True
    raise TypeError(f"not a filter node: {tree!r}")


def _on_facts(tree: Filter) -> Callable[[MessageFacts], bool]:
    if isinstance(tree, MatchAll):
        return _always
    if isinstance(tree, And | Or | Not):
        return _combined(tree, _on_facts)
    if isinstance(tree, Category):
        want = tree.name.casefold()
        return lambda m: any(c.casefold() == want for c in m.categories)
    if isinstance(tree, After):
        since = datetime.combine(tree.day, time(), UTC)
        return lambda m: m.received_at is not None and m.received_at >= since
    if isinstance(tree, Before):
        until = datetime.combine(tree.day, time(), UTC)
        return lambda m: m.received_at is not None and m.received_at < until
    if isinstance(tree, From):
        want = tree.address.casefold()
        return lambda m: m.sender is not None and m.sender.casefold() == want
    if isinstance(tree, To):
        want = tree.address.casefold()
        return lambda m: any(a.casefold() == want for a in m.to)
    if isinstance(tree, Cc):
        want = tree.address.casefold()
        return lambda m: any(a.casefold() == want for a in m.cc)
    if isinstance(tree, Subject):
        want = tree.text.casefold()
        return lambda m: want in m.subject.casefold()
    if isinstance(tree, Importance):
        want = tree.level
        return lambda m: m.importance.lower() == want
    if isinstance(tree, HasAttachment):
        return lambda m: m.has_attachments
    if isinstance(tree, IsFlagged):
        return lambda m: m.is_flagged
    if isinstance(tree, IsRead):
        return lambda m: m.is_read
    if isinstance(tree, IsUnread):
        return lambda m: not m.is_read
    raise TypeError(f"not a filter node: {tree!r}")
