"""The sandbox's state: the tenant, its mailboxes, and every change made to them, in one place.

``SandboxState`` owns the mailboxes and is the only code that mutates them. Each mutation (add, update,
move, delete) bumps the mailbox's change sequence and appends a ``Change`` to its log; delta rounds
(``_delta``) are computed from that log, listings are cached per mailbox version.
"""

from __future__ import annotations

import base64
import struct
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sandbox import _ids
from sandbox._errors import GraphFault
from sandbox._ids import Ids
from sandbox._imports import import_mailbox, import_user
from sandbox._model import Address, AttachmentSpec, Change, Content, Folder, Mailbox, Message, Tenant
from sandbox._options import SandboxOptions
from sandbox._seed import MailboxBuilder, build_mailbox, build_tenant

_CACHE_SIZE = 64
# Graph's well-known folder names (reference/graph.md §2): valid everywhere, even where a mailbox lacks one.
WELL_KNOWN_NAMES = frozenset(
    {
        "archive",
        "clutter",
        "conflicts",
        "conversationhistory",
        "deleteditems",
        "drafts",
        "inbox",
        "junkemail",
        "localfailures",
        "msgfolderroot",
        "outbox",
        "recoverableitemsdeletions",
        "scheduled",
        "searchfolders",
        "sentitems",
        "serverfailures",
        "syncissues",
    }
)


def iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


class SandboxState:
    """Tenant, mailboxes and their indexes; rebuilt from the options by ``reset``."""

    def __init__(self, options: SandboxOptions) -> None:
        self.options = options
        self.tenant: Tenant
        self.ids: Ids
        self.mailboxes: dict[str, Mailbox] = {}
        self.by_number: dict[int, Mailbox] = {}
        self._cache: OrderedDict[tuple, list[int]] = OrderedDict()
        self.reset(options)

    # -- building ----------------------------------------------------------------------------------------

    def reset(self, options: SandboxOptions) -> None:
        """Forget every change and rebuild the tenant and mailboxes from ``options``."""
        self.options = options
        self.tenant = build_tenant(options.seed)
        self.ids = Ids(options.seed * 0x9E3779B97F4A7C15)
        self.mailboxes = {}
        self.by_number = {}
        self._cache.clear()
        number = 1
        for user in self.tenant.users.values():
            if user.licensed:
                self._register(build_mailbox(number, user, options.seed, options.messages))
                number += 1
        for spec in options.imports:
            upn, _, path = spec.rpartition("=") if "=" in spec else ("", "", spec)
            user = import_user(self.tenant, upn or None, Path(path), number)
            self._register(import_mailbox(number, user, Path(path)))
            number += 1

    def _register(self, mailbox: Mailbox) -> None:
        self.mailboxes[mailbox.user.upn.lower()] = mailbox
        self.by_number[mailbox.number] = mailbox

    # -- lookups -----------------------------------------------------------------------------------------

    def mailbox(self, key: str) -> Mailbox | None:
        """The mailbox of the user whose UPN or object id is ``key``."""
        user = self.tenant.user(key)
        return self.mailboxes.get(user.upn.lower()) if user else None

    def message_id(self, mb: Mailbox, msg: Message, immutable: bool) -> str:
        if immutable:
            return self.ids.encode(_ids.IMMUTABLE_MESSAGE, mb.number, msg.serial)
        return self.ids.encode(_ids.MESSAGE, mb.number, msg.serial, msg.moves)

    def folder_id(self, mb: Mailbox, folder: Folder) -> str:
        return self.ids.encode(_ids.FOLDER, mb.number, folder.serial)

    def attachment_id(self, mb: Mailbox, msg: Message, index: int) -> str:
        return self.ids.encode(_ids.ATTACHMENT, mb.number, msg.serial, index)

    def conversation_id(self, mb: Mailbox, msg: Message) -> str:
        raw = b"\x00\x10\x00\x00" + struct.pack(">HI", mb.number, msg.conversation) + b"\x00" * 6
        return base64.b64encode(raw).decode()

    def find_message(self, mb: Mailbox, text: str) -> Message:
        """The message a Graph id names, raising Graph's 400 (malformed) or 404 (not found)."""
        decoded = self.ids.decode(text)
        if decoded is None or decoded.kind not in {_ids.MESSAGE, _ids.IMMUTABLE_MESSAGE}:
            raise GraphFault(400, "ErrorInvalidIdMalformed", "Id is malformed.")
        msg = mb.messages.get(decoded.serial) if decoded.mailbox == mb.number else None
        stale = decoded.kind == _ids.MESSAGE and msg is not None and msg.moves != decoded.extra
        if msg is None or stale:
            raise GraphFault(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        return msg

    def find_folder(self, mb: Mailbox, text: str) -> Folder:
        """The folder a Graph id or well-known name (any case) names, or Graph's 400/404."""
        serial = mb.well_known.get(text.lower())
        if serial is not None:
            return mb.folders[serial]
        if text.lower() in WELL_KNOWN_NAMES:
            raise GraphFault(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        decoded = self.ids.decode(text)
        if decoded is None or decoded.kind != _ids.FOLDER:
            raise GraphFault(400, "ErrorInvalidIdMalformed", "Id is malformed.")
        folder = mb.folders.get(decoded.serial) if decoded.mailbox == mb.number else None
        if folder is None:
            raise GraphFault(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        return folder

    def find_attachment(self, mb: Mailbox, msg: Message, text: str) -> tuple[int, AttachmentSpec]:
        decoded = self.ids.decode(text)
        if decoded is None or decoded.kind != _ids.ATTACHMENT:
            raise GraphFault(400, "ErrorInvalidIdMalformed", "Id is malformed.")
        if (
            decoded.mailbox != mb.number
            or decoded.serial != msg.serial
            or decoded.extra >= len(msg.attachments)
        ):
            raise GraphFault(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        return decoded.extra, msg.attachments[decoded.extra]

    def folder_path(self, mb: Mailbox, folder: Folder) -> list[str]:
        """Display names from below the root down to ``folder``."""
        names = []
        current: Folder | None = folder
        while current is not None and current.parent is not None:
            names.append(current.name)
            current = mb.folders.get(current.parent)
        return names[::-1]

    def root(self, mb: Mailbox) -> Folder:
        return mb.folders[mb.well_known["msgfolderroot"]]

    # -- listing (cached per mailbox version) ---------------------------------------------------------------

    def cached(self, mb: Mailbox, key: tuple, compute: Callable[[], list[int]]) -> list[int]:
        full = (mb.number, mb.version, *key)
        hit = self._cache.get(full)
        if hit is None:
            hit = compute()
            self._cache[full] = hit
            if len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(full)
        return hit

    # -- mutations ---------------------------------------------------------------------------------------

    def _record(self, mb: Mailbox, msg: Message, folder_from: int | None, folder_to: int | None) -> None:
        mb.seq += 1
        mb.version += 1
        mb.log.append(Change(mb.seq, msg.serial, folder_from, folder_to, msg.moves))
        msg.change_seq = mb.seq
        msg.version += 1
        msg.modified = int(time.time())
        for serial in (folder_from, folder_to):
            if serial is not None:
                mb.folders[serial].change_seq = mb.seq

    def add_message(
        self,
        mb: Mailbox,
        folder: Folder,
        *,
        subject: str,
        sender: Address | None,
        to: Iterable[Address] = (),
        cc: Iterable[Address] = (),
        bcc: Iterable[Address] = (),
        received: int | None = None,
        categories: Iterable[str] = (),
        importance: str = "normal",
        is_read: bool = False,
        flag: str = "notFlagged",
        body_html: str | None = None,
        body_text: str | None = None,
        attachments: Iterable[AttachmentSpec] = (),
        kind: str = "plain",
        message_id: str | None = None,
    ) -> Message:
        """A new message in ``folder``: generated content unless a body is given."""
        builder = MailboxBuilder(mb)
        serial = builder.new_serial()
        now = int(time.time()) if received is None else received
        content = None
        if body_html is not None or body_text is not None:
            content = Content(
                html=body_html, text=body_text if body_text is not None else _strip(body_html or "")
            )
        domain = sender.address.rsplit("@", 1)[-1] if sender else mb.user.upn.rsplit("@", 1)[-1]
        msg = Message(
            serial=serial,
            folder=folder.serial,
            kind="custom" if content else kind,
            seed=serial * 7919,
            subject=subject,
            sender=sender,
            to=tuple(to) or (Address(mb.user.display_name, mb.user.upn),),
            cc=tuple(cc),
            bcc=tuple(bcc),
            received=now,
            sent=now - 5,
            categories=tuple(categories),
            importance=importance,
            is_read=is_read,
            flag=flag,
            attachments=tuple(attachments),
            conversation=serial,
            message_id=message_id or f"<sandbox.{mb.number}.{serial}@{domain}>",
            created=now,
            modified=now,
            content=content,
        )
        builder.add_message(msg)
        self._record(mb, msg, None, folder.serial)
        msg.arrived_seq = msg.change_seq
        return msg

    def update_message(self, mb: Mailbox, msg: Message, changes: dict[str, Any]) -> Message:
        """Apply changes named as in Graph (isRead, categories, flag, importance, subject, ...)."""
        folder = mb.folders[msg.folder]
        if "isRead" in changes and bool(changes["isRead"]) != msg.is_read:
            msg.is_read = bool(changes["isRead"])
            folder.unread += -1 if msg.is_read else 1
        if "categories" in changes:
            msg.categories = tuple(changes["categories"])
        if "flag" in changes:
            flag = changes["flag"]
            msg.flag = flag.get("flagStatus", msg.flag) if isinstance(flag, dict) else str(flag)
        if "importance" in changes:
            msg.importance = str(changes["importance"])
        if "subject" in changes:
            msg.subject = str(changes["subject"])
        if "inferenceClassification" in changes:
            msg.inference = str(changes["inferenceClassification"])
        self._record(mb, msg, msg.folder, msg.folder)
        return msg

    def move_message(self, mb: Mailbox, msg: Message, target: Folder) -> Message:
        """Move ``msg`` to ``target``: its mutable id changes, its immutable id does not."""
        if target.serial == msg.folder:
            return msg
        source = mb.folders[msg.folder]
        del source.members[msg.serial]
        target.members[msg.serial] = None
        if not msg.is_read:
            source.unread -= 1
            target.unread += 1
        before = msg.folder
        msg.folder = target.serial
        self._record(mb, msg, before, target.serial)
        msg.moves += 1
        msg.arrived_seq = msg.change_seq
        return msg

    def delete_message(self, mb: Mailbox, msg: Message) -> None:
        """Remove ``msg`` for good (a hard delete: gone from every folder)."""
        folder = mb.folders[msg.folder]
        del folder.members[msg.serial]
        if not msg.is_read:
            folder.unread -= 1
        del mb.messages[msg.serial]
        self._record(mb, msg, msg.folder, None)

    def add_folder(self, mb: Mailbox, parent: Folder, name: str) -> Folder:
        if any(mb.folders[c].name.casefold() == name.casefold() for c in parent.children):
            raise GraphFault(409, "ErrorFolderExists", "A folder with the specified name already exists.")
        folder = MailboxBuilder(mb).add_folder(name, parent.serial)
        mb.seq += 1
        mb.version += 1
        folder.change_seq = parent.change_seq = mb.seq
        return folder


def _strip(html_text: str) -> str:
    from bs4 import BeautifulSoup

    return BeautifulSoup(html_text, "lxml").get_text("\n").strip()
