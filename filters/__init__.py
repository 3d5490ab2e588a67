"""The filter language: parse, render, evaluate and plan mail filters. No I/O.

tree = filters.parse('after:2024/01/07 AND (category:Personal OR category:"Team A") has:attachment')
filters.to_text(tree)              # the canonical text
filters.to_carbon(tree)            # the canonical Carbon JSON, as a dict
filters.matches(tree, message)     # a Graph message dict or a filters.MessageFacts
predicate = filters.compile(tree)  # compile once, call per message
filters.plan(tree, "list")         # a GraphPlan: $filter, residual, explain()
filters.required_fields(tree)      # the $select properties the evaluator reads
"""

from filters._carbon import to_carbon
from filters._errors import FilterError, FilterLimitError, FilterSyntaxError, FilterValueError
from filters._evaluate import Predicate, matches, required_fields
from filters._evaluate import compile_filter as compile  # the brief's name; shadows the builtin only here
from filters._facts import MessageFacts
from filters._parse import parse
from filters._plan import GraphPlan, plan
from filters._text import to_text
from filters._tree import (
    MAX_DEPTH,
    MAX_LEAVES,
    MAX_TEXT_BYTES,
    After,
    And,
    Before,
    Category,
    Cc,
    Filter,
    From,
    HasAttachment,
    Importance,
    IsFlagged,
    IsRead,
    IsUnread,
    Leaf,
    MatchAll,
    Not,
    Or,
    Subject,
    To,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_LEAVES",
    "MAX_TEXT_BYTES",
    "After",
    "And",
    "Before",
    "Category",
    "Cc",
    "Filter",
    "FilterError",
    "FilterLimitError",
    "FilterSyntaxError",
    "FilterValueError",
    "From",
    "GraphPlan",
    "HasAttachment",
    "Importance",
    "IsFlagged",
    "IsRead",
    "IsUnread",
    "Leaf",
    "MatchAll",
    "MessageFacts",
    "Not",
    "Or",
    "Predicate",
    "Subject",
    "To",
    "compile",
    "matches",
    "parse",
    "plan",
    "required_fields",
    "to_carbon",
    "to_text",
]
