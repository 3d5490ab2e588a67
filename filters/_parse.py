"""`parse`: one entry point for every spelling a filter arrives in: text, Carbon JSON, a dict, nothing."""

from __future__ import annotations

from collections.abc import Mapping

from filters._carbon import parse_carbon, parse_carbon_json
from filters._errors import FilterSyntaxError
from filters._text import parse_text
from filters._tree import NODE_TYPES, Filter, MatchAll


def parse(value: str | Mapping[str, object] | Filter | None) -> Filter:
    """The tree a filter spells.

    `value` is the text spelling, a Carbon JSON string (text starting with `{`, or `[`, which is refused
    with a clear error), an already decoded Carbon dict, or a tree (returned as is). None, `""`, blank text
    and `{}` are the empty filter, `MatchAll`. Anything wrong raises a `FilterError` saying what, where,
    and what was expected.
    """
    if value is None:
        return MatchAll()
    if isinstance(value, str):
        if value.lstrip().startswith(("{", "[")):
            return parse_carbon_json(value)
        return parse_text(value)
    if isinstance(value, Mapping):
        return parse_carbon(value)
    if isinstance(value, NODE_TYPES):
        return value
    raise FilterSyntaxError(
        f"a filter cannot be a {type(value).__name__}",
        expected="filter text, Carbon JSON (a string or a dict), or None",
    )
