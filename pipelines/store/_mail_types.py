"""The mail store's own row and result types: plain dataclasses the engine fills and the readers get back.

The store imports nothing of ours, so the engine maps Graph messages to `EmailRow` itself.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipelines.store._tags import TagGroup, TagValue

# Carbon's ExternalFileSyncStatuses; the store keeps whatever the engine sets, READY for a synced email.
MAX_ID = 2**63 - 1
"""The largest id either store can hold (file ids, customer and data source ids are BIGINTs)."""
READY = "READY"


@dataclass(frozen=True, slots=True)
class Address:
    """A recipient or sender as Graph gives it: display name and SMTP address."""

    name: str | None
    address: str | None


@dataclass(frozen=True, slots=True)
class AttachmentRow:
    """An attachment's metadata, and its content when the run asked for it (`content_state` says why not)."""

    attachment_id: str
    name: str | None = None
    content_type: str | None = None
    size: int | None = None
    is_inline: bool = False
    kind: str = "file"  # 'file', 'item' or 'reference'
    format: str | None = None  # 'eml', 'msg', 'ics' when recognised
    content_id: str | None = None
    last_modified_at: datetime | None = None
    content: bytes | None = None
    content_state: str = "not_requested"  # used when content is None: 'not_requested', 'inline_skipped', ...


@dataclass(frozen=True, slots=True)
class EmailRow:
    """One message as the engine wants it stored; `attachments=None` leaves stored attachments alone."""

    message_id: str
    folder_id: str
    folder_path: str | None = None
    internet_message_id: str | None = None
    conversation_id: str | None = None
    data_source_id: int | None = None
    subject: str | None = None
    from_name: str | None = None
    from_address: str | None = None
    sender_name: str | None = None
    sender_address: str | None = None
    to_recipients: tuple[Address, ...] = ()
    cc_recipients: tuple[Address, ...] = ()
    bcc_recipients: tuple[Address, ...] = ()
    reply_to: tuple[Address, ...] = ()
    received_at: datetime | None = None
    sent_at: datetime | None = None
    created_at: datetime | None = None
    modified_at: datetime | None = None
    categories: tuple[str, ...] = ()
    importance: str | None = None
    is_read: bool | None = None
    flag_status: str | None = None
    has_attachments: bool | None = None
    web_link: str | None = None
    change_key: str | None = None
    body_content_type: str | None = None
    body_html: str | None = None
    body_text: str | None = None
    unique_body_text: str | None = None
    body_preview: str | None = None
    sync_status: str = READY
    sync_error: str | None = None
    attachments: tuple[AttachmentRow, ...] | None = None


@dataclass(frozen=True, slots=True)
class FolderRow:
    """A mail folder with its display-name path from the mailbox root (`Inbox/Receipts/2024`)."""

    folder_id: str
    display_name: str
    path: str
    parent_id: str | None = None
    well_known_name: str | None = None
    data_source_id: int | None = None
    total_count: int | None = None
    unread_count: int | None = None
    child_folder_count: int | None = None


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a round goes next: a next link while pages remain, a delta link when the round is complete.

    Both empty means a plain listing (no delta) has ended.
    """

    next_link: str | None = None
    delta_link: str | None = None

    def __post_init__(self) -> None:
        if self.next_link and self.delta_link:
            raise ValueError("a page is followed by a next link or a delta link, not both")


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a round, applied in one transaction with the cursor that follows it (DESIGN invariant 2).

    `upserts` are the matching messages to store; `removals` the ids to take out of this folder (Graph's
    `@removed`, or listed messages that no longer match); `seen` the ids listed but not refetched because
    their change key is unchanged (they count for a sweep, and for tags). `tags`, normalised
    (`normalise_tags`), are merged onto every live file the page lists, upserts and seen alike.
    """

    folder_id: str
    fingerprint: str
    upserts: Sequence[EmailRow] = ()
    removals: Sequence[str] = ()
    seen: Sequence[str] = ()
    cursor: Cursor = field(default_factory=Cursor)
    request_id: str | None = None
    tags: Mapping[str, TagValue] | None = None


@dataclass(frozen=True, slots=True)
class PageResult:
    """What a page did, for the run's counts and for webhooks (file ids created, changed, removed)."""

    inserted: int = 0
    updated: int = 0
    moved: int = 0
    unchanged: int = 0
    removed: int = 0
    swept: int = 0
    skipped: Mapping[str, int] = field(default_factory=dict)
    created_file_ids: tuple[int, ...] = ()
    changed_file_ids: tuple[int, ...] = ()
    removed_file_ids: tuple[int, ...] = ()
    round_finished: bool = False


@dataclass(frozen=True, slots=True)
class SyncState:
    """The stored position of a folder's round for one filter fingerprint."""

    folder_id: str
    fingerprint: str
    status: Literal["in_round", "idle"]
    next_link: str | None
    delta_link: str | None
    sweep: bool
    pages: int
    round_started_at: datetime
    round_finished_at: datetime | None
    updated_at: datetime
    filter_text: str | None = None  # the round's canonical filter text; None: begun before it was recorded


@dataclass(frozen=True, slots=True)
class KnownMessage:
    """What the store knows of a message id, so the engine fetches bodies only of new or changed ones."""

    file_id: int
    change_key: str | None
    folder_id: str | None
    removed: bool
    tombstoned: bool


@dataclass(frozen=True, slots=True)
class DeleteResult:
    """File ids deleted through Mailroom (now or before), the ones this call deleted, and the ones the store
    did not hold."""

    deleted: tuple[int, ...]
    not_found: tuple[int, ...]
    newly_deleted: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class ResyncResult:
    """A single-email resync: which stored fields differed, whether anything was written or lifted."""

    file_id: int
    changed_fields: tuple[str, ...]
    written: bool
    tombstone_lifted: bool


@dataclass(frozen=True, slots=True)
class RunStart:
    """What a sync run records when it starts."""

    plan: str = ""
    folders: tuple[str, ...] = ()
    trigger: str | None = None
    request_id: str | None = None
    orchestrator_run_id: str | None = None


@dataclass(frozen=True, slots=True)
class RunTotals:
    """A run's counts. `skipped` maps a reason ('tombstoned', 'not_matched', ...) to a count."""

    seen: int = 0
    matched: int = 0
    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    moved: int = 0
    unchanged: int = 0
    deleted: int = 0
    skipped: Mapping[str, int] = field(default_factory=dict)
    requests: int = 0
    throttled_waits: int = 0
    throttled_seconds: float = 0.0
    details: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A stored sync run."""

    run_id: int
    status: str
    started_at: datetime
    finished_at: datetime | None
    trigger: str | None
    request_id: str | None
    orchestrator_run_id: str | None
    plan: str | None
    folders: tuple[str, ...]
    totals: RunTotals
    error: str | None


@dataclass(frozen=True, slots=True)
class EmailRecord:
    """A stored email with the store's bookkeeping around it."""

    file_id: int
    row: EmailRow
    content_hash: str
    request_id: str | None
    first_seen_at: datetime
    last_synced_at: datetime
    removed_at: datetime | None
    file_contents_deleted: bool
    size_bytes: int | None


@dataclass(frozen=True, slots=True)
class AttachmentRecord:
    """A stored attachment (its content only when asked for)."""

    file_id: int
    parent_file_id: int
    message_id: str
    row: AttachmentRow
    content_sha256: str | None
    first_seen_at: datetime
    last_synced_at: datetime


@dataclass(frozen=True, slots=True)
class FileRecord:
    """An email or an attachment seen as one of Carbon's files (`/user_files_v2`)."""

    file_id: int
    kind: Literal["email", "attachment"]
    parent_file_id: int | None
    message_id: str
    attachment_id: str | None
    name: str | None
    content_type: str | None
    external_url: str | None
    sync_status: str
    sync_error: str | None
    file_size: int | None
    request_id: str | None
    data_source_id: int | None
    folder_id: str | None
    folder_path: str | None
    received_at: datetime | None
    source_created_at: datetime | None
    created_at: datetime
    updated_at: datetime
    last_sync: datetime
    removed: bool
    file_contents_deleted: bool
    tags: dict[str, TagValue] | None = None  # an attachment shows its email's


@dataclass(frozen=True, slots=True)
class FilePage:
    """One page of files and the total number of matches."""

    results: tuple[FileRecord, ...]
    count: int


@dataclass(frozen=True, slots=True)
class EmailSummary:
    """A line of the newest-messages preview."""

    file_id: int
    received_at: datetime | None
    subject: str | None
    from_address: str | None
    folder_path: str | None


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A full-text search result, best first."""

    file_id: int
    score: float
    subject: str | None
    from_address: str | None
    received_at: datetime | None


SearchIndexStatus = Literal["missing", "stale", "current"]
"""The full-text index: never built, built before the latest write of an email, or built after it."""


@dataclass(frozen=True, slots=True)
class StoreCounts:
    """How much the store holds."""

    emails: int
    by_status: Mapping[str, int]
    removed: int
    contents_deleted: int
    text_characters: int  # of the text bodies still stored (Carbon's num_characters_synced)
    tombstones: int
    attachments: int
    folders: int


@dataclass(frozen=True, slots=True)
class Integrity:
    """What the asset checks look at: duplicates (must be 0) and live emails without any body."""

    duplicate_message_ids: int
    duplicate_file_ids: int
    live_without_body: int

    @property
    def ok(self) -> bool:
        return not (self.duplicate_message_ids or self.duplicate_file_ids or self.live_without_body)


OrderBy = Literal["created_at", "updated_at", "name", "last_sync", "file_size", "id"]


class FileQuery(BaseModel):
    """Filters, order and page for listing files, after Carbon's `/user_files_v2` (filters are ANDed)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    file_ids: list[int] | None = None
    message_ids: list[str] | None = None  # Carbon's external_file_ids
    sync_statuses: list[str] | None = None
    name_contains: str | None = None  # case-insensitive substring of the subject or attachment name
    parent_file_ids: list[int] | None = None
    root_files_only: bool = False
    kinds: list[Literal["email", "attachment"]] | None = None
    non_synced_only: bool = False
    request_ids: list[str] | None = Field(default=None, max_length=100)
    sync_error_contains: str | None = None  # "" keeps only files without an error
    external_urls: list[str] | None = None
    data_source_ids: list[int] | None = None
    folder_ids: list[str] | None = None
    received_after: datetime | None = None  # inclusive
    received_before: datetime | None = None  # exclusive
    include_removed: bool = False
    order_by: OrderBy = "updated_at"
    order_dir: Literal["asc", "desc"] = "asc"
    limit: int = Field(default=10, ge=0, le=1000)
    offset: int = Field(default=0, ge=0)
    min_file_id: int = Field(default=0, ge=0)  # Carbon's starting_id: only files with file_id >= this
    tags: TagGroup | None = None  # Carbon's tags_v2 (or its deprecated tags), parsed

    @model_validator(mode="after")
    def _root_only_alone(self) -> "FileQuery":
        if self.root_files_only and self.parent_file_ids:
            raise ValueError("root_files_only cannot be combined with parent_file_ids")
        return self
