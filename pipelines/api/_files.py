"""Files: `/user_files_v2`, `/resync_file`, `/delete_files`, `/delete_files_v2`, `/parsed_file`, `/raw_file`,
and the expiring links they hand out (`/files/{token}`).

Emails and their attachments are Carbon's files, with the mail store's stable integer file ids. Listings
read the mail store on a short read-only connection; resyncs and deletes are recorded for a Dagster run,
which alone writes the store.
"""

import email.policy
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path
from fastapi.responses import Response
from pydantic import BaseModel

from pipelines.api._auth import Caller, Context
from pipelines.api._context import ApiContext
from pipelines.api._errors import InvalidInput, NotFound
from pipelines.api._links import Link
from pipelines.api._models import (
    MAX_ID,
    MAX_PAGE,
    DeleteFilesQueryInput,
    DeleteFilesV2QueryInput,
    FileFilters,
    FilesQueryInput,
    FileStatistics,
    GenericSuccessResponse,
    PresignedURLResponse,
    ResyncFileQueryInput,
    UserFile,
    UserFilesV2,
)
from pipelines.store import (
    AttachmentRecord,
    Customer,
    EmailRecord,
    FileQuery,
    FileRecord,
    MailStore,
    TagGroup,
    legacy_tag_filter,
    parse_tag_filter,
    record_requests,
)

router = APIRouter(tags=["Files"])
FileId = Annotated[int, Path(ge=0, le=MAX_ID)]

MAX_DELETE = 100_000  # files one delete request may name; the run deletes them in one transaction
_STATUSES = {
    "DELAYED", "QUEUED_FOR_SYNC", "SYNCING", "READY", "SYNC_ERROR", "EVALUATING_RESYNC", "RATE_LIMITED",
    "SYNC_ABORTED", "QUEUED_FOR_OCR", "READY_TO_SYNC",
}  # fmt: skip
_FORMATS = {
    "TXT", "CSV", "TSV", "PDF", "DOCX", "PPTX", "XLSX", "XLSM", "MD", "RTF", "JSON", "HTML", "JPG", "PNG",
    "MP3", "MP2", "AAC", "WAV", "FLAC", "PCM", "M4A", "OGG", "OPUS", "MPEG", "MPG", "MP4", "WMV", "AVI",
    "MOV", "MKV", "FLV", "WEBM", "EML", "MSG",
}  # fmt: skip
_FORMAT_ALIASES = {"JPEG": "JPG", "HTM": "HTML", "TEXT": "TXT", "MARKDOWN": "MD"}


def _defaults(model: type[BaseModel]) -> dict[str, Any]:
    return {
        name: info.get_default(call_default_factory=True)
        for name, info in model.model_fields.items()
        if not info.is_required()
    }


# What pydantic would fill in for the fields `user_file` leaves out (only ever serialised, never changed).
_USER_FILE_DEFAULTS = _defaults(UserFile)
_STATISTICS_DEFAULTS = _defaults(FileStatistics)


# -- Carbon's filters to the mail store's query ---------------------------------------------------------


def file_query(
    filters: FileFilters,
    *,
    order_by: str = "id",
    order_dir: str = "asc",
    limit: int = 10,
    offset: int = 0,
    starting_id: int = 0,
    include_removed: bool = False,
) -> FileQuery | None:
    """The mail store query for Carbon's file filters, or None when they can match no Mailroom file.

    Empty lists mean "no filter", as in Carbon. Mailroom's files are Outlook emails and their attachments,
    without upload ids or embeddings, so filters on those match nothing. Files carry the tags of the syncs
    that listed them: `tags_v2` (or, without it, the deprecated `tags`) selects by them.
    """
    if filters.source is not None:
        sources = [filters.source] if isinstance(filters.source, str) else filters.source
        if sources and "OUTLOOK" not in sources:
            return None
    if filters.upload_ids or filters.embedding_generators:
        return None
    tags = _tag_filter(filters)
    kinds: list[Any] | None = None
    if filters.file_types_at_source:
        if "ATTACHMENT" not in filters.file_types_at_source:
            return None
        kinds = ["attachment"]
    message_ids = filters.external_file_ids or None
    if message_ids is not None:
        if kinds == ["attachment"]:
            return None
        kinds = ["email"]  # an email's external id is its message id; attachments share it, so keep emails
    if filters.root_files_only and (filters.parent_file_ids or filters.include_all_children):
        raise InvalidInput(
            "root_files_only cannot be combined with parent_file_ids or include_all_children",
            loc=("body", "filters", "root_files_only"),
        )
    return FileQuery(
        file_ids=filters.ids or None,
        message_ids=message_ids,
        sync_statuses=filters.sync_statuses or None,
        name_contains=filters.name,
        parent_file_ids=filters.parent_file_ids or None,
        root_files_only=bool(filters.root_files_only),
        kinds=kinds,
        non_synced_only=filters.non_synced_only,
        request_ids=filters.request_ids or None,
        sync_error_contains=filters.sync_error_message,
        external_urls=filters.external_urls or None,
        data_source_ids=filters.organization_user_data_source_id or None,
        include_removed=include_removed,
        order_by=order_by,  # type: ignore[arg-type]
        order_dir=order_dir,  # type: ignore[arg-type]
        limit=limit,
        offset=offset,
        min_file_id=starting_id,
        tags=tags,
    )


def _tag_filter(filters: FileFilters) -> TagGroup | None:
    """Carbon's tags filter as the store's tree (None: no tags filter); a bad one is the caller's 422."""
    field, value = ("tags_v2", filters.tags_v2) if filters.tags_v2 is not None else ("tags", filters.tags)
    if not value:
        return None
    try:
        return parse_tag_filter(value) if field == "tags_v2" else legacy_tag_filter(value)
    except ValueError as error:
        raise InvalidInput(str(error), loc=("body", "filters", field)) from None


def file_format(kind: str, extension: str) -> str | None:
    """Carbon's FileFormats value of a file: emails are OUTLOOK, attachments go by their upper-case extension
    (None: no Carbon format)."""
    if kind == "email":
        return "OUTLOOK"
    extension = _FORMAT_ALIASES.get(extension, extension)
    return extension if extension in _FORMATS else None


def _file_format(record: FileRecord) -> str | None:
    return file_format(record.kind, (record.name or "").rpartition(".")[2].upper())


def user_file(record: FileRecord, customer: Customer, urls: dict[str, str] | None = None) -> dict[str, Any]:
    """Carbon's UserFile for a stored email or attachment (every required field, with JSON types)."""
    is_email = record.kind == "email"
    return {
        **_USER_FILE_DEFAULTS,
        "id": record.file_id,
        "source": "OUTLOOK",
        "organization_id": customer.organization_id,
        "organization_user_id": customer.id,
        "organization_supplied_user_id": customer.customer_id,
        "external_file_id": record.message_id if is_email else (record.attachment_id or record.message_id),
        "sync_status": record.sync_status if record.sync_status in _STATUSES else "READY",
        "skip_embedding_generation": True,  # Mailroom stores text; embedding is the consumer's business
        "supports_cold_storage": False,
        "embedding_storage_status": "HOT_STORAGE",
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "tags": record.tags or {},
        "organization_user_data_source_id": record.data_source_id,
        "external_url": record.external_url,
        "sync_error_message": record.sync_error,
        "last_sync": record.last_sync,
        "file_statistics": {
            **_STATISTICS_DEFAULTS,
            "file_format": _file_format(record),
            "file_size": record.file_size,
            "mime_type": record.content_type,
        },
        "file_metadata": {
            "type": "EMAIL" if is_email else "ATTACHMENT",
            "message_id": record.message_id,
            "attachment_id": record.attachment_id,
            "folder_id": record.folder_id,
            "folder_path": record.folder_path,
            "received_at": record.received_at.isoformat() if record.received_at else None,
            "removed_from_mailbox": record.removed,
        },
        "name": record.name,
        "parent_id": record.parent_file_id,
        "source_created_at": record.source_created_at,
        "request_id": record.request_id,
        "file_contents_deleted": record.file_contents_deleted,
        **(urls or {}),
    }


def _find(ctx: ApiContext, customer: Customer, file_id: int) -> FileRecord:
    query = FileQuery(file_ids=[file_id], include_removed=True, limit=1)
    page = ctx.list_files(customer.customer_id, query)
    if not page.results:
        raise NotFound(f"no file {file_id} for this customer")
    return page.results[0]


def _all_ids(ctx: ApiContext, customer: Customer, query: FileQuery) -> list[int]:
    """Every file id the query matches, read a page at a time in id order."""
    ids: list[int] = []
    while True:
        start = ids[-1] + 1 if ids else 0
        page = ctx.list_files(
            customer.customer_id,
            query.model_copy(update={"limit": MAX_PAGE, "offset": 0, "min_file_id": start, "order_by": "id"}),
        )
        ids.extend(r.file_id for r in page.results)
        if len(page.results) < MAX_PAGE:
            return ids
        if len(ids) > MAX_DELETE:
            raise InvalidInput(
                f"the filters match more than {MAX_DELETE} files; delete them in smaller groups",
                loc=("body", "filters"),
            )


# -- routes ---------------------------------------------------------------------------------------------


def user_files_json(results: Sequence[dict[str, Any]], count: int) -> bytes:
    """`UserFilesV2` as JSON: what FastAPI would send for these `user_file` dicts through the response
    model (tested to agree), without validating them again, which took a third of a page's time."""
    return orjson.dumps({"results": results, "count": count}, option=orjson.OPT_UTC_Z)


@router.post("/user_files_v2", response_model=UserFilesV2)
def user_files(ctx: Context, caller: Caller, body: FilesQueryInput | None = None) -> Response:
    """List the customer's emails and attachments as Carbon files, filtered, ordered and paged."""
    body = body or FilesQueryInput()
    query = file_query(
        body.filters,
        order_by=body.order_by,
        order_dir=body.order_dir,
        limit=body.pagination.limit,
        offset=body.pagination.offset,
        starting_id=body.pagination.starting_id,
    )
    if query is None:
        return Response(user_files_json([], 0), media_type="application/json")
    customer = caller.customer
    page = ctx.list_files(customer.customer_id, query)
    ttl = body.presigned_url_expiry_time_seconds
    results = []
    for record in page.results:
        urls: dict[str, Any] = {}
        if body.include_raw_file:
            urls["presigned_url"] = ctx.links.url("raw", customer.id, record.file_id, ttl)
        if body.include_parsed_text_file:
            urls["parsed_text_url"] = ctx.links.url("parsed", customer.id, record.file_id, ttl)
        if body.include_additional_files:
            urls["additional_presigned_urls"] = {}
        results.append(user_file(record, customer, urls))
    return Response(user_files_json(results, page.count), media_type="application/json")


@router.post("/resync_file", response_model=UserFile)
def resync_file(body: ResyncFileQueryInput, ctx: Context, caller: Caller) -> dict[str, Any]:
    """Fetch one email again from Outlook (a Dagster run does it); a deleted one that kept its record
    comes back. Answers with the file as queued."""
    record = _find(ctx, caller.customer, body.file_id)
    payload = {
        "file_ids": [record.file_id],
        "message_ids": [record.message_id],
        "chunk_size": body.chunk_size,
        "chunk_overlap": body.chunk_overlap,
        "force_embedding_generation": body.force_embedding_generation,
        "skip_file_processing": body.skip_file_processing,
    }
    record_requests(
        ctx.control,
        "resync",
        [(caller.customer.customer_id, payload)],
        organization_id=caller.organization_id,
    )
    return user_file(record, caller.customer, {"sync_status": "QUEUED_FOR_SYNC"})


def _record_delete(
    ctx: ApiContext, caller: Any, file_ids: Sequence[int], *, preserve: bool, send_webhook: bool
) -> None:
    if not file_ids:
        return
    customer_id = caller.customer.customer_id
    payload = {"file_ids": list(file_ids), "preserve_file_record": preserve, "send_webhook": send_webhook}
    # FILE_DELETED means the file was deleted: the delete run queues it for what it deleted, never this
    # request, which a run may still refuse or fail.
    record_requests(
        ctx.control, "delete_files", [(customer_id, payload)], organization_id=caller.organization_id
    )


@router.post("/delete_files", response_model=GenericSuccessResponse, deprecated=True)
def delete_files(body: DeleteFilesQueryInput, ctx: Context, caller: Caller) -> dict[str, bool]:
    """Delete files by id and/or sync status (Carbon's older form of `/delete_files_v2`)."""
    if not body.file_ids and not body.sync_statuses:
        raise InvalidInput(
            "name the files to delete with file_ids or sync_statuses", loc=("body", "file_ids")
        )
    filters = FileFilters(
        ids=body.file_ids, sync_statuses=body.sync_statuses, non_synced_only=body.delete_non_synced_only
    )
    query = file_query(filters, include_removed=True)
    ids = _all_ids(ctx, caller.customer, query) if query is not None else []
    _record_delete(ctx, caller, ids, preserve=False, send_webhook=body.send_webhook)
    return {"success": True}


# The filters whose empty value `file_query` reads as "no filter": in a listing that lists everything, in a
# delete it would delete everything, which a client whose list of ids (or name) came out empty never meant.
_LIST_FILTERS = ("ids", "external_file_ids", "parent_file_ids", "organization_user_data_source_id",
                 "external_urls", "request_ids", "sync_statuses", "source")  # fmt: skip
_TEXT_FILTERS = ("name", "sync_error_message")


def _refuse_empty_filters(filters: FileFilters) -> None:
    for name in (*_LIST_FILTERS, *_TEXT_FILTERS):
        value = getattr(filters, name)
        if value == [] or value == "":
            what = "an empty list" if value == [] else "empty text"
            raise InvalidInput(
                f"{name} is {what}, which filters nothing, so this would delete every file the "
                f"other filters select: name the files, or leave {name} out if that is what you mean",
                loc=("body", "filters", name),
            )


@router.post("/delete_files_v2", response_model=GenericSuccessResponse)
def delete_files_v2(
    ctx: Context, caller: Caller, body: DeleteFilesV2QueryInput | None = None
) -> dict[str, bool]:
    """Delete the files the filters select (all of the customer's files when there are none, as in Carbon).

    Content and derived data go and a tombstone stays, so later syncs do not bring them back; with
    `preserve_file_record` the file's record stays too and `/resync_file` can restore it.
    """
    body = body or DeleteFilesV2QueryInput()
    _refuse_empty_filters(body.filters)
    query = file_query(body.filters, include_removed=True)
    ids = _all_ids(ctx, caller.customer, query) if query is not None else []
    _record_delete(ctx, caller, ids, preserve=body.preserve_file_record, send_webhook=body.send_webhook)
    return {"success": True}


def _content(ctx: ApiContext, customer: Customer, link: Link) -> tuple[bytes, str, str]:
    """The bytes a link serves, their media type and a file name; NotFound with the reason otherwise."""
    kind, file_id = link.kind, link.file_id

    def read(store: MailStore) -> EmailRecord | AttachmentRecord | None:
        return store.get_email(file_id) or store.attachment(file_id)

    found = ctx.read_mail(customer.customer_id, read, None)
    if found is None:
        raise NotFound(f"no file {file_id} for this customer")
    if isinstance(found, EmailRecord):
        if found.removed_at is not None or found.file_contents_deleted:
            raise NotFound(f"file {file_id}'s content was deleted")
        if kind == "parsed":
            return (found.row.body_text or "").encode(), "text/plain; charset=utf-8", f"{file_id}.txt"
        return _eml(found), "message/rfc822", f"{file_id}.eml"
    row = found.row
    if row.content is None:
        raise NotFound(f"file {file_id}'s content is not stored ({row.content_state.replace('_', ' ')})")
    if kind == "parsed":
        if not (row.content_type or "").startswith("text/"):
            raise NotFound(f"file {file_id} has no parsed text: Mailroom parses emails and text attachments")
        text = row.content.decode("utf-8", errors="replace")
        return text.encode(), "text/plain; charset=utf-8", f"{file_id}.txt"
    return row.content, row.content_type or "application/octet-stream", row.name or f"{file_id}.bin"


def _eml(found: EmailRecord) -> bytes:
    """The stored email as an RFC 822 message (Mailroom keeps fields and bodies, not Outlook's MIME)."""
    row = found.row
    message = EmailMessage(policy=email.policy.SMTP)

    def addresses(items: Sequence[Any]) -> str:
        return ", ".join(f'"{a.name}" <{a.address}>' if a.name else (a.address or "") for a in items)

    if row.from_address:
        message["From"] = f'"{row.from_name}" <{row.from_address}>' if row.from_name else row.from_address
    for header, items in (("To", row.to_recipients), ("Cc", row.cc_recipients)):
        if items:
            message[header] = addresses(items)
    message["Subject"] = row.subject or ""
    if row.sent_at or row.received_at:
        message["Date"] = format_datetime(row.sent_at or row.received_at)
    if row.internet_message_id:
        message["Message-ID"] = row.internet_message_id
    message.set_content(row.body_text or "")
    if row.body_html:
        message.add_alternative(row.body_html, subtype="html")
    return message.as_bytes()


def _presigned(ctx: ApiContext, caller: Any, file_id: int, kind: str) -> dict[str, str]:
    link = Link(kind, caller.customer.id, file_id, 0)  # type: ignore[arg-type]
    _content(ctx, caller.customer, link)  # 404 now, with the reason, rather than from the link later
    return {"presigned_url": ctx.links.url(kind, caller.customer.id, file_id, 3600)}  # type: ignore[arg-type]


@router.get("/parsed_file/{file_id}", response_model=PresignedURLResponse, deprecated=True)
def parsed_file(file_id: FileId, ctx: Context, caller: Caller) -> dict[str, str]:
    """A link, valid for an hour, to the file's text (an email's text body)."""
    return _presigned(ctx, caller, file_id, "parsed")


@router.get("/raw_file/{file_id}", response_model=PresignedURLResponse, deprecated=True)
def raw_file(file_id: FileId, ctx: Context, caller: Caller) -> dict[str, str]:
    """A link, valid for an hour, to the original: an email as `.eml`, an attachment's stored bytes."""
    return _presigned(ctx, caller, file_id, "raw")


@router.get("/files/{token}", tags=["Links"], response_class=Response)
def file_link(token: str, ctx: Context) -> Response:
    """What a presigned link points at; the link itself is the credential, until it expires."""
    link = ctx.links.open(token)
    customer = ctx.control.customer_by_pk(link.customer_pk) if link is not None else None
    if link is None or customer is None or customer.deleted_at is not None:
        raise NotFound("this link is unknown or has expired")
    content, media_type, name = _content(ctx, customer, link)
    safe_name = "".join(c if c.isalnum() or c in "._- " else "_" for c in name)[:200]
    return Response(
        content,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{safe_name}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )
