"""Hypothesis strategies for filter trees and Graph messages, shared by the filter tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import strategies as st

import filters
from filters import (
    After,
    And,
    Before,
    Category,
    Cc,
    From,
    HasAttachment,
    Importance,
    IsFlagged,
    IsRead,
    IsUnread,
    Not,
    Or,
    Subject,
    To,
)

# Values that try to break out of a text term, a JSON string or an OData literal, beside ordinary ones.
NASTY = [
    "'",
    "''",
    ") or (",
    "%27",
    "\\",
    '"',
    "a b",
    "x:y",
    "AND",
    "or",
    "NOT",
    "(",
    "Équipe",
    "日本",
    "\n",
    " ",
]

# A few category names and addresses that messages and filters share, so that terms actually match.
CATEGORIES = [
    "Personal",
    "personal",
    "Team A",
    "TEAM a",
    "Receipts",
    "It's",
    "Équipe",
    "équipe",
    "ÉQUIPE",
    "日本",
]
ADDRESSES = [
    "alice@example.com",
    "Alice@Example.COM",
    "bob@example.org",
    "o'neil@example.com",
    "zoë@exämple.de",
]
DAYS = [date(2024, 1, 6), date(2024, 1, 7), date(2024, 1, 8), date(2024, 2, 29), date(2023, 12, 31)]

text_values = st.one_of(st.sampled_from(NASTY + CATEGORIES), st.text(min_size=1, max_size=12))
addresses = st.one_of(
    st.sampled_from(ADDRESSES),
    st.from_regex(r"[^\s@]{1,8}@[^\s@]{1,8}", fullmatch=True),
)
days = st.one_of(st.sampled_from(DAYS), st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 31)))

leaves = st.one_of(
    st.builds(Category, text_values),
    st.builds(After, days),
    st.builds(Before, days),
    st.builds(From, addresses),
    st.builds(To, addresses),
    st.builds(Cc, addresses),
    st.builds(Subject, text_values),
    st.builds(Importance, st.sampled_from(filters._tree.IMPORTANCE_LEVELS)),
    st.just(HasAttachment()),
    st.just(IsFlagged()),
    st.just(IsRead()),
    st.just(IsUnread()),
)


def _extend(children: st.SearchStrategy) -> st.SearchStrategy:
    many = st.lists(children, min_size=2, max_size=4).map(tuple)
    return st.one_of(many.map(And), many.map(Or), children.map(Not))


# Small trees (depth well under the limit) that use every node type.
trees = st.recursive(leaves, _extend, max_leaves=12)

# Trees shaped like real filters: a conjunction of leaves, NOTs of leaves and small ORs, where the planner
# has the most to decide.
conjunctions = (
    st.lists(
        st.one_of(leaves, leaves.map(Not), st.lists(leaves, min_size=2, max_size=3).map(tuple).map(Or)),
        min_size=2,
        max_size=8,
    )
    .map(tuple)
    .map(And)
)


def _recipients(addrs: list[str]) -> list[dict]:
    return [{"emailAddress": {"name": a.split("@")[0], "address": a}} for a in addrs]


_moments = st.one_of(
    # Around the DAYS boundaries, to the second.
    st.tuples(st.sampled_from(DAYS), st.integers(-2, 2)).map(
        lambda p: datetime(p[0].year, p[0].month, p[0].day, tzinfo=UTC) + timedelta(seconds=p[1])
    ),
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
)


@st.composite
def graph_messages(draw: st.DrawFn) -> dict:
    """A Graph message dict (the properties filters read), drawn to hit the values filters use."""
    moment = draw(_moments).replace(microsecond=0)
    return {
        "id": "AAMk" + draw(st.text("abcdef0123456789", min_size=6, max_size=6)),
        "receivedDateTime": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "categories": draw(
            st.lists(st.one_of(st.sampled_from(CATEGORIES + NASTY), st.text(max_size=6)), max_size=3)
        ),
        "from": draw(
            st.one_of(
                st.none(),
                addresses.map(lambda a: {"emailAddress": {"name": "x", "address": a}}),
            )
        ),
        "toRecipients": _recipients(draw(st.lists(addresses, max_size=3))),
        "ccRecipients": _recipients(draw(st.lists(addresses, max_size=2))),
        "subject": draw(st.one_of(st.sampled_from(NASTY + CATEGORIES), st.text(max_size=20))),
        "importance": draw(st.sampled_from(["low", "normal", "high"])),
        "isRead": draw(st.booleans()),
        "flag": {"flagStatus": draw(st.sampled_from(["notFlagged", "flagged", "complete"]))},
        "hasAttachments": draw(st.booleans()),
    }


def _case_variant(draw: st.DrawFn, value: str) -> str:
    return draw(st.sampled_from([value, value.upper(), value.lower(), value.swapcase()]))


@st.composite
def message_and_filter(draw: st.DrawFn) -> tuple[dict, filters.Filter]:
    """A message and a conjunction built from its own values, so that most terms (and often all) hold."""
    message = draw(graph_messages())
    received = datetime.fromisoformat(message["receivedDateTime"]).date()
    near = st.integers(-1, 1).map(lambda d: received + timedelta(days=d))
    likely: list[st.SearchStrategy] = [
        near.map(After),
        near.map(Before),
        st.just(IsRead() if message["isRead"] else IsUnread()),
        st.just(Not(IsUnread()) if message["isRead"] else Not(IsRead())),
        st.just(HasAttachment() if message["hasAttachments"] else Not(HasAttachment())),
        st.just(Importance(message["importance"])),
    ]
    if message["flag"]["flagStatus"] == "flagged":
        likely.append(st.just(IsFlagged()))
    names = [c for c in message["categories"] if c]
    if names:
        likely.append(st.sampled_from(names).map(lambda c: Category(_case_variant(draw, c))))
    sender = (message["from"] or {}).get("emailAddress", {}).get("address")
    if sender:
        likely.append(st.just(From(_case_variant(draw, sender))))
    terms = draw(st.lists(st.one_of(*likely), min_size=1, max_size=5))
    terms += draw(st.lists(leaves, max_size=1))
    return message, (terms[0] if len(terms) == 1 else And(tuple(terms)))
