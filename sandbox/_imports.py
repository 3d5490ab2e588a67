"""Real mail as a sandbox mailbox: an mbox file, or a folder of .eml files (subfolders become mail folders).

Parsing uses the standard library (``mailbox``, ``email`` with the modern policy). Each message keeps its
original bytes, which ``/$value`` returns unchanged; attachments keep their bytes; an attached
``message/rfc822`` becomes an item attachment, as Exchange shows it. A file that cannot be read raises
``MailImportError`` naming the file.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import mailbox as stdlib_mailbox
import uuid
from email.message import EmailMessage
from pathlib import Path

from sandbox._errors import MailImportError
from sandbox._model import Address, AttachmentSpec, Content, Mailbox, Message, Tenant, User
from sandbox._seed import DOMAIN, FOLDERS, MailboxBuilder


def import_user(tenant: Tenant, upn: str | None, path: Path, number: int) -> User:
    """The user owning an imported mailbox: the one named, or a new ``import<N>@contoso.test``."""
    if upn:
        existing = tenant.user(upn)
        if existing is not None:
            raise MailImportError(str(path), f"user {upn} already has a mailbox; name a new address")
    else:
        upn = f"import{number}@{DOMAIN}"
    user = User(str(uuid.uuid5(uuid.NAMESPACE_URL, f"sandbox:{upn}")), upn, f"Imported ({path.name})")
    tenant.users[upn.lower()] = user
    return user


def import_mailbox(number: int, user: User, path: Path) -> Mailbox:
    """A mailbox holding the mail found at ``path`` (mbox file or .eml folder)."""
    if not path.exists():
        raise MailImportError(str(path), "no such file or directory")
    mb = Mailbox(number, user)
    builder = MailboxBuilder(mb)
    keys: dict[str, int] = {}
    for key, en, _de, parent, well_known in FOLDERS[:9]:
        keys[key] = builder.add_folder(en, keys.get(parent) if parent else None, well_known=well_known).serial
    inbox = keys["inbox"]
    if path.is_dir():
        sources = sorted(p for p in path.rglob("*.eml") if p.is_file())
        for source in sources:
            folder = inbox
            for part in source.relative_to(path).parent.parts:
                existing = next((c for c in mb.folders[folder].children if mb.folders[c].name == part), None)
                folder = existing if existing is not None else builder.add_folder(part, folder).serial
            try:
                raw = source.read_bytes()
            except OSError as exc:
                raise MailImportError(str(source), exc.strerror or str(exc)) from None
            _add(builder, folder, raw, source)
    else:
        try:
            box = stdlib_mailbox.mbox(str(path), create=False)
            raws = [box.get_bytes(key) for key in box.iterkeys()]
        except (OSError, stdlib_mailbox.Error) as exc:
            raise MailImportError(str(path), f"not a readable mbox file ({exc})") from None
        if not raws and path.stat().st_size > 0:
            raise MailImportError(str(path), "not an mbox file: no 'From ' line starts a message")
        if raws and not any(b":" in raw.split(b"\n", 1)[0] for raw in raws):
            raise MailImportError(str(path), "not an mbox file: its messages have no headers")
        for raw in raws:
            _add(builder, inbox, raw, path)
    return mb


def _addresses(value: object) -> tuple[Address, ...]:
    if not value:
        return ()
    pairs = email.utils.getaddresses([str(value)])
    return tuple(Address(name, address) for name, address in pairs if address)


def _add(builder: MailboxBuilder, folder: int, raw: bytes, source: Path) -> None:
    try:
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
    except Exception as exc:  # the email package raises many types on hostile input
        raise MailImportError(str(source), f"unparseable message: {exc}") from None
    assert isinstance(parsed, EmailMessage)
    if not parsed.keys():
        raise MailImportError(str(source), "the message has no headers")
    try:
        received = int(email.utils.parsedate_to_datetime(str(parsed["Date"])).timestamp())
    except (TypeError, ValueError):
        received = int(source.stat().st_mtime)
    html_part = parsed.get_body(preferencelist=("html",))
    text_part = parsed.get_body(preferencelist=("plain",))
    html_body = html_part.get_content() if html_part is not None else None
    text_body = text_part.get_content() if text_part is not None else None
    if text_body is None:
        from bs4 import BeautifulSoup

        text_body = BeautifulSoup(html_body or "", "lxml").get_text("\n").strip()
    attachments = []
    for part in parsed.iter_attachments():
        data = part.get_payload(decode=True)
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            inner_bytes = inner[0].as_bytes() if isinstance(inner, list) and inner else bytes(data or b"")
            name = part.get_filename() or (
                str(inner[0]["Subject"]) if isinstance(inner, list) and inner else "message"
            )
            attachments.append(
                AttachmentSpec(
                    "item", name, None, len(inner_bytes), "raw", item_kind="message", data=inner_bytes
                )
            )
            continue
        payload = bytes(data or b"")
        content_id = (part.get("Content-ID") or "").strip("<>") or None
        inline = part.get_content_disposition() == "inline"
        attachments.append(
            AttachmentSpec(
                "file",
                part.get_filename() or "attachment",
                part.get_content_type(),
                len(payload),
                "raw",
                is_inline=inline,
                content_id=content_id,
                data=payload,
            )
        )
    sender = _addresses(parsed["From"])
    builder_serial = builder.new_serial()
    importance = {"1": "high", "2": "high", "4": "low", "5": "low"}.get(
        str(parsed.get("X-Priority", "3"))[:1], "normal"
    )
    importance = str(parsed.get("Importance", importance)).lower()
    keywords = tuple(k.strip() for k in str(parsed.get("Keywords", "")).split(",") if k.strip())
    builder.add_message(
        Message(
            serial=builder_serial,
            folder=folder,
            kind="imported",
            seed=builder_serial,
            subject=str(parsed["Subject"] or ""),
            sender=sender[0] if sender else None,
            to=_addresses(parsed["To"]),
            cc=_addresses(parsed["Cc"]),
            bcc=_addresses(parsed["Bcc"]),
            received=received,
            sent=received,
            categories=keywords,
            importance=importance if importance in {"low", "normal", "high"} else "normal",
            is_read="R" in str(parsed.get("Status", "")),
            flag="notFlagged",
            attachments=tuple(attachments),
            conversation=builder_serial,
            message_id=str(parsed["Message-ID"] or f"<import.{builder_serial}@{DOMAIN}>"),
            created=received,
            modified=received,
            content=Content(
                html=html_body,
                text=text_body,
                raw_mime=raw,
                headers=tuple((k, str(v)) for k, v in parsed.items()),
            ),
        )
    )
