"""Ids are opaque but checkable; the seeded tenant and mailboxes are deterministic and complete."""

from sandbox import _ids
from sandbox._ids import Ids
from sandbox._seed import build_mailbox, build_tenant


def test_ids_round_trip_and_reject_tampering() -> None:
    ids = Ids(42)
    text = ids.encode(_ids.MESSAGE, 3, 1234, 2)
    assert text.startswith("AAMkA")
    assert ids.decode(text) == (_ids.MESSAGE, 3, 1234, 2)
    assert ids.encode(_ids.IMMUTABLE_MESSAGE, 3, 1234) != ids.encode(_ids.MESSAGE, 3, 1234, 0)
    tampered = text[:10] + ("B" if text[10] != "B" else "C") + text[11:]
    assert ids.decode(tampered) is None
    assert ids.decode(text[:-4]) is None
    assert ids.decode("not an id at all!!") is None
    assert Ids(43).decode(text) is None


def test_the_same_seed_builds_the_same_tenant_and_mail() -> None:
    first, second = build_tenant(5), build_tenant(5)
    assert first.id == second.id
    assert next(iter(first.apps.values())).secret == next(iter(second.apps.values())).secret
    assert build_tenant(6).id != first.id
    user = first.users["adele@contoso.test"]
    a, b = build_mailbox(1, user, 5, 200), build_mailbox(1, user, 5, 200)
    assert [(m.subject, m.received, m.folder) for m in a.messages.values()] == [
        (m.subject, m.received, m.folder) for m in b.messages.values()
    ]


def test_the_curated_cases_are_there() -> None:
    tenant = build_tenant(1)
    mailbox = build_mailbox(1, tenant.users["adele@contoso.test"], 1, 0)
    names = {f.name for f in mailbox.folders.values()}
    assert {"Inbox", "Receipts", "2023", "2024", "Team A", "Q1/Q2 Reports", "Ünïcødé Ördner"} <= names
    assert any(f.hidden for f in mailbox.folders.values())
    assert any(f.search_query for f in mailbox.folders.values())
    attachments = [a for m in mailbox.messages.values() for a in m.attachments]
    assert any(a.size > 3_000_000 for a in attachments)
    assert {a.name.rsplit(".", 1)[-1] for a in attachments if a.kind == "file"} >= {
        "eml",
        "msg",
        "ics",
        "pdf",
        "png",
    }
    assert {a.item_kind for a in attachments if a.kind == "item"} == {"message", "event"}
    assert any(a.kind == "reference" for a in attachments)
    inline_only = [
        m for m in mailbox.messages.values() if m.attachments and all(a.is_inline for a in m.attachments)
    ]
    assert inline_only
    assert not inline_only[0].has_attachments
    german = build_mailbox(2, tenant.users["megan@contoso.test"], 1, 0)
    assert german.folders[german.well_known["inbox"]].name == "Posteingang"
