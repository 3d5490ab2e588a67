"""`/user_files_v2` answers with JSON written straight from `user_file`'s dicts: it must be what the response
model (`UserFilesV2`) would have made of them, whatever the record holds."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from pipelines.api._files import user_file, user_files_json
from pipelines.api._models import UserFilesV2
from pipelines.store import Customer, FileRecord

CUSTOMER = Customer(
    id=7,
    organization_id=1,
    customer_id="ada@example.com",
    auto_sync_sources=["OUTLOOK"],
    auto_sync_interval_minutes=None,
    default_folder=None,
    default_filter=None,
    max_files=None,
    max_files_per_upload=None,
    max_characters=None,
    max_characters_per_file=None,
    max_characters_per_upload=None,
    created_at=datetime(2024, 1, 1, tzinfo=UTC),
    updated_at=datetime(2024, 1, 1, tzinfo=UTC),
    deleted_at=None,
)
WHEN = datetime(2024, 5, 1, 9, 30, 15, 123456, tzinfo=UTC)


def record(**changes: object) -> FileRecord:
    values: dict[str, object] = {
        "file_id": 12,
        "kind": "email",
        "parent_file_id": None,
        "message_id": "AAMk-000012",
        "attachment_id": None,
        "name": "Quarterly report",
        "content_type": "message/rfc822",
        "external_url": "https://outlook.example.com/owa/?ItemID=12",
        "sync_status": "READY",
        "sync_error": None,
        "file_size": 2048,
        "request_id": "carbon-req-1",
        "data_source_id": 3,
        "folder_id": "inbox",
        "folder_path": "Inbox",
        "received_at": WHEN,
        "source_created_at": WHEN.replace(microsecond=0),
        "created_at": WHEN,
        "updated_at": WHEN,
        "last_sync": WHEN,
        "removed": False,
        "file_contents_deleted": False,
    }
    values.update(changes)
    return FileRecord(**values)  # type: ignore[arg-type]


RECORDS = [
    record(),
    record(
        file_id=13,
        kind="attachment",
        parent_file_id=12,
        attachment_id="att-1",
        name="scan.PDF",
        content_type="application/pdf",
        sync_status="SOMETHING_NEW",  # an unknown status is reported as READY
    ),
    record(
        file_id=14,
        name=None,
        external_url=None,
        file_size=None,
        request_id=None,
        data_source_id=None,
        received_at=None,
        source_created_at=None,
        sync_status="SYNC_ERROR",
        sync_error="body too large",
        removed=True,
        file_contents_deleted=True,
    ),
    record(file_id=15, kind="attachment", parent_file_id=12, attachment_id="", name="no extension"),
]


@pytest.mark.parametrize(
    "urls",
    [
        None,
        {"presigned_url": "http://127.0.0.1/files/a", "parsed_text_url": "http://127.0.0.1/files/b"},
        {"additional_presigned_urls": {}},
    ],
)
def test_the_json_is_what_the_response_model_makes_of_the_same_files(urls: dict[str, object] | None) -> None:
    results = [user_file(r, CUSTOMER, urls) for r in RECORDS]
    written = orjson.loads(user_files_json(results, 40))
    modelled = orjson.loads(UserFilesV2.model_validate({"results": results, "count": 40}).model_dump_json())
    assert written == modelled
    assert written["results"][0]["created_at"] == "2024-05-01T09:30:15.123456Z"
    assert written["results"][1]["sync_status"] == "READY"
    assert written["results"][1]["file_statistics"]["file_format"] == "PDF"


def test_an_empty_page_still_has_both_fields() -> None:
    assert orjson.loads(user_files_json([], 0)) == {"results": [], "count": 0}
