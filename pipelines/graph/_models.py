"""Pydantic models of Graph's mail JSON: messages, folders, attachments, and the pages that carry them.

They are lenient on purpose: every field may be missing (a `$select` asks for a few) or null (drafts have no
sender), unknown fields are ignored, `"isRead": "true"` is read as a bool, and every time becomes an aware UTC
`datetime`. `model_fields_set` tells a present `false` from an absent field. Pages are parsed straight from
the response bytes (`model_validate_json`), which keeps the hot path in pydantic's Rust core: the only Python
step is one check per message after validation (times to UTC, null lists to empty), because a per-field Python
validator would make pydantic build Python objects from the JSON before validating them, at twice the cost.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from pydantic import AliasPath, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

if TYPE_CHECKING:
    import filters


def _as_utc(value: datetime | None) -> datetime | None:
    # Graph sends UTC with a `Z`; a bare time (dateTimeTimeZone parts, some replays) is UTC too.
    if value is None or value.tzinfo is UTC:
        return value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class _GraphModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, extra="ignore")


class Recipient(_GraphModel):
    """A sender or recipient, flattened from Graph's `{"emailAddress": {"name", "address"}}`.

    Reading the nested keys by path keeps one model per recipient instead of two, which halves the cost of
    a page of full messages; `emailAddress: null` gives a recipient with neither.
    """

    name: str | None = Field(None, validation_alias=AliasPath("emailAddress", "name"))
    address: str | None = Field(None, validation_alias=AliasPath("emailAddress", "address"))


class ItemBody(_GraphModel):
    content_type: str | None = None
    content: str | None = None


class DateTimeTimeZone(_GraphModel):
    date_time: str | None = None
    time_zone: str | None = None


class FollowupFlag(_GraphModel):
    flag_status: str | None = None
    start_date_time: DateTimeTimeZone | None = None
    due_date_time: DateTimeTimeZone | None = None
    completed_date_time: DateTimeTimeZone | None = None


class InternetMessageHeader(_GraphModel):
    name: str
    value: str | None = None


class Removed(_GraphModel):
    reason: str | None = None


class Attachment(_GraphModel):
    """An attachment's metadata. `kind` says file, item (an attached mail, event or contact) or reference."""

    id: str
    odata_type: str | None = Field(None, alias="@odata.type")
    name: str | None = None
    content_type: str | None = None
    size: int | None = None
    is_inline: bool | None = None
    last_modified_date_time: datetime | None = None
    content_id: str | None = None
    content_bytes: str | None = None

    @model_validator(mode="after")
    def _normalise(self) -> Attachment:
        self.last_modified_date_time = _as_utc(self.last_modified_date_time)
        return self

    @property
    def kind(self) -> Literal["file", "item", "reference"]:
        """What sort of attachment this is, from `@odata.type` (a missing type is a file, Graph's default)."""
        odata = (self.odata_type or "").lower()
        if odata.endswith("itemattachment"):
            return "item"
        if odata.endswith("referenceattachment"):
            return "reference"
        return "file"

    @property
    def content_kind(self) -> Literal["item", "reference", "eml", "msg", "ics", "file"]:
        """What the content is, for recording: an item, a reference, a saved mail or calendar file, or a file.

        A mail forwarded from Outlook arrives as an item (its `/$value` is MIME, or iCal for an event); a
        saved `.eml`, `.msg` or `.ics` attached as a file keeps whatever content type the sender set, so the
        extension counts as much as the content type.
        """
        if self.kind != "file":
            return self.kind
        name = (self.name or "").lower()
        ctype = (self.content_type or "").split(";")[0].strip().lower()
        if name.endswith(".eml") or ctype == "message/rfc822":
            return "eml"
        if name.endswith(".msg") or ctype == "application/vnd.ms-outlook":
            return "msg"
        if name.endswith(".ics") or ctype == "text/calendar":
            return "ics"
        return "file"


_TIMES = ("created_date_time", "last_modified_date_time", "received_date_time", "sent_date_time")
_LISTS = ("categories", "to_recipients", "cc_recipients", "bcc_recipients", "reply_to")


class Message(_GraphModel):
    """A message, an `@removed` delta entry, or a partial message from `$select`: only `id` is certain."""

    id: str
    odata_type: str | None = Field(None, alias="@odata.type")
    etag: str | None = Field(None, alias="@odata.etag")
    removed: Removed | None = Field(None, alias="@removed")
    created_date_time: datetime | None = None
    last_modified_date_time: datetime | None = None
    received_date_time: datetime | None = None
    sent_date_time: datetime | None = None
    change_key: str | None = None
    categories: list[str] | None = Field(default_factory=list)
    has_attachments: bool | None = None
    internet_message_id: str | None = None
    subject: str | None = None
    body_preview: str | None = None
    importance: str | None = None
    parent_folder_id: str | None = None
    conversation_id: str | None = None
    conversation_index: str | None = None
    is_delivery_receipt_requested: bool | None = None
    is_read_receipt_requested: bool | None = None
    is_read: bool | None = None
    is_draft: bool | None = None
    web_link: str | None = None
    inference_classification: str | None = None
    body: ItemBody | None = None
    unique_body: ItemBody | None = None
    sender: Recipient | None = None
    from_: Recipient | None = Field(None, alias="from")
    to_recipients: list[Recipient] | None = Field(default_factory=list)
    cc_recipients: list[Recipient] | None = Field(default_factory=list)
    bcc_recipients: list[Recipient] | None = Field(default_factory=list)
    reply_to: list[Recipient] | None = Field(default_factory=list)
    flag: FollowupFlag | None = None
    internet_message_headers: list[InternetMessageHeader] | None = None
    attachments: list[Attachment] | None = None

    @model_validator(mode="after")
    def _normalise(self) -> Message:
        """Times to UTC, and the lists Graph sends as null to empty lists: never None after validation."""
        values = self.__dict__
        for name in _TIMES:
            values[name] = _as_utc(values[name])
        for name in _LISTS:
            if values[name] is None:
                values[name] = []
        return self

    @property
    def is_flagged(self) -> bool:
        """Whether the follow-up flag is set (a completed flag is not)."""
        return bool(self.flag and (self.flag.flag_status or "").lower() == "flagged")

    def to_facts(self) -> filters.MessageFacts:
        """The properties the filter language evaluates, for `filters.compile(tree)(facts)`.

        Read exactly as `filters.MessageFacts.from_graph` reads the JSON (the sender is `from`, as in Graph's
        `$filter`; properties the response left out read as Graph's empty values), so a message is judged
        the same whichever form the evaluator gets.
        """
        import filters

        sender = self.from_
        return filters.MessageFacts(
            received_at=self.received_date_time,
            categories=tuple(self.categories),
            sender=sender.address if sender else None,
            to=tuple(r.address for r in self.to_recipients if r.address),
            cc=tuple(r.address for r in self.cc_recipients if r.address),
            subject=self.subject or "",
            importance=self.importance or "normal",
            is_read=bool(self.is_read),
            is_flagged=self.is_flagged,
            has_attachments=bool(self.has_attachments),
        )


class MailFolder(_GraphModel):
    """A mail folder; search folders carry `@odata.type` `#microsoft.graph.mailSearchFolder`."""

    id: str
    odata_type: str | None = Field(None, alias="@odata.type")
    display_name: str | None = None
    parent_folder_id: str | None = None
    child_folder_count: int | None = None
    total_item_count: int | None = None
    unread_item_count: int | None = None
    is_hidden: bool | None = None

    @property
    def is_search_folder(self) -> bool:
        """Whether this is a search folder (a saved query, not a place where mail lives)."""
        return (self.odata_type or "").lower().endswith("mailsearchfolder")


class Category(_GraphModel):
    """One of the mailbox's categories (Outlook's master category list)."""

    id: str | None = None
    display_name: str
    color: str | None = None


class _Page(_GraphModel):
    next_link: str | None = Field(None, alias="@odata.nextLink")
    delta_link: str | None = Field(None, alias="@odata.deltaLink")
    count: int | None = Field(None, alias="@odata.count")


class MessagePageBody(_Page):
    value: list[Message] = []


class FolderPageBody(_Page):
    value: list[MailFolder] = []


class AttachmentPageBody(_Page):
    value: list[Attachment] = []


class CategoryPageBody(_Page):
    value: list[Category] = []
