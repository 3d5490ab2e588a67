"""An OData `$filter` interpreter for the tests, over the independent `odata-query` parser's syntax tree.

It evaluates a `$filter` against a Graph message dict the way Graph does for the subset the planner emits
(and a little more): property paths, `eq ne lt le gt ge`, `and or not`, `any` lambdas over collections,
strings compared case-insensitively as Exchange does, DateTimeOffsets compared as instants, null never
equal to anything. It shares no code with `filters`, so agreement between the two means something.
"""

from __future__ import annotations

import operator
from datetime import UTC, datetime
from typing import Any

from odata_query import ast
from odata_query.grammar import ODataLexer, ODataParser

_COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


def parse(odata_filter: str) -> ast._Node:
    """The syntax tree `odata-query` builds; raises its own exceptions on anything it does not accept."""
    return ODataParser().parse(ODataLexer().tokenize(odata_filter))


def holds(odata_filter: str | None, message: dict[str, Any]) -> bool:
    """Whether a message passes the `$filter` (None passes everything)."""
    return odata_filter is None or _truth(parse(odata_filter), message, {})


def _truth(node: ast._Node, message: dict[str, Any], scope: dict[str, Any]) -> bool:
    if isinstance(node, ast.BoolOp):
        left = _truth(node.left, message, scope)
        if isinstance(node.op, ast.And):
            return left and _truth(node.right, message, scope)
        return left or _truth(node.right, message, scope)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return not _truth(node.operand, message, scope)
    if isinstance(node, ast.Compare):
        left = _value(node.left, message, scope)
        right = _value(node.right, message, scope)
        if left is None or right is None:
            return type(node.comparator) is ast.NotEq and (left is None) != (right is None)
        left, right = _comparable(left, right)
        return _COMPARE[type(node.comparator)](left, right)
    if isinstance(node, ast.CollectionLambda) and isinstance(node.operator, ast.Any):
        items = _value(node.owner, message, scope) or []
        name = node.lambda_.identifier.name
        return any(_truth(node.lambda_.expression, message, {**scope, name: item}) for item in items)
    raise NotImplementedError(f"the test interpreter does not evaluate {node!r}")


def _value(node: ast._Node, message: dict[str, Any], scope: dict[str, Any]) -> Any:
    if isinstance(node, ast.Identifier):
        if node.name in scope:
            return scope[node.name]
        return _property(message, node.name)
    if isinstance(node, ast.Attribute):
        owner = _value(node.owner, message, scope)
        return _property(owner, node.attr) if isinstance(owner, dict) else None
    if isinstance(node, ast.String):
        return node.val
    if isinstance(node, ast.Boolean):
        return node.val.lower() == "true"
    if isinstance(node, ast.DateTime):
        return _instant(node.val)
    if isinstance(node, ast.Null):
        return None
    raise NotImplementedError(f"the test interpreter has no value for {node!r}")


def _property(owner: dict[str, Any], name: str) -> Any:
    # Graph treats property names case-insensitively.
    for key, value in owner.items():
        if key.lower() == name.lower():
            return value
    return None


def _comparable(left: Any, right: Any) -> tuple[Any, Any]:
    if isinstance(left, datetime) and isinstance(right, str):
        return left, _instant(right)
    if isinstance(right, datetime) and isinstance(left, str):
        return _instant(left), right
    if isinstance(left, str) and isinstance(right, str):
        return left.casefold(), right.casefold()
    return left, right


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
