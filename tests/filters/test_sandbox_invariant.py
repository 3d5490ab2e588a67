"""The planner's invariant against the sandbox's own, independent `$filter` evaluation (`filter_matches`).

For every message: the filter matches locally exactly when the sandbox passes the plan's `$filter` and the
residual matches locally. The sandbox reads OData with its own grammar and Exchange's semantics, sharing no
code with `filters`.
"""

from hypothesis import given, settings
from hypothesis import strategies as st

import filters
from sandbox import filter_matches
from tests.filters import odata
from tests.filters.strategies import conjunctions, graph_messages, message_and_filter, trees


def _server(plan: filters.GraphPlan, message: dict) -> bool:
    return plan.odata_filter is None or filter_matches(plan.odata_filter, message)


def _holds(tree: filters.Filter, message: dict, mode: str) -> None:
    plan = filters.plan(tree, mode)  # type: ignore[arg-type]
    rest = plan.residual is None or filters.matches(plan.residual, message)
    assert filters.matches(tree, message) == (_server(plan, message) and rest)


@settings(max_examples=400)
@given(message_and_filter(), st.sampled_from(["list", "delta"]))
def test_invariant_on_filters_drawn_from_the_message(pair: tuple[dict, filters.Filter], mode: str) -> None:
    message, tree = pair
    _holds(tree, message, mode)


@settings(max_examples=200)
@given(st.one_of(conjunctions, trees), graph_messages(), st.sampled_from(["list", "delta"]))
def test_invariant_on_random_filters(tree: filters.Filter, message: dict, mode: str) -> None:
    _holds(tree, message, mode)


@settings(max_examples=200)
@given(st.one_of(conjunctions, trees), graph_messages())
def test_the_sandbox_and_the_test_interpreter_read_our_filters_alike(
    tree: filters.Filter, message: dict
) -> None:
    plan = filters.plan(tree, "list")
    if plan.odata_filter is not None:
        assert filter_matches(plan.odata_filter, message) == odata.holds(plan.odata_filter, message)
