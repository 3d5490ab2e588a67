"""What a customer's mail store is meant to hold, for work outside a sync round (a resync of single emails).

A sync keeps the store equal to what the filter selects from the synced folders (DESIGN's first invariant).
The synced folders are those with a round in the store, and each round records the filter it selects by, so a
resync can hold a refetched message to the same rule: stored only if its folder is synced and a filter of that
folder's rounds selects it. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import filters
from pipelines.graph import Message
from pipelines.store import SyncState


@dataclass(frozen=True, slots=True)
class Scope:
    """Folder id → the filters of its rounds, as (canonical text, predicate); None stands for a round begun
    before rounds recorded their filter, whose folder is known but not what it selects."""

    rounds: Mapping[str, tuple[tuple[str, filters.Predicate] | None, ...]]

    def refusal(self, message: Message, folder_path: str) -> str | None:
        """Why the store must not hold `message` as Graph has it now (None: it must)."""
        found = self.rounds.get(message.parent_folder_id or "")
        if not found:
            return f"it is in folder {folder_path!r}, which this customer does not sync"
        facts = message.to_facts()
        if any(entry is None or entry[1](facts) for entry in found):
            return None
        shown = " or ".join(repr(text) for text, _ in (e for e in found if e is not None))
        return f"it does not match the filter {shown} that folder {folder_path!r} is synced with"


def scope_of(states: Sequence[SyncState]) -> Scope:
    """The scope of a store from its rounds (`MailStore.sync_states()`)."""
    rounds: dict[str, dict[str | None, None]] = {}
    for state in states:
        rounds.setdefault(state.folder_id, {})[state.filter_text] = None
    return Scope(
        {
            folder: tuple(
                None if text is None else (text, filters.compile(filters.parse(text))) for text in texts
            )
            for folder, texts in rounds.items()
        }
    )
