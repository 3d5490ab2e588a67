"""The models read Graph's JSON as it really comes: partial, null-riddled, with the documented oddities."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from pydantic import ValidationError

from pipelines.graph import Attachment, GraphSettings, MailFolder, Message
from pipelines.graph._models import MessagePageBody

# Microsoft's message-get example (reference/graph.md §1), every field filled in.
DOC_MESSAGE = {
    "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users('7f18')/messages/$entity",
    "@odata.etag": 'W/"CQAAABYAAAC4ofQHEIqCSbQPot83AFcbAAAnjjuZ"',
    "id": "AAMkADhMGAAA=",
    "createdDateTime": "2018-09-09T03:15:05Z",
    "lastModifiedDateTime": "2018-09-09T03:15:08Z",
    "changeKey": "CQAAABYAAAC4ofQHEIqCSbQPot83AFcbAAAnjjuZ",
    "categories": ["Red category"],
    "receivedDateTime": "2018-09-09T03:15:08Z",
    "sentDateTime": "2018-09-09T03:15:06Z",
    "hasAttachments": False,
    "internetMessageId": "<MWHPR6E1BE060@MWHPR1120.namprd22.prod.outlook.com>",
    "subject": "9/9/2018: concert",
    "bodyPreview": "The group represents Nevada.",
    "importance": "normal",
    "parentFolderId": "AAMkADcbAAAAAAEJAAA=",
    "conversationId": "AAQkADOUpag6yWs=",
    "conversationIndex": "AQHTJWSHSywMzSz8o0OJud48nG50GQ==",
    "isDeliveryReceiptRequested": False,
    "isReadReceiptRequested": False,
    "isRead": True,
    "isDraft": False,
    "webLink": "https://outlook.office365.com/owa/?ItemID=AAMkADMGAAA%3D",
    "inferenceClassification": "focused",
    "body": {"contentType": "html", "content": "<html><body>The group represents Nevada.</body></html>"},
    "sender": {"emailAddress": {"name": "Adele Vance", "address": "adelev@contoso.OnMicrosoft.com"}},
    "from": {"emailAddress": {"name": "Adele Vance", "address": "adelev@contoso.OnMicrosoft.com"}},
    "toRecipients": [{"emailAddress": {"name": "Alex Wilber", "address": "AlexW@contoso.OnMicrosoft.com"}}],
    "ccRecipients": [],
    "bccRecipients": [],
    "replyTo": [],
    "flag": {
        "flagStatus": "flagged",
        "startDateTime": {"dateTime": "2018-09-09T00:00:00.0000000", "timeZone": "UTC"},
        "dueDateTime": {"dateTime": "2018-09-12T00:00:00.0000000", "timeZone": "UTC"},
    },
}


def test_the_documented_message_reads_completely() -> None:
    message = Message.model_validate_json(orjson.dumps(DOC_MESSAGE))
    assert message.id == "AAMkADhMGAAA="
    assert message.received_date_time == datetime(2018, 9, 9, 3, 15, 8, tzinfo=UTC)
    assert message.received_date_time.tzinfo is UTC
    assert (message.from_.name, message.from_.address) == ("Adele Vance", "adelev@contoso.OnMicrosoft.com")
    assert [r.address for r in message.to_recipients] == ["AlexW@contoso.OnMicrosoft.com"]
    assert message.categories == ["Red category"]
    assert message.is_flagged
    assert message.flag.due_date_time.date_time == "2018-09-12T00:00:00.0000000"
    assert message.body.content_type == "html"
    assert message.etag == 'W/"CQAAABYAAAC4ofQHEIqCSbQPot83AFcbAAAnjjuZ"'
    assert message.removed is None


def test_a_selected_message_tells_absent_from_false() -> None:
    message = Message.model_validate({"id": "x", "subject": "hi", "isRead": False})
    assert message.is_read is False
    assert message.has_attachments is None
    assert message.categories == []
    assert message.model_fields_set == {"id", "subject", "is_read"}


def test_nulls_unknown_fields_string_bools_and_odd_times_are_tolerated() -> None:
    message = Message.model_validate_json(
        orjson.dumps(
            {
                "id": "x",
                "isRead": "true",
                "hasAttachments": "false",
                "sender": None,
                "from": {"emailAddress": None},
                "toRecipients": None,
                "categories": None,
                "receivedDateTime": "2024-01-07T10:11:12.1234567Z",
                "sentDateTime": "2024-01-07T10:11:12",
                "lastModifiedDateTime": "2024-01-07T12:11:12+02:00",
                "someFutureField": {"nested": [1, 2]},
                "@odata.type": "#microsoft.graph.eventMessageRequest",
            }
        )
    )
    assert message.is_read is True
    assert message.has_attachments is False
    assert message.sender is None
    assert message.from_.address is None
    assert message.to_recipients == []
    assert message.received_date_time == datetime(2024, 1, 7, 10, 11, 12, 123456, tzinfo=UTC)
    assert message.sent_date_time == datetime(2024, 1, 7, 10, 11, 12, tzinfo=UTC)
    assert message.last_modified_date_time == datetime(2024, 1, 7, 10, 11, 12, tzinfo=UTC)
    assert message.odata_type == "#microsoft.graph.eventMessageRequest"
    assert not message.is_flagged


def test_a_message_without_an_id_is_refused_with_the_field_named() -> None:
    with pytest.raises(ValidationError, match="id"):
        Message.model_validate({"subject": "no id"})


def test_a_delta_page_with_removals_and_the_docs_string_bool() -> None:
    page = MessagePageBody.model_validate_json(
        orjson.dumps(
            {
                "@odata.deltaLink": "https://graph.microsoft.com/v1.0/me/mailfolders('A')/messages/delta?$deltatoken=G",
                "value": [
                    {
                        "@odata.type": "#microsoft.graph.message",
                        "id": "gone",
                        "@removed": {"reason": "deleted"},
                    },
                    {"id": "kept", "subject": "Holiday hours update", "isRead": "true"},
                ],
            }
        )
    )
    assert page.next_link is None
    assert page.delta_link.endswith("$deltatoken=G")
    assert [(m.id, m.removed.reason if m.removed else None) for m in page.value] == [
        ("gone", "deleted"),
        ("kept", None),
    ]
    assert page.value[1].is_read is True


def test_folders_and_search_folders() -> None:
    folders = [
        MailFolder.model_validate(
            {
                "id": "A",
                "displayName": "Inbox",
                "parentFolderId": "R",
                "childFolderCount": 1,
                "isHidden": False,
            }
        ),
        MailFolder.model_validate(
            {
                "@odata.type": "#microsoft.graph.mailSearchFolder",
                "id": "S",
                "displayName": "Weekly digests",
                "isSupported": True,
                "filterQuery": "contains(subject, 'weekly digest')",
            }
        ),
    ]
    assert [f.is_search_folder for f in folders] == [False, True]
    assert folders[0].child_folder_count == 1


@pytest.mark.parametrize(
    ("raw", "kind", "content_kind"),
    [
        (
            {
                "@odata.type": "#microsoft.graph.fileAttachment",
                "name": "a.pdf",
                "contentType": "application/pdf",
            },
            "file",
            "file",
        ),
        (
            {"@odata.type": "#microsoft.graph.itemAttachment", "name": "Reminder", "contentType": None},
            "item",
            "item",
        ),
        ({"@odata.type": "#microsoft.graph.referenceAttachment", "name": "x.docx"}, "reference", "reference"),
        (
            {
                "@odata.type": "#microsoft.graph.fileAttachment",
                "name": "Fwd.EML",
                "contentType": "application/octet-stream",
            },
            "file",
            "eml",
        ),
        ({"name": "mail", "contentType": "message/rfc822"}, "file", "eml"),
        ({"name": "old.msg", "contentType": "application/octet-stream"}, "file", "msg"),
        ({"name": "invite", "contentType": "text/calendar; method=REQUEST"}, "file", "ics"),
        ({"name": "meeting.ics"}, "file", "ics"),
    ],
)
def test_attachment_kinds(raw, kind, content_kind) -> None:
    attachment = Attachment.model_validate({"id": "att", "size": 10, "isInline": False, **raw})
    assert attachment.kind == kind
    assert attachment.content_kind == content_kind


def test_settings_refuse_plain_http_and_name_the_field() -> None:
    with pytest.raises(ValidationError, match="graph_url"):
        GraphSettings(graph_url="http://graph.test/v1.0")
    with pytest.raises(ValidationError, match="ca_bundle"):
        GraphSettings(ca_bundle="/nonexistent/ca.pem")


def test_settings_keep_the_secret_out_of_their_repr() -> None:
    settings = GraphSettings(client_secret="s3cret-value")
    assert "s3cret-value" not in repr(settings)
    assert "s3cret-value" not in str(settings.model_dump())
    assert settings.authority == "https://login.microsoftonline.com/organizations"
    assert settings.graph_root == "https://graph.microsoft.com/v1.0"


@pytest.mark.parametrize(
    "raw",
    [
        DOC_MESSAGE,
        {"id": "bare"},
        {
            "id": "partial",
            "subject": "Invoice",
            "from": None,
            "sender": {"emailAddress": {"address": "s@x.test"}},
        },
        {
            "id": "odd",
            "isRead": "true",
            "categories": None,
            "ccRecipients": [{"emailAddress": {"address": "c@x.test"}}, {"emailAddress": None}],
            "flag": {"flagStatus": "complete"},
            "importance": "high",
            "receivedDateTime": "2024-01-07T00:00:00Z",
            "hasAttachments": True,
        },
    ],
)
def test_facts_agree_with_the_filter_rooms_reading_of_the_json(raw) -> None:
    import filters

    message = Message.model_validate_json(orjson.dumps(raw))
    expected = filters.MessageFacts.from_graph({**raw, "isRead": raw.get("isRead") in (True, "true")})
    assert message.to_facts() == expected


def test_facts_feed_the_filter_evaluator() -> None:
    import filters

    facts = Message.model_validate(DOC_MESSAGE).to_facts()
    assert filters.matches(
        filters.parse('category:"Red category" AND is:flagged AND after:2018/09/01'), facts
    )
    assert not filters.matches(filters.parse("has:attachment"), facts)
