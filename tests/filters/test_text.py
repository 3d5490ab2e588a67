"""The text spelling: every key, operator, quoting and escape, and every error with its message."""

from datetime import date

import pytest

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


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("category:Personal", Category("Personal")),
        ('category:"Team A"', Category("Team A")),
        ("after:2024/01/07", After(date(2024, 1, 7))),
        ("after:2024-01-07", After(date(2024, 1, 7))),
        ("before:2024/02/29", Before(date(2024, 2, 29))),
        ("from:noreply@example.com", From("noreply@example.com")),
        ("to:Alex@Contoso.com", To("Alex@Contoso.com")),
        ("cc:o'neil@example.com", Cc("o'neil@example.com")),
        ("subject:invoice", Subject("invoice")),
        ('subject:"quarterly report"', Subject("quarterly report")),
        ("subject:Re:hello", Subject("Re:hello")),
        ("importance:high", Importance("high")),
        ("importance:LOW", Importance("low")),
        ("has:attachment", HasAttachment()),
        ("is:flagged", IsFlagged()),
        ("is:read", IsRead()),
        ("is:unread", IsUnread()),
        ("IS:Unread", IsUnread()),
        ("Category:Équipe", Category("Équipe")),
        ("category:日本", Category("日本")),
    ],
)
def test_every_key(text: str, tree: filters.Filter) -> None:
    assert filters.parse(text) == tree


A, B, C = Category("a"), Category("b"), Category("c")


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("category:a AND category:b", And((A, B))),
        ("category:a and category:b", And((A, B))),
        ("category:a AnD category:b", And((A, B))),
        ("category:a category:b", And((A, B))),
        ("category:a OR category:b", Or((A, B))),
        ("category:a or category:b", Or((A, B))),
        ("NOT category:a", Not(A)),
        ("not category:a", Not(A)),
        ("NOT NOT category:a", Not(Not(A))),
        ("not(category:a)", Not(A)),
        ("(category:a)", A),
        # AND (written or implied) binds tighter than OR; NOT tighter than both.
        ("category:a category:b OR category:c", Or((And((A, B)), C))),
        ("category:a OR category:b category:c", Or((A, And((B, C))))),
        ("category:a OR category:b AND category:c", Or((A, And((B, C))))),
        ("NOT category:a category:b", And((Not(A), B))),
        ("NOT category:a OR category:b", Or((Not(A), B))),
        ("(category:a OR category:b) category:c", And((Or((A, B)), C))),
        ("NOT (category:a OR category:b)", Not(Or((A, B)))),
        ("category:a\n  AND\tcategory:b", And((A, B))),
        ("  category:a  ", A),
    ],
)
def test_operators_and_precedence(text: str, tree: filters.Filter) -> None:
    assert filters.parse(text) == tree


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('subject:"say \\"hi\\""', 'say "hi"'),
        ('subject:"back\\\\slash"', "back\\slash"),
        ('subject:"(and) or not"', "(and) or not"),
        ('subject:"a:b"', "a:b"),
        ("subject:it's", "it's"),
        ("subject:%27", "%27"),
        ("subject:back\\slash", "back\\slash"),
        ('subject:"multi\nline"', "multi\nline"),
    ],
)
def test_quoting_and_escapes(text: str, value: str) -> None:
    tree = filters.parse(text)
    assert tree == Subject(value)
    assert filters.parse(filters.to_text(tree)) == tree


@pytest.mark.parametrize(
    ("word", "tree"),
    [
        ("order:x", None),  # an unknown key that starts like an operator is still a key
        ("subject:or", Subject("or")),
        ("subject:AND", Subject("AND")),
        ('subject:"NOT"', Subject("NOT")),
    ],
)
def test_operator_words_are_only_operators_on_their_own(word: str, tree: filters.Filter | None) -> None:
    if tree is None:
        with pytest.raises(filters.FilterValueError, match="unknown key 'order'"):
            filters.parse(word)
    else:
        assert filters.parse(word) == tree


def test_canonical_text_quotes_only_when_needed() -> None:
    assert filters.to_text(Subject("plain")) == "subject:plain"
    assert filters.to_text(Subject("two words")) == 'subject:"two words"'
    assert filters.to_text(Subject('say "hi"')) == 'subject:"say \\"hi\\""'
    assert filters.to_text(Subject("a\\b")) == 'subject:"a\\\\b"'
    assert filters.to_text(Subject("(x)")) == 'subject:"(x)"'
    assert (
        filters.to_text(Or((And((A, B)), Not(Or((A, C))))))
        == "(category:a AND category:b) OR NOT (category:a OR category:c)"
    )


# Every error path: (input, the exception type, what the message must say, the 1-based column or None).
ERRORS = [
    (
        "categroy:x",
        filters.FilterValueError,
        "unknown key 'categroy' at column 1; did you mean 'category'?",
        1,
    ),
    ("sender:a@b.c", filters.FilterValueError, "unknown key 'sender'", 1),
    ("is:flaged", filters.FilterValueError, "did you mean 'is:flagged'?", 4),
    ("is:starred", filters.FilterValueError, "Expected is:flagged or is:read or is:unread", 4),
    ("has:attachments", filters.FilterValueError, "did you mean 'has:attachment'?", 5),
    ("importance:urgent", filters.FilterValueError, "Expected low, normal or high", 12),
    (
        "after:2024/02/30",
        filters.FilterValueError,
        "2024/02/30 is not a real date (day is out of range for month)",
        7,
    ),
    ("after:2023/02/29", filters.FilterValueError, "not a real date", 7),
    ("before:2024/13/01", filters.FilterValueError, "month must be in 1..12", 8),
    (
        "after:07/01/2024",
        filters.FilterValueError,
        "is not a date at column 7. Expected a date as YYYY/mm/dd",
        7,
    ),
    ("after:2024/1/7", filters.FilterValueError, "is not a date", 7),
    ("after:2024/01-07", filters.FilterValueError, "is not a date", 7),
    ("after:yesterday", filters.FilterValueError, "is not a date", 7),
    ("from:bob", filters.FilterValueError, "from: 'bob' is not an email address", 6),
    ("to:a@b@c", filters.FilterValueError, "to: 'a@b@c' is not an email address", 4),
    ("from:", filters.FilterValueError, "from: an empty value is not an email address", 6),
    ('category:""', filters.FilterValueError, "category: an empty value is not allowed", 10),
    ("subject:", filters.FilterValueError, "subject: an empty value is not allowed", 9),
    ("invoice", filters.FilterSyntaxError, "'invoice' is not a term at column 1. Expected key:value", 1),
    ("category:a invoice", filters.FilterSyntaxError, "'invoice' is not a term", 12),
    ("from :a@b.c", filters.FilterSyntaxError, "followed by a space before ':'", 5),
    ('subject:"abc', filters.FilterSyntaxError, "this quote is never closed", 9),
    ('subject:ab"c"', filters.FilterSyntaxError, "a quote inside a value", 11),
    ('"Team A"', filters.FilterSyntaxError, "a quoted value without a key", 1),
    ('subject:"a\\nb"', filters.FilterSyntaxError, "unknown escape \\n in a quoted value", 11),
    ("category:a AND", filters.FilterSyntaxError, "the filter ends too early", 15),
    ("NOT", filters.FilterSyntaxError, "the filter ends too early", 4),
    ("(category:a", filters.FilterSyntaxError, "the filter ends too early at column 12. Expected ')'", 12),
    (
        "category:a)",
        filters.FilterSyntaxError,
        "unexpected ')' at column 11. Expected the end of the filter",
        11,
    ),
    ("()", filters.FilterSyntaxError, "unexpected ')'", 2),
    ("category:a OR OR category:b", filters.FilterSyntaxError, "unexpected 'OR' at column 15", 15),
    ("AND category:a", filters.FilterSyntaxError, "unexpected 'AND' at column 1", 1),
    ("category:a AND OR category:b", filters.FilterSyntaxError, "unexpected 'OR'", 16),
]


@pytest.mark.parametrize(("text", "kind", "said", "column"), ERRORS)
def test_every_error_says_what_where_and_what_was_expected(
    text: str, kind: type[filters.FilterError], said: str, column: int | None
) -> None:
    with pytest.raises(kind) as caught:
        filters.parse(text)
    error = caught.value
    assert said in str(error)
    assert error.column == column
    assert error.text == text
    # The caret line points at the column under the echoed source line.
    *_, source, caret = str(error).split("\n")
    assert source == "  " + text
    assert caret == "  " + " " * (column - 1) + "^"
    assert error.__cause__ is None
    assert error.__suppress_context__


def test_errors_on_a_later_line_give_line_and_column() -> None:
    with pytest.raises(filters.FilterValueError) as caught:
        filters.parse("category:a\nOR\n  foo:bar")
    assert caught.value.line == 3
    assert caught.value.column == 3
    assert "at line 3, column 3" in str(caught.value)
    assert str(caught.value).endswith("\n    foo:bar\n    ^")


def test_value_errors_carry_the_key_and_the_suggestion() -> None:
    with pytest.raises(filters.FilterValueError) as caught:
        filters.parse("categry:x")
    assert caught.value.key == "categry"
    assert caught.value.suggestion == "'category'"
    assert caught.value.expected.startswith("one of category, after, before")


def test_filter_errors_are_value_errors_and_pickle() -> None:
    import pickle

    with pytest.raises(ValueError, match="not a real date") as caught:
        filters.parse("after:2024/02/30")
    copy = pickle.loads(pickle.dumps(caught.value))  # noqa: S301 — our own bytes, made one line above
    assert type(copy) is filters.FilterValueError
    assert str(copy) == str(caught.value)
    assert copy.position == caught.value.position


def test_not_a_filter_at_all() -> None:
    with pytest.raises(filters.FilterSyntaxError, match="a filter cannot be a int"):
        filters.parse(42)  # type: ignore[arg-type]


def test_limits_text_length() -> None:
    term = "category:x OR "
    text = term * (filters.MAX_TEXT_BYTES // len(term)) + "category:y" * 2
    with pytest.raises(filters.FilterLimitError, match=r"bytes long\. Expected at most 8192 bytes \(8 KiB\)"):
        filters.parse(text)
    # Bytes, not characters: non-ASCII text reaches the limit sooner.
    with pytest.raises(filters.FilterLimitError):
        filters.parse('subject:"' + "é" * 4100 + '"')


def test_limits_leaves() -> None:
    at_limit = " OR ".join(f"category:c{i}" for i in range(filters.MAX_LEAVES))
    assert filters.parse(at_limit).leaves == filters.MAX_LEAVES
    with pytest.raises(filters.FilterLimitError, match="more than 256 terms"):
        filters.parse(at_limit + " OR category:one-more")


def test_limits_depth() -> None:
    def nested(levels: int) -> str:
        text = "category:x"
        for level in range(levels - 1):  # each step adds exactly one level
            text = f"NOT {text}" if level % 2 else f"({text} OR is:read)"
        return text

    assert filters.parse(nested(filters.MAX_DEPTH)).depth == filters.MAX_DEPTH
    with pytest.raises(filters.FilterLimitError, match="nests deeper than 16 levels"):
        filters.parse(nested(filters.MAX_DEPTH + 1))
    # Deep parentheses alone add no depth, and do not overflow anything.
    assert filters.parse("(" * 2000 + "is:read" + ")" * 2000) == IsRead()
