"""The demo tenant and its mailboxes, built deterministically from a seed.

The tenant has one app registration (a confidential client with the application permission ``Mail.Read``,
also allowed to use public-client flows) and four users: ``adele``, ``alex`` and ``megan`` have mailboxes;
``diego`` has no Exchange Online licence (Graph answers 404 ``MailboxNotEnabledForRESTAPI``). Megan's
mailbox is German: its well-known folders have localized display names.

Every mailbox gets the same curated cases (newsletters, replies with quoted history, non-ASCII text,
inline images, a 3 MB attachment, .eml/.msg/.ics files, item and reference attachments, a meeting
request, a draft, flags, categories, folders nested three deep, one with ``/`` in its name, a search
folder), then generated filler: ``messages`` for adele, half as many for alex, a quarter for megan.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable

from sandbox import _content as content
from sandbox._model import Address, App, AttachmentSpec, Folder, Mailbox, Message, Tenant, User

DOMAIN = "contoso.test"
# Generated mail is dated relative to this fixed instant (2025-06-01T00:00:00Z) so data never drifts.
ANCHOR = 1_748_736_000
DAY = 86_400

USERS = (
    ("adele", "Adele Vance", True, "en-US"),
    ("alex", "Alex Wilber", True, "en-US"),
    ("megan", "Megan Bowen", True, "de-DE"),
    ("diego", "Diego Siciliani", False, "en-US"),
)
SHARE = {"adele": 1.0, "alex": 0.5, "megan": 0.25}

EXTERNAL = (
    Address("Lidia Holloway", "lidia@fabrikam.example"),
    Address("Zoë Müller", "zoe.mueller@beispiel.example"),
    Address("José Álvarez", "jose.alvarez@ejemplo.example"),
    Address("田中 太郎", "taro.tanaka@example.jp"),
    Address("Contoso Travel", "travel@contoso-travel.example"),
    Address("Northwind Billing", "billing@northwind.example"),
    Address("Fabrikam Support", "support@fabrikam.example"),
    Address("Grady Archie", "grady@adatum.example"),
    Address("O'Brien, Pat", "pat.obrien@example.com"),
)
NEWSLETTERS = (
    Address("Contoso News", "news@contoso.test"),
    Address("No Reply", "noreply@example.com"),
    Address("Tech Digest", "digest@techweekly.example"),
)
CATEGORIES = ("Red category", "Blue category", "Personal", "Team A", "Partner's", "Travel")
PLAIN_SUBJECTS = (
    "Budget review",
    "Lunch on Friday?",
    "Contract renewal",
    "Quarterly planning",
    "Expense report",
    "Travel plans for the offsite",
    "Updated org chart",
    "Customer feedback summary",
    "Server maintenance window",
    "Welcome aboard",
    "Draft agenda",
    "Invoice question",
    "Weekend on-call",
    "Hiring plan",
    "Project kickoff",
)
I18N_SUBJECTS = (
    "Grüße aus München – Übersicht",
    "会議の議事録",
    "Réunion de jeudi",
    "Presupuesto 2025",
    "Отчёт за квартал",
    "🎉 Launch day",
    "Ζήτω η ομάδα",
)
INVITE_SUBJECTS = ("Project sync", "1:1", "Design review", "Sprint planning", "Town hall")
ATTACHMENT_SUBJECTS = ("Invoice", "Signed contract", "Report", "Photos from the event", "Receipts")

# Folder keys used by the layout below: ``(key, display name en, display name de, parent key, well-known)``.
FOLDERS = (
    ("root", "Top of Information Store", "Oberste Ebene des Informationsspeichers", None, "msgfolderroot"),
    ("inbox", "Inbox", "Posteingang", "root", "inbox"),
    ("drafts", "Drafts", "Entwürfe", "root", "drafts"),
    ("sent", "Sent Items", "Gesendete Elemente", "root", "sentitems"),
    ("deleted", "Deleted Items", "Gelöschte Elemente", "root", "deleteditems"),
    ("junk", "Junk Email", "Junk-E-Mail", "root", "junkemail"),
    ("outbox", "Outbox", "Postausgang", "root", "outbox"),
    ("archive", "Archive", "Archiv", "root", "archive"),
    ("history", "Conversation History", "Unterhaltungsverlauf", "root", "conversationhistory"),
    ("receipts", "Receipts", "Rechnungen", "inbox", None),
    ("r2023", "2023", "2023", "receipts", None),
    ("r2024", "2024", "2024", "receipts", None),
    ("projects", "Projects", "Projekte", "inbox", None),
    ("teama", "Team A", "Team A", "projects", None),
    ("slash", "Q1/Q2 Reports", "Q1/Q2 Berichte", "inbox", None),
    ("unicode", "Ünïcødé Ördner", "日本語フォルダ", "inbox", None),
)
FILLER_FOLDERS = (
    ("inbox", 45),
    ("r2024", 8),
    ("r2023", 5),
    ("teama", 7),
    ("slash", 3),
    ("unicode", 2),
    ("archive", 12),
    ("sent", 12),
    ("deleted", 4),
    ("junk", 2),
)
FILLER_KINDS = (
    ("plain", 35),
    ("reply", 25),
    ("newsletter", 20),
    ("i18n", 8),
    ("attachments", 9),
    ("invite", 3),
)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def build_tenant(seed: int) -> Tenant:
    """The demo tenant for ``seed``: same ids and secret for the same seed."""
    rng = random.Random(f"tenant:{seed}")
    tenant_id = _uuid(rng)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    secret = (
        "".join(rng.choice(alphabet) for _ in range(3))
        + "8Q~"
        + "".join(rng.choice(alphabet + "._-") for _ in range(34))
    )
    app = App(client_id=_uuid(rng), secret=secret, display_name="Mailroom (sandbox)")
    users = {}
    for alias, name, licensed, locale in USERS:
        upn = f"{alias}@{DOMAIN}"
        users[upn] = User(_uuid(rng), upn, name, licensed, locale)
    return Tenant(tenant_id, DOMAIN, {app.client_id: app}, users)


class MailboxBuilder:
    """Adds folders and messages to a mailbox, keeping its indexes and counters consistent."""

    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox

    def add_folder(
        self,
        name: str,
        parent: int | None,
        *,
        well_known: str | None = None,
        hidden: bool = False,
        search_query: str | None = None,
    ) -> Folder:
        mb = self.mailbox
        folder = Folder(mb.next_folder, name, parent, well_known, hidden, search_query)
        mb.next_folder += 1
        mb.folders[folder.serial] = folder
        if parent is not None:
            mb.folders[parent].children.append(folder.serial)
        if well_known:
            mb.well_known[well_known] = folder.serial
        return folder

    def add_message(self, msg: Message) -> Message:
        mb = self.mailbox
        mb.messages[msg.serial] = msg
        folder = mb.folders[msg.folder]
        folder.members[msg.serial] = None
        if not msg.is_read:
            folder.unread += 1
        return msg

    def new_serial(self) -> int:
        serial = self.mailbox.next_serial
        self.mailbox.next_serial += 1
        return serial


def build_mailbox(number: int, user: User, seed: int, messages: int) -> Mailbox:
    """A seeded mailbox for ``user`` with curated cases and ``messages`` × the user's share of filler."""
    mailbox = Mailbox(number, user)
    builder = MailboxBuilder(mailbox)
    german = user.locale.startswith("de")
    keys: dict[str, int] = {}
    for key, en, de, parent, well_known in FOLDERS:
        folder = builder.add_folder(
            de if german else en, keys.get(parent) if parent else None, well_known=well_known
        )
        keys[key] = folder.serial
    builder.add_folder("Conversation Action Settings", keys["root"], hidden=True)
    builder.add_folder("Weekly digests", keys["root"], search_query="contains(subject, 'weekly digest')")
    owner = Address(user.display_name, user.upn)
    rng = random.Random(f"mailbox:{seed}:{user.upn}")
    colleagues = tuple(
        Address(name, f"{alias}@{DOMAIN}") for alias, name, _, _ in USERS if f"{alias}@{DOMAIN}" != user.upn
    )
    _curated(builder, keys, owner, colleagues, rng)
    share = SHARE.get(user.upn.split("@")[0], 0.25)
    _filler(builder, keys, owner, colleagues, rng, int(messages * share))
    for folder in mailbox.folders.values():
        folder.change_seq = 0
    return mailbox


def _message(
    builder: MailboxBuilder,
    rng: random.Random,
    *,
    folder: int,
    kind: str,
    subject: str,
    sender: Address | None,
    to: tuple[Address, ...],
    received: int,
    cc: tuple[Address, ...] = (),
    bcc: tuple[Address, ...] = (),
    categories: tuple[str, ...] = (),
    importance: str = "normal",
    is_read: bool = True,
    flag: str = "notFlagged",
    attachments: tuple[AttachmentSpec, ...] = (),
    is_draft: bool = False,
    odata_type: str | None = None,
    conversation: int | None = None,
) -> Message:
    serial = builder.new_serial()
    seed = rng.getrandbits(32)
    domain = sender.address.rsplit("@", 1)[-1] if sender else DOMAIN
    sent = received - rng.randint(1, 90)
    return builder.add_message(
        Message(
            serial=serial,
            folder=folder,
            kind=kind,
            seed=seed,
            subject=subject,
            sender=sender,
            to=to,
            cc=cc,
            bcc=bcc,
            received=received,
            sent=sent,
            categories=categories,
            importance=importance,
            is_read=is_read,
            flag=flag,
            attachments=attachments,
            conversation=conversation if conversation is not None else serial,
            message_id=f"<{seed:08x}.{serial:06d}@{domain}>",
            is_draft=is_draft,
            odata_type=odata_type,
            created=received,
            modified=received + rng.randint(0, 600),
            inference="other" if kind == "newsletter" else "focused",
        )
    )


def _curated(
    builder: MailboxBuilder,
    keys: dict[str, int],
    owner: Address,
    colleagues: tuple[Address, ...],
    rng: random.Random,
) -> None:
    """The hand-picked cases every mailbox has, at fixed dates in 2024 and 2025."""
    base = ANCHOR - 400 * DAY
    day = iter(range(0, 400, 13))

    def at() -> int:
        return base + next(day) * DAY + rng.randint(0, DAY - 1)

    inbox, me = keys["inbox"], (owner,)
    f = content.file_attachment
    add: Callable[..., Message] = lambda **kw: _message(builder, rng, **kw)  # noqa: E731
    add(
        folder=inbox,
        kind="newsletter",
        subject="Weekly digest: cloud costs",
        sender=NEWSLETTERS[2],
        to=me,
        received=at(),
        categories=("Newsletters",),
    )
    add(
        folder=inbox,
        kind="newsletter",
        subject="Contoso News – May",
        sender=NEWSLETTERS[0],
        to=me,
        received=at(),
        is_read=False,
    )
    add(
        folder=inbox,
        kind="plain",
        subject="Let's meet for lunch?",
        sender=EXTERNAL[8],
        to=me,
        received=at(),
        categories=("Partner's",),
        is_read=False,
    )
    original = add(
        folder=keys["sent"],
        kind="plain",
        subject="Quarterly planning",
        sender=owner,
        to=(colleagues[0],),
        received=at(),
    )
    add(
        folder=inbox,
        kind="reply",
        subject="RE: Quarterly planning",
        sender=colleagues[0],
        to=me,
        cc=(colleagues[1],),
        received=at(),
        conversation=original.conversation,
    )
    add(
        folder=inbox,
        kind="i18n",
        subject="Grüße aus München – Übersicht",
        sender=EXTERNAL[1],
        to=me,
        received=at(),
    )
    add(
        folder=inbox,
        kind="i18n",
        subject="会議の議事録",
        sender=EXTERNAL[3],
        to=me,
        received=at(),
        importance="high",
    )
    add(
        folder=inbox,
        kind="attachments",
        subject="Invoice 2024-117",
        sender=EXTERNAL[5],
        to=me,
        received=at(),
        attachments=(
            f("pdf", "Invoice 2024-117.pdf", 11, size=24_000),
            f("png", "chart.png", 12, inline=True, content_id="image012@contoso.test"),
        ),
    )
    add(
        folder=inbox,
        kind="attachments",
        subject="Chart for the deck",
        sender=colleagues[1],
        to=me,
        received=at(),
        attachments=(f("png", "chart.png", 14, inline=True, content_id="image014@contoso.test"),),
    )
    add(
        folder=inbox,
        kind="attachments",
        subject="Event photos (large)",
        sender=colleagues[0],
        to=me,
        received=at(),
        attachments=(f("random", "photos.zip", 15, size=3_300_000),),
    )
    add(
        folder=inbox,
        kind="attachments",
        subject="Mail and calendar files",
        sender=EXTERNAL[0],
        to=me,
        received=at(),
        attachments=(
            f("eml", "Forwarded message.eml", 16, content_type="application/octet-stream"),
            f("msg", "Old thread.msg", 17, size=18_432),
            f("ics", "Kickoff.ics", 18),
        ),
    )
    add(
        folder=inbox,
        kind="attachments",
        subject="FW: items attached",
        sender=colleagues[1],
        to=me,
        received=at(),
        attachments=(
            content.item_attachment("message", "Reminder - please bring laptop", 19),
            content.item_attachment("event", "Team offsite", 20),
        ),
    )
    add(
        folder=inbox,
        kind="attachments",
        subject="Shared document link",
        sender=colleagues[0],
        to=me,
        received=at(),
        attachments=(content.reference_attachment("Sales Invoice Template.docx", 21),),
    )
    add(
        folder=inbox,
        kind="invite",
        subject="Design review",
        sender=colleagues[0],
        to=me,
        received=at(),
        odata_type="#microsoft.graph.eventMessageRequest",
    )
    add(
        folder=inbox,
        kind="plain",
        subject="Action needed: sign the contract",
        sender=EXTERNAL[7],
        to=me,
        received=at(),
        flag="flagged",
        importance="high",
        categories=("Red category", "Team A"),
        is_read=False,
    )
    add(
        folder=inbox,
        kind="plain",
        subject="Done: travel booking",
        sender=EXTERNAL[4],
        to=me,
        received=at(),
        flag="complete",
        importance="low",
        categories=("Travel",),
    )
    add(folder=inbox, kind="empty", subject="", sender=EXTERNAL[6], to=me, received=at())
    add(
        folder=inbox,
        kind="plain",
        subject="All hands follow-up",
        sender=colleagues[2],
        to=me + colleagues,
        cc=EXTERNAL[:3],
        bcc=(EXTERNAL[3],),
        received=at(),
    )
    add(
        folder=inbox,
        kind="newsletter",
        subject="Your account statement",
        sender=NEWSLETTERS[1],
        to=me,
        received=at(),
    )
    add(
        folder=keys["drafts"],
        kind="plain",
        subject="Draft: ideas for the offsite",
        sender=None,
        to=(colleagues[0],),
        received=at(),
        is_draft=True,
    )
    add(
        folder=keys["r2024"],
        kind="attachments",
        subject="Receipt: office chair",
        sender=EXTERNAL[5],
        to=me,
        received=at(),
        attachments=(f("pdf", "receipt.pdf", 22, size=9_000),),
    )
    add(
        folder=keys["r2023"],
        kind="plain",
        subject="Receipt: conference ticket",
        sender=EXTERNAL[5],
        to=me,
        received=ANCHOR - 560 * DAY,
    )
    add(
        folder=keys["teama"],
        kind="plain",
        subject="Team A standup notes",
        sender=colleagues[1],
        to=me,
        received=at(),
        categories=("Team A",),
    )
    add(
        folder=keys["slash"],
        kind="plain",
        subject="Q1/Q2 report numbers",
        sender=colleagues[0],
        to=me,
        received=at(),
    )
    add(folder=keys["unicode"], kind="i18n", subject="Ünïcødé test", sender=EXTERNAL[2], to=me, received=at())
    add(
        folder=keys["archive"],
        kind="plain",
        subject="Archived: old project",
        sender=colleagues[0],
        to=me,
        received=at(),
    )
    add(
        folder=keys["deleted"],
        kind="plain",
        subject="Deleted: spam-ish offer",
        sender=EXTERNAL[6],
        to=me,
        received=at(),
    )
    add(
        folder=keys["junk"],
        kind="plain",
        subject="You have won!!!",
        sender=Address("Prize", "win@spam.example"),
        to=me,
        received=at(),
        is_read=False,
    )


def _filler(
    builder: MailboxBuilder,
    keys: dict[str, int],
    owner: Address,
    colleagues: tuple[Address, ...],
    rng: random.Random,
    count: int,
) -> None:
    if count <= 0:
        return
    folders = [keys[k] for k, _ in FILLER_FOLDERS]
    folder_weights = [w for _, w in FILLER_FOLDERS]
    kinds = [k for k, _ in FILLER_KINDS]
    kind_weights = [w for _, w in FILLER_KINDS]
    contacts = colleagues + EXTERNAL
    span = 730 * DAY
    step = span / count
    start = ANCHOR - span
    picks_folder = rng.choices(folders, folder_weights, k=count)
    picks_kind = rng.choices(kinds, kind_weights, k=count)
    sent_folder = keys["sent"]
    me = (owner,)
    f = content.file_attachment
    for i in range(count):
        folder, kind = picks_folder[i], picks_kind[i]
        received = int(start + i * step + rng.random() * step)
        outgoing = folder == sent_folder
        attachments: tuple[AttachmentSpec, ...] = ()
        odata_type = None
        if kind == "newsletter":
            sender = rng.choice(NEWSLETTERS)
            subject = ("Weekly digest: " if rng.random() < 0.4 else "Contoso News – ") + rng.choice(
                PLAIN_SUBJECTS
            )
        elif kind == "i18n":
            sender = rng.choice(contacts)
            subject = rng.choice(I18N_SUBJECTS)
        elif kind == "invite":
            sender = rng.choice(colleagues)
            subject = rng.choice(INVITE_SUBJECTS)
            odata_type = "#microsoft.graph.eventMessageRequest"
        elif kind == "attachments":
            sender = rng.choice(contacts)
            subject = f"{rng.choice(ATTACHMENT_SUBJECTS)} {rng.randint(100, 999)}"
            seed = rng.getrandbits(32)
            recipe = rng.choice(("pdf", "csv", "ics", "eml", "docx"))
            names = {
                "pdf": "document.pdf",
                "csv": "export.csv",
                "ics": "invite.ics",
                "eml": "message.eml",
                "docx": "notes.docx",
            }
            attachments = (f(recipe, names[recipe], seed, size=rng.randint(2_000, 40_000)),)
            if seed % 2 == 0:
                attachments += (
                    f(
                        "png",
                        "image.png",
                        seed + 1,
                        inline=True,
                        content_id=f"image{seed % 1000:03d}@contoso.test",
                    ),
                )
        else:
            sender = rng.choice(contacts)
            subject = rng.choice(PLAIN_SUBJECTS)
            if kind == "reply":
                subject = "RE: " + subject
        to = me
        if outgoing:
            sender, to = owner, tuple(rng.sample(contacts, rng.randint(1, 3)))
        cc = tuple(rng.sample(contacts, rng.randint(1, 2))) if rng.random() < 0.3 else ()
        categories = tuple(rng.sample(CATEGORIES, rng.randint(1, 2))) if rng.random() < 0.25 else ()
        roll = rng.random()
        importance = "high" if roll < 0.1 else "low" if roll < 0.15 else "normal"
        roll = rng.random()
        flag = "flagged" if roll < 0.08 else "complete" if roll < 0.12 else "notFlagged"
        _message(
            builder,
            rng,
            folder=folder,
            kind=kind,
            subject=subject,
            sender=sender,
            to=to,
            cc=cc,
            received=received,
            categories=categories,
            importance=importance,
            is_read=outgoing or rng.random() < 0.7,
            flag=flag,
            attachments=attachments,
            odata_type=odata_type,
        )
