"""A run's plan: the filter's Graph plan, delta rounds or a one-off listing, and how bodies are fetched.

Pure. Each folder's round is stored under a fingerprint of everything that shapes its pages (the filter, the
mode, the pushed `$filter`, the properties selected), so a changed filter starts a new round while an
unchanged one resumes where the last run stopped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

import filters
from pipelines.sync._models import Strategy
from pipelines.sync._rows import FULL_SELECT, light_select

Mode = Literal["delta", "listing"]
_FINGERPRINT_VERSION = 1


@dataclass(frozen=True, slots=True)
class FolderPlan:
    """How one folder is listed: the pushed `$filter` (None: everything), the properties, the strategy."""

    odata_filter: str | None
    select: tuple[str, ...]
    strategy: Strategy
    fingerprint: str


@dataclass(frozen=True, slots=True)
class RunPlan:
    tree: filters.Filter
    mode: Mode
    graph: filters.GraphPlan
    strategy: Strategy
    reason: str
    pushed: FolderPlan
    unpushed: FolderPlan | None  # for folders too big for a filtered delta round (Graph's 5,000 cap)

    @property
    def round_cap(self) -> int:
        """The most messages Graph lists in one filtered delta round (0 when the rounds are not filtered)."""
        return self.graph.round_cap or 0

    @property
    def filter_text(self) -> str:
        return filters.to_text(self.tree)

    def explain(self) -> str:
        lines = [self.graph.explain()]
        lines.append(f"Mode: {'one-off listing' if self.mode == 'listing' else 'delta rounds'}.")
        lines.append(f"Bodies: {_STRATEGY_WORDS[self.strategy]} ({self.reason}).")
        if self.unpushed is not None:
            lines.append(
                f"Folders holding {self.round_cap:,} messages or more run their delta rounds without the "
                "$filter (Graph stops a filtered round at that many) and check it here."
            )
        return "\n".join(lines)


_STRATEGY_WORDS = {
    "pages": "in the listing pages",
    "batch": "only the properties the filter reads are listed; bodies of new or changed matches by $batch",
}


def _fingerprint(mode: Mode, tree: filters.Filter, odata: str | None, select: tuple[str, ...]) -> str:
    key = "\x1f".join((str(_FINGERPRINT_VERSION), mode, filters.to_text(tree), odata or "", ",".join(select)))
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def _folder_plan(mode: Mode, tree: filters.Filter, odata: str | None, strategy: Strategy) -> FolderPlan:
    select = FULL_SELECT if strategy == "pages" else light_select(filters.required_fields(tree))
    return FolderPlan(odata, select, strategy, _fingerprint(mode, tree, odata, select))


def plan_run(tree: filters.Filter, *, one_off: bool, strategy: Strategy | None) -> RunPlan:
    """Choose the mode and the strategy for a filter (`strategy` forces one)."""
    listing = filters.plan(tree, "list")
    mode: Mode = "listing" if one_off and listing.selective else "delta"
    graph = listing if mode == "listing" else filters.plan(tree, "delta")
    if strategy is not None:
        chosen, reason = strategy, "as asked"
    elif graph.residual is None:
        chosen = "pages"
        reason = (
            "the filter keeps every message"
            if isinstance(tree, filters.MatchAll)
            else "Graph checks the whole filter, so every listed message is kept"
        )
    else:
        chosen = "batch"
        reason = (
            f"{filters.to_text(graph.residual)} is checked here, so listing every body would transfer and "
            "convert the bodies of messages the filter drops"
        )
    pushed = _folder_plan(mode, tree, graph.odata_filter, chosen)
    unpushed = None
    if mode == "delta" and graph.odata_filter is not None:
        # Without the $filter every message of the folder is listed: only the filter's properties, then.
        unpushed = _folder_plan(mode, tree, None, "batch")
    return RunPlan(tree, mode, graph, chosen, reason, pushed, unpushed)


def folder_plan(run: RunPlan, *, total: int | None, existing: set[str]) -> FolderPlan:
    """How one folder is listed: the pushed plan, unless the folder is too big for a filtered delta round
    (Graph silently stops one at 5,000 messages, and a sweep would then remove the rest) or already runs its
    rounds without the push. `existing`: the fingerprints of the folder's stored rounds, so that a folder
    growing past the cap does not restart its rounds, nor one shrinking below it."""
    if run.unpushed is None or run.pushed.fingerprint in existing:
        return run.pushed
    if run.unpushed.fingerprint in existing or (total or 0) >= run.round_cap:
        return run.unpushed
    return run.pushed
