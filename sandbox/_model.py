"""The sandbox's in-memory records: tenant, apps, users, mailboxes, folders, messages, attachment specs.

Plain slotted dataclasses: a 100,000-message mailbox holds 100,000 ``Message`` records, so they stay
small. Message bodies and attachment bytes are not stored for generated mail: ``kind`` and ``seed`` say
how to render them on demand (see ``_content``). Mail added through the admin API or imported from files
carries its content in ``Message.content``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True, frozen=True)
class Address:
    name: str
    address: str


@dataclass(slots=True, frozen=True)
class AttachmentSpec:
    """What an attachment is; its bytes come from ``recipe`` + ``seed``, or from ``data``.

    ``kind`` is ``file``, ``item`` or ``reference``. Item attachments have ``item_kind`` ``message`` or
    ``event``; their ``$value`` is MIME or iCal.
    """

    kind: str
    name: str
    content_type: str | None
    size: int
    recipe: str = "raw"
    seed: int = 0
    is_inline: bool = False
    content_id: str | None = None
    item_kind: str | None = None
    data: bytes | None = None


@dataclass(slots=True)
class Content:
    """Explicit content for mail that was added or imported rather than generated."""

    html: str | None
    text: str
    unique_text: str | None = None
    raw_mime: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class Message:
    serial: int
    folder: int
    kind: str
    seed: int
    subject: str
    sender: Address | None
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    bcc: tuple[Address, ...]
    received: int
    sent: int
    categories: tuple[str, ...]
    importance: str
    is_read: bool
    flag: str
    attachments: tuple[AttachmentSpec, ...]
    conversation: int
    message_id: str
    is_draft: bool = False
    odata_type: str | None = None
    reply_to: tuple[Address, ...] = ()
    inference: str = "focused"
    created: int = 0
    modified: int = 0
    moves: int = 0
    version: int = 1
    change_seq: int = 0
    arrived_seq: int = 0
    content: Content | None = None

    @property
    def has_attachments(self) -> bool:
        # Graph's hasAttachments ignores inline attachments.
        return any(not a.is_inline for a in self.attachments)


@dataclass(slots=True)
class Folder:
    serial: int
    name: str
    parent: int | None
    well_known: str | None = None
    hidden: bool = False
    search_query: str | None = None
    children: list[int] = field(default_factory=list)
    members: dict[int, None] = field(default_factory=dict)
    unread: int = 0
    change_seq: int = 0


@dataclass(slots=True)
class User:
    id: str
    upn: str
    display_name: str
    licensed: bool = True
    locale: str = "en-US"


@dataclass(slots=True)
class App:
    """An app registration: a confidential client that may also use public-client flows."""

    client_id: str
    secret: str
    display_name: str
    roles: tuple[str, ...] = ("Mail.Read",)
    scopes: tuple[str, ...] = ("Mail.Read", "Mail.ReadWrite", "Mail.ReadBasic", "User.Read", "email")
    allow_public_client: bool = True
    redirect_uris: tuple[str, ...] = ()


@dataclass(slots=True)
class Tenant:
    id: str
    domain: str
    apps: dict[str, App]
    users: dict[str, User]  # by lower-case UPN

    def user(self, key: str) -> User | None:
        """The user whose UPN or object id is ``key`` (case-insensitive)."""
        found = self.users.get(key.lower())
        if found is not None:
            return found
        return next((u for u in self.users.values() if u.id == key.lower()), None)


@dataclass(slots=True)
class Change:
    """One entry of a mailbox's change log: what delta rounds are computed from."""

    seq: int
    serial: int
    folder_from: int | None
    folder_to: int | None
    moves_before: int


@dataclass(slots=True)
class Mailbox:
    number: int
    user: User
    folders: dict[int, Folder] = field(default_factory=dict)
    well_known: dict[str, int] = field(default_factory=dict)
    messages: dict[int, Message] = field(default_factory=dict)
    log: list[Change] = field(default_factory=list)
    seq: int = 0
    next_serial: int = 1
    next_folder: int = 1
    version: int = 0
    delta_generation: int = 0
    folder_generations: dict[int, int] = field(default_factory=dict)
