"""A sync's tags (Carbon's `tags`) reach the files it lists, against the sandbox: the first sync tags every
file it stores, attachments included; an incremental sync with other tags merges them onto what it lists."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pipelines.settings import Settings
from pipelines.store import FileQuery, parse_tag_filter
from pipelines.sync import SyncOptions, sync_customer
from sandbox import AdminClient
from tests.sync.conftest import MAILBOX


def tags_by_message(settings: Settings, customer: str) -> dict[tuple[str, str | None], dict | None]:
    page = settings.mail_store(customer).list_files(FileQuery(limit=1000))
    return {(f.message_id, f.attachment_id): f.tags for f in page.results}


def test_a_sync_tags_what_it_lists_and_a_later_one_merges_its_tags(
    settings: Settings, customer: str, sandbox_admin: AdminClient
) -> None:
    first = sync_customer(customer, SyncOptions(tags={"project": "apollo", "year": 2024}), settings=settings)
    files = tags_by_message(settings, customer)
    assert first.counts.inserted > 1
    assert any(attachment for _, attachment in files)  # attachments are files too, with their email's tags
    assert set(map(str, files.values())) == {str({"project": "apollo", "year": "2024"})}

    changed = next(message_id for message_id, attachment in files if attachment is None)
    sandbox_admin.update_message(MAILBOX, changed, isRead=True)
    second = sync_customer(
        customer, SyncOptions(tags={"year": "2025", "stage": ["a", "b"]}), settings=settings
    )
    assert second.counts.updated == 1
    after = tags_by_message(settings, customer)
    merged = {"project": "apollo", "year": "2025", "stage": ["a", "b"]}
    for (message_id, attachment), tags in after.items():
        # the delta round listed only the changed message; the others keep the tags they had
        assert tags == (merged if message_id == changed else files[(message_id, attachment)])

    query = FileQuery(limit=1000, tags=parse_tag_filter({"AND": [{"key": "stage", "value": "b"}]}))
    listed = settings.mail_store(customer).list_files(query).results
    assert {f.message_id for f in listed} == {changed}

    sync_customer(customer, settings=settings)  # a sync without tags leaves them
    assert tags_by_message(settings, customer) == after


def test_tags_that_cannot_be_stored_are_refused_by_key() -> None:
    with pytest.raises(ValidationError, match="tag 'who'"):
        SyncOptions(tags={"who": {"name": "x"}})
