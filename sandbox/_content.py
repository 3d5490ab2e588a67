"""Deterministic mail content: bodies rendered on demand from a message's kind and seed, attachment bytes.

Nothing here is stored per message: ``render`` rebuilds the same HTML, text and unique body every time from
``Message.kind`` and ``Message.seed`` (or returns ``Message.content`` for added and imported mail), which
keeps 100,000-message mailboxes small. Kinds: ``plain`` (text mail), ``newsletter`` (HTML with a style
sheet, tables, images and links), ``reply`` (new text, a signature, then quoted history), ``i18n``
(non-ASCII text), ``invite`` (a meeting request), ``attachments`` (refers to its files; inline images by
``cid:``), ``empty``.
"""

from __future__ import annotations

import html
import io
import random
import struct
import time
import zipfile
import zlib
from functools import lru_cache
from typing import NamedTuple

from sandbox._model import Address, AttachmentSpec, Message

HTML_HEAD = (
    '<html><head>\r\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\r\n</head>\r\n'
    "<body>\r\n"
)
HTML_TAIL = "</body>\r\n</html>\r\n"

SENTENCES = (
    "Thanks for the quick turnaround on the numbers.",
    "Can we move the review to Thursday afternoon?",
    "I have attached the latest draft for your comments.",
    "The vendor confirmed delivery for the second week of the month.",
    "Please remember to submit your expenses before Friday.",
    "We are still waiting on legal to sign off on the contract.",
    "The dashboard now refreshes every fifteen minutes.",
    "Let me know if the proposed budget works for your team.",
    "Our customer survey closed with a response rate of 38 percent.",
    "I will be out of the office next Monday and Tuesday.",
    "The build is green again after yesterday's fix.",
    "Could you forward the invoice to accounts payable?",
    "We agreed to keep the launch date and cut the scope instead.",
    "The new office badges will be handed out at reception.",
    "Attendance at the all-hands was the highest this year.",
    "Marketing wants a one-page summary by end of day.",
    "The migration finished overnight without errors.",
    "Please review the travel policy changes linked below.",
    "The quarterly numbers look better than forecast.",
    "I shared the folder with the whole project team.",
    "The workshop slides are in the usual place.",
    "Shipping costs went up again this quarter.",
    "We need two more volunteers for the charity run.",
    "The renewal quote is valid until the end of the month.",
)
I18N_SENTENCES = (
    "Grüße aus München – die Übersicht für das nächste Quartal ist fertig.",
    "Vielen Dank für Ihre schnelle Rückmeldung, Frau Müller.",
    "会議の議事録を添付しました。ご確認ください。",
    "来週の打ち合わせは木曜日の午後に変更になりました。",
    "Merci pour votre réponse ; la réunion est déplacée à jeudi.",
    "¿Podemos revisar el presupuesto mañana por la mañana?",
    "Привет! Отчёт за квартал готов, посмотри, пожалуйста.",
    "مرحبا، تم تحديث جدول الاجتماعات لهذا الأسبوع.",
    "Launch day 🎉🚀 — thanks everyone for the hard work! 🙌",
    "Ζήτω η ομάδα! Τα νέα είναι εξαιρετικά.",
)
HEADLINES = (
    ("Five ways to cut your cloud bill", "https://news.example.com/cloud-bill"),
    ("What changed in the travel policy", "https://intranet.contoso.test/travel"),
    ("Meet the new support team", "https://news.example.com/support-team"),
    ("Quarterly results at a glance", "https://investors.example.com/q-results"),
    ("Security tip: spotting phishing mail", "https://security.example.com/phishing"),
    ("Office move: what to pack", "https://intranet.contoso.test/office-move"),
    ("Product roadmap webinar recording", "https://events.example.com/roadmap"),
    ("Volunteer day photos", "https://news.example.com/volunteer-day"),
)
NEWSLETTER_STYLE = (
    "<style>\r\nbody { font-family: Segoe UI, sans-serif; color: #222; }\r\n"
    "table.layout { width: 100%; border-collapse: collapse; }\r\n"
    "td.story { padding: 12px; border-bottom: 1px solid #ddd; }\r\n"
    "h1 { font-size: 20px; } .muted { color: #888; font-size: 11px; }\r\n</style>\r\n"
)


class Rendered(NamedTuple):
    html: str
    text: str
    unique_html: str
    unique_text: str


def render(msg: Message, owner: Address) -> Rendered:
    """The body of ``msg`` as HTML and text, and its unique part (without quoted history)."""
    if msg.content is not None:
        c = msg.content
        body_html = c.html if c.html is not None else text_to_html(c.text)
        unique_text = c.unique_text if c.unique_text is not None else c.text
        unique_html = body_html if c.unique_text is None else text_to_html(unique_text)
        return Rendered(body_html, c.text, unique_html, unique_text)
    return _render_generated(msg.kind, msg.seed, msg.subject, msg.sender, owner, msg.sent)


def text_to_html(text: str) -> str:
    """Wrap plain text the way Exchange does when it serves a text message as HTML."""
    lines = "<br>\r\n".join(html.escape(line) for line in text.split("\n"))
    return f'{HTML_HEAD}<div class="PlainText">{lines}</div>\r\n{HTML_TAIL}'


def preview(text: str) -> str:
    """Graph's bodyPreview: the first 255 characters of the text body, whitespace collapsed."""
    return " ".join(text.split())[:255]


@lru_cache(maxsize=4096)
def _render_generated(
    kind: str, seed: int, subject: str, sender: Address | None, owner: Address, sent: int
) -> Rendered:
    rng = random.Random(seed)
    who = sender.name if sender else "Someone"
    if kind == "newsletter":
        return _newsletter(rng, subject)
    if kind == "empty":
        return Rendered(HTML_HEAD + HTML_TAIL, "", HTML_HEAD + HTML_TAIL, "")
    if kind == "i18n":
        paragraphs = rng.sample(I18N_SENTENCES, 3) + rng.sample(SENTENCES, 1)
    elif kind == "invite":
        when = time.strftime("%A, %d %B %Y %H:%M", time.gmtime(sent + 86400 * rng.randint(1, 9)))
        paragraphs = [
            f"{who} invited you to: {subject}",
            f"When: {when} (UTC)",
            "Where: Microsoft Teams meeting",
            "Join: https://teams.example.com/l/meetup-join/" + f"{rng.getrandbits(48):012x}",
        ]
    elif kind == "attachments":
        paragraphs = ["Please find the files attached.", *rng.sample(SENTENCES, 2)]
    else:
        paragraphs = rng.sample(SENTENCES, rng.randint(2, 6))
    signature = f"Best regards,\n{who}"
    unique_text = "\n\n".join(paragraphs) + "\n\n" + signature
    body_text = unique_text
    inner = "".join(f"<p>{html.escape(p)}</p>\r\n" for p in paragraphs)
    inner += "<p>" + html.escape(signature).replace("\n", "<br>") + "</p>\r\n"
    if kind == "attachments" and seed % 2 == 0:
        inner += f'<p><img src="cid:image{seed % 1000:03d}@contoso.test" alt="chart"></p>\r\n'
    unique_html = HTML_HEAD + inner + HTML_TAIL
    body_html = unique_html
    if kind == "reply":
        quoted = rng.sample(SENTENCES, 3)
        original_from = owner.name
        when = time.strftime("%a, %d %b %Y %H:%M", time.gmtime(sent - 3600 * rng.randint(2, 48)))
        plain_subject = subject.removeprefix("RE: ")
        body_text += (
            f"\n\n________________________________\nFrom: {original_from} <{owner.address}>\n"
            f"Sent: {when}\nSubject: {plain_subject}\n\n" + "\n".join("> " + q for q in quoted)
        )
        body_html = (
            HTML_HEAD
            + inner
            + '<hr style="display:inline-block;width:98%" tabindex="-1">\r\n'
            + '<div id="divRplyFwdMsg" dir="ltr">'
            + f"<b>From:</b> {html.escape(original_from)} &lt;{html.escape(owner.address)}&gt;<br>"
            + f"<b>Sent:</b> {when}<br><b>Subject:</b> {html.escape(plain_subject)}</div>\r\n"
            + "<blockquote>"
            + "".join(f"<p>{html.escape(q)}</p>" for q in quoted)
            + "</blockquote>\r\n"
            + HTML_TAIL
        )
    return Rendered(body_html, body_text, unique_html, unique_text)


def _newsletter(rng: random.Random, subject: str) -> Rendered:
    stories = rng.sample(HEADLINES, 4)
    rows = []
    text_parts = [subject, ""]
    for title, url in stories:
        blurb = " ".join(rng.sample(SENTENCES, 2))
        rows.append(
            f'<tr><td class="story"><h2><a href="{url}">{html.escape(title)}</a></h2>'
            f"<p>{html.escape(blurb)}</p></td>"
            f'<td class="story"><img src="{url}/thumb.png" width="120" alt=""></td></tr>\r\n'
        )
        text_parts += [title, blurb, f"Read more: {url}", ""]
    text_parts.append(
        "You receive this newsletter because you subscribed. Unsubscribe: "
        "https://news.example.com/unsubscribe"
    )
    body_html = (
        '<html><head>\r\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\r\n'
        + NEWSLETTER_STYLE
        + "</head>\r\n<body>\r\n"
        + f"<h1>{html.escape(subject)}</h1>\r\n"
        + '<table class="layout">\r\n'
        + "".join(rows)
        + "</table>\r\n"
        + '<p class="muted">You receive this newsletter because you subscribed. '
        + '<a href="https://news.example.com/unsubscribe">Unsubscribe</a></p>\r\n'
        + HTML_TAIL
    )
    text = "\n".join(text_parts)
    return Rendered(body_html, text, body_html, text)


# -- attachments -------------------------------------------------------------------------------------------

# Recipes whose output is exactly the requested size; the others have a natural size.
PADDED = frozenset({"random", "msg", "pdf"})
RECIPE_TYPES = {
    "pdf": "application/pdf",
    "png": "image/png",
    "random": "application/zip",
    "eml": "message/rfc822",
    "msg": "application/vnd.ms-outlook",
    "ics": "text/calendar",
    "csv": "text/csv",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}


def file_attachment(
    recipe: str,
    name: str,
    seed: int,
    *,
    size: int = 0,
    inline: bool = False,
    content_id: str | None = None,
    content_type: str | None = None,
) -> AttachmentSpec:
    """A generated file attachment; ``size`` is used by the recipes that pad (pdf, random, msg)."""
    ctype = content_type or RECIPE_TYPES[recipe]
    spec = AttachmentSpec("file", name, ctype, size, recipe, seed, inline, content_id)
    actual = size if recipe in PADDED else len(attachment_bytes(spec))
    return AttachmentSpec("file", name, ctype, actual, recipe, seed, inline, content_id)


def item_attachment(item_kind: str, name: str, seed: int) -> AttachmentSpec:
    spec = AttachmentSpec("item", name, None, 0, item_kind, seed, item_kind=item_kind)
    return AttachmentSpec(
        "item", name, None, len(attachment_bytes(spec)), item_kind, seed, item_kind=item_kind
    )


def reference_attachment(name: str, seed: int) -> AttachmentSpec:
    return AttachmentSpec("reference", name, RECIPE_TYPES["docx"], 1060, "reference", seed, is_inline=False)


def attachment_bytes(spec: AttachmentSpec) -> bytes:
    """The content of an attachment: a file's bytes, or the MIME / iCal of an item attachment."""
    if spec.data is not None:
        return spec.data
    return _recipe_bytes(spec.recipe, spec.seed, spec.size, spec.name)


@lru_cache(maxsize=256)
def _recipe_bytes(recipe: str, seed: int, size: int, name: str) -> bytes:
    rng = random.Random(seed)
    if recipe == "random":
        return rng.randbytes(size)
    if recipe == "msg":
        # The OLE compound-file signature that .msg files start with, then filler.
        return b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + rng.randbytes(max(size - 8, 0))
    if recipe == "pdf":
        head = f"%PDF-1.4\n% {name}\n1 0 obj << /Type /Catalog >> endobj\n%".encode()
        tail = b"\n%%EOF\n"
        room = max(size - len(head) - len(tail), 0)
        return head + rng.randbytes((room + 1) // 2).hex().encode()[:room] + tail
    if recipe == "png":
        return _png(rng.randrange(256), rng.randrange(256), rng.randrange(256))
    if recipe in {"eml", "message"}:
        return _eml(rng, name)
    if recipe in {"ics", "event"}:
        return _ics(rng, name)
    if recipe == "csv":
        rows = ["date,item,amount"] + [
            f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d},item {i},"
            f"{rng.randint(1, 999)}.{rng.randint(0, 99):02d}"
            for i in range(rng.randint(5, 40))
        ]
        return ("\r\n".join(rows) + "\r\n").encode()
    if recipe == "docx":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr(
                "word/document.xml", "<w:document>" + " ".join(rng.sample(SENTENCES, 5)) + "</w:document>"
            )
        return buffer.getvalue()
    raise ValueError(f"unknown attachment recipe {recipe!r}")


def _png(r: int, g: int, b: int) -> bytes:
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    raw = b"".join(b"\x00" + bytes((r, g, b)) * 8 for _ in range(8))
    header = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def _eml(rng: random.Random, name: str) -> bytes:
    subject = name.removesuffix(".eml") or "Forwarded message"
    day = rng.randint(1, 28)
    lines = [
        "From: Lidia Holloway <lidia@fabrikam.example>",
        "To: Adele Vance <adele@contoso.test>",
        f"Subject: {subject}",
        f"Date: Tue, {day:02d} Apr 2024 09:{rng.randint(10, 59)}:00 +0000",
        f"Message-ID: <{rng.getrandbits(64):016x}@fabrikam.example>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "",
        *rng.sample(SENTENCES, 3),
        "",
    ]
    return "\r\n".join(lines).encode()


def _ics(rng: random.Random, name: str) -> bytes:
    day = rng.randint(1, 28)
    lines = [
        "BEGIN:VCALENDAR",
        "PRODID:-//Mailroom sandbox//EN",
        "VERSION:2.0",
        "METHOD:REQUEST",
        "BEGIN:VEVENT",
        f"UID:{rng.getrandbits(64):016x}@contoso.test",
        f"SUMMARY:{name.removesuffix('.ics') or 'Meeting'}",
        f"DTSTART:202405{day:02d}T090000Z",
        f"DTEND:202405{day:02d}T100000Z",
        "LOCATION:Microsoft Teams meeting",
        "END:VEVENT",
        "END:VCALENDAR",
        "",
    ]
    return "\r\n".join(lines).encode()
