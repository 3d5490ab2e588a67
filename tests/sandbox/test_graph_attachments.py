"""Attachments over HTTPS: file, item and reference attachments, $select, $expand and $value."""

import base64
import email
import email.policy
from typing import Any

import httpx

from tests.sandbox.conftest import ADELE


def message(graph: httpx.Client, subject: str) -> dict[str, Any]:
    escaped = subject.replace("'", "''")
    found = graph.get(f"/users/{ADELE}/messages", params={"$filter": f"subject eq '{escaped}'"}).json()[
        "value"
    ]
    assert len(found) == 1, subject
    return found[0]


def test_file_attachments_bytes_match_value(graph: httpx.Client) -> None:
    msg = message(graph, "Mail and calendar files")
    listing = graph.get(f"/users/{ADELE}/messages/{msg['id']}/attachments").json()["value"]
    assert [a["name"] for a in listing] == ["Forwarded message.eml", "Old thread.msg", "Kickoff.ics"]
    for attachment in listing:
        assert attachment["@odata.type"] == "#microsoft.graph.fileAttachment"
        raw = graph.get(f"/users/{ADELE}/messages/{msg['id']}/attachments/{attachment['id']}/$value")
        assert raw.status_code == 200
        assert raw.content == base64.b64decode(attachment["contentBytes"])
        assert len(raw.content) == attachment["size"]
    assert listing[1]["contentType"] == "application/vnd.ms-outlook"
    assert base64.b64decode(listing[1]["contentBytes"]).startswith(b"\xd0\xcf\x11\xe0")
    assert base64.b64decode(listing[2]["contentBytes"]).startswith(b"BEGIN:VCALENDAR")


def test_select_leaves_out_content_bytes_and_expand_inlines_metadata(graph: httpx.Client) -> None:
    msg = message(graph, "Event photos (large)")
    meta = graph.get(
        f"/users/{ADELE}/messages/{msg['id']}/attachments",
        params={"$select": "id,name,size,contentType,isInline"},
    ).json()["value"]
    assert meta[0]["size"] > 3_000_000
    assert "contentBytes" not in meta[0]
    raw = graph.get(f"/users/{ADELE}/messages/{msg['id']}/attachments/{meta[0]['id']}/$value")
    assert len(raw.content) == meta[0]["size"]
    assert raw.headers["content-type"] == "application/zip"
    expanded = graph.get(
        f"/users/{ADELE}/messages/{msg['id']}", params={"$expand": "attachments($select=name,size)"}
    ).json()
    assert [a["name"] for a in expanded["attachments"]] == ["photos.zip"]


def test_inline_images_do_not_count_for_has_attachments(graph: httpx.Client) -> None:
    msg = message(graph, "Chart for the deck")
    assert msg["hasAttachments"] is False
    listing = graph.get(f"/users/{ADELE}/messages/{msg['id']}/attachments").json()["value"]
    assert listing[0]["isInline"] is True
    assert listing[0]["contentId"] == "image014@contoso.test"
    assert "cid:image014@contoso.test" in msg["body"]["content"] or "cid:" in msg["body"]["content"]


def test_item_attachments_give_mime_and_ical(graph: httpx.Client) -> None:
    msg = message(graph, "FW: items attached")
    listing = graph.get(f"/users/{ADELE}/messages/{msg['id']}/attachments").json()["value"]
    kinds = [a["@odata.type"] for a in listing]
    assert kinds == ["#microsoft.graph.itemAttachment"] * 2
    assert all(a["contentType"] is None and "contentBytes" not in a for a in listing)
    mail, event = listing
    mime = graph.get(f"/users/{ADELE}/messages/{msg['id']}/attachments/{mail['id']}/$value")
    parsed = email.message_from_bytes(mime.content, policy=email.policy.default)
    assert parsed["From"]
    ical = graph.get(f"/users/{ADELE}/messages/{msg['id']}/attachments/{event['id']}/$value")
    assert ical.headers["content-type"].startswith("text/calendar")
    assert ical.content.startswith(b"BEGIN:VCALENDAR")
    item = graph.get(
        f"/users/{ADELE}/messages/{msg['id']}/attachments/{event['id']}",
        params={"$expand": "microsoft.graph.itemattachment/item"},
    ).json()
    assert item["item"]["@odata.type"] == "#microsoft.graph.event"


def test_reference_attachment_value_is_405(graph: httpx.Client) -> None:
    msg = message(graph, "Shared document link")
    listing = graph.get(f"/users/{ADELE}/messages/{msg['id']}/attachments").json()["value"]
    assert listing[0]["@odata.type"] == "#microsoft.graph.referenceAttachment"
    raw = graph.get(f"/users/{ADELE}/messages/{msg['id']}/attachments/{listing[0]['id']}/$value")
    assert raw.status_code == 405


def test_attachment_of_another_message_is_not_found(graph: httpx.Client) -> None:
    one = message(graph, "Mail and calendar files")
    other = message(graph, "Invoice 2024-117")
    attachment = graph.get(f"/users/{ADELE}/messages/{one['id']}/attachments").json()["value"][0]
    response = graph.get(f"/users/{ADELE}/messages/{other['id']}/attachments/{attachment['id']}")
    assert response.status_code == 404
