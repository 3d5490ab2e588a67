"""The Carbon JSON spelling: read it (a dict or a JSON string) into the tree, and render a tree back to it.

Carbon's leaves are `{"key": K, "value": V}` and its nodes `{"AND": [...]}` / `{"OR": [...]}`. Mailroom adds
`{"NOT": {...}}` (Carbon has no negation) and accepts any depth up to the limits, where Carbon stopped at one
nested combinator. Keys Carbon lacks use the text spelling's key and value:
`{"key": "is", "value": "unread"}`, `{"key": "has", "value": "attachment"}`,
`{"key": "to", "value": "a@example.com"}`.

The shape is checked by hand rather than by a pydantic union: every error must name its JSON path
(`$.AND[1].OR[0].value`) and the one thing expected there, where a union's errors list every branch.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from typing import Any

from filters._errors import FilterError, FilterLimitError, FilterSyntaxError, FilterValueError
from filters._tree import KEYS, MAX_DEPTH, MAX_LEAVES, And, Filter, MatchAll, Not, Or, make_leaf

# JSON is wordier than text; this bounds the work json.loads does before the leaf and depth limits apply.
MAX_JSON_BYTES = 64 * 1024

_COMBINATORS = ("AND", "OR", "NOT")
_SHAPES = '{"key": …, "value": …}, {"AND": [...]}, {"OR": [...]} or {"NOT": {...}}'
# Carbon's own documented example ends a list with a trailing comma (legal in the Python it was copied
# from, not in JSON); a string-aware pass drops such commas when strict JSON parsing fails.
_TRAILING_COMMA = re.compile(r'("(?:[^"\\]|\\.)*")|,(\s*[\]}])')


def parse_carbon_json(text: str) -> Filter:
    """The tree a Carbon JSON string spells (`{}` is `MatchAll`)."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_JSON_BYTES:
        raise FilterLimitError(
            f"the filter JSON is {size} bytes long", expected=f"at most {MAX_JSON_BYTES} bytes (64 KiB)"
        )
    try:
        value = _loads(text)
    except json.JSONDecodeError as first:
        try:
            value = _loads(_TRAILING_COMMA.sub(lambda m: m.group(1) or m.group(2), text))
        except (json.JSONDecodeError, FilterError, RecursionError):
            raise FilterSyntaxError(
                f"the filter is not valid JSON: {first.msg}", text=text, position=first.pos
            ) from None
    except RecursionError:
        raise FilterLimitError(
            "the filter JSON nests too deeply", expected=f"at most {MAX_DEPTH} levels of AND/OR/NOT"
        ) from None
    except FilterError as error:
        raise error.located(text=text) from None
    return parse_carbon(value)


def _loads(text: str) -> Any:
    return json.loads(text, object_pairs_hook=_no_duplicates)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for name, _ in pairs:
        if name in seen:
            raise FilterSyntaxError(
                f"the member {name!r} appears twice in one object", expected="each member once"
            )
        seen.add(name)
    return dict(pairs)


def parse_carbon(value: object) -> Filter:
    """The tree a Carbon filter (already decoded from JSON) spells; `{}` and None are `MatchAll`."""
    if value is None or (isinstance(value, Mapping) and not value):
        return MatchAll()
    return _Reader().node(value, "$", 1)


class _Reader:
    """One walk over decoded JSON, counting leaves so an oversized filter stops early."""

    def __init__(self) -> None:
        self.leaves = 0

    def node(self, value: object, path: str, depth: int) -> Filter:
        if depth > MAX_DEPTH:
            raise FilterLimitError(
                f"the filter nests deeper than {MAX_DEPTH} levels",
                expected=f"at most {MAX_DEPTH} levels of AND/OR/NOT",
                path=path,
            )
        if not isinstance(value, Mapping):
            raise FilterSyntaxError(f"{_kind(value)} is not a filter", expected=_SHAPES, path=path)
        if "key" in value or "value" in value:
            return self.leaf(value, path)
        if len(value) != 1:
            found = ", ".join(repr(k) for k in value) or "nothing"
            raise FilterSyntaxError(
                f"an object with {found} is not a filter", expected=f"exactly one of {_SHAPES}", path=path
            )
        ((name, inner),) = value.items()
        op = name.upper() if isinstance(name, str) else name
        if op not in _COMBINATORS:
            raise FilterSyntaxError(
                f"unknown combinator {name!r}",
                expected=_SHAPES,
                suggestion=_nearest_combinator(name),
                path=path,
            )
        here = f"{path}.{op}"
        if op == "NOT":
            if isinstance(inner, list):
                raise FilterSyntaxError(
                    "NOT takes one filter, not a list", expected='{"NOT": {"key": …, "value": …}}', path=here
                )
            return Not(self.node(inner, here, depth + 1))
        if not isinstance(inner, list) or not inner:
            raise FilterSyntaxError(
                f"{op} holds {_kind(inner)}",
                expected=f"a list of one or more filters: {{{op!r}: [...]}}",
                path=here,
            )
        children = tuple(self.node(child, f"{here}[{i}]", depth + 1) for i, child in enumerate(inner))
        if len(children) == 1:
            return children[0]
        return And(children) if op == "AND" else Or(children)

    def leaf(self, value: Mapping[str, object], path: str) -> Filter:
        missing = [m for m in ("key", "value") if m not in value]
        if missing:
            raise FilterSyntaxError(
                f"a term without {missing[0]!r}", expected='{"key": …, "value": …}', path=path
            )
        extra = [k for k in value if k not in ("key", "value")]
        if extra:
            raise FilterSyntaxError(
                f"unexpected member {extra[0]!r} beside key and value",
                expected='{"key": …, "value": …} with nothing else (combine terms with AND/OR)',
                path=path,
            )
        key, raw = value["key"], value["value"]
        if not isinstance(key, str):
            raise FilterValueError(
                f"the key is {_kind(key)}", expected="a string such as 'category'", path=f"{path}.key"
            )
        if not isinstance(raw, str):
            raise FilterValueError(
                f"the value of {key!r} is {_kind(raw)}", key=key, expected="a string", path=f"{path}.value"
            )
        self.leaves += 1
        if self.leaves > MAX_LEAVES:
            raise FilterLimitError(
                f"the filter has more than {MAX_LEAVES} terms", expected=f"at most {MAX_LEAVES}", path=path
            )
        try:
            return make_leaf(key, raw)
        except FilterError as error:
            where = "value" if key.lower() in KEYS else "key"
            raise error.located(path=f"{path}.{where}") from None


def _nearest_combinator(name: object) -> str | None:
    if not isinstance(name, str):
        return None
    close = difflib.get_close_matches(name.upper(), [*_COMBINATORS, "KEY", "VALUE"], n=1, cutoff=0.5)
    return repr(close[0]) if close and close[0] in _COMBINATORS else None


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    if isinstance(value, Mapping):
        return "an object" if value else "an empty object"
    return f"a {type(value).__name__}"


def to_carbon(tree: Filter) -> dict[str, Any]:
    """The canonical Carbon JSON of a tree, as a dict: `parse(to_carbon(t)) == t` for every tree."""
    if isinstance(tree, MatchAll):
        return {}
    if isinstance(tree, And):
        return {"AND": [to_carbon(child) for child in tree.children]}
    if isinstance(tree, Or):
        return {"OR": [to_carbon(child) for child in tree.children]}
    if isinstance(tree, Not):
        return {"NOT": to_carbon(tree.child)}
    return {"key": tree.key, "value": tree.value}
