"""The filter language's exceptions: one tree, caught by meaning, never by message text.

    FilterError (ValueError)   anything wrong with a filter a person or a client wrote
    ├── FilterSyntaxError      the text or the JSON does not have the form of a filter (a position or a path)
    ├── FilterValueError       an unknown key, or a known key with a value it cannot take
    └── FilterLimitError       more than 256 leaves, deeper than 16 levels, longer than 8 KiB of text

Every error carries what was wrong (`message`), what was expected (`expected`), and where: for text, the
0-based `position` in `text` (with `line` and `column`, 1-based, and a caret line in `str()`); for Carbon
JSON, a `path` such as ``AND[1].OR[0].value``. `key` names the filter key involved and `suggestion` the
nearest known key or value when there is one. `FilterError` is a `ValueError`, so a pydantic validator that
calls `filters.parse` turns it into an ordinary validation error.
"""

from __future__ import annotations

from typing import Any


class FilterError(ValueError):
    """A filter that cannot be used, with what was wrong, where, and what was expected."""

    def __init__(
        self,
        message: str,
        *,
        expected: str | None = None,
        key: str | None = None,
        path: str | None = None,
        text: str | None = None,
        position: int | None = None,
        suggestion: str | None = None,
    ) -> None:
        self.message = message
        self.expected = expected
        self.key = key
        self.path = path
        self.text = text
        self.position = position
        self.suggestion = suggestion
        super().__init__(self._render())

    @property
    def line(self) -> int | None:
        """The 1-based line of `position` in `text`."""
        if self.text is None or self.position is None:
            return None
        return self.text.count("\n", 0, self.position) + 1

    @property
    def column(self) -> int | None:
        """The 1-based column of `position` within its line."""
        if self.text is None or self.position is None:
            return None
        return self.position - (self.text.rfind("\n", 0, self.position) + 1) + 1

    def located(
        self, *, text: str | None = None, position: int | None = None, path: str | None = None
    ) -> FilterError:
        """The same error, placed: the parsers add where once they know it."""
        return type(self)(
            self.message,
            expected=self.expected,
            key=self.key,
            path=path if path is not None else self.path,
            text=text if text is not None else self.text,
            position=position if position is not None else self.position,
            suggestion=self.suggestion,
        )

    def _render(self) -> str:
        out = self.message
        if self.path:
            out += f" at {self.path}"
        elif self.text is not None and self.position is not None:
            out += (
                f" at column {self.column}"
                if "\n" not in self.text
                else f" at line {self.line}, column {self.column}"
            )
        if self.suggestion:
            out += f"; did you mean {self.suggestion}?"
        if self.expected:
            out += f"{'' if self.suggestion else '.'} Expected {self.expected}."
        if self.text is not None and self.position is not None:
            start = self.text.rfind("\n", 0, self.position) + 1
            end = self.text.find("\n", self.position)
            source = self.text[start : end if end >= 0 else len(self.text)]
            out += f"\n  {source}\n  {' ' * (self.position - start)}^"
        return out

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only attributes would be lost by the default exception pickling (Dagster pickles errors).
        return (_rebuild, (type(self), self.message, self._fields()))

    def _fields(self) -> dict[str, Any]:
        return {
            "expected": self.expected,
            "key": self.key,
            "path": self.path,
            "text": self.text,
            "position": self.position,
            "suggestion": self.suggestion,
        }


def _rebuild(cls: type[FilterError], message: str, fields: dict[str, Any]) -> FilterError:
    return cls(message, **fields)


class FilterSyntaxError(FilterError):
    """The text or JSON is not shaped like a filter: a stray token, an unclosed quote, a wrong JSON type."""


class FilterValueError(FilterError):
    """An unknown key, or a value its key cannot take (an impossible date, a malformed address, …)."""


class FilterLimitError(FilterError):
    """The filter is past a limit that protects the API: leaves, depth or length."""
