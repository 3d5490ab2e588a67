"""The typed filter tree: immutable nodes, the key:value vocabulary both spellings share, and the limits.

A filter is a leaf (`Category`, `After`, `Before`, `From`, `To`, `Cc`, `Subject`, `Importance`,
`HasAttachment`, `IsFlagged`, `IsRead`, `IsUnread`), a combinator (`And`, `Or` of two or more filters, `Not`
of one), or `MatchAll` (the empty filter, only ever at the top). Nodes validate themselves when built, so a
tree built by hand obeys the same rules and limits as a parsed one; they are hashable and compare by value.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import ClassVar

from filters._errors import FilterLimitError, FilterValueError

MAX_LEAVES = 256
MAX_DEPTH = 16
MAX_TEXT_BYTES = 8 * 1024

IMPORTANCE_LEVELS = ("low", "normal", "high")

# Deliberately loose: one @, something on each side, no whitespace. Mailbox addresses in the wild include
# plus tags, IDN domains and quoted local parts; the filter only has to compare them, not deliver to them.
_ADDRESS = re.compile(r"[^\s@]+@[^\s@]+")
_DATE = re.compile(r"(\d{4})([/-])(\d{2})\2(\d{2})")


def _need_text(key: str, value: object, expected: str) -> None:
    if not isinstance(value, str) or not value:
        raise FilterValueError(f"{key}: {_shown(value)} is not allowed", key=key, expected=expected)


def _need_address(key: str, value: object) -> None:
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
        raise FilterValueError(
            f"{key}: {_shown(value)} is not an email address",
            key=key,
            expected="an address like name@example.com",
        )


def _need_day(key: str, value: object) -> None:
    if not isinstance(value, date) or isinstance(value, datetime):
        raise FilterValueError(f"{key}: {_shown(value)} is not a date", key=key, expected="a datetime.date")


def _shown(value: object) -> str:
    if value == "":
        return "an empty value"
    return repr(value)


@dataclass(frozen=True, slots=True)
class Category:
    """`category:NAME`: the message carries an Outlook category named NAME (compared case-insensitively)."""

    name: str
    key: ClassVar[str] = "category"
    leaves: ClassVar[int] = 1
    depth: ClassVar[int] = 1

    def __post_init__(self) -> None:
        _need_text(self.key, self.name, "a category name")

    @property
    def value(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class After:
    """`after:YYYY/mm/dd`: received at or after 00:00:00 UTC on that day."""

    day: date
    key: ClassVar[str] = "after"
    leaves: ClassVar[int] = 1
    depth: ClassVar[int] = 1

    def __post_init__(self) -> None:
        _need_day(self.key, self.day)

    @property
    def value(self) -> str:
        return f"{self.day.year:04d}/{self.day.month:02d}/{self.day.day:02d}"


@dataclass(frozen=True, slots=True)
class Before:
    """`before:YYYY/mm/dd`: received before 00:00:00 UTC on that day."""

    day: date
    key: ClassVar[str] = "before"
    leaves: ClassVar[int] = 1
    depth: ClassVar[int] = 1

    def __post_init__(self) -> None:
        _need_day(self.key, self.day)

    @property
    def value(self) -> str:
        return f"{self.day.year:04d}/{self.day.month:02d}/{self.day.day:02d}"


@dataclass(frozen=True, slots=True)
class From:
    """`from:ADDRESS`: the sender's address is ADDRESS (case-insensitively)."""

    address: str
    key: ClassVar[str] = "from"
    leaves: ClassVar[int] = 1
    depth: ClassVar[int] = 1

    def __post_init__(self) -> None:
        _need_address(self.key, self.address)

    @property
    def value(self) -> str:
        return self.address


@dataclass(frozen=True, slots=True)
class To:
    """`to:ADDRESS`: one of the To recipients is ADDRESS (case-insensitively)."""

    address: str
    key: ClassVar[str] = "to"
    leaves: ClassVar[int] = 1
    depth: ClassVar[int] = 1

    def __post_init__(self) -> None:
        _need_address(self.key, self.address)

    @property
    def value(self) -> str:
        return self.address


@dataclass(frozen=True, slots=True)
class Cc:
    """`cc:ADDRESS`: one of the Cc recipients is ADDRESS (case-insensitively)."""

    address: str
    key: ClassVar[str] = "cc"
    leaves: ClassVar[int] = 1
    depth: ClassVar[int] = 1

    def __post_init__(self) -> None:
        _need_address(self.key, self.address)

    @property
    def value(self) -> str:
        return self.address


@dataclass(frozen=True, slots=True)
class Subject:
    """`subject:TEXT`: the subject contains TEXT (case-insensitively)."""

    text: str
    key: ClassVar[str] = "subject"
    leaves: ClassVar[int] = 1
    depth: ClassVar[int] = 1

    def __post_init__(self) -> None:
        _need_text(self.key, self.text, "some text to look for in the subject")

    @property
    def value(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class Importance:
    """`importance:low|normal|high`."""

    level: str
    key: ClassVar[str] = "importance"
    leaves: ClassVar[int] = 1
    depth: ClassVar[int] = 1

    def __post_init__(self) -> None:
        if self.level not in IMPORTANCE_LEVELS:
            raise FilterValueError(
                f"importance: {_shown(self.level)} is not an importance",
                key=self.key,
                expected="low, normal or high",
                suggestion=_nearest(self.level, IMPORTANCE_LEVELS),
            )

    @property
    def value(self) -> str:
        return self.level


@dataclass(frozen=True, slots=True)
class HasAttachment:
    """`has:attachment`: Graph's `hasAttachments` (which leaves out inline images) is true."""

    key: ClassVar[str] = "has"
    value: ClassVar[str] = "attachment"
    leaves: ClassVar[int] = 1
    depth: ClassVar[int] = 1


@dataclass(frozen=True, slots=True)
class IsFlagged:
    """`is:flagged`: the follow-up flag is set (flagged, not complete)."""

    key: ClassVar[str] = "is"
    value: ClassVar[str] = "flagged"
    leaves: ClassVar[int] = 1
    depth: ClassVar[int] = 1


@dataclass(frozen=True, slots=True)
class IsRead:
    """`is:read`: the message has been read."""

    key: ClassVar[str] = "is"
    value: ClassVar[str] = "read"
    leaves: ClassVar[int] = 1
    depth: ClassVar[int] = 1


@dataclass(frozen=True, slots=True)
class IsUnread:
    """`is:unread`: the message has not been read (exactly `NOT is:read`)."""

    key: ClassVar[str] = "is"
    value: ClassVar[str] = "unread"
    leaves: ClassVar[int] = 1
    depth: ClassVar[int] = 1


Leaf = (
    Category
    | After
    | Before
    | From
    | To
    | Cc
    | Subject
    | Importance
    | HasAttachment
    | IsFlagged
    | IsRead
    | IsUnread
)
LEAF_TYPES = (
    Category,
    After,
    Before,
    From,
    To,
    Cc,
    Subject,
    Importance,
    HasAttachment,
    IsFlagged,
    IsRead,
    IsUnread,
)


def _check_size(node: And | Or | Not, children: tuple[object, ...]) -> None:
    for child in children:
        if not isinstance(child, NODE_TYPES) or isinstance(child, MatchAll):
            raise FilterValueError(
                f"{type(node).__name__} cannot contain {child!r}",
                expected="filter nodes (MatchAll only at the top)",
            )
    leaves = sum(c.leaves for c in children)  # type: ignore[union-attr]
    depth = 1 + max(c.depth for c in children)  # type: ignore[union-attr]
    if leaves > MAX_LEAVES:
        raise FilterLimitError(
            f"the filter has more than {MAX_LEAVES} terms", expected=f"at most {MAX_LEAVES}"
        )
    if depth > MAX_DEPTH:
        raise FilterLimitError(
            f"the filter nests deeper than {MAX_DEPTH} levels",
            expected=f"at most {MAX_DEPTH} levels of AND/OR/NOT",
        )
    object.__setattr__(node, "leaves", leaves)
    object.__setattr__(node, "depth", depth)


@dataclass(frozen=True, slots=True)
class And:
    """All of two or more filters."""

    children: tuple[Filter, ...]
    leaves: int = field(init=False, compare=False, repr=False)
    depth: int = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "children", tuple(self.children))
        if len(self.children) < 2:
            raise FilterValueError("AND needs at least two filters", expected="two or more filters")
        _check_size(self, self.children)


@dataclass(frozen=True, slots=True)
class Or:
    """Any of two or more filters."""

    children: tuple[Filter, ...]
    leaves: int = field(init=False, compare=False, repr=False)
    depth: int = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "children", tuple(self.children))
        if len(self.children) < 2:
            raise FilterValueError("OR needs at least two filters", expected="two or more filters")
        _check_size(self, self.children)


@dataclass(frozen=True, slots=True)
class Not:
    """The opposite of one filter."""

    child: Filter
    leaves: int = field(init=False, compare=False, repr=False)
    depth: int = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        _check_size(self, (self.child,))


@dataclass(frozen=True, slots=True)
class MatchAll:
    """The empty filter (`""`, `{}`, None): every message matches."""

    leaves: ClassVar[int] = 0
    depth: ClassVar[int] = 0


Filter = Leaf | And | Or | Not | MatchAll
NODE_TYPES = (*LEAF_TYPES, And, Or, Not, MatchAll)

# The vocabulary both spellings share. Keys and the fixed values are matched case-insensitively.
FLAG_LEAVES: dict[str, dict[str, Leaf]] = {
    "has": {"attachment": HasAttachment()},
    "is": {"flagged": IsFlagged(), "read": IsRead(), "unread": IsUnread()},
}
KEYS = ("category", "after", "before", "from", "to", "cc", "subject", "importance", "has", "is")


def parse_day(key: str, raw: str) -> date:
    """A `YYYY/mm/dd` or `YYYY-MM-DD` date; impossible dates such as 2024/02/30 are refused."""
    found = _DATE.fullmatch(raw)
    if not found:
        raise FilterValueError(
            f"{key}: {_shown(raw)} is not a date", key=key, expected="a date as YYYY/mm/dd"
        )
    year, _, month, day = found.groups()
    try:
        return date(int(year), int(month), int(day))
    except ValueError as why:
        raise FilterValueError(
            f"{key}: {raw} is not a real date ({why})", key=key, expected="a date as YYYY/mm/dd"
        ) from None


def make_leaf(key: str, raw: str) -> Leaf:
    """The leaf that `key:raw` spells, in either spelling; a `FilterValueError` names what was wrong."""
    name = key.lower()
    if name == "category":
        return Category(raw)
    if name == "after":
        return After(parse_day(name, raw))
    if name == "before":
        return Before(parse_day(name, raw))
    if name == "from":
        return From(raw)
    if name == "to":
        return To(raw)
    if name == "cc":
        return Cc(raw)
    if name == "subject":
        return Subject(raw)
    if name == "importance":
        return Importance(raw.lower())
    if name in FLAG_LEAVES:
        choices = FLAG_LEAVES[name]
        leaf = choices.get(raw.lower())
        if leaf is None:
            raise FilterValueError(
                f"{name}: {_shown(raw)} is not something a message can be",
                key=name,
                expected=" or ".join(f"{name}:{v}" for v in choices),
                suggestion=_nearest(raw.lower(), [f"{name}:{v}" for v in choices], prefix=f"{name}:"),
            )
        return leaf
    raise FilterValueError(
        f"unknown key {key!r}",
        key=key,
        expected="one of " + ", ".join(KEYS),
        suggestion=_nearest(name, KEYS),
    )


def _nearest(word: str, choices: tuple[str, ...] | list[str], prefix: str = "") -> str | None:
    close = difflib.get_close_matches(prefix + word, choices, n=1, cutoff=0.5)
    return repr(close[0]) if close else None
