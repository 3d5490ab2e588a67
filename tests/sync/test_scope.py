"""The resync's scope: a message belongs in the store only if its folder has a round and a filter of that
folder's rounds selects it (pure; the end-to-end cases are in test_resync_scope.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from pipelines.graph import Message
from pipelines.store import SyncState
from pipelines.sync._scope import scope_of

NOW = datetime(2024, 5, 1, tzinfo=UTC)


def state(folder: str, filter_text: str | None, fingerprint: str = "fp") -> SyncState:
    return SyncState(folder, fingerprint, "idle", None, "delta", False, 3, NOW, NOW, NOW, filter_text)


def message(folder: str, *categories: str) -> Message:
    return Message.model_validate(
        {"id": "AAMk-1", "parentFolderId": folder, "categories": list(categories), "subject": "Hello"}
    )


def test_only_synced_folders_and_what_their_filter_selects_are_in_scope() -> None:
    scope = scope_of(
        [state("inbox", "category:Travel"), state("archive", ""), state("sent", "category:Travel")]
    )
    assert scope.refusal(message("inbox", "Travel"), "Inbox") is None
    assert scope.refusal(message("archive"), "Archive") is None  # "" keeps every message
    assert scope.refusal(message("drafts", "Travel"), "Drafts") == (
        "it is in folder 'Drafts', which this customer does not sync"
    )
    assert scope.refusal(message("inbox", "Work"), "Inbox") == (
        "it does not match the filter 'category:Travel' that folder 'Inbox' is synced with"
    )


def test_a_folder_with_two_rounds_keeps_what_either_selects() -> None:
    # A folder's rounds are those of one filter (pushed, or not for a big folder) or, for a moment, an old
    # filter's beside the new one: the store may hold what either selects until the new round ends.
    scope = scope_of([state("inbox", "category:Travel", "a"), state("inbox", "category:Work", "b")])
    assert scope.refusal(message("inbox", "Work"), "Inbox") is None
    refusal = scope.refusal(message("inbox", "Personal"), "Inbox")
    assert refusal == (
        "it does not match the filter 'category:Travel' or 'category:Work' that folder 'Inbox' is synced with"
    )


def test_a_round_begun_before_filters_were_recorded_vouches_for_its_folder_alone() -> None:
    scope = scope_of([state("inbox", None)])
    assert scope.refusal(message("inbox", "Anything"), "Inbox") is None
    assert scope.refusal(message("archive"), "Archive") is not None


def test_a_store_without_rounds_holds_nothing() -> None:
    assert scope_of([]).refusal(message("inbox"), "Inbox") is not None
