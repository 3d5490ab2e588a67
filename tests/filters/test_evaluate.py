"""The local evaluator: the README's semantics table, UTC date boundaries, and dict/MessageFacts agreement."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given

import filters
from filters import MessageFacts
from tests.filters.strategies import graph_messages, trees

BASE = {
    "id": "AAMkADhMGAAA=",
    "receivedDateTime": "2024-01-07T00:00:00Z",
    "categories": ["Personal", "Team A"],
    "from": {"emailAddress": {"name": "Adele Vance", "address": "AdeleV@Contoso.OnMicrosoft.com"}},
    "toRecipients": [
        {"emailAddress": {"name": "Alex Wilber", "address": "AlexW@contoso.com"}},
        {"emailAddress": {"name": "Megan", "address": "megan@contoso.com"}},
    ],
    "ccRecipients": [{"emailAddress": {"name": "Lee", "address": "lee@contoso.com"}}],
    "subject": "Quarterly Report: Q4",
    "importance": "high",
    "isRead": False,
    "flag": {"flagStatus": "flagged"},
    "hasAttachments": True,
}

# (filter, changes to BASE, expected). This is the semantics table of the README, row by row.
TABLE = [
    ("category:personal", {}, True),  # case-insensitive
    ('category:"TEAM A"', {}, True),
    ("category:Team", {}, False),  # whole names, not substrings
    ("category:Personal", {"categories": []}, False),
    ("category:équipe", {"categories": ["ÉQUIPE"]}, True),  # Unicode case folding
    ("category:straße", {"categories": ["STRASSE"]}, True),  # full folding, not just lower()
    ("after:2024/01/07", {"receivedDateTime": "2024-01-07T00:00:00Z"}, True),  # at 00:00:00Z: kept
    ("after:2024/01/07", {"receivedDateTime": "2024-01-06T23:59:59Z"}, False),  # a second before: not
    ("after:2024/01/07", {"receivedDateTime": "2024-01-07T01:00:00+02:00"}, False),  # 23:00Z the day before
    ("after:2024/01/07", {"receivedDateTime": "2024-01-06T23:30:00-01:00"}, True),  # 00:30Z on the day
    ("after:2024/01/07", {"receivedDateTime": "2024-01-07T00:00:00.0000001Z"}, True),
    ("before:2024/01/07", {"receivedDateTime": "2024-01-06T23:59:59Z"}, True),
    (
        "before:2024/01/07",
        {"receivedDateTime": "2024-01-07T00:00:00Z"},
        False,
    ),  # before means strictly before
    ("after:2024/01/07 before:2024/01/08", {"receivedDateTime": "2024-01-07T23:59:59Z"}, True),  # one day
    ("after:2024/01/07 before:2024/01/07", {}, False),  # an empty range
    ("after:2024/01/07", {"receivedDateTime": None}, False),
    ("NOT after:2024/01/07", {"receivedDateTime": None}, True),
    ("from:adelev@contoso.onmicrosoft.com", {}, True),
    ("from:adele@contoso.onmicrosoft.com", {}, False),  # whole addresses
    ("from:adelev@contoso.onmicrosoft.com", {"from": None}, False),  # drafts have no sender
    ("to:megan@CONTOSO.com", {}, True),  # any To recipient
    ("to:lee@contoso.com", {}, False),  # Cc is not To
    ("cc:lee@contoso.com", {}, True),
    ("cc:megan@contoso.com", {}, False),
    ("to:megan@contoso.com", {"toRecipients": []}, False),
    ("subject:report", {}, True),  # substring, case-insensitive
    ('subject:"report: q4"', {}, True),
    ("subject:Annual", {}, False),
    ("subject:report", {"subject": None}, False),
    ("importance:high", {}, True),
    ("importance:normal", {}, False),
    ("importance:low", {"importance": "Low"}, True),
    ("has:attachment", {}, True),
    ("has:attachment", {"hasAttachments": False}, False),
    ("is:flagged", {}, True),
    ("is:flagged", {"flag": {"flagStatus": "complete"}}, False),  # completed is no longer flagged
    ("is:flagged", {"flag": {"flagStatus": "notFlagged"}}, False),
    ("is:read", {}, False),
    ("is:unread", {}, True),
    ("is:read", {"isRead": True}, True),
    ("is:unread", {"isRead": True}, False),
    ("NOT is:read", {}, True),
    ("category:nope OR is:flagged", {}, True),
    ("category:nope AND is:flagged", {}, False),
    ("NOT (category:nope OR is:read)", {}, True),
    ("", {}, True),  # the empty filter matches everything
]


@pytest.mark.parametrize(("text", "changes", "expected"), TABLE)
def test_semantics_table(text: str, changes: dict, expected: bool) -> None:
    message = {**BASE, **changes}
    tree = filters.parse(text)
    assert filters.matches(tree, message) is expected
    assert filters.matches(tree, MessageFacts.from_graph(message)) is expected
    assert filters.compile(tree)(message) is expected


def test_absent_properties_read_as_empty() -> None:
    # A message with only an id (nothing selected) matches no term, and so every NOT of one.
    bare = {"id": "x"}
    for text in [
        "category:a",
        "after:2024/01/01",
        "from:a@b.c",
        "to:a@b.c",
        "subject:x",
        "importance:normal",
        "has:attachment",
        "is:flagged",
        "is:read",
    ]:
        assert not filters.matches(filters.parse(text), bare), text
        assert filters.matches(filters.parse(f"NOT {text}"), bare), text
    assert filters.matches(filters.parse("is:unread"), bare)


def test_message_facts_with_any_timezone() -> None:
    tree = filters.parse("after:2024/01/07")
    tokyo = timezone(timedelta(hours=9))
    assert filters.matches(tree, MessageFacts(received_at=datetime(2024, 1, 7, 9, 0, tzinfo=tokyo)))
    assert not filters.matches(tree, MessageFacts(received_at=datetime(2024, 1, 7, 8, 59, 59, tzinfo=tokyo)))
    with pytest.raises(ValueError, match="must be timezone-aware"):
        MessageFacts(received_at=datetime(2024, 1, 7))


def test_message_facts_from_graph() -> None:
    facts = MessageFacts.from_graph(BASE)
    assert facts == MessageFacts(
        received_at=datetime(2024, 1, 7, tzinfo=UTC),
        categories=("Personal", "Team A"),
        sender="AdeleV@Contoso.OnMicrosoft.com",
        to=("AlexW@contoso.com", "megan@contoso.com"),
        cc=("lee@contoso.com",),
        subject="Quarterly Report: Q4",
        importance="high",
        is_read=False,
        is_flagged=True,
        has_attachments=True,
    )
    assert MessageFacts(categories=["a"]).categories == ("a",)
    with pytest.raises(ValueError, match="sequence of strings"):
        MessageFacts(to="a@b.c")  # type: ignore[arg-type]


def test_compile_is_cached_and_rejects_foreign_messages() -> None:
    tree = filters.parse("is:read")
    assert filters.compile(tree) is filters.compile(filters.parse("is:read"))
    with pytest.raises(TypeError, match=r"a Graph message dict or filters\.MessageFacts"):
        filters.compile(tree)(["not", "a", "message"])


@given(trees, graph_messages())
def test_graph_dicts_and_message_facts_agree(tree: filters.Filter, message: dict) -> None:
    predicate = filters.compile(tree)
    assert predicate.graph(message) == predicate.facts(MessageFacts.from_graph(message))


@given(trees, graph_messages())
def test_the_combinators_mean_what_they_say(tree: filters.Filter, message: dict) -> None:
    if isinstance(tree, filters.Not):
        assert filters.matches(tree, message) == (not filters.matches(tree.child, message))
    elif isinstance(tree, filters.And):
        assert filters.matches(tree, message) == all(filters.matches(c, message) for c in tree.children)
    elif isinstance(tree, filters.Or):
        assert filters.matches(tree, message) == any(filters.matches(c, message) for c in tree.children)
    assert filters.matches(filters.IsUnread(), message) == filters.matches(
        filters.Not(filters.IsRead()), message
    )


def test_required_fields() -> None:
    assert filters.required_fields(filters.MatchAll()) == ()
    tree = filters.parse(
        "after:2024/01/01 before:2024/02/01 (category:a OR NOT from:a@b.c) is:unread is:flagged"
    )
    assert filters.required_fields(tree) == ("categories", "receivedDateTime", "from", "isRead", "flag")
    everything = filters.parse(
        "category:a after:2024/01/01 from:a@b.c to:a@b.c cc:a@b.c subject:x importance:low is:read is:flagged"
        " has:attachment"
    )
    assert filters.required_fields(everything) == (
        "categories",
        "receivedDateTime",
        "from",
        "toRecipients",
        "ccRecipients",
        "subject",
        "importance",
        "isRead",
        "flag",
        "hasAttachments",
    )


@given(trees, graph_messages())
def test_required_fields_are_all_the_evaluator_reads(tree: filters.Filter, message: dict) -> None:
    selected = {k: v for k, v in message.items() if k in filters.required_fields(tree)}
    assert filters.matches(tree, selected) == filters.matches(tree, message)
