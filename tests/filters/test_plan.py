"""The Graph planner: a table of plans, hostile values, an independent OData parser, and the invariant."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import filters
from tests.filters import odata
from tests.filters.strategies import conjunctions, graph_messages, message_and_filter, trees

# (filter, list-mode $filter, list-mode residual as text or None)
LIST_PLANS = [
    ("", None, None),
    ("category:Test", "categories/any(c:c eq 'Test')", None),
    ("after:2024/01/07", "receivedDateTime ge 2024-01-07T00:00:00Z", None),
    (
        "after:2024/01/07 (category:Personal OR category:Test)",
        "receivedDateTime ge 2024-01-07T00:00:00Z",
        "category:Personal OR category:Test",
    ),
    (
        "after:2024/01/01 before:2024/02/01",
        "receivedDateTime ge 2024-01-01T00:00:00Z and receivedDateTime lt 2024-02-01T00:00:00Z",
        None,
    ),
    (  # several dates of a kind collapse to the tightest
        "after:2024/01/01 after:2024/03/01 before:2024/06/01 before:2024/05/01",
        "receivedDateTime ge 2024-03-01T00:00:00Z and receivedDateTime lt 2024-05-01T00:00:00Z",
        None,
    ),
    ("from:noreply@example.com", "from/emailAddress/address eq 'noreply@example.com'", None),
    ("has:attachment", "hasAttachments eq true", None),
    ("NOT has:attachment", "hasAttachments eq false", None),
    ("is:flagged", "flag/flagStatus eq 'flagged'", None),
    ("is:unread", "isRead eq false", None),
    ("NOT is:read", "isRead eq false", None),
    ("is:read", "isRead eq true", None),
    ("NOT is:unread", "isRead eq true", None),
    ("importance:high", "importance eq 'high'", None),
    ("NOT is:flagged", None, "NOT is:flagged"),
    ("to:a@example.com", None, "to:a@example.com"),
    ("cc:a@example.com", None, "cc:a@example.com"),
    ("subject:invoice", None, "subject:invoice"),
    ("category:a OR is:flagged", None, "category:a OR is:flagged"),
    # The date range goes first (so $orderby=receivedDateTime desc stays legal), then the most selective.
    (
        "is:unread importance:high category:Receipts after:2024/01/01 from:billing@example.com",
        "receivedDateTime ge 2024-01-01T00:00:00Z and from/emailAddress/address eq 'billing@example.com'"
        " and categories/any(c:c eq 'Receipts')",
        "is:unread AND importance:high",
    ),
    (
        "is:unread AND (has:attachment AND is:flagged)",
        "flag/flagStatus eq 'flagged' and hasAttachments eq true",
        "is:unread",
    ),
    # Values that try to break out of the OData literal stay inside it.
    ('category:"It\'s"', "categories/any(c:c eq 'It''s')", None),
    ("category:\"'') or (''\"", "categories/any(c:c eq ''''') or (''''')", None),
    ('category:") or true or ("', "categories/any(c:c eq ') or true or (')", None),
    ("category:%27", "categories/any(c:c eq '%27')", None),
    ("from:o'neil@example.com", "from/emailAddress/address eq 'o''neil@example.com'", None),
    # Non-ASCII values are compared locally: Exchange's case folding is not Python's.
    ("category:Équipe", None, "category:Équipe"),
    ("from:zoë@exämple.de", None, "from:zoë@exämple.de"),
    ('category:"tab\there"', None, 'category:"tab\there"'),
]


@pytest.mark.parametrize(("text", "odata_filter", "residual"), LIST_PLANS)
def test_list_plans(text: str, odata_filter: str | None, residual: str | None) -> None:
    plan = filters.plan(filters.parse(text), "list")
    assert plan.odata_filter == odata_filter
    assert (None if plan.residual is None else filters.to_text(plan.residual)) == residual
    assert plan.selective is (odata_filter is not None)
    assert plan.round_cap is None
    if odata_filter is not None:
        odata.parse(odata_filter)


DELTA_PLANS = [
    ("", None, None),
    ("after:2024/01/07", "receivedDateTime ge 2024-01-07T00:00:00Z", None),
    ("after:2024/01/07 category:Test", "receivedDateTime ge 2024-01-07T00:00:00Z", "category:Test"),
    ("after:2024/01/07 after:2024/02/07", "receivedDateTime ge 2024-02-07T00:00:00Z", None),
    ("before:2024/01/07", None, "before:2024/01/07"),
    ("category:Test is:unread", None, "category:Test AND is:unread"),
    ("after:2024/01/07 OR is:flagged", None, "after:2024/01/07 OR is:flagged"),  # not top-level
    ("NOT after:2024/01/07", None, "NOT after:2024/01/07"),
]


@pytest.mark.parametrize(("text", "odata_filter", "residual"), DELTA_PLANS)
def test_delta_plans_push_only_a_top_level_after(
    text: str, odata_filter: str | None, residual: str | None
) -> None:
    plan = filters.plan(filters.parse(text), "delta")
    assert plan.odata_filter == odata_filter
    assert (None if plan.residual is None else filters.to_text(plan.residual)) == residual
    assert plan.round_cap == (5000 if odata_filter else None)


def test_explain_says_what_goes_where() -> None:
    tree = filters.parse(
        'after:2024/01/07 (category:Personal OR category:"Team A") NOT from:noreply@example.com'
    )
    words = filters.plan(tree, "list").explain()
    assert "Graph $filter: receivedDateTime ge 2024-01-07T00:00:00Z" in words
    assert "Graph checks: after:2024/01/07" in words
    assert 'checked locally: category:Personal OR category:"Team A"  (OR is not pushed' in words
    assert "checked locally: NOT from:noreply@example.com  (NOT is pushed only for" in words
    assert "still checked locally against the whole filter" in words
    delta = filters.plan(tree, "delta").explain()
    assert "at most 5,000 messages per filtered delta round" in delta
    assert "delta accepts only 'receivedDateTime ge'" in delta
    everything = filters.plan(filters.MatchAll(), "list").explain()
    assert "no $filter" in everything
    assert "Nothing to check" in everything


def test_plan_carries_the_select_list_and_refuses_unknown_modes() -> None:
    tree = filters.parse("category:a is:unread")
    assert filters.plan(tree, "list").select == ("categories", "isRead")
    with pytest.raises(ValueError, match="plan mode must be 'list' or 'delta'"):
        filters.plan(tree, "search")  # type: ignore[arg-type]


@settings(max_examples=300)
@given(st.one_of(trees, conjunctions), st.sampled_from(["list", "delta"]))
def test_every_emitted_filter_parses_with_an_independent_odata_parser(
    tree: filters.Filter, mode: str
) -> None:
    plan = filters.plan(tree, mode)  # type: ignore[arg-type]
    if plan.odata_filter is not None:
        odata.parse(plan.odata_filter)


@settings(max_examples=300)
@given(st.one_of(conjunctions, trees), graph_messages(), st.sampled_from(["list", "delta"]))
def test_the_invariant_server_part_and_residual_equal_the_filter(
    tree: filters.Filter, message: dict, mode: str
) -> None:
    plan = filters.plan(tree, mode)  # type: ignore[arg-type]
    local_rest = plan.residual is None or filters.matches(plan.residual, message)
    assert filters.matches(tree, message) == (odata.holds(plan.odata_filter, message) and local_rest)


@settings(max_examples=500)
@given(message_and_filter(), st.sampled_from(["list", "delta"]))
def test_the_invariant_on_filters_drawn_from_the_message(
    pair: tuple[dict, filters.Filter], mode: str
) -> None:
    message, tree = pair
    plan = filters.plan(tree, mode)  # type: ignore[arg-type]
    local_rest = plan.residual is None or filters.matches(plan.residual, message)
    assert filters.matches(tree, message) == (odata.holds(plan.odata_filter, message) and local_rest)


def _conjuncts(tree: filters.Filter) -> list[filters.Filter]:
    if isinstance(tree, filters.And):
        return [c for child in tree.children for c in _conjuncts(child)]
    return [tree]


@given(conjunctions, st.sampled_from(["list", "delta"]))
def test_pushed_and_kept_partition_the_conjuncts(tree: filters.Filter, mode: str) -> None:
    plan = filters.plan(tree, mode)  # type: ignore[arg-type]
    both = [filters.to_text(c) for c in plan.pushed] + [filters.to_text(c) for c, _ in plan.kept]
    assert sorted(both) == sorted(filters.to_text(c) for c in _conjuncts(tree))
    assert all(why for _, why in plan.kept)
    assert plan.residual == (
        None
        if not plan.kept
        else plan.kept[0][0]
        if len(plan.kept) == 1
        else filters.And(c for c, _ in plan.kept)
    )
