"""OData query options as Graph evaluates them on mail: $filter, $orderby, $select, on plain message dicts.

This is the sandbox's own, independent reading of Graph's query language, and what the filter room's
planner is property-tested against. The core is pure:

    compile_filter(text, schema=MESSAGE) -> Callable[[dict], bool]
    filter_matches(text, message: dict) -> bool

``message`` is a message in Graph's JSON shape (``subject``, ``from.emailAddress.address``,
``categories``, ``receivedDateTime`` as an ISO-8601 string, ...). Semantics, as Exchange behaves:
string comparisons and ``contains``/``startswith``/``endswith`` ignore case; DateTimeOffset literals are
unquoted (a bare date means midnight UTC) and a quoted date is a type error; a comparison with a missing
or null value is false except ``eq null``; ``any``/``all`` range over collections
(``categories/any(c:c eq 'x')``, ``toRecipients/any(r:r/emailAddress/address eq 'a@b.c')``).
Errors raise ``ODataError`` with Graph's error code and the position in the text.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedEOF, UnexpectedInput

from sandbox._errors import ODataError

# -- schemas: property name -> type; a dict is a complex type, a list a collection of its element -----

STR, BOOL, DATETIME, INT, ENUM = "Edm.String", "Edm.Boolean", "Edm.DateTimeOffset", "Edm.Int32", "Edm.Enum"
COMPLEX = "complex"
EMAIL = {"name": STR, "address": STR}
RECIPIENT = {"emailAddress": EMAIL}
ITEM_BODY = {"contentType": ENUM, "content": STR}
DATE_TIME_TZ = {"dateTime": STR, "timeZone": STR}
FLAG = {
    "flagStatus": ENUM,
    "startDateTime": DATE_TIME_TZ,
    "dueDateTime": DATE_TIME_TZ,
    "completedDateTime": DATE_TIME_TZ,
}

MESSAGE: dict[str, Any] = {
    "id": STR,
    "createdDateTime": DATETIME,
    "lastModifiedDateTime": DATETIME,
    "changeKey": STR,
    "categories": [STR],
    "receivedDateTime": DATETIME,
    "sentDateTime": DATETIME,
    "hasAttachments": BOOL,
    "internetMessageId": STR,
    "subject": STR,
    "bodyPreview": STR,
    "importance": ENUM,
    "parentFolderId": STR,
    "conversationId": STR,
    "conversationIndex": STR,
    "isDeliveryReceiptRequested": BOOL,
    "isReadReceiptRequested": BOOL,
    "isRead": BOOL,
    "isDraft": BOOL,
    "webLink": STR,
    "inferenceClassification": ENUM,
    "body": ITEM_BODY,
    "uniqueBody": ITEM_BODY,
    "sender": RECIPIENT,
    "from": RECIPIENT,
    "toRecipients": [RECIPIENT],
    "ccRecipients": [RECIPIENT],
    "bccRecipients": [RECIPIENT],
    "replyTo": [RECIPIENT],
    "flag": FLAG,
    "internetMessageHeaders": [{"name": STR, "value": STR}],
}
# Properties Exchange will not filter or sort on.
MESSAGE_UNFILTERABLE = frozenset({"body", "uniqueBody", "internetMessageHeaders"})
# Returned only when named in $select.
MESSAGE_ON_REQUEST = frozenset({"uniqueBody", "internetMessageHeaders"})

MAIL_FOLDER: dict[str, Any] = {
    "id": STR,
    "displayName": STR,
    "parentFolderId": STR,
    "childFolderCount": INT,
    "unreadItemCount": INT,
    "totalItemCount": INT,
    "isHidden": BOOL,
}
ATTACHMENT: dict[str, Any] = {
    "id": STR,
    "name": STR,
    "contentType": STR,
    "size": INT,
    "isInline": BOOL,
    "lastModifiedDateTime": DATETIME,
    "contentId": STR,
    "contentLocation": STR,
    "contentBytes": STR,
}

_GRAMMAR = Lark(
    (Path(__file__).with_name("odata.lark")).read_text(encoding="utf-8"),
    parser="lalr",
    maybe_placeholders=False,
)
_TERMINALS = {
    "LPAR": "'('",
    "RPAR": "')'",
    "COMMA": "','",
    "SLASH": "'/'",
    "COLON": "':'",
    "NAME": "a property",
    "STRING": "a 'string'",
    "NUMBER": "a number",
    "DATETIME": "a date",
    "TRUE": "true",
    "FALSE": "false",
    "NULL": "null",
    "NOT": "not",
    "AND": "and",
    "OR": "or",
    "IN": "in",
    "COMPOP": "eq/ne/gt/ge/lt/le",
    "LAMBDA": "any/all",
}
_OPERATOR_NAMES = {
    "eq": "Equal",
    "ne": "NotEqual",
    "gt": "GreaterThan",
    "ge": "GreaterThanOrEqual",
    "lt": "LessThan",
    "le": "LessThanOrEqual",
}
_COMPARE = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}

Getter = Callable[[dict, dict], Any]
Predicate = Callable[[dict], bool]


class _Typed(NamedTuple):
    get: Getter
    type: Any
    literal: bool = False


def parse_datetime(text: str) -> dt.datetime:
    """An ISO-8601 DateTimeOffset or date as an aware UTC datetime (a bare date is midnight UTC)."""
    if len(text) == 10:
        return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
    head, dot, rest = text.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[: min(digits, 6)]}{rest[digits:]}"
    value = dt.datetime.fromisoformat(text.replace("z", "Z"))
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _fold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _as_datetime(value: Any) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    try:
        return parse_datetime(value)
    except (TypeError, ValueError):
        return None


def filter_matches(text: str, message: dict) -> bool:
    """Whether ``message`` (Graph JSON) satisfies the $filter ``text``."""
    return compile_filter(text)(message)


@lru_cache(maxsize=512)
def compile_filter(text: str, schema_name: str = "message") -> Predicate:
    """Parse and type-check a $filter once; the result is a predicate over entity dicts."""
    schema = {"message": MESSAGE, "mailFolder": MAIL_FOLDER, "attachment": ATTACHMENT}[schema_name]
    tree = _parse(text)
    compiled = _Compiler(schema, schema_name, text).expr(tree, {})
    if compiled.type != BOOL:
        raise ODataError(f"Invalid filter clause: the expression '{text}' is not a condition.")
    get = compiled.get
    return lambda entity: bool(get(entity, {}))


def filter_properties(text: str) -> list[str]:
    """Top-level property paths in the order they first appear in a $filter (for Graph's $orderby rule)."""
    seen: list[str] = []
    for node in _parse(text).iter_subtrees_topdown():
        if node.data == "member":
            names = [str(t) for t in node.children if isinstance(t, Token)]
            path = "/".join(names).casefold()
            if path not in seen:
                seen.append(path)
    return seen


def _parse(text: str) -> Tree:
    try:
        return _GRAMMAR.parse(text)
    except UnexpectedInput as exc:
        position = getattr(exc, "pos_in_stream", None)
        at_end = isinstance(exc, UnexpectedEOF) or getattr(getattr(exc, "token", None), "type", "") == "$END"
        if at_end or position is None:
            position = len(text)
        names = getattr(exc, "expected", None) or getattr(exc, "allowed", None) or ()
        expected = sorted({_TERMINALS.get(name, name.lower()) for name in names if not name.startswith("__")})
        hint = f"; expected {', '.join(expected)}" if expected else ""
        raise ODataError(
            f"Invalid filter clause: syntax error at position {position} in '{text}'{hint}.",
            code="BadRequest",
            position=position,
        ) from None


class _Compiler:
    def __init__(self, schema: dict, type_name: str, text: str) -> None:
        self.schema = schema
        self.type_name = type_name
        self.text = text

    def fail(self, message: str, node: Tree | Token | None = None, code: str = "BadRequest") -> ODataError:
        position = None
        if isinstance(node, Token):
            position = node.start_pos
        elif isinstance(node, Tree) and node.meta and not node.meta.empty:
            position = node.meta.start_pos
        return ODataError(message, code=code, position=position)

    def predicate(self, node: Tree | Token, scope: dict) -> Getter:
        compiled = self.expr(node, scope)
        if compiled.type != BOOL:
            raise self.fail(
                f"Invalid filter clause: '{self.text}' combines a value that is not a condition.", node
            )
        return compiled.get

    def expr(self, node: Tree | Token, scope: dict) -> _Typed:
        kind = node.data if isinstance(node, Tree) else "token"
        if kind in {"or_", "and_"}:
            left = self.predicate(node.children[0], scope)
            right = self.predicate(node.children[2], scope)
            if kind == "or_":
                return _Typed(lambda e, env: bool(left(e, env)) or bool(right(e, env)), BOOL)
            return _Typed(lambda e, env: bool(left(e, env)) and bool(right(e, env)), BOOL)
        if kind == "not_":
            inner = self.predicate(node.children[1], scope)
            return _Typed(lambda e, env: not inner(e, env), BOOL)
        if kind == "compare":
            return self.compare(node, scope)
        if kind == "in_":
            return self.in_(node, scope)
        if kind == "call":
            return self.call(node, scope)
        if kind == "member":
            return self.member(node, scope)
        return self.literal(node)

    def literal(self, node: Tree) -> _Typed:
        kind = node.data
        raw = str(node.children[0]) if node.children else ""
        if kind == "string":
            value = raw[1:-1].replace("''", "'")
            return _Typed(lambda e, env: value, STR, True)
        if kind == "datetime":
            try:
                stamp = parse_datetime(raw)
            except ValueError:
                raise self.fail(f"The DateTimeOffset text '{raw}' is not valid.", node.children[0]) from None
            return _Typed(lambda e, env: stamp, DATETIME, True)
        if kind == "number":
            number = float(raw) if "." in raw else int(raw)
            return _Typed(lambda e, env: number, INT, True)
        if kind in {"true", "false"}:
            flag = kind == "true"
            return _Typed(lambda e, env: flag, BOOL, True)
        return _Typed(lambda e, env: None, None, True)

    def member(self, node: Tree, scope: dict) -> _Typed:
        names = [t for t in node.children if isinstance(t, Token)]
        lambda_node = next((c for c in node.children if isinstance(c, Tree)), None)
        first = str(names[0])
        if first in scope:
            current, var = scope[first], first
            keys: list[str] = []
            rest = names[1:]
        else:
            current, var, keys, rest = self.schema, None, [], names
        for token in rest:
            if not isinstance(current, dict):
                raise self.fail(
                    f"Could not find a property named '{token}' on a value of type '{current}'.", token
                )
            match = next((k for k in current if k.casefold() == str(token).casefold()), None)
            if match is None:
                owner = self.type_name if current is self.schema else "complex type"
                raise self.fail(
                    f"Could not find a property named '{token}' on type 'microsoft.graph.{owner}'.", token
                )
            if current is self.schema and self.schema is MESSAGE and match in MESSAGE_UNFILTERABLE:
                raise self.fail(
                    f"The property '{match}' does not support filtering.",
                    token,
                    code="ErrorInvalidUrlQueryFilter",
                )
            keys.append(match)
            current = current[match]
        get = _path_getter(var, tuple(keys))
        if lambda_node is None:
            # Complex values and collections can only be compared with null (check_types enforces it).
            return _Typed(get, COMPLEX if isinstance(current, dict | list) else current)
        if not isinstance(current, list):
            raise self.fail(
                f"'{'/'.join(keys)}' is not a collection, so any() and all() do not apply to it.", lambda_node
            )
        return self.lambda_(lambda_node, get, current[0], scope)

    def lambda_(self, node: Tree, collection: Getter, element: Any, scope: dict) -> _Typed:
        op = str(node.children[0]).casefold()
        if len(node.children) == 1:
            if op == "all":
                raise self.fail("all() needs a condition: all(x: ...).", node.children[0])
            return _Typed(lambda e, env: bool(collection(e, env)), BOOL)
        var, body = str(node.children[1]), node.children[2]
        test = self.predicate(body, {**scope, var: element})
        quantifier = any if op == "any" else all

        def evaluate(e: dict, env: dict) -> bool:
            items = collection(e, env) or []
            return quantifier(bool(test(e, {**env, var: item})) for item in items)

        return _Typed(evaluate, BOOL)

    def compare(self, node: Tree, scope: dict) -> _Typed:
        left_node, op_token, right_node = node.children
        op = str(op_token).casefold()
        left, right = self.expr(left_node, scope), self.expr(right_node, scope)
        self.check_types(left, right, op, op_token)
        compare = _COMPARE[op]
        kind = left.type if left.type is not None else right.type
        lget, rget = left.get, right.get
        if kind == DATETIME:

            def evaluate(e: dict, env: dict) -> bool:
                a, b = _as_datetime(lget(e, env)), _as_datetime(rget(e, env))
                return _null_aware(compare, op, a, b)
        else:

            def evaluate(e: dict, env: dict) -> bool:
                return _null_aware(compare, op, _fold(lget(e, env)), _fold(rget(e, env)))

        return _Typed(evaluate, BOOL)

    def check_types(self, left: _Typed, right: _Typed, op: str, where: Token) -> None:
        if left.type is None or right.type is None:
            if op not in {"eq", "ne"}:
                raise self.fail(f"The operator '{op}' cannot compare with null.", where)
            return
        if COMPLEX in {left.type, right.type}:
            raise self.fail("A complex value or a collection can only be compared with null.", where)
        compatible = {left.type, right.type} <= {STR, ENUM} or left.type == right.type
        if not compatible:
            raise self.fail(
                "A binary operator with incompatible types was detected. Found operand types "
                f"'{_edm(left.type)}' and '{_edm(right.type)}' for operator kind '{_OPERATOR_NAMES[op]}'.",
                where,
            )
        if left.type == BOOL and op not in {"eq", "ne"}:
            raise self.fail(f"The operator '{op}' does not apply to Edm.Boolean values.", where)

    def in_(self, node: Tree, scope: dict) -> _Typed:
        left = self.expr(node.children[0], scope)
        options = [self.expr(child, scope) for child in node.children[2:]]
        for option in options:
            if not option.literal:
                raise self.fail("The right side of 'in' must be a list of literals.", node.children[1])
            self.check_types(left, option, "eq", node.children[1])
        lget = left.get
        if left.type == DATETIME:
            values = {o.get({}, {}) for o in options}
            return _Typed(lambda e, env: _as_datetime(lget(e, env)) in values, BOOL)
        folded = {_fold(o.get({}, {})) for o in options}
        return _Typed(lambda e, env: _fold(lget(e, env)) in folded, BOOL)

    def call(self, node: Tree, scope: dict) -> _Typed:
        name_token = node.children[0]
        name = str(name_token).casefold()
        args = [self.expr(child, scope) for child in node.children[1:]]
        if name in {"tolower", "toupper", "trim"} and len(args) == 1 and args[0].type in {STR, ENUM}:
            inner = args[0].get
            transform = {"tolower": str.lower, "toupper": str.upper, "trim": str.strip}[name]
            return _Typed(lambda e, env: None if (v := inner(e, env)) is None else transform(v), STR)
        if name in {"contains", "startswith", "endswith"}:
            if len(args) != 2 or any(a.type not in {STR, ENUM} for a in args):
                raise self.fail(f"{name}() takes two string arguments.", name_token)
            test = {"contains": lambda a, b: b in a, "startswith": str.startswith, "endswith": str.endswith}[
                name
            ]
            aget, bget = args[0].get, args[1].get

            def evaluate(e: dict, env: dict) -> bool:
                a, b = aget(e, env), bget(e, env)
                return a is not None and b is not None and test(a.casefold(), b.casefold())

            return _Typed(evaluate, BOOL)
        raise self.fail(f"An unknown function with name '{name_token}' was found.", name_token)


def _null_aware(compare: Callable[[Any, Any], bool], op: str, a: Any, b: Any) -> bool:
    if a is None or b is None:
        return compare(a, b) if op in {"eq", "ne"} else False
    try:
        return compare(a, b)
    except TypeError:
        return False


def _edm(type_: Any) -> str:
    return "Edm.String" if type_ == ENUM else str(type_)


def _path_getter(var: str | None, keys: tuple[str, ...]) -> Getter:
    def get(entity: dict, env: dict) -> Any:
        value: Any = env.get(var) if var is not None else entity
        for key in keys:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value

    return get


# -- $orderby and $select ---------------------------------------------------------------------------------


class OrderKey(NamedTuple):
    path: tuple[str, ...]
    descending: bool


def parse_orderby(text: str, schema: dict = MESSAGE) -> list[OrderKey]:
    """``receivedDateTime desc,subject`` -> keys; each must name a scalar property."""
    keys = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1].casefold() not in {"asc", "desc"}):
            raise ODataError(f"Invalid $orderby clause '{text.strip()}': expected 'property [asc|desc]'.")
        current: Any = schema
        path = []
        for name in words[0].split("/"):
            match = (
                next((k for k in current if k.casefold() == name.casefold()), None)
                if isinstance(current, dict)
                else None
            )
            if match is None:
                raise ODataError(
                    f"Could not find a property named '{name}' to order by in '$orderby={text}'."
                )
            path.append(match)
            current = current[match]
        if isinstance(current, dict | list) or (schema is MESSAGE and path[0] in MESSAGE_UNFILTERABLE):
            raise ODataError(f"The property '{'/'.join(path)}' cannot be used in $orderby.")
        keys.append(OrderKey(tuple(path), len(words) == 2 and words[1].casefold() == "desc"))
    return keys


def parse_select(text: str, schema: dict = MESSAGE, type_name: str = "message") -> list[str]:
    """``subject,from`` -> canonical top-level property names (unknown ones are errors, as in Graph)."""
    names = []
    for raw in text.split(","):
        name = raw.strip()
        if not name:
            continue
        if name == "*":
            return [k for k in schema if not (schema is MESSAGE and k in MESSAGE_ON_REQUEST)]
        match = next((k for k in schema if k.casefold() == name.casefold()), None)
        if match is None:
            raise ODataError(
                f"Could not find a property named '{name}' on type 'microsoft.graph.{type_name}'.",
                code="RequestBroker--ParseUri",
            )
        if match not in names:
            names.append(match)
    return names
