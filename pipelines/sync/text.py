"""HTML mail bodies to readable plain text (BeautifulSoup on lxml), in bounded time and memory.

Kept: paragraphs and line breaks, headings, lists with bullets or numbers, table rows (cells joined by " | "),
block quotes ("> "), link targets as `text (url)`, image alt text. Dropped: script, style, head, comments
(which is what Office's `<!--[if mso]>` blocks are), and elements hidden with `display:none`.
Hostile input is bounded: inline `data:` images are dropped first, the HTML is then cut at `max_chars` with a
marker saying so (2 MB converts in about 2 s on one core), and structure nested deeper than `MAX_DEPTH` is
flattened to its text instead of being walked recursively.
"""

import re
from dataclasses import dataclass

from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import PreformattedString

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
    soup = BeautifulSoup(html, "lxml")
    text = _render(soup, _Context())
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


@dataclass(frozen=True, slots=True)
class _Context:
    depth: int = 0
    prefix_nesting: int = 0
    preformatted: bool = False

    def deeper(self, **changes: object) -> "_Context":
        if not changes:  # the common case, once per element
            return _Context(self.depth + 1, self.prefix_nesting, self.preformatted)
        values = {
            "depth": self.depth + 1,
            "prefix_nesting": self.prefix_nesting,
            "preformatted": self.preformatted,
        }
        values.update(changes)
        return _Context(**values)  # type: ignore[arg-type]


class _Out:
    """Inline text and requested line breaks, joined with whitespace collapsed across the pieces."""

    __slots__ = ("line", "lines", "pending")

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.line: list[str] = []
        self.pending = 0  # newlines asked for since the last text

    def text(self, piece: str) -> None:
        # Spaces at the start of a line, or after a space, collapse into nothing.
        if self.pending or not self.line or not self.line[-1] or self.line[-1].endswith(" "):
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
        if self.line or self.lines:
            self.pending = max(self.pending, count)

    def _flush_line(self) -> None:
        self.lines.append("".join(self.line).rstrip())
        self.line = []

    def result(self) -> str:
        if self.line:
            self._flush_line()
        return _BLANK_LINES.sub("\n\n", "\n".join(self.lines)).strip("\n")


def _render(node: Tag, ctx: _Context) -> str:
    out = _Out()
    _children(node, ctx, out)
    return out.result()


def _children(node: Tag, ctx: _Context, out: _Out) -> None:
    for child in node.children:
        if isinstance(child, Tag):
            _element(child, ctx, out)
        elif isinstance(child, NavigableString) and not isinstance(child, PreformattedString):
            _string(str(child), ctx, out)


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


def _element(el: Tag, ctx: _Context, out: _Out) -> None:
    name = el.name
    if name in _DROP or _hidden(el):
        return
    if ctx.depth >= MAX_DEPTH:
        _flat(el, out)
        return
    inner = ctx.deeper()
    if name == "br":
        out.newlines(1)
        out.raw("")
    elif name == "hr":
        out.newlines(2)
        out.raw("---")
        out.newlines(2)
    elif name == "a":
        _link(el, inner, out)
    elif name == "img":
        alt = _SPACES.sub(" ", el.get("alt") or "").strip()
        if alt:
            out.text(f" [{alt}] ")
    elif name in ("ul", "ol"):
        out.newlines(2 if ctx.prefix_nesting == 0 else 1)
        _list(el, inner, out)
        out.newlines(2 if ctx.prefix_nesting == 0 else 1)
    elif name == "table":
        out.newlines(2)
        _table(el, inner, out)
        out.newlines(2)
    elif name == "blockquote":
        _quote(el, inner, out)
    elif name == "pre":
        out.newlines(2)
        _children(el, inner.deeper(preformatted=True), out)
        out.newlines(2)
    elif name == "p" and _word_paragraph(el):
        # Word's MsoNormal paragraphs have no margins: they read as lines, and an empty one is a blank line.
        out.newlines(1)
        before = out.size()
        _children(el, inner, out)
        if out.size() == before:
            out.raw("")
        out.newlines(1)
    elif name in _PARAGRAPHS:
        out.newlines(2)
        _children(el, inner, out)
        out.newlines(2)
    elif name in _BLOCKS:
        out.newlines(1)
        _children(el, inner, out)
        out.newlines(1)
    else:
        _children(el, inner, out)


def _word_paragraph(el: Tag) -> bool:
    return any(str(c).startswith("Mso") for c in el.get("class") or ())


def _hidden(el: Tag) -> bool:
    style = el.get("style")
    return (bool(style) and _HIDDEN_STYLE.search(str(style)) is not None) or el.has_attr("hidden")


def _link(el: Tag, ctx: _Context, out: _Out) -> None:
    label = _SPACES.sub(" ", _render(el, ctx)).strip()
    href = str(el.get("href") or "").strip()
    target = href.removeprefix("mailto:").split("?")[0] if href.startswith("mailto:") else href
    shown = href.startswith(_LINK_SCHEMES) and target and _normal(target) not in _normal(label)
    if label and shown:
        out.text(f"{label} ({target})")
    elif label:
        out.text(label)


def _normal(text: str) -> str:
    return text.lower().removeprefix("https://").removeprefix("http://").rstrip("/")


def _items(el: Tag, names: tuple[str, ...]) -> list[Tag]:
    return [c for c in el.children if isinstance(c, Tag) and c.name in names]


def _list(el: Tag, ctx: _Context, out: _Out) -> None:
    ordered = el.name == "ol"
    try:
        number = int(str(el.get("start") or 1))
    except ValueError:
        number = 1
    nested = ctx.prefix_nesting < _MAX_PREFIX_NESTING
    for child in el.children:
        if isinstance(child, Tag) and child.name == "li":
            bullet = f"{number}. " if ordered else "- "
            number += 1
            body = _render(child, ctx.deeper(prefix_nesting=ctx.prefix_nesting + 1)) if nested else None
            if body is None:
                _children(child, ctx, out)
                out.newlines(1)
                continue
            lines = body.split("\n") if body else [""]
            indent = " " * len(bullet)
            out.newlines(1)
            out.block("\n".join([bullet + lines[0], *(indent + line if line else "" for line in lines[1:])]))
            out.newlines(1)
        elif isinstance(child, Tag):
            _element(child, ctx, out)  # stray content inside a list still reads
        elif isinstance(child, NavigableString) and not isinstance(child, PreformattedString):
            _string(str(child), ctx, out)


def _rows(table: Tag) -> list[Tag]:
    rows = []
    for part in table.children:
        if isinstance(part, Tag):
            if part.name == "tr":
                rows.append(part)
            elif part.name in ("thead", "tbody", "tfoot"):
                rows.extend(_items(part, ("tr",)))
    return rows


def _table(el: Tag, ctx: _Context, out: _Out) -> None:
    caption = next(iter(_items(el, ("caption",))), None)
    if caption is not None:
        out.block(_render(caption, ctx))
        out.newlines(1)
    for row in _rows(el):
        cells = [text for cell in _items(row, ("td", "th")) if (text := _render(cell, ctx))]
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


def _quote(el: Tag, ctx: _Context, out: _Out) -> None:
    body = _render(el, ctx.deeper(prefix_nesting=ctx.prefix_nesting + 1))
    if not body:
        return
    out.newlines(2)
    if ctx.prefix_nesting < _MAX_PREFIX_NESTING:
        body = "\n".join(f"> {line}" if line else ">" for line in body.split("\n"))
    out.block(body)
    out.newlines(2)
