"""Both spellings round-trip exactly: random trees survive text and Carbon JSON; canonical forms are fixed."""

import json

from hypothesis import given, settings

import filters
from tests.filters.strategies import conjunctions, trees


@given(trees)
def test_text_round_trip_restores_the_tree(tree: filters.Filter) -> None:
    text = filters.to_text(tree)
    assert filters.parse(text) == tree
    assert filters.to_text(filters.parse(text)) == text


@given(trees)
def test_carbon_round_trip_restores_the_tree(tree: filters.Filter) -> None:
    carbon = filters.to_carbon(tree)
    assert filters.parse(carbon) == tree
    assert filters.to_carbon(filters.parse(carbon)) == carbon


@given(trees)
def test_carbon_json_string_round_trip(tree: filters.Filter) -> None:
    encoded = json.dumps(filters.to_carbon(tree), ensure_ascii=False)
    assert filters.parse(encoded) == tree


@settings(max_examples=50)
@given(conjunctions)
def test_the_two_spellings_cross_over(tree: filters.Filter) -> None:
    via_text = filters.parse(filters.to_text(tree))
    assert filters.to_carbon(via_text) == filters.to_carbon(tree)
    via_carbon = filters.parse(filters.to_carbon(tree))
    assert filters.to_text(via_carbon) == filters.to_text(tree)


def test_non_canonical_spellings_settle_on_one_canonical_form() -> None:
    written = (
        'AFTER:2024-01-07 and (Category:Personal or category:"Team A") not FROM:noreply@example.com'
        " has:Attachment"
    )
    canonical = (
        'after:2024/01/07 AND (category:Personal OR category:"Team A") AND NOT from:noreply@example.com'
        " AND has:attachment"
    )
    tree = filters.parse(written)
    assert filters.to_text(tree) == canonical
    assert filters.to_text(filters.parse(canonical)) == canonical
    assert filters.parse(filters.to_carbon(tree)) == tree


def test_single_member_combinators_collapse_in_carbon_json() -> None:
    assert filters.parse({"AND": [{"key": "is", "value": "flagged"}]}) == filters.IsFlagged()
    assert filters.to_carbon(filters.parse({"OR": [{"key": "is", "value": "read"}]})) == {
        "key": "is",
        "value": "read",
    }


def test_empty_filters_are_match_all_in_every_spelling() -> None:
    for empty in (None, "", "   \n", {}, "{}", " {} "):
        assert filters.parse(empty) == filters.MatchAll()
    assert filters.to_text(filters.MatchAll()) == ""
    assert filters.to_carbon(filters.MatchAll()) == {}


def test_nesting_is_kept_not_flattened() -> None:
    tree = filters.parse("category:a AND (category:b AND category:c)")
    assert tree == filters.And(
        (filters.Category("a"), filters.And((filters.Category("b"), filters.Category("c"))))
    )
    assert filters.to_text(tree) == "category:a AND (category:b AND category:c)"
    assert filters.to_carbon(tree) == {
        "AND": [
            {"key": "category", "value": "a"},
            {"AND": [{"key": "category", "value": "b"}, {"key": "category", "value": "c"}]},
        ]
    }
