"""Per-run options of the jobs (`dg.Config`): what the launchpad shows and the sensor fills from API requests.

Filters come in either spelling: `filter` takes the text form (or Carbon JSON as text), `filters` takes
Carbon's JSON as a mapping, which reads naturally in the launchpad's YAML. Both go through the filter
language (by way of `sync.normalise_filter`) when the run starts, so a bad filter fails the run with the
filter language's own message.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from pydantic import Field

from pipelines import sync
from pipelines.store import MAX_ID, normalise_tags


class RequestConfig(dg.Config):
    """Set by `api_requests_sensor`: the recorded request a run carries out (its status follows the run)."""

    request_id: int | None = None


class SyncConfig(RequestConfig):
    """One sync of a customer's mailbox: which folder, which messages, with or without attachment content."""

    folders: list[str] = Field(
        default_factory=list
    )  # well-known names, paths (Inbox/Receipts) or ids; none: the customer's default
    subfolders: bool = False
    filter: str = ""  # none: the customer's default filter
    filters: dict[str, Any] | None = None
    one_off: bool = False  # list once with the pushed-down $filter instead of a delta round
    attachments: bool = False
    connection_id: int | None = None  # Carbon's data_source_id; none: the customer's Outlook connection
    # Carbon's sync tags, merged onto the files the run lists: a string (numbers and booleans become one) or
    # a list of them per key. Typed loosely: Dagster's config takes no union of a string and a list.
    tags: dict[str, Any] = Field(default_factory=dict)

    def filter_text(self) -> str | None:
        """The filter as canonical text (None: the customer's default, or everything); raises `dg.Failure`
        if bad."""
        text, carbon = self.filter.strip(), self.filters
        if text and carbon:
            raise dg.Failure(
                description="give the filter once: `filter` (text) or `filters` (Carbon JSON), not both"
            )
        if not text and not carbon:
            return None
        return normalise_filter(text or carbon)

    def sync_tags(self) -> dict[str, str | list[str]] | None:
        """The tags as stored (None: no tags); raises `dg.Failure` naming a tag that cannot be stored."""
        try:
            return normalise_tags(self.tags) or None
        except ValueError as error:
            raise dg.Failure(description=f"bad tags: {error}") from None


class _EmailsConfig(RequestConfig):
    """Single emails (or attachments) of the customer, by file id (Carbon's) or Graph message id."""

    file_ids: list[int] = Field(default_factory=list)
    message_ids: list[str] = Field(default_factory=list)

    def check_named(self, verb: str) -> None:
        """Raise `dg.Failure` unless some email is named and every file id can be one (the launchpad takes
        any integer), saying which value is wrong."""
        if not self.file_ids and not self.message_ids:
            raise dg.Failure(description=f"name the emails to {verb}: file_ids or message_ids")
        for index, file_id in enumerate(self.file_ids):
            if not 1 <= file_id <= MAX_ID:
                raise dg.Failure(
                    description=f"file_ids[{index}] is {file_id}, which is no file id "
                    f"(file ids are 1 to {MAX_ID}, as /user_files_v2 lists them)"
                )
        for index, message_id in enumerate(self.message_ids):
            if not message_id.strip():
                raise dg.Failure(description=f"message_ids[{index}] is empty: give Graph's message id")


class ResyncConfig(_EmailsConfig):
    """Fetch single emails again by file id (Carbon's) or Graph message id."""


class DeleteEmailsConfig(_EmailsConfig):
    """Delete single emails (or attachments) by file id (Carbon's) or Graph message id. `keep_record` is
    Carbon's `preserve_file_record`; `send_webhook` queues FILE_DELETED for each file deleted."""

    keep_record: bool = False
    send_webhook: bool = False


class DeleteCustomerConfig(RequestConfig):
    """Delete a customer's mail store, connections and partition."""


def normalise_filter(value: str | dict[str, Any]) -> str:
    """`sync.normalise_filter`, with a bad filter turned into a run failure that carries its message."""
    try:
        return sync.normalise_filter(value)
    except sync.InvalidRequest as error:
        raise dg.Failure(description=f"bad filter: {error}") from None
