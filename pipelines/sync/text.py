"""HTML mail bodies to readable plain text (BeautifulSoup on lxml), in bounded time and memory.

Kept: paragraphs and line breaks, headings, lists with bullets or numbers, table rows (cells joined by " | "),
block quotes ("> "), link targets as `text (url)`, image alt text. Dropped: script, style, head, comments
(which is what Office's `<!--[if mso]>` blocks are), and elements hidden with `display:none`.
Hostile input is bounded: inline `data:` images are dropped first, the HTML is then cut at `max_chars` with a
marker saying so (2 MB converts in about 2 s on one core), and structure nested deeper than `MAX_DEPTH` is
flattened to its text instead of being walked recursively.

A first sync converts every body, so the cost per body counts: BeautifulSoup gets a lean tree builder of
ours (lxml's HTML parser, reused, without the XML namespace bookkeeping HTML never needs), and the tree is
walked by its `contents` lists without a context object per element: a quarter off a typical body.
"""

import re
import threading
from dataclasses import dataclass
from typing import Any

from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.builder import LXMLTreeBuilder
from bs4.element import PreformattedString
from lxml import etree

DEFAULT_MAX_CHARS = 2_000_000
MAX_DEPTH = 120  # recursion below this stays far from Python's limit; deeper markup is flattened
_MAX_PREFIX_NESTING = 12  # quotes and lists nested deeper keep their text but no more indentation

_DROP = frozenset(
    {"script", "style", "head", "title", "meta", "link", "noscript", "template", "object", "embed", "iframe"}
)
_PARAGRAPHS = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "dl", "table", "pre", "address", "figure", "form"}
)
_BLOCKS = frozenset(
    {
        "div", "section", "article", "header", "footer", "nav", "aside", "main", "center", "fieldset",
        "dt", "dd", "figcaption", "caption", "tr", "tbody", "thead", "tfoot", "body", "html", "li", "legend",
        "details", "summary", "hgroup",
    }
)  # fmt: skip
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|mso-hide\s*:\s*all", re.IGNORECASE)
_SPACES = re.compile(r"[ \t\r\n\f\v\u00a0\u2007\u202f]+")
# Zero-width and filler characters newsletters pad their preview text with.
# (Not U+200D: the zero-width joiner holds emoji sequences such as 👩‍💻 together.)
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u2060\ufeff\u034f\u00ad"), None)
_BLANK_LINES = re.compile(r"\n{3,}")
_LINK_SCHEMES = ("http://", "https://", "mailto:", "tel:")
# Inline images as data: URIs make bodies huge and carry no text; they go before the size cap applies.
_DATA_URI = re.compile(r"data:[^\s\"'>]{200,}", re.IGNORECASE)
# The head holds nothing to read (title, styles, Office's XML settings) yet can hold most of a body's elements
# (Word's): it is cut out before parsing rather than built into the tree and dropped. Two linear searches, so
# hostile input cannot make it quadratic; an unclosed head is left to the parser (and dropped there).
_HEAD_OPEN = re.compile(r"<head\b", re.IGNORECASE)
_HEAD_CLOSE = re.compile(r"</head\s*>", re.IGNORECASE)


def truncation_marker(total_chars: int, max_chars: int) -> str:
    """The line appended when a body is cut: says how big it was and where it was cut."""
    return (
        f"[Mailroom: body truncated: {total_chars:,} characters of HTML, converted the first {max_chars:,}]"
    )


def tidy_text(text: str) -> str:
    """Tidy a plain-text body: no invisible characters or trailing spaces, at most one blank line in a row."""
    text = text.translate(_INVISIBLE).replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.rstrip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n")


def html_to_text(html: str, *, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """Readable text of an HTML mail body; bodies over `max_chars` are cut and end with a marker line."""
    html = _DATA_URI.sub("data:,", html)
    marker = ""
    if len(html) > max_chars:
        marker = truncation_marker(len(html), max_chars)
        html = html[:max_chars]
    html = _without_head(html)
    if "<" not in html:
        # Without a tag, BeautifulSoup warns that a body like "https://…" looks like a URL to fetch.
        html = f"<div>{html}</div>"
    text = _render(_soup(html), _TOP, 0)
    if marker:
        text = f"{text}\n\n{marker}" if text else marker
    return text


def _without_head(html: str) -> str:
    opening = _HEAD_OPEN.search(html)
    if opening is None:
        return html
    closing = _HEAD_CLOSE.search(html, opening.end())
    if closing is None:
        return html
    return html[: opening.start()] + html[closing.end() :]


class _Builder(LXMLTreeBuilder):
    """BeautifulSoup's lxml HTML builder with two costs of its XML parent left out, each a third of the time
    of a small body: a new lxml parser per document (lxml inspects the target's methods every time one is
    made; a parser is reusable once closed), and namespace bookkeeping on every start tag (lxml's HTML parser
    never reports a namespace). The tree it builds is the same."""

    def __init__(self) -> None:
        super().__init__()
        self._parsers: dict[str | None, Any] = {}

    def default_parser(self, encoding: str | None) -> Any:
        parser = self._parsers.get(encoding)
        if parser is None:
            parser = etree.HTMLParser(target=self, recover=True, encoding=encoding)
            self._parsers[encoding] = parser
        return parser

    def feed(self, markup: str | bytes) -> None:
        try:
            super().feed(markup)
        except BaseException:
            # A parser interrupted mid-document is not reused.
            self._parsers.clear()
            raise

    def start(self, tag: str, attrib: Any, nsmap: Any = None) -> None:
        assert self.soup is not None  # set by BeautifulSoup before it feeds the builder
        self.soup.handle_starttag(tag, None, None, self.attribute_dict_class(attrib))

    def end(self, tag: str) -> None:
        assert self.soup is not None
        self.soup.handle_endtag(tag)


_builders = threading.local()


def _soup(html: str) -> BeautifulSoup:
    """The parsed body; each thread keeps its own builder (a builder parses one document at a time)."""
    builder = getattr(_builders, "builder", None)
    if builder is None:
        builder = _builders.builder = _Builder()
    return BeautifulSoup(html, builder=builder)


@dataclass(frozen=True, slots=True)
class _Context:
    """What changes rarely on the way down (the depth, which changes at every element, is passed apart)."""

    prefix_nesting: int = 0
    preformatted: bool = False


_TOP = _Context()


class _Out:
    """Inline text and requested line breaks, joined with whitespace collapsed across the pieces."""

    __slots__ = ("line", "lines", "pending")

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.line: list[str] = []
        self.pending = 0  # newlines asked for since the last text

    def text(self, piece: str) -> None:
        # Spaces at the start of a line, or after a space, collapse into nothing.
        line = self.line
        if self.pending or not line or not line[-1] or line[-1][-1] == " ":
            piece = piece.lstrip(" ")
        if piece:
            self.raw(piece)

    def block(self, text: str) -> None:
        """Add already-rendered multi-line text as its own block."""
        for i, line in enumerate(text.split("\n")):
            if i:
                self.newlines(1)
            if line:
                self.raw(line)
            else:
                self.newlines(2)

    def raw(self, piece: str) -> None:
        if self.pending:
            self._flush_line()
            if self.lines:
                self.lines.extend([""] * (self.pending - 1))
            self.pending = 0
        self.line.append(piece)

    def size(self) -> tuple[int, int]:
        """A mark to tell later whether anything was written since."""
        return len(self.lines), len(self.line)

    def newlines(self, count: int) -> None:
        if count > self.pending and (self.line or self.lines):
            self.pending = count

    def _flush_line(self) -> None:
        self.lines.append("".join(self.line).rstrip())
        self.line = []

    def result(self) -> str:
        if self.line:
            self._flush_line()
        return _BLANK_LINES.sub("\n\n", "\n".join(self.lines)).strip("\n")


def _render(node: Tag, ctx: _Context, depth: int) -> str:
    out = _Out()
    _children(node, ctx, depth, out)
    return out.result()


def _children(node: Tag, ctx: _Context, depth: int, out: _Out) -> None:
    for child in node.contents:
        kind = type(child)
        if kind is Tag:
            _element(child, ctx, depth, out)  # type: ignore[arg-type]
        elif kind is NavigableString:
            _string(child, ctx, out)  # type: ignore[arg-type]
        elif isinstance(child, Tag):
            _element(child, ctx, depth, out)
        elif isinstance(child, NavigableString) and not isinstance(child, PreformattedString):
            _string(child, ctx, out)  # comments, CDATA and doctypes are PreformattedStrings: not text


def _string(value: str, ctx: _Context, out: _Out) -> None:
    value = value.translate(_INVISIBLE)
    if ctx.preformatted:
        for i, line in enumerate(value.replace("\r\n", "\n").split("\n")):
            if i:
                out.newlines(1)
            out.raw(line.replace("\u00a0", " "))
    else:
        out.text(_SPACES.sub(" ", value))


def _flat(node: Tag, out: _Out) -> None:
    """Too deep to walk: keep the words, lose the structure (get_text iterates, it does not recurse)."""
    out.newlines(1)
    out.text(_SPACES.sub(" ", node.get_text(" ").translate(_INVISIBLE)))
    out.newlines(1)


def _element(el: Tag, ctx: _Context, depth: int, out: _Out) -> None:
    name = el.name
    if name in _DROP:
        return
    attrs = el.attrs
    if attrs and _hidden(attrs):
        return
    if depth >= MAX_DEPTH:
        _flat(el, out)
        return
    inner = depth + 1
    if name == "br":
        out.newlines(1)
        out.raw("")
    elif name == "hr":
        out.newlines(2)
        out.raw("---")
        out.newlines(2)
    elif name == "a":
        _link(el, ctx, inner, out)
    elif name == "img":
        alt = _SPACES.sub(" ", attrs.get("alt") or "").strip()
        if alt:
            out.text(f" [{alt}] ")
    elif name == "ul" or name == "ol":
        out.newlines(2 if ctx.prefix_nesting == 0 else 1)
        _list(el, ctx, inner, out)
        out.newlines(2 if ctx.prefix_nesting == 0 else 1)
    elif name == "table":
        out.newlines(2)
        _table(el, ctx, inner, out)
        out.newlines(2)
    elif name == "blockquote":
        _quote(el, ctx, inner, out)
    elif name == "pre":
        out.newlines(2)
        _children(el, _Context(ctx.prefix_nesting, True), inner + 1, out)
        out.newlines(2)
    elif name == "p" and _word_paragraph(attrs):
        # Word's MsoNormal paragraphs have no margins: they read as lines, and an empty one is a blank line.
        out.newlines(1)
        before = out.size()
        _children(el, ctx, inner, out)
        if out.size() == before:
            out.raw("")
        out.newlines(1)
    elif name in _PARAGRAPHS:
        out.newlines(2)
        _children(el, ctx, inner, out)
        out.newlines(2)
    elif name in _BLOCKS:
        out.newlines(1)
        _children(el, ctx, inner, out)
        out.newlines(1)
    else:
        _children(el, ctx, inner, out)


def _word_paragraph(attrs: dict[str, Any]) -> bool:
    return any(str(c).startswith("Mso") for c in attrs.get("class") or ())


def _hidden(attrs: dict[str, Any]) -> bool:
    style = attrs.get("style")
    return (bool(style) and _HIDDEN_STYLE.search(str(style)) is not None) or "hidden" in attrs


def _link(el: Tag, ctx: _Context, depth: int, out: _Out) -> None:
    label = _render(el, ctx, depth).strip(" ")
    href = str(el.get("href") or "").strip()
    target = href.removeprefix("mailto:").split("?")[0] if href.startswith("mailto:") else href
    shown = href.startswith(_LINK_SCHEMES) and target and _normal(target) not in _normal(label)
    if "\n" in label:
        # A link around blocks: a newsletter's card or button table, or an `<a>` never closed, which the
        # parser stretches over the rest of the body. Its lines stay lines (squeezed into one, a whole
        # message read as one line), with the target after the first, where the link begins.
        first, rest = label.split("\n", 1)
        out.block(f"{first} ({target})\n{rest}" if shown else label)
        out.newlines(1)
    elif label and shown:
        out.text(f"{label} ({target})")
    elif label:
        out.text(label)


def _normal(text: str) -> str:
    return text.lower().removeprefix("https://").removeprefix("http://").rstrip("/")


def _items(el: Tag, names: tuple[str, ...]) -> list[Tag]:
    return [c for c in el.contents if isinstance(c, Tag) and c.name in names]


def _list(el: Tag, ctx: _Context, depth: int, out: _Out) -> None:
    ordered = el.name == "ol"
    try:
        number = int(str(el.get("start") or 1))
    except ValueError:
        number = 1
    nested = ctx.prefix_nesting < _MAX_PREFIX_NESTING
    item_ctx = _Context(ctx.prefix_nesting + 1, ctx.preformatted)
    for child in el.contents:
        if isinstance(child, Tag) and child.name == "li":
            bullet = f"{number}. " if ordered else "- "
            number += 1
            if not nested:
                _children(child, ctx, depth, out)
                out.newlines(1)
                continue
            body = _render(child, item_ctx, depth + 1)
            lines = body.split("\n") if body else [""]
            indent = " " * len(bullet)
            out.newlines(1)
            out.block("\n".join([bullet + lines[0], *(indent + line if line else "" for line in lines[1:])]))
            out.newlines(1)
        elif isinstance(child, Tag):
            _element(child, ctx, depth, out)  # stray content inside a list still reads
        elif isinstance(child, NavigableString) and not isinstance(child, PreformattedString):
            _string(child, ctx, out)


def _rows(table: Tag) -> list[Tag]:
    rows = []
    for part in table.contents:
        if isinstance(part, Tag):
            if part.name == "tr":
                rows.append(part)
            elif part.name in ("thead", "tbody", "tfoot"):
                rows.extend(_items(part, ("tr",)))
    return rows


def _table(el: Tag, ctx: _Context, depth: int, out: _Out) -> None:
    caption = next(iter(_items(el, ("caption",))), None)
    if caption is not None:
        out.block(_render(caption, ctx, depth))
        out.newlines(1)
    for row in _rows(el):
        cells = [text for cell in _items(row, ("td", "th")) if (text := _render(cell, ctx, depth))]
        if not cells:
            continue
        out.newlines(1)
        if len(cells) > 1 and all("\n" not in c for c in cells):
            out.block(" | ".join(cells))
        else:
            # Layout tables (newsletters) put whole columns in cells: stack them, do not glue them.
            for cell in cells:
                out.newlines(1 if len(cells) == 1 else 2)
                out.block(cell)
        out.newlines(1)


def _quote(el: Tag, ctx: _Context, depth: int, out: _Out) -> None:
    body = _render(el, _Context(ctx.prefix_nesting + 1, ctx.preformatted), depth + 1)
    if not body:
        return
    out.newlines(2)
    if ctx.prefix_nesting < _MAX_PREFIX_NESTING:
        body = "\n".join(f"> {line}" if line else ">" for line in body.split("\n"))
    out.block(body)
    out.newlines(2)
