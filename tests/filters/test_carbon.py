"""The Carbon JSON spelling: the examples in Carbon's Outlook docs, Mailroom's additions, and every error."""

import json
from datetime import date

import pytest

import filters
from filters import After, And, Before, Category, IsFlagged, IsUnread, Not, Or
from tests.filters.carbon_examples import (
    AFTER_AND_CATEGORIES,
    CATEGORY,
    FOLDER_AND_CATEGORY,
    OUTLOOK_SYNC_EXAMPLES,
)

DOCUMENTED = [
    (CATEGORY, Category("Test")),
    (FOLDER_AND_CATEGORY, Category("Test")),
    (AFTER_AND_CATEGORIES, And((After(date(2024, 1, 7)), Or((Category("Personal"), Category("Test")))))),
]


def test_the_fixture_holds_every_documented_example() -> None:
    assert [body for body, _ in DOCUMENTED] == list(OUTLOOK_SYNC_EXAMPLES)


@pytest.mark.parametrize(("body", "expected"), DOCUMENTED)
def test_the_outlook_docs_examples_parse_as_documented(body: str, expected: filters.Filter) -> None:
    # Each example is a request body; the filter is its "filters" member, cut out as text so that it reaches
    # parse() as a JSON string. The third keeps its trailing comma: Carbon's docs were written loosely.
    tree = filters.parse(_filters_member(body))
    assert tree == expected
    assert filters.parse(filters.to_carbon(tree)) == expected
    assert filters.parse(filters.to_text(tree)) == expected


def test_the_strict_json_examples_also_parse_as_dicts() -> None:
    # What an API client sends after its JSON library has read the body: the member as a dict.
    for body in (CATEGORY, FOLDER_AND_CATEGORY):
        request = json.loads(body)
        assert filters.parse(request["filters"]) == Category("Test")
    assert json.loads(FOLDER_AND_CATEGORY)["folder"] == "Folder Name"
    with pytest.raises(json.JSONDecodeError):
        json.loads(AFTER_AND_CATEGORIES)


def _filters_member(body: str) -> str:
    """The text of the `filters` member of a request body, cut out so it reaches parse() as a JSON string."""
    start = body.index("{", body.index('"filters"'))
    depth = 0
    for end, char in enumerate(body[start:], start):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth == 0:
            return body[start : end + 1]
    raise AssertionError("unbalanced example")


def test_sdk_style_dicts() -> None:
    # What carbon-python-sdk users pass: sync_outlook(filters={"key": "category", "value": "Test"}, ...).
    assert filters.parse({"key": "category", "value": "Test"}) == Category("Test")
    assert filters.parse({"key": "is", "value": "flagged"}) == IsFlagged()
    assert filters.parse({"key": "after", "value": "2023/12/31"}) == After(date(2023, 12, 31))
    assert filters.parse(
        {"AND": [{"key": "after", "value": "2024/01/07"}, {"key": "before", "value": "2024/02/01"}]}
    ) == And((After(date(2024, 1, 7)), Before(date(2024, 2, 1))))


def test_mailroom_additions_in_carbon_json() -> None:
    tree = filters.parse("is:unread AND NOT has:attachment AND to:a@example.com AND importance:high")
    assert filters.to_carbon(tree) == {
        "AND": [
            {"key": "is", "value": "unread"},
            {"NOT": {"key": "has", "value": "attachment"}},
            {"key": "to", "value": "a@example.com"},
            {"key": "importance", "value": "high"},
        ]
    }
    assert filters.parse({"not": {"key": "IS", "value": "Unread"}}) == Not(IsUnread())
    assert filters.parse(
        {"or": [{"key": "is", "value": "read"}, {"key": "is", "value": "flagged"}]}
    ).children[1] == (IsFlagged())


def test_deeper_nesting_than_carbon_allowed() -> None:
    deep = {
        "AND": [
            {
                "OR": [
                    {"AND": [{"key": "is", "value": "flagged"}, {"key": "is", "value": "unread"}]},
                    {"key": "category", "value": "x"},
                ]
            },
            {"key": "is", "value": "read"},
        ]
    }
    assert filters.to_carbon(filters.parse(deep)) == deep


ERRORS = [
    ([], filters.FilterSyntaxError, "a filter cannot be a list", None),
    ("[]", filters.FilterSyntaxError, "an empty list is not a filter at $", None),
    ('[{"key": "is", "value": "read"}]', filters.FilterSyntaxError, "a list is not a filter at $", None),
    ({"key": "category"}, filters.FilterSyntaxError, "a term without 'value' at $", None),
    ({"value": "x"}, filters.FilterSyntaxError, "a term without 'key' at $", None),
    (
        {"key": "is", "value": "read", "extra": 1},
        filters.FilterSyntaxError,
        "unexpected member 'extra'",
        None,
    ),
    ({"ANDD": []}, filters.FilterSyntaxError, "unknown combinator 'ANDD' at $; did you mean 'AND'?", None),
    ({"AND": [], "OR": []}, filters.FilterSyntaxError, "an object with 'AND', 'OR' is not a filter", None),
    ({"AND": []}, filters.FilterSyntaxError, "AND holds an empty list at $.AND", None),
    ({"OR": {"key": "is", "value": "read"}}, filters.FilterSyntaxError, "OR holds an object at $.OR", None),
    (
        {"NOT": [{"key": "is", "value": "read"}]},
        filters.FilterSyntaxError,
        "NOT takes one filter, not a list",
        None,
    ),
    (
        {"AND": [{"key": "is", "value": "read"}, {}]},
        filters.FilterSyntaxError,
        "an object with nothing",
        "$.AND[1]",
    ),
    (
        {"AND": [{"key": "is", "value": "read"}, "is:flagged"]},
        filters.FilterSyntaxError,
        "the string 'is:flagged' is not a filter at $.AND[1]",
        "$.AND[1]",
    ),
    ({"key": 3, "value": "x"}, filters.FilterValueError, "the key is the number 3", "$.key"),
    (
        {"key": "is", "value": True},
        filters.FilterValueError,
        "the value of 'is' is the boolean true",
        "$.value",
    ),
    (
        {"key": "catgory", "value": "x"},
        filters.FilterValueError,
        "unknown key 'catgory' at $.key; did you mean",
        "$.key",
    ),
    (
        {"OR": [{"key": "is", "value": "read"}, {"key": "after", "value": "2024/02/30"}]},
        filters.FilterValueError,
        "after: 2024/02/30 is not a real date",
        "$.OR[1].value",
    ),
    (
        {"NOT": {"key": "from", "value": "nobody"}},
        filters.FilterValueError,
        "is not an email address",
        "$.NOT.value",
    ),
]


@pytest.mark.parametrize(("value", "kind", "said", "path"), ERRORS)
def test_every_shape_error_names_its_path(value: object, kind: type, said: str, path: str | None) -> None:
    with pytest.raises(kind) as caught:
        filters.parse(value)  # type: ignore[arg-type]
    assert said in str(caught.value)
    if path is not None:
        assert caught.value.path == path


def test_json_syntax_errors_point_into_the_text() -> None:
    text = '{"key": "is", "value": "read"'
    with pytest.raises(filters.FilterSyntaxError) as caught:
        filters.parse(text)
    assert "the filter is not valid JSON" in str(caught.value)
    assert caught.value.position == len(text)
    with pytest.raises(filters.FilterSyntaxError, match="the member 'key' appears twice"):
        filters.parse('{"key": "is", "key": "has", "value": "read"}')


def test_trailing_commas_are_forgiven_but_only_outside_strings() -> None:
    assert filters.parse(
        '{"OR": [{"key": "category", "value": "a,]"}, {"key": "is", "value": "read"},]}'
    ) == Or((Category("a,]"), filters.IsRead()))


def test_json_limits() -> None:
    leaf = {"key": "is", "value": "read"}
    with pytest.raises(filters.FilterLimitError, match="more than 256 terms") as caught:
        filters.parse({"OR": [leaf] * 300})
    assert caught.value.path == "$.OR[256]"
    deep: dict = leaf
    for _ in range(40):
        deep = {"NOT": deep}
    with pytest.raises(filters.FilterLimitError, match="nests deeper than 16 levels") as caught:
        filters.parse(deep)
    assert caught.value.path == "$" + ".NOT" * 16
    with pytest.raises(filters.FilterLimitError, match=r"the filter JSON nests too deeply|nests deeper"):
        filters.parse('{"NOT":' * 5000 + "{}" + "}" * 5000)
    with pytest.raises(filters.FilterLimitError, match="bytes long"):
        filters.parse(json.dumps({"OR": [leaf] * 3000}))
