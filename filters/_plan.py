"""The Graph query planner: which part of a filter Graph can evaluate as `$filter`, and what stays local.

Only top-level conjuncts are ever pushed, and only those whose Graph meaning is exactly ours, so that for
every message `matches(tree, m) == (the $filter holds for m) and matches(residual, m)`:

- `after`/`before` → `receivedDateTime ge|lt YYYY-MM-DDT00:00:00Z` (several of each collapse to the tightest);
- `category:C` → `categories/any(c:c eq 'C')`, `from:A` → `from/emailAddress/address eq 'A'`, only when the
  value is printable ASCII: Exchange compares these case-insensitively, and for ASCII that is exactly
  `casefold`; for other scripts the two foldings may differ, so those stay local;
- `has:attachment`, `is:flagged`, `is:read`, `is:unread`, `importance:…`, and `NOT` of `is:read`, `is:unread`
  or `has:attachment`, as the equality Graph documents for each.

OR, other NOTs, `to`, `cc` and `subject` stay local. Graph fails filters that mix many properties with
`InefficientFilter` (reference/graph.md §3), so beside the date range at most two predicates are pushed, the
likely most selective first; the date comes first so that `$orderby=receivedDateTime desc` stays legal.
Delta accepts only `receivedDateTime ge`, so a delta plan pushes a top-level `after` and nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

from filters._evaluate import required_fields
from filters._text import to_text
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

Mode = Literal["list", "delta"]

MAX_PUSHED_PREDICATES = 2
DELTA_ROUND_CAP = 5000

_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]+")
_KEEP_SHORT = f"Graph gets at most {MAX_PUSHED_PREDICATES} predicates beside the date range (graph.md §3)"
_NOT_DELTA = "delta accepts only 'receivedDateTime ge' in $filter"


@dataclass(frozen=True, slots=True)
class GraphPlan:
    """How one filter is run against Graph in one mode.

    `odata_filter` is the `$filter` value (None: list everything); `pushed` the conjuncts it stands for;
    `residual` what Graph does not check (None: nothing), with `kept` giving each such conjunct and why;
    `select` the properties the local evaluator reads; `round_cap` the most messages Graph returns in one
    filtered delta round (None when uncapped).
    """

    mode: Mode
    tree: Filter
    odata_filter: str | None
    pushed: tuple[Filter, ...]
    residual: Filter | None
    kept: tuple[tuple[Filter, str], ...]
    select: tuple[str, ...]
    round_cap: int | None

    @property
    def selective(self) -> bool:
        """Whether the pushed-down part narrows what Graph lists."""
        return self.odata_filter is not None

    def explain(self) -> str:
        """The plan in words."""
        lines = [f"{self.mode} plan for: {to_text(self.tree) or '(empty filter: every message)'}"]
        if self.odata_filter is None:
            lines.append("  Graph lists every message in the folder (no $filter).")
        else:
            lines.append(f"  Graph $filter: {self.odata_filter}")
            lines.append("  Graph checks: " + "; ".join(to_text(leaf) for leaf in self.pushed))
        if self.round_cap:
            lines.append(f"  Graph returns at most {self.round_cap:,} messages per filtered delta round.")
        if not self.kept:
            lines.append("  Nothing is left to check locally." if self.pushed else "  Nothing to check.")
        for conjunct, why in self.kept:
            lines.append(f"  checked locally: {to_text(conjunct)}  ({why})")
        if self.select:
            lines.append("  properties the local check reads: " + ", ".join(self.select))
        if self.pushed:
            lines.append("  Every message Graph returns is still checked locally against the whole filter.")
        return "\n".join(lines)


def plan(tree: Filter, mode: Mode) -> GraphPlan:
    """The Graph plan for a tree: `mode="list"` for a one-off listing, `"delta"` for delta rounds."""
    if mode not in ("list", "delta"):
        raise ValueError(f"plan mode must be 'list' or 'delta', not {mode!r}")
    conjuncts = _conjuncts(tree)
    clauses: list[str] = []
    pushed: list[Filter] = []
    kept: list[tuple[int, Filter, str]] = []

    afters = [c for c in conjuncts if isinstance(c, After)]
    befores = [c for c in conjuncts if isinstance(c, Before)] if mode == "list" else []
    if afters:
        clauses.append(f"receivedDateTime ge {_instant(max(a.day for a in afters))}")
        pushed.extend(afters)
    if befores:
        clauses.append(f"receivedDateTime lt {_instant(min(b.day for b in befores))}")
        pushed.extend(befores)

    candidates: list[tuple[int, int, Filter, str]] = []
    for index, conjunct in enumerate(conjuncts):
        if isinstance(conjunct, After | Before) and conjunct in pushed:
            continue
        if mode == "delta":
            kept.append((index, conjunct, _NOT_DELTA))
            continue
        rank, clause, why = _pushable(conjunct)
        if clause is None:
            kept.append((index, conjunct, why))
        else:
            candidates.append((rank, index, conjunct, clause))

    candidates.sort(key=lambda c: (c[0], c[1]))
    for number, (_, index, conjunct, clause) in enumerate(candidates):
        if number < MAX_PUSHED_PREDICATES:
            clauses.append(clause)
            pushed.append(conjunct)
        else:
            kept.append((index, conjunct, _KEEP_SHORT))

    kept.sort(key=lambda entry: entry[0])
    rest = tuple(conjunct for _, conjunct, _ in kept)
    residual = None if not rest else rest[0] if len(rest) == 1 else And(rest)
    odata = " and ".join(clauses) or None
    return GraphPlan(
        mode=mode,
        tree=tree,
        odata_filter=odata,
        pushed=tuple(pushed),
        residual=residual,
        kept=tuple((conjunct, why) for _, conjunct, why in kept),
        select=required_fields(tree),
        round_cap=DELTA_ROUND_CAP if mode == "delta" and odata else None,
    )


def _conjuncts(tree: Filter) -> tuple[Filter, ...]:
    """The top-level conjuncts, with parenthesised ANDs inside an AND opened up (they mean the same)."""
    if isinstance(tree, MatchAll):
        return ()
    if not isinstance(tree, And):
        return (tree,)
    out: list[Filter] = []
    for child in tree.children:
        out.extend(_conjuncts(child) if isinstance(child, And) else (child,))
    return tuple(out)


def _instant(day: date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def odata_string(value: str) -> str:
    """An OData string literal: single quotes, with a quote inside doubled."""
    return "'" + value.replace("'", "''") + "'"


def _pushable(conjunct: Filter) -> tuple[int, str | None, str]:
    """(rank: lower is pushed first, the `$filter` clause or None, why it stays local)."""
    if isinstance(conjunct, From):
        if not _PRINTABLE_ASCII.fullmatch(conjunct.address):
            return (
                0,
                None,
                "a non-ASCII address is compared locally (case folding may differ from Exchange's)",
            )
        return 0, f"from/emailAddress/address eq {odata_string(conjunct.address)}", ""
    if isinstance(conjunct, Category):
        if not _PRINTABLE_ASCII.fullmatch(conjunct.name):
            return (
                1,
                None,
                "a non-ASCII category is compared locally (case folding may differ from Exchange's)",
            )
        return 1, f"categories/any(c:c eq {odata_string(conjunct.name)})", ""
    if isinstance(conjunct, IsFlagged):
        return 2, "flag/flagStatus eq 'flagged'", ""
    if isinstance(conjunct, HasAttachment):
        return 3, "hasAttachments eq true", ""
    if isinstance(conjunct, Importance):
        return 4, f"importance eq '{conjunct.level}'", ""
    if isinstance(conjunct, IsRead):
        return 5, "isRead eq true", ""
    if isinstance(conjunct, IsUnread):
        return 5, "isRead eq false", ""
    if isinstance(conjunct, Not):
        inner = conjunct.child
        if isinstance(inner, IsRead):
            return 5, "isRead eq false", ""
        if isinstance(inner, IsUnread):
            return 5, "isRead eq true", ""
        if isinstance(inner, HasAttachment):
            return 3, "hasAttachments eq false", ""
        return 9, None, "NOT is pushed only for is:read, is:unread and has:attachment"
    if isinstance(conjunct, Or):
        return 9, None, "OR is not pushed: Graph handles mixed or-filters poorly"
    if isinstance(conjunct, To | Cc):
        return 9, None, "Graph cannot filter on recipients reliably"
    if isinstance(conjunct, Subject):
        return (
            9,
            None,
            "subject is a case-insensitive substring match, which Graph's $filter does not promise",
        )
    raise TypeError(f"not a conjunct: {conjunct!r}")
