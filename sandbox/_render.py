"""Graph's JSON for messages, folders and attachments, and MIME for ``$value`` (the hot path: keep it lean).

``message_json`` builds only what is asked: a page with ``$select=id,subject`` never renders a body. The
default property set is Graph's (everything except ``uniqueBody`` and ``internetMessageHeaders``, which
appear only when selected). Bodies come as HTML unless the view asks for text.
"""

from __future__ import annotations

import base64
import email.policy
import struct
import time
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.utils import formatdate
from functools import lru_cache
from typing import Any, NamedTuple
from urllib.parse import quote

from sandbox import _content as content
from sandbox._model import Address, AttachmentSpec, Folder, Mailbox, Message
from sandbox._odata import MESSAGE, MESSAGE_ON_REQUEST
from sandbox._state import SandboxState, iso

DEFAULT_MESSAGE_FIELDS = tuple(k for k in MESSAGE if k not in MESSAGE_ON_REQUEST)
_BODY_FIELDS = frozenset({"body", "uniqueBody", "bodyPreview"})


class View(NamedTuple):
    """How a request wants messages shown: immutable ids or not, body as HTML or text."""

    immutable: bool = False
    body_type: str = "html"


@lru_cache(maxsize=4096)
def recipient(address: Address) -> dict[str, Any]:
    return {"emailAddress": {"name": address.name, "address": address.address}}


def _recipients(addresses: tuple[Address, ...]) -> list[dict[str, Any]]:
    return [recipient(a) for a in addresses]


def change_key(mb: Mailbox, msg: Message) -> str:
    raw = b"\x09\x00\x00\x00\x16\x00\x00\x00" + struct.pack(">IHI", msg.serial, mb.number, msg.version)
    return base64.b64encode(raw).decode()


def _flag(msg: Message) -> dict[str, Any]:
    if msg.flag == "notFlagged":
        return {"flagStatus": "notFlagged"}
    day = time.strftime("%Y-%m-%dT00:00:00.0000000", time.gmtime(msg.received))
    due = time.strftime("%Y-%m-%dT00:00:00.0000000", time.gmtime(msg.received + 3 * 86_400))
    flag: dict[str, Any] = {
        "flagStatus": msg.flag,
        "startDateTime": {"dateTime": day, "timeZone": "UTC"},
        "dueDateTime": {"dateTime": due, "timeZone": "UTC"},
    }
    if msg.flag == "complete":
        flag["completedDateTime"] = {"dateTime": due, "timeZone": "UTC"}
    return flag


def message_meta(state: SandboxState, mb: Mailbox, msg: Message, view: View) -> dict[str, Any]:
    """Every cheap property of ``msg`` (no body), in Graph's order and shape."""
    key = change_key(mb, msg)
    mid = state.message_id(mb, msg, view.immutable)
    meta: dict[str, Any] = {
        "@odata.etag": f'W/"{key}"',
        "id": mid,
        "createdDateTime": iso(msg.created),
        "lastModifiedDateTime": iso(msg.modified),
        "changeKey": key,
        "categories": list(msg.categories),
        "receivedDateTime": iso(msg.received),
        "sentDateTime": iso(msg.sent),
        "hasAttachments": msg.has_attachments,
        "internetMessageId": msg.message_id,
        "subject": msg.subject,
        "importance": msg.importance,
        "parentFolderId": state.ids.encode(3, mb.number, msg.folder),
        "conversationId": state.conversation_id(mb, msg),
        "conversationIndex": base64.b64encode(
            struct.pack(">6sIII", b"\x01\xd9\x00\x00\x00\x00", msg.conversation, msg.sent, msg.serial)
        ).decode(),
        "isDeliveryReceiptRequested": False,
        "isReadReceiptRequested": False,
        "isRead": msg.is_read,
        "isDraft": msg.is_draft,
        "webLink": f"https://outlook.office365.com/owa/?ItemID={quote(mid, safe='')}&exvsurl=1"
        "&viewmodel=ReadMessageItem",
        "inferenceClassification": msg.inference,
        "sender": recipient(msg.sender) if msg.sender else None,
        "from": recipient(msg.sender) if msg.sender else None,
        "toRecipients": _recipients(msg.to),
        "ccRecipients": _recipients(msg.cc),
        "bccRecipients": _recipients(msg.bcc),
        "replyTo": _recipients(msg.reply_to),
        "flag": _flag(msg),
    }
    if msg.odata_type:
        meta["@odata.type"] = msg.odata_type
        meta["meetingMessageType"] = "meetingRequest"
    return meta


def message_json(
    state: SandboxState, mb: Mailbox, msg: Message, fields: list[str] | None, view: View
) -> dict[str, Any]:
    """The message as Graph returns it for ``$select=fields`` (None: the default set)."""
    meta = message_meta(state, mb, msg, view)
    wanted = DEFAULT_MESSAGE_FIELDS if fields is None else fields
    if fields is None:
        out = meta
    else:
        out = {"@odata.etag": meta["@odata.etag"], "id": meta["id"]}
        if "@odata.type" in meta:
            out["@odata.type"] = meta["@odata.type"]
        for name in fields:
            if name in meta:
                out[name] = meta[name]
    if _BODY_FIELDS.intersection(wanted):
        owner = Address(mb.user.display_name, mb.user.upn)
        rendered = content.render(msg, owner)
        text = view.body_type == "text"
        if "bodyPreview" in wanted:
            out["bodyPreview"] = content.preview(rendered.text)
        if "body" in wanted:
            out["body"] = (
                {"contentType": "text", "content": rendered.text}
                if text
                else {"contentType": "html", "content": rendered.html}
            )
        if "uniqueBody" in wanted:
            out["uniqueBody"] = (
                {"contentType": "text", "content": rendered.unique_text}
                if text
                else {"contentType": "html", "content": rendered.unique_html}
            )
    if "internetMessageHeaders" in wanted:
        out["internetMessageHeaders"] = [{"name": k, "value": v} for k, v in message_headers(mb, msg)]
    return out


def message_facts(
    state: SandboxState, mb: Mailbox, msg: Message, *, with_body: bool = False
) -> dict[str, Any]:
    """What $filter and $search evaluate: the message's Graph JSON (immutable ids), body as text if asked."""
    facts = message_meta(state, mb, msg, View(immutable=True))
    if with_body:
        rendered = content.render(msg, Address(mb.user.display_name, mb.user.upn))
        facts["body"] = {"contentType": "text", "content": rendered.text}
        facts["bodyPreview"] = content.preview(rendered.text)
        facts["attachments"] = [{"name": a.name} for a in msg.attachments]
    return facts


def message_headers(mb: Mailbox, msg: Message) -> list[tuple[str, str]]:
    if msg.content is not None and msg.content.headers:
        return list(msg.content.headers)
    sender = msg.sender or Address(mb.user.display_name, mb.user.upn)
    return [
        (
            "Received",
            f"from mail.{sender.address.rsplit('@', 1)[-1]} by sandbox.contoso.test; "
            f"{formatdate(msg.received)}",
        ),
        ("From", _format(sender)),
        ("To", ", ".join(_format(a) for a in msg.to)),
        ("Subject", msg.subject),
        ("Date", formatdate(msg.sent)),
        ("Message-ID", msg.message_id),
        ("MIME-Version", "1.0"),
        ("Content-Type", "multipart/alternative"),
        ("X-MS-Has-Attach", "yes" if msg.has_attachments else ""),
        ("X-MS-Exchange-Organization-SCL", "-1"),
    ]


def _format(address: Address) -> str:
    return f'"{address.name}" <{address.address}>' if address.name else address.address


def folder_json(
    state: SandboxState, mb: Mailbox, folder: Folder, total: int | None = None, unread: int | None = None
) -> dict[str, Any]:
    parent = state.ids.encode(3, mb.number, folder.parent or 0)
    out: dict[str, Any] = {}
    if folder.search_query is not None:
        out["@odata.type"] = "#microsoft.graph.mailSearchFolder"
    out.update(
        {
            "id": state.folder_id(mb, folder),
            "displayName": folder.name,
            "parentFolderId": parent,
            "childFolderCount": len(folder.children),
            "unreadItemCount": folder.unread if unread is None else unread,
            "totalItemCount": len(folder.members) if total is None else total,
            "isHidden": folder.hidden,
        }
    )
    if folder.search_query is not None:
        out.update({"isSupported": True, "filterQuery": folder.search_query})
    return out


def attachment_json(
    state: SandboxState,
    mb: Mailbox,
    msg: Message,
    index: int,
    spec: AttachmentSpec,
    fields: list[str] | None,
    *,
    expand_item: bool = False,
) -> dict[str, Any]:
    odata_type = {
        "file": "#microsoft.graph.fileAttachment",
        "item": "#microsoft.graph.itemAttachment",
        "reference": "#microsoft.graph.referenceAttachment",
    }[spec.kind]
    out: dict[str, Any] = {"@odata.type": odata_type}
    if spec.kind == "file":
        out["@odata.mediaContentType"] = spec.content_type
    full: dict[str, Any] = {
        "id": state.attachment_id(mb, msg, index),
        "lastModifiedDateTime": iso(msg.received),
        "name": spec.name,
        "contentType": spec.content_type,
        "size": spec.size,
        "isInline": spec.is_inline,
    }
    if spec.kind == "file":
        full.update({"contentId": spec.content_id, "contentLocation": None})
        if fields is None or "contentBytes" in fields:
            full["contentBytes"] = base64.b64encode(content.attachment_bytes(spec)).decode()
    if fields is not None:
        full = {k: v for k, v in full.items() if k == "id" or k in fields}
    out.update(full)
    if expand_item and spec.kind == "item":
        out["item"] = item_json(spec)
    return out


def item_json(spec: AttachmentSpec) -> dict[str, Any]:
    """The properties of an item attachment's item (``$expand=microsoft.graph.itemattachment/item``)."""
    raw = content.attachment_bytes(spec)
    if spec.item_kind == "event":
        text = raw.decode("utf-8", "replace")
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        return {
            "@odata.type": "#microsoft.graph.event",
            "subject": fields.get("SUMMARY", spec.name),
            "start": {"dateTime": fields.get("DTSTART", ""), "timeZone": "UTC"},
            "end": {"dateTime": fields.get("DTEND", ""), "timeZone": "UTC"},
            "location": {"displayName": fields.get("LOCATION", "")},
        }
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    body = parsed.get_body(preferencelist=("html", "plain"))
    return {
        "@odata.type": "#microsoft.graph.message",
        "subject": str(parsed["Subject"] or ""),
        "from": {"emailAddress": {"name": "", "address": str(parsed["From"] or "")}},
        "body": {
            "contentType": "html" if body is not None and body.get_content_subtype() == "html" else "text",
            "content": body.get_content() if body is not None else "",
        },
    }


def message_mime(mb: Mailbox, msg: Message) -> bytes:
    """The message as RFC 5322 bytes: the original for imported mail, otherwise built from its parts."""
    if msg.content is not None and msg.content.raw_mime is not None:
        return msg.content.raw_mime
    rendered = content.render(msg, Address(mb.user.display_name, mb.user.upn))
    out = EmailMessage(policy=email.policy.SMTP)
    if msg.sender:
        out["From"] = _header_address(msg.sender)
    if msg.to:
        out["To"] = [_header_address(a) for a in msg.to]
    if msg.cc:
        out["Cc"] = [_header_address(a) for a in msg.cc]
    out["Subject"] = msg.subject
    out["Date"] = formatdate(msg.sent)
    out["Message-ID"] = msg.message_id
    if msg.importance != "normal":
        out["Importance"] = msg.importance
    if msg.categories:
        out["Keywords"] = ", ".join(msg.categories)
    out.set_content(rendered.text or " ")
    out.add_alternative(rendered.html, subtype="html")
    for spec in msg.attachments:
        if spec.kind == "reference":
            continue
        data = content.attachment_bytes(spec)
        if spec.kind == "item" and spec.item_kind == "message":
            out.add_attachment(
                email.message_from_bytes(data, policy=email.policy.default), filename=f"{spec.name}.eml"
            )
            continue
        ctype = spec.content_type or (
            "text/calendar" if spec.item_kind == "event" else "application/octet-stream"
        )
        maintype, _, subtype = ctype.partition("/")
        out.add_attachment(
            data,
            maintype=maintype,
            subtype=subtype or "octet-stream",
            filename=spec.name,
            disposition="inline" if spec.is_inline else "attachment",
            cid=f"<{spec.content_id}>" if spec.content_id else None,
        )
    return out.as_bytes()


def _header_address(address: Address) -> HeaderAddress:
    user, _, domain = address.address.partition("@")
    return HeaderAddress(display_name=address.name, username=user, domain=domain)


def attachment_value(spec: AttachmentSpec) -> tuple[bytes, str]:
    """The bytes and content type that ``/attachments/{id}/$value`` returns."""
    data = content.attachment_bytes(spec)
    if spec.kind == "item":
        return data, "text/calendar" if spec.item_kind == "event" else "message/rfc822"
    return data, spec.content_type or "application/octet-stream"
