"""The sandbox's own reading of Graph's $filter, $orderby and $select, and of KQL $search (pure functions)."""

import pytest

from sandbox import ODataError, compile_search, filter_matches
from sandbox._odata import filter_properties, parse_orderby, parse_select

MESSAGE = {
    "subject": "Let's meet for lunch?",
    "isRead": False,
    "hasAttachments": True,
    "importance": "high",
    "categories": ["Red category", "Team A"],
    "receivedDateTime": "2024-02-01T10:00:00Z",
    "from": {"emailAddress": {"name": "Pat O'Brien", "address": "Pat.OBrien@Example.com"}},
    "sender": {"emailAddress": {"name": "Pat O'Brien", "address": "Pat.OBrien@Example.com"}},
    "toRecipients": [{"emailAddress": {"name": "Adele", "address": "adele@contoso.test"}}],
    "ccRecipients": [],
    "flag": {"flagStatus": "flagged"},
    "body": {"contentType": "text", "content": "Bring the pizza menu."},
    "attachments": [{"name": "menu.pdf"}],
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("isRead eq false", True),
        ("isRead eq true", False),
        ("IsRead eq false", True),
        ("hasAttachments eq true and importance eq 'HIGH'", True),
        ("subject eq 'let''s meet for lunch?'", True),
        ("startswith(subject,'LET')", True),
        ("contains(subject,'lunch')", True),
        ("endswith(subject,'dinner?')", False),
        ("receivedDateTime ge 2024-02-01T00:00:00Z and receivedDateTime lt 2024-02-02", True),
        ("receivedDateTime gt 2024-02-01T10:00:00.0000000Z", False),
        ("receivedDateTime ge 2024-02-01T11:00:00+01:00", True),
        ("categories/any(c:c eq 'team a')", True),
        ("categories/any(c:c eq 'Blue category')", False),
        ("categories/all(c:c ne 'Personal')", True),
        ("categories/any()", True),
        ("from/emailAddress/address eq 'pat.obrien@example.com'", True),
        ("toRecipients/any(r:r/emailAddress/address eq 'adele@contoso.test')", True),
        ("ccRecipients/any()", False),
        ("flag/flagStatus eq 'flagged'", True),
        ("not (isRead eq true) and not(importance eq 'low')", True),
        ("importance in ('low', 'normal')", False),
        ("isRead eq true or importance eq 'high'", True),
        ("sender ne null", True),
        ("replyTo eq null", True),
        ("inferenceClassification eq 'focused'", False),
    ],
)
def test_filter_semantics(text: str, expected: bool) -> None:
    assert filter_matches(text, MESSAGE) is expected


@pytest.mark.parametrize(
    ("text", "code", "position", "words"),
    [
        ("isRead eq", "BadRequest", 9, "expected"),
        ("isRead eq false and", "BadRequest", 19, "expected"),
        ("receivedDateTime ge '2024-01-01'", "BadRequest", 17, "incompatible types"),
        ("nosuch eq 1", "BadRequest", 0, "Could not find a property named 'nosuch'"),
        ("contains(body, 'x')", "ErrorInvalidUrlQueryFilter", 9, "does not support filtering"),
        ("categories eq 'x'", "BadRequest", 11, "only be compared with null"),
        ("isRead gt true", "BadRequest", 7, "does not apply"),
        ("frobnicate(subject)", "BadRequest", 0, "unknown function"),
        ("subject", "BadRequest", None, "not a condition"),
    ],
)
def test_filter_errors_name_the_code_and_position(
    text: str, code: str, position: int | None, words: str
) -> None:
    with pytest.raises(ODataError) as caught:
        filter_matches(text, MESSAGE)
    assert caught.value.code == code
    assert caught.value.position == position
    assert words in caught.value.message


def test_filter_properties_in_order_of_appearance() -> None:
    text = (
        "receivedDateTime ge 2024-01-01 and from/emailAddress/address eq 'a@b.c' "
        "and receivedDateTime lt 2025-01-01"
    )
    assert filter_properties(text) == ["receiveddatetime", "from/emailaddress/address"]


def test_orderby_and_select_resolve_names_case_insensitively() -> None:
    keys = parse_orderby("ReceivedDateTime desc, from/emailAddress/address")
    assert [(k.path, k.descending) for k in keys] == [
        (("receivedDateTime",), True),
        (("from", "emailAddress", "address"), False),
    ]
    assert parse_select("SUBJECT, from,subject") == ["subject", "from"]
    with pytest.raises(ODataError, match="Could not find a property named 'nope'"):
        parse_select("subject,nope")
    with pytest.raises(ODataError, match="cannot be used in \\$orderby"):
        parse_orderby("categories")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('"pizza"', True),
        ('"PIZZA menu"', True),
        ('"from:pat"', True),
        ('"from:adele"', False),
        ('"to:adele"', True),
        ('"subject:pizza"', False),
        ('"body:pizza"', True),
        ('"attachment:menu"', True),
        ('"hasAttachments:true"', True),
        ('"lunch OR nothing"', True),
        ('"lunch NOT pizza"', False),
        ('"(burger OR pizza) AND lunch"', True),
        ('"received:2/1/2024"', True),
        ('"received>=2024-02-02"', False),
        ('"received:2024-01-01..2024-02-01"', True),
        ('"kind:meetings"', False),
    ],
)
def test_search_semantics(query: str, expected: bool) -> None:
    assert compile_search(query)(MESSAGE) is expected


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("pizza", "double quotes"),
        ('""', "empty"),
        ('"(pizza"', "never closed"),
        ('"received:soon"', "not a date"),
    ],
)
def test_search_errors(query: str, words: str) -> None:
    with pytest.raises(ODataError, match=words):
        compile_search(query)
