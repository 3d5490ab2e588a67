"""$search on messages: the subset of KQL that Graph documents for mail, over Graph-shaped message dicts.

    compile_search('"pizza"') -> Callable[[dict], bool]

The value must be wrapped in double quotes, as Graph requires. Inside: words and ``'single-quoted
phrases'`` match (case-insensitively, as substrings) the sender, the subject and the body text; terms
are ANDed unless joined by ``OR``; ``NOT`` negates; ``property:value`` restricts a term to ``from``, ``to``,
``cc``, ``bcc``, ``participants``, ``recipients``, ``subject``, ``body``, ``attachment`` (names),
``category``, ``importance``, ``hasAttachment(s)``, ``kind`` (``email``/``meetings``), and the dates
``received`` / ``sent`` (``M/D/YYYY`` or ``YYYY-MM-DD``; ``=``, ``>=``, ``<=``, ``>``, ``<`` or an ``A..B``
range).
The dict's ``body.content`` should be the text form of the body; ``attachments`` (a list of dicts with
``name``), when present, serves ``attachment:``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from sandbox._errors import ODataError

Matcher = Callable[[dict], bool]
_TOKEN = re.compile(r"\s*(\(|\)|[A-Za-z]+(?:>=|<=|:|=|>|<)(?:'[^']*'|[^\s()]+)|'[^']*'|[^\s()]+)")
_DATE_PROPS = {"received": "receivedDateTime", "sent": "sentDateTime"}


def _addresses(message: dict, *keys: str) -> list[str]:
    out = []
    for key in keys:
        value = message.get(key)
        for recipient in value if isinstance(value, list) else [value] if value else []:
            email = (recipient or {}).get("emailAddress") or {}
            out += [email.get("name") or "", email.get("address") or ""]
    return out


_FIELDS: dict[str, Callable[[dict], list[str]]] = {
    "from": lambda m: _addresses(m, "from", "sender"),
    "to": lambda m: _addresses(m, "toRecipients"),
    "cc": lambda m: _addresses(m, "ccRecipients"),
    "bcc": lambda m: _addresses(m, "bccRecipients"),
    "participants": lambda m: _addresses(m, "from", "toRecipients", "ccRecipients", "bccRecipients"),
    "recipients": lambda m: _addresses(m, "toRecipients", "ccRecipients", "bccRecipients"),
    "subject": lambda m: [m.get("subject") or ""],
    "body": lambda m: [(m.get("body") or {}).get("content") or ""],
    "attachment": lambda m: [a.get("name") or "" for a in m.get("attachments") or []],
    "category": lambda m: list(m.get("categories") or []),
    "importance": lambda m: [m.get("importance") or ""],
}
_FREE_TEXT = ("from", "subject", "body")


@lru_cache(maxsize=256)
def compile_search(text: str) -> Matcher:
    """Compile a $search value (with its double quotes) into a predicate over message dicts."""
    stripped = text.strip()
    if len(stripped) < 2 or not (stripped.startswith('"') and stripped.endswith('"')):
        raise ODataError(
            f"Syntax error: the $search value {text!r} must be enclosed in double quotes.", position=0
        )
    body = stripped[1:-1]
    tokens = []
    position = 0
    while position < len(body):
        match = _TOKEN.match(body, position)
        if match is None or not match.group(1):
            break
        tokens.append((match.group(1), match.start(1) + 1))
        position = match.end()
    if not tokens:
        raise ODataError("Syntax error: the $search value is empty.", position=1)
    parser = _Parser(tokens)
    matcher = parser.or_()
    if parser.index != len(tokens):
        token, at = tokens[parser.index]
        raise ODataError(f"Syntax error: unexpected '{token}' at position {at} in $search.", position=at)
    return matcher


class _Parser:
    def __init__(self, tokens: list[tuple[str, int]]) -> None:
        self.tokens = tokens
        self.index = 0

    def peek(self) -> str | None:
        return self.tokens[self.index][0] if self.index < len(self.tokens) else None

    def or_(self) -> Matcher:
        parts = [self.and_()]
        while self.peek() == "OR":
            self.index += 1
            parts.append(self.and_())
        return parts[0] if len(parts) == 1 else (lambda m: any(p(m) for p in parts))

    def and_(self) -> Matcher:
        parts = [self.unary()]
        while self.peek() not in {None, "OR", ")"}:
            if self.peek() == "AND":
                self.index += 1
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else (lambda m: all(p(m) for p in parts))

    def unary(self) -> Matcher:
        word = self.peek()
        if word is None:
            raise ODataError("Syntax error: the $search value ends where a term was expected.")
        at = self.tokens[self.index][1]
        self.index += 1
        if word == "NOT":
            inner = self.unary()
            return lambda m: not inner(m)
        if word == "(":
            inner = self.or_()
            if self.peek() != ")":
                raise ODataError(
                    f"Syntax error: '(' at position {at} in $search is never closed.", position=at
                )
            self.index += 1
            return inner
        if word in {")", "AND", "OR"}:
            raise ODataError(f"Syntax error: unexpected '{word}' at position {at} in $search.", position=at)
        return _term(word, at)


def _term(token: str, at: int) -> Matcher:
    match = re.fullmatch(r"([A-Za-z]+)(>=|<=|:|=|>|<)(.*)", token)
    if match is None:
        return _text_matcher(_FREE_TEXT, _unquote(token))
    prop, op, raw = match.group(1).casefold(), match.group(2), _unquote(match.group(3))
    if prop in _DATE_PROPS:
        return _date_matcher(_DATE_PROPS[prop], op, raw, at)
    if prop in {"hasattachment", "hasattachments"}:
        wanted = raw.casefold() == "true"
        return lambda m: bool(m.get("hasAttachments")) == wanted
    if prop == "kind":
        meetings = raw.casefold() in {"meetings", "meeting"}
        return lambda m: ("eventMessage" in (m.get("@odata.type") or "")) == meetings
    if prop in _FIELDS and op == ":":
        return _text_matcher((prop,), raw)
    # KQL treats an unknown property restriction as plain text.
    return _text_matcher(_FREE_TEXT, _unquote(token))


def _unquote(value: str) -> str:
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == "'" else value


def _text_matcher(fields: tuple[str, ...], needle: str) -> Matcher:
    folded = needle.casefold()
    getters = [_FIELDS[f] for f in fields]
    return lambda m: any(folded in value.casefold() for get in getters for value in get(m))


def _date_matcher(key: str, op: str, raw: str, at: int) -> Matcher:
    low_text, dots, high_text = raw.partition("..")
    low = _day(low_text, at)
    if dots:
        high = _day(high_text, at) + dt.timedelta(days=1)
        return lambda m: _within(m.get(key), low, high)
    next_day = low + dt.timedelta(days=1)
    bounds: dict[str, tuple[Any, Any]] = {
        ":": (low, next_day),
        "=": (low, next_day),
        ">=": (low, None),
        ">": (next_day, None),
        "<": (None, low),
        "<=": (None, next_day),
    }
    start, end = bounds[op]
    return lambda m: _within(m.get(key), start, end)


def _day(text: str, at: int) -> dt.datetime:
    for pattern in ("%m/%d/%Y", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(text, pattern).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
    raise ODataError(
        f"Syntax error: '{text}' at position {at} in $search is not a date (M/D/YYYY).", position=at
    )


def _within(value: Any, start: dt.datetime | None, end: dt.datetime | None) -> bool:
    if not value:
        return False
    stamp = dt.datetime.fromisoformat(value)
    return (start is None or stamp >= start) and (end is None or stamp < end)
