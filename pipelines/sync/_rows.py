"""Pure mapping from Graph's models to the store's rows, and the properties each kind of request selects."""

from __future__ import annotations

from collections.abc import Sequence

from pipelines.graph import Attachment, FolderNode, Message, Recipient
from pipelines.store import Address, AttachmentRow, EmailRow, FolderRow

# Every property an EmailRow is built from (`id` always comes back). uniqueBody only exists when selected.
FULL_SELECT: tuple[str, ...] = (
    "subject",
    "body",
    "uniqueBody",
    "bodyPreview",
    "from",
    "sender",
    "toRecipients",
    "ccRecipients",
    "bccRecipients",
    "replyTo",
    "receivedDateTime",
    "sentDateTime",
    "createdDateTime",
    "lastModifiedDateTime",
    "categories",
    "importance",
    "isRead",
    "flag",
    "hasAttachments",
    "webLink",
    "changeKey",
    "internetMessageId",
    "conversationId",
    "parentFolderId",
)
# What a listing must carry to tell whether a message changed, besides what the filter reads.
_CHANGE_FIELDS = ("changeKey", "parentFolderId")
# The full row cannot be built when a delta entry left these out (Graph may send only changed properties).
_ROW_NEEDS = frozenset({"body", "unique_body", "change_key", "received_date_time"})

ATTACHMENT_SELECT = "id,name,contentType,size,isInline,lastModifiedDateTime"
ATTACHMENT_EXPAND = f"attachments($select={ATTACHMENT_SELECT})"


def light_select(filter_fields: Sequence[str]) -> tuple[str, ...]:
    """The properties of a listing that only decides what to fetch: change markers and the filter's needs."""
    return tuple(dict.fromkeys((*_CHANGE_FIELDS, *filter_fields)))


def is_complete(message: Message) -> bool:
    """Whether a listed message carries every property a row needs (delta may send only what changed)."""
    return message.model_fields_set >= _ROW_NEEDS


def needs_attachment_list(message: Message) -> bool:
    """Whether the message may have attachments: Graph's flag (blind to inline ones) or a `cid:` image."""
    if message.has_attachments:
        return True
    body = message.body
    return bool(body and body.content and "cid:" in body.content)


def _address(recipient: Recipient | None) -> tuple[str | None, str | None]:
    if recipient is None:
        return None, None
    return recipient.name, recipient.address


def _addresses(recipients: Sequence[Recipient] | None) -> tuple[Address, ...]:
    return tuple(Address(r.name, r.address) for r in recipients or ())


def email_row(
    message: Message,
    *,
    folder_id: str,
    folder_path: str,
    data_source_id: int | None,
    body_text: str | None,
    unique_body_text: str | None,
    attachments: tuple[AttachmentRow, ...] | None,
) -> EmailRow:
    """The store's row for a message listed in `folder_id` (the folder that listed it, not parentFolderId:
    during a round the two can differ for a message that moved, and the later listing corrects it)."""
    from_name, from_address = _address(message.from_)
    sender_name, sender_address = _address(message.sender)
    body = message.body
    content_type = (body.content_type or "").lower() if body else None
    return EmailRow(
        message_id=message.id,
        folder_id=folder_id,
        folder_path=folder_path,
        internet_message_id=message.internet_message_id,
        conversation_id=message.conversation_id,
        data_source_id=data_source_id,
        subject=message.subject,
        from_name=from_name,
        from_address=from_address,
        sender_name=sender_name,
        sender_address=sender_address,
        to_recipients=_addresses(message.to_recipients),
        cc_recipients=_addresses(message.cc_recipients),
        bcc_recipients=_addresses(message.bcc_recipients),
        reply_to=_addresses(message.reply_to),
        received_at=message.received_date_time,
        sent_at=message.sent_date_time,
        created_at=message.created_date_time,
        modified_at=message.last_modified_date_time,
        categories=tuple(message.categories or ()),
        importance=message.importance,
        is_read=message.is_read,
        flag_status=message.flag.flag_status if message.flag else None,
        has_attachments=message.has_attachments,
        web_link=message.web_link,
        change_key=message.change_key,
        body_content_type=content_type or None,
        body_html=body.content if body and content_type == "html" else None,
        body_text=body_text,
        unique_body_text=unique_body_text,
        body_preview=message.body_preview,
        attachments=attachments,
    )


def attachment_row(
    attachment: Attachment,
    *,
    content: bytes | None = None,
    content_state: str = "not_requested",
    content_type: str | None = None,
) -> AttachmentRow:
    """An attachment's row: `format` from its name and type (item attachments from the type of their
    content, MIME or iCal, once downloaded)."""
    kind = attachment.kind
    fmt: str | None = None
    if kind == "file":
        recognised = attachment.content_kind
        fmt = recognised if recognised in ("eml", "msg", "ics") else None
    elif kind == "item" and content_type:
        base = content_type.split(";")[0].strip().lower()
        fmt = {"message/rfc822": "eml", "text/calendar": "ics", "text/vcard": "vcf"}.get(base)
    return AttachmentRow(
        attachment_id=attachment.id,
        name=attachment.name,
        content_type=attachment.content_type,
        size=attachment.size,
        is_inline=bool(attachment.is_inline),
        kind=kind,
        format=fmt,
        content_id=attachment.content_id,
        last_modified_at=attachment.last_modified_date_time,
        content=content,
        content_state=content_state,
    )


def folder_row(node: FolderNode, data_source_id: int | None) -> FolderRow:
    folder = node.folder
    return FolderRow(
        folder_id=node.id,
        display_name=folder.display_name or node.parts[-1],
        path=node.path,
        parent_id=folder.parent_folder_id,
        well_known_name=node.well_known_name,
        data_source_id=data_source_id,
        total_count=folder.total_item_count,
        unread_count=folder.unread_item_count,
        child_folder_count=folder.child_folder_count,
    )
