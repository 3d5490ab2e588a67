"""The text spelling: parse it with the Lark LALR grammar in `grammar.lark`, and render a tree back to it."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from pathlib import Path

from lark import Lark, Token, Transformer, UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.common import LexerConf
from lark.lexer import Lexer

from filters._errors import FilterError, FilterLimitError, FilterSyntaxError
from filters._tree import KEYS, MAX_TEXT_BYTES, And, Filter, MatchAll, Not, Or, make_leaf

_ESCAPE = re.compile(r"\\([\s\S])")
_BARE = re.compile(r'[^\s()"\\]+')
_WORD = re.compile(r'[^\s()"]+')
_QUOTED = re.compile(r'"(?:[^"\\]|\\[\s\S])*"')
_SPACE_BEFORE_COLON = re.compile(r"\s+:")

# What the parser's terminal names mean to a person.
_SAID = {
    "TERM": "a term (key:value)",
    "LPAR": "'('",
    "RPAR": "')'",
    "_NOT": "NOT",
    "_AND": "AND",
    "_OR": "OR",
    "$END": "the end of the filter",
}


class _ToTree(Transformer):
    """Builds the typed tree while the LALR parser reduces, so no Lark tree is ever materialised."""

    def term(self, children: list[Token]) -> Filter:
        token = children[0]
        key, _, raw = token.partition(":")
        at = token.start_pos + len(key) + 1
        if key.lower() not in KEYS:
            at = token.start_pos
        if raw.startswith('"'):
            raw = _unescape(raw[1:-1], at + 1)
        try:
            return make_leaf(key, raw)
        except FilterError as error:
            raise error.located(position=at) from None

    def conjunction(self, children: list[Filter]) -> Filter:
        return And(tuple(children))

    def disjunction(self, children: list[Filter]) -> Filter:
        return Or(tuple(children))

    def negation(self, children: list[Filter]) -> Filter:
        return Not(children[0])


def _unescape(body: str, at: int) -> str:
    def replace(found: re.Match[str]) -> str:
        if found.group(1) not in '"\\':
            raise FilterSyntaxError(
                f"unknown escape \\{found.group(1)} in a quoted value",
                expected='\\" or \\\\ (the only escapes)',
                position=at + found.start(),
            )
        return found.group(1)

    return _ESCAPE.sub(replace, body)


class _OneRegexLexer(Lexer):
    """The grammar's own terminals, highest priority first, as one compiled alternation.

    Lark's lexers keep line and column counts and end positions for every token; a filter needs only the
    start offset, and skipping the rest makes the whole parse about a quarter faster. The terminals still
    come from grammar.lark, so the grammar stays the one definition of the language.
    """

    def __init__(self, conf: LexerConf) -> None:
        terminals = sorted(conf.terminals, key=lambda t: -t.priority)
        self.ignore = frozenset(conf.ignore)
        self.master = re.compile("|".join(f"(?P<{t.name}>{t.pattern.to_regexp()})" for t in terminals))

    def lex(self, text: str) -> Iterator[Token]:  # type: ignore[override]  # Lark's custom-lexer protocol
        match, ignore = self.master.match, self.ignore
        pos, end = 0, len(text)
        while pos < end:
            found = match(text, pos)
            if found is None:
                raise UnexpectedCharacters(text, pos, text.count("\n", 0, pos) + 1, pos + 1)
            kind = found.lastgroup
            if kind not in ignore:
                yield Token(kind, found.group(), pos)
            pos = found.end()


@functools.cache
def _parser() -> Lark:
    grammar = (Path(__file__).parent / "grammar.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", lexer=_OneRegexLexer, transformer=_ToTree())


def parse_text(text: str) -> Filter:
    """The tree a text filter spells; the empty (or all-blank) text is `MatchAll`."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_TEXT_BYTES:
        raise FilterLimitError(
            f"the filter text is {size} bytes long", expected=f"at most {MAX_TEXT_BYTES} bytes (8 KiB)"
        )
    if not text.strip():
        return MatchAll()
    # `from None`: a caller sees our error alone, never a Lark traceback chained beneath it.
    try:
        return _parser().parse(text)
    except FilterError as error:
        raise error.located(text=text) from None
    except UnexpectedInput as error:
        raise _syntax_error(text, error) from None


def _syntax_error(text: str, error: UnexpectedInput) -> FilterSyntaxError:
    if isinstance(error, UnexpectedToken):
        token = error.token
        expected = _expected(error.expected)
        if token.type == "$END":
            return FilterSyntaxError(
                "the filter ends too early", expected=expected, text=text, position=len(text.rstrip())
            )
        shown = "')'" if token.type == "RPAR" else "'('" if token.type == "LPAR" else repr(str(token))
        return FilterSyntaxError(
            f"unexpected {shown}", expected=expected, text=text, position=token.start_pos
        )
    pos = error.pos_in_stream if isinstance(error, UnexpectedCharacters) else 0
    if text[pos] == '"':
        return _quote_error(text, pos)
    word = _WORD.match(text, pos)
    shown = word.group(0) if word else text[pos]
    if word and _SPACE_BEFORE_COLON.match(text, word.end()):
        return FilterSyntaxError(
            f"{shown!r} is followed by a space before ':'",
            expected="key:value with no space around the colon",
            text=text,
            position=word.end(),
        )
    example = f"subject:{shown}" if ":" not in shown else 'subject:"..."'
    return FilterSyntaxError(
        f"{shown!r} is not a term",
        expected=f"key:value, for example {example}; free-text search is not supported",
        text=text,
        position=pos,
    )


def _quote_error(text: str, pos: int) -> FilterSyntaxError:
    if pos > 0 and not text[pos - 1].isspace() and text[pos - 1] not in "():":
        return FilterSyntaxError(
            "a quote inside a value",
            expected='a quote only at the start of a value: key:"…"',
            text=text,
            position=pos,
        )
    closing = _QUOTED.match(text, pos)
    if closing is None:  # also after "key:", where the term matched an empty value and stopped at the quote
        return FilterSyntaxError(
            "this quote is never closed",
            expected='a closing " (write \\" for a quote inside)',
            text=text,
            position=pos,
        )
    return FilterSyntaxError(
        "a quoted value without a key",
        expected='key:"value", for example category:"Team A"',
        text=text,
        position=pos,
    )


def _expected(names: set[str]) -> str:
    said = [words for name, words in _SAID.items() if name in names]
    said += sorted(name for name in names if name not in _SAID)
    return ", ".join(said[:-1]) + " or " + said[-1] if len(said) > 1 else said[0]


def to_text(tree: Filter) -> str:
    """The canonical text of a tree: `parse(to_text(t)) == t` for every tree."""
    if isinstance(tree, MatchAll):
        return ""
    if isinstance(tree, And):
        return " AND ".join(_grouped(child) for child in tree.children)
    if isinstance(tree, Or):
        return " OR ".join(_grouped(child) for child in tree.children)
    if isinstance(tree, Not):
        return "NOT " + _grouped(tree.child)
    return f"{tree.key}:{quote(tree.value)}"


def _grouped(tree: Filter) -> str:
    # Parenthesised whenever the child is itself AND or OR: that keeps the tree's shape through a round trip
    # and reads unambiguously to a person who does not remember the precedence.
    text = to_text(tree)
    return f"({text})" if isinstance(tree, And | Or) else text


def quote(value: str) -> str:
    """A value as it is written in text: bare when it can be, otherwise quoted with \\ and \" escaped."""
    if _BARE.fullmatch(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
