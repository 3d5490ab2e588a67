"""What callers hand the engine and get back: pydantic models at the boundary (Dagster, the CLI, tests)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipelines.store import DEFAULT_MAX_ATTACHMENT_BYTES, normalise_tags

Strategy = Literal["pages", "batch"]
RoundKind = Literal["first", "incremental", "resumed", "listing", "gone"]


class SyncOptions(BaseModel):
    """One run's choices. Anything left None falls back to the customer's settings in the control store.

    - `folders`: well-known names (`inbox`, `sentitems`), display-name paths (`Inbox/Receipts/2024`, with
      `\\/` for a slash inside a name) or folder ids; `subfolders` adds every folder below each.
    - `filter`: text (`after:2024/01/07 category:Work`) or Carbon JSON; `""`/`{}` keeps every message.
    - `one_off`: list the folders once with the pushed-down `$filter` instead of running delta rounds (when
      the filter narrows the listing; otherwise a delta round is just as cheap and leaves a delta link).
    - `attachments`: download attachment content (metadata is always recorded); inline images only with
      `inline_attachments`; nothing larger than `max_attachment_bytes`.
    - `strategy`: `pages` (bodies in the listing pages), `batch` (the fields the filter needs first, then the
      bodies of new or changed matches by $batch), or None to choose by the filter.
    - `tags`: Carbon's sync tags, merged onto every file the run lists (its keys replace a file's values for
      those keys, other keys stay); values become strings or lists of strings, as in Carbon. A delta round
      lists only what changed, so files the round does not list keep their tags.
    - `rebuild_index`: rebuild an existing full-text index at the end of a run that changed something (the
      CLI's way); Dagster turns it off and leaves the rebuild to its `email_search_index` asset.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    folders: tuple[str, ...] | None = None
    subfolders: bool = False
    filter: str | dict[str, Any] | None = None
    one_off: bool = False
    attachments: bool = False
    inline_attachments: bool = False
    max_attachment_bytes: int = Field(DEFAULT_MAX_ATTACHMENT_BYTES, ge=0)
    strategy: Strategy | None = None
    connection_id: int | None = None
    trigger: str | None = None
    request_id: str | None = None
    tags: dict[str, str | list[str]] | None = None
    orchestrator_run_id: str | None = None
    batch_rows: int = Field(500, ge=1, le=10_000, description="rows per store transaction")
    rebuild_index: bool = True
    convert_workers: int | None = Field(
        None, ge=0, le=32, description="processes converting HTML to text; 0 converts in the run's process"
    )

    @field_validator("tags", mode="before")
    @classmethod
    def _carbon_tags(cls, tags: Any) -> dict[str, str | list[str]] | None:
        return normalise_tags(tags) or None

    @field_validator("folders")
    @classmethod
    def _some_folders(cls, folders: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if folders is not None:
            folders = tuple(f.strip() for f in folders)
            if not folders or any(not f for f in folders):
                raise ValueError("name at least one folder, and no empty folder names")
        return folders


class Counts(BaseModel):
    """What happened to messages: listed (`seen`), kept by the filter (`matched`), bodies transferred
    (`fetched`), and what the store did with them. `skipped` maps a reason to a count."""

    seen: int = 0
    matched: int = 0
    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    moved: int = 0
    unchanged: int = 0
    deleted: int = 0
    skipped: dict[str, int] = Field(default_factory=dict)

    def add(self, other: Counts) -> None:
        for name in ("seen", "matched", "fetched", "inserted", "updated", "moved", "unchanged", "deleted"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for reason, count in other.skipped.items():
            self.skipped[reason] = self.skipped.get(reason, 0) + count


class FolderOutcome(BaseModel):
    """One folder's part of a run."""

    folder_id: str
    path: str
    round: RoundKind
    restarted: bool = Field(False, description="Graph no longer knew the stored link: relisted and swept")
    pages: int = 0
    counts: Counts = Field(default_factory=Counts)


class SyncResult(BaseModel):
    """A finished run: its plan and strategy, folders, counts and the requests it took."""

    customer_id: str
    connection_id: int
    mailbox: str
    run_id: int
    status: Literal["succeeded", "failed"]
    error: str | None = None
    plan: str
    strategy: Strategy
    strategy_reason: str
    folders: list[FolderOutcome]
    counts: Counts
    requests: int
    throttled_waits: int
    throttled_seconds: float
    created_file_ids: list[int] = Field(default_factory=list)
    changed_file_ids: list[int] = Field(default_factory=list)
    removed_file_ids: list[int] = Field(default_factory=list)
    started_at: datetime
    finished_at: datetime

    @property
    def seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True, slots=True)
class SyncProgress:
    """Handed to a run's progress callback after each stored batch (and as folders start and finish).

    `expected` is the folders' item counts as Graph reported them when the run began: a good total for a
    first sync; incremental rounds finish long before reaching it.
    """

    folders_total: int
    folders_done: int
    folder: str | None
    seen: int
    stored: int
    expected: int | None
    done: bool = False


class EmailResync(BaseModel):
    """One email of a resync: what differed, and whether anything was written.

    `outcome`: `updated` (written; `changed_fields` names what differed), `unchanged` (nothing written),
    `inserted` (new to the store: it arrived in a synced folder since the last sync), `gone` (deleted from the
    mailbox, so removed here too), `out_of_scope` (outside the synced folders, or not selected by their
    filter: removed from the store, or not stored; `detail` says which and why), `unknown` (a file id the
    store never gave).
    """

    file_id: int | None
    message_id: str
    outcome: Literal["updated", "unchanged", "inserted", "gone", "out_of_scope", "unknown"]
    changed_fields: list[str] = Field(default_factory=list)
    tombstone_lifted: bool = False
    detail: str | None = None


class ResyncResult(BaseModel):
    customer_id: str
    emails: list[EmailResync]
    requests: int


class DeleteResult(BaseModel):
    """File ids deleted (content gone, tombstone kept; `newly_deleted` the ones this run deleted, the rest
    were deleted before); the file and message ids the store did not hold."""

    customer_id: str
    deleted: list[int]
    not_found: list[int]
    newly_deleted: list[int] = Field(default_factory=list)
    message_ids_not_found: list[str] = Field(default_factory=list)
    record_kept: bool


class CustomerDeleted(BaseModel):
    """What a customer's deletion removed; `skipped` says why nothing was (see `delete_customer`)."""

    customer_id: str
    mail_store_deleted: bool
    customer_purged: bool
    skipped: str | None = None
