"""Carbon's wire models for the routes Mailroom serves: request bodies with Carbon's server-side defaults
(the SDK sends only what the caller passed), and responses with every field Carbon marks required.

Field names, types, enums and defaults follow `reference/carbon-openapi.json`; unknown request fields are
ignored, as Carbon's server did, so newer clients keep working.
"""

from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from pipelines.store import MAX_ID

DataSourceType = Literal[
    "GOOGLE_CLOUD_STORAGE", "GOOGLE_DRIVE", "NOTION", "NOTION_DATABASE", "INTERCOM", "DROPBOX", "ONEDRIVE",
    "SHAREPOINT", "CONFLUENCE", "BOX", "ZENDESK", "ZOTERO", "S3", "AZURE_BLOB_STORAGE", "GMAIL", "OUTLOOK",
    "SERVICENOW", "TEXT", "CSV", "TSV", "PDF", "DOCX", "PPTX", "XLSX", "XLSM", "MD", "RTF", "JSON", "HTML",
    "RAW_TEXT", "WEB_SCRAPE", "RSS_FEED", "FRESHDESK", "GITBOOK", "SALESFORCE", "GITHUB", "SLACK", "GURU",
    "GONG", "DOCUMENT360", "JPG", "PNG", "JPEG", "MP3", "MP2", "AAC", "WAV", "FLAC", "PCM", "M4A", "OGG",
    "OPUS", "MPEG", "MPG", "MP4", "WMV", "AVI", "MOV", "MKV", "FLV", "WEBM", "EML", "MSG",
]  # fmt: skip
OauthBasedConnectors = Literal[
    "BOX", "CONFLUENCE", "DROPBOX", "GMAIL", "GOOGLE_DRIVE", "GOOGLE_CLOUD_STORAGE", "INTERCOM", "NOTION",
    "ONEDRIVE", "OUTLOOK", "SALESFORCE", "SHAREPOINT", "SLACK", "ZENDESK", "ZOTERO", "GONG", "SERVICENOW",
]  # fmt: skip
EmbeddingGenerators = Literal[
    "OPENAI", "AZURE_OPENAI", "AZURE_ADA_LARGE_256", "AZURE_ADA_LARGE_1024", "AZURE_ADA_LARGE_3072",
    "AZURE_ADA_SMALL_512", "AZURE_ADA_SMALL_1536", "COHERE_MULTILINGUAL_V3", "VERTEX_MULTIMODAL",
    "OPENAI_ADA_LARGE_256", "OPENAI_ADA_LARGE_1024", "OPENAI_ADA_LARGE_3072", "OPENAI_ADA_SMALL_512",
    "OPENAI_ADA_SMALL_1536", "SOLAR_1_MINI",
]  # fmt: skip
ExternalFileSyncStatuses = Literal[
    "DELAYED", "QUEUED_FOR_SYNC", "SYNCING", "READY", "SYNC_ERROR", "EVALUATING_RESYNC", "RATE_LIMITED",
    "SYNC_ABORTED", "QUEUED_FOR_OCR", "READY_TO_SYNC",
]  # fmt: skip
FileTypesAtSource = Literal["TICKET", "ARTICLE", "CONVERSATION", "TABLE", "INCIDENT", "ATTACHMENT"]
DataSourceSyncStatuses = Literal["QUEUED_FOR_SYNCING", "SYNCING", "READY", "SYNC_ERROR"]
LastSyncAction = Literal["ADD", "UPDATE", "CANCEL", "REVOKE"]
EmbeddingStorageStatus = Literal["HOT_STORAGE", "HOT_TO_COLD", "COLD_STORAGE", "COLD_TO_HOT"]

# Carbon publishes no page maximum; this one keeps a single answer (and the mail store's read) bounded.
MAX_PAGE = 1000
MAX_CUSTOMER_ID = 256
MAX_IDS = 10_000  # ids in one filter list: far beyond any real page, well short of a denial of service

Id = Annotated[int, Field(ge=0, le=MAX_ID)]
Size = Annotated[int, Field(ge=0, le=2**31 - 1)]


def _storable(value: Any) -> Any:
    """Free-form JSON that Mailroom keeps must fit its stores (integers within 64 bits)."""
    try:
        orjson.dumps(value)
    except TypeError as error:
        raise ValueError(f"not storable as JSON: {error}") from None
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_storable)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Pagination(_Body):
    limit: int = Field(10, ge=0, le=MAX_PAGE)
    offset: int = Field(0, ge=0, le=2**31 - 1)
    starting_id: int = Field(0, ge=0, le=MAX_ID, description="Only ids at or above this one (an id cursor)")


class FileSyncConfig(_Body):
    auto_synced_source_types: list[str] | None = None
    sync_attachments: bool = False
    detect_audio_language: bool = False
    transcription_service: Literal["assemblyai", "deepgram"] | None = None
    include_speaker_labels: bool = False
    split_rows: bool = False
    generate_chunks_only: bool = False
    store_file_only: bool = False
    skip_file_processing: bool = False
    parsed_text_format: Literal["PLAIN_TEXT", "MARKDOWN"] | None = None


# -- requests -------------------------------------------------------------------------------------------


class OAuthURLRequest(_Body):
    service: OauthBasedConnectors
    tags: Annotated[Any, AfterValidator(_storable)] = None
    scope: str | None = None
    scopes: list[str] | None = Field(default_factory=list)
    chunk_size: Size | None = 1500
    chunk_overlap: Size | None = 20
    skip_embedding_generation: bool | None = False
    embedding_model: EmbeddingGenerators | None = "OPENAI"
    zendesk_subdomain: str | None = None
    microsoft_tenant: str | None = Field(
        None, max_length=256, pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]*$", description="A tenant id or domain"
    )
    sharepoint_site_name: str | None = None
    confluence_subdomain: str | None = None
    generate_sparse_vectors: bool | None = False
    prepend_filename_to_chunks: bool | None = False
    max_items_per_chunk: int | None = Field(None, gt=0, le=2**31 - 1)
    salesforce_domain: str | None = None
    sync_files_on_connection: bool | None = True
    set_page_as_boundary: bool = False
    data_source_id: Id | None = None
    connecting_new_account: bool | None = False
    request_id: str | None = Field(None, max_length=256)
    use_ocr: bool | None = False
    parse_pdf_tables_with_ocr: bool | None = False
    enable_file_picker: bool = True
    sync_source_items: bool = True
    incremental_sync: bool = False
    file_sync_config: FileSyncConfig | None = None
    automatically_open_file_picker: bool | None = None
    gong_account_email: str | None = None
    servicenow_credentials: dict[str, Any] | None = None
    data_source_tags: JsonObject = Field(default_factory=dict)


class OutlookSyncInput(_Body):
    filters: dict[str, Any] | str = Field(
        ..., description="Carbon's filter JSON (`{}` syncs everything); Mailroom's text spelling works too"
    )
    tags: JsonObject | None = Field(default_factory=dict)
    folder: str | None = Field("Inbox", max_length=1024)
    chunk_size: Size | None = 1500
    chunk_overlap: Size | None = 20
    skip_embedding_generation: bool | None = False
    embedding_model: EmbeddingGenerators = "OPENAI"
    generate_sparse_vectors: bool | None = False
    prepend_filename_to_chunks: bool | None = False
    data_source_id: Id | None = None
    request_id: str | None = Field(None, max_length=256)
    sync_attachments: bool | None = False
    file_sync_config: FileSyncConfig | None = None
    incremental_sync: bool = False


class ResyncFileQueryInput(_Body):
    file_id: Id
    chunk_size: Size | None = None
    chunk_overlap: Size | None = None
    force_embedding_generation: bool = False
    skip_file_processing: bool | None = False


class DeleteFilesQueryInput(_Body):
    file_ids: list[Id] | None = Field(None, max_length=MAX_IDS)
    sync_statuses: list[ExternalFileSyncStatuses] | None = None
    delete_non_synced_only: bool = False
    send_webhook: bool = False
    delete_child_files: bool = False


class FileFilters(_Body):
    """Carbon's OrganizationUserFilesToSyncFilters; every filter given must hold (AND)."""

    source: DataSourceType | list[DataSourceType] | None = None
    name: str | None = Field(None, max_length=1024)
    tags: dict[str, Any] | None = None
    tags_v2: dict[str, Any] | None = None
    ids: list[Id] | None = Field(None, max_length=MAX_IDS)
    external_file_ids: list[str] | None = Field(None, max_length=MAX_IDS)
    sync_statuses: list[ExternalFileSyncStatuses] | None = None
    parent_file_ids: list[Id] | None = Field(None, max_length=MAX_IDS)
    organization_user_data_source_id: list[Id] | None = Field(None, max_length=MAX_IDS)
    embedding_generators: list[EmbeddingGenerators] | None = None
    root_files_only: bool | None = None
    include_all_children: bool = False
    non_synced_only: bool = False
    request_ids: list[str] | None = Field(None, max_length=100)
    upload_ids: list[str] | None = Field(None, max_length=100)
    sync_error_message: str | None = Field(None, max_length=1024)
    include_containers: bool | None = None
    external_urls: list[str] | None = Field(None, max_length=MAX_IDS)
    file_types_at_source: list[FileTypesAtSource] | None = None


class DeleteFilesV2QueryInput(_Body):
    filters: FileFilters = Field(default_factory=FileFilters)
    send_webhook: bool = False
    preserve_file_record: bool = False


class UpdateUsersInput(_Body):
    customer_ids: list[str] = Field(..., min_length=1, max_length=100)
    auto_sync_enabled_sources: list[DataSourceType] | Literal["ALL"] | None = None
    max_files: int | None = Field(None, ge=-1, le=MAX_ID)
    max_files_per_upload: int | None = Field(None, ge=-1, le=MAX_ID)
    max_characters: int | None = Field(None, ge=-1, le=MAX_ID)
    max_characters_per_file: int | None = Field(None, ge=-1, le=MAX_ID)
    max_characters_per_upload: int | None = Field(None, ge=-1, le=MAX_ID)
    auto_sync_interval: Literal[-1, 3, 6, 12, 24] | None = Field(
        None, description="Hours between auto-syncs: 3, 6, 12 or 24; -1 goes back to the default (24)"
    )


class ListUsersFilters(_Body):
    customer_ids: list[str] | None = Field(None, max_length=MAX_IDS)
    carbon_user_ids: list[Id] | None = Field(None, max_length=MAX_IDS)


class ListUsersRequest(_Body):
    pagination: Pagination = Field(default_factory=Pagination)
    filters: ListUsersFilters = Field(default_factory=ListUsersFilters)
    order_by: Literal["created_at", "updated_at"] = "created_at"
    order_dir: Literal["asc", "desc"] = "desc"
    include_count: bool = False


class UserRequestContent(_Body):
    customer_id: str = Field(..., min_length=1, max_length=MAX_CUSTOMER_ID)


class DeleteUsersInput(_Body):
    customer_ids: list[str] = Field(..., min_length=1, max_length=MAX_IDS)


class FilesQueryInput(_Body):
    """Carbon's OrganizationUserFilesToSyncQueryInput."""

    pagination: Pagination = Field(default_factory=Pagination)
    order_by: Literal["created_at", "updated_at", "name", "last_sync", "file_size", "id"] = "updated_at"
    order_dir: Literal["asc", "desc"] = "asc"
    filters: FileFilters = Field(default_factory=FileFilters)
    include_raw_file: bool | None = None
    include_parsed_text_file: bool | None = None
    include_additional_files: bool | None = None
    presigned_url_expiry_time_seconds: int = Field(3600, ge=1, le=7 * 24 * 3600)


class DataSourceFilters(_Body):
    source: DataSourceType | None = None
    ids: list[Id] | None = Field(None, max_length=MAX_IDS)
    revoked_access: bool | None = None
    tags: dict[str, Any] | None = None


class DataSourceQueryInput(_Body):
    pagination: Pagination = Field(default_factory=Pagination)
    order_by: Literal["created_at", "updated_at"] = "updated_at"
    order_dir: Literal["asc", "desc"] = "asc"
    filters: DataSourceFilters = Field(default_factory=DataSourceFilters)


class RevokeAccessTokenInput(_Body):
    data_source_id: Id


class AddWebhookProps(_Body):
    url: str = Field(..., max_length=2048)


class WebhookFilters(_Body):
    ids: list[Id] | None = Field(default_factory=list, max_length=MAX_IDS)


class WebhookQueryInput(_Body):
    pagination: Pagination = Field(default_factory=Pagination)
    order_by: Literal["created_at", "updated_at"] = "updated_at"
    order_dir: Literal["asc", "desc"] = "asc"
    filters: WebhookFilters = Field(default_factory=WebhookFilters)


# -- responses ------------------------------------------------------------------------------------------


class GenericSuccessResponse(BaseModel):
    success: bool


class OuthURLResponse(BaseModel):
    oauth_url: str


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str


class PresignedURLResponse(BaseModel):
    presigned_url: str


class FileStatistics(BaseModel):
    file_format: str | None = None
    file_size: int | None = None
    num_characters: int | None = None
    num_tokens: int | None = None
    num_embeddings: int | None = None
    mime_type: str | None = None


class UserFile(BaseModel):
    id: int
    source: DataSourceType
    organization_id: int
    organization_user_id: int | None
    organization_supplied_user_id: str
    external_file_id: str
    sync_status: ExternalFileSyncStatuses
    skip_embedding_generation: bool
    supports_cold_storage: bool
    embedding_storage_status: EmbeddingStorageStatus
    created_at: datetime
    updated_at: datetime
    tags: dict[str, Any] | None = None
    organization_user_data_source_id: int | None = None
    external_url: str | None = None
    sync_error_message: str | None = None
    last_sync: datetime | None = None
    file_statistics: FileStatistics | None = None
    file_metadata: dict[str, Any] | None = None
    embedding_properties: dict[str, Any] | None = None
    chunk_size: int | None = None
    chunk_overlap: int | None = None
    chunk_properties: dict[str, Any] | None = None
    ocr_properties: dict[str, Any] = Field(default_factory=dict)
    ocr_job_started_at: datetime | None = None
    name: str | None = None
    parent_id: int | None = None
    enable_auto_sync: bool | None = None
    presigned_url: str | None = None
    parsed_text_url: str | None = None
    additional_presigned_urls: dict[str, Any] | None = None
    source_created_at: datetime | None = None
    generate_sparse_vectors: bool | None = None
    request_id: str | None = None
    upload_id: str | None = None
    sync_properties: dict[str, Any] = Field(default_factory=dict)
    messages_metadata: dict[str, Any] = Field(default_factory=dict)
    file_contents_deleted: bool = False
    hot_storage_time_to_live: int | None = None


class UserFilesV2(BaseModel):
    results: list[UserFile]
    count: int


class ListUserResponse(BaseModel):
    id: int
    organization_id: int
    organization_supplied_user_id: str
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    enabled_features: dict[str, Any] | None
    custom_limits: dict[str, Any] = Field(default_factory=dict)
    auto_sync_enabled_sources: list[str] = Field(default_factory=list)


class UserListResponse(BaseModel):
    users: list[ListUserResponse]
    count: int | None = None


class UserResponse(ListUserResponse):
    num_files_synced: int
    num_characters_synced: int
    num_tokens_synced: int
    aggregate_file_size: dict[str, Any]
    aggregate_num_characters: dict[str, Any]
    aggregate_num_tokens: dict[str, Any]
    aggregate_num_embeddings: dict[str, Any]
    aggregate_num_files_by_source: dict[str, Any]
    aggregate_num_files_by_file_format: dict[str, Any]
    unique_file_tags: list[Any]
    connector_settings: dict[str, Any] = Field(default_factory=dict)


class DataSource(BaseModel):
    """Carbon's OrganizationUserDataSourceAPI: all 18 keys present, `token` always null here."""

    id: int
    data_source_external_id: str | None
    data_source_type: DataSourceType
    token: dict[str, Any] | None
    sync_status: DataSourceSyncStatuses
    source_items_synced_at: datetime | None
    organization_user_id: int
    organization_id: int
    organization_supplied_user_id: str
    revoked_access: bool
    last_synced_at: datetime
    last_sync_action: LastSyncAction
    enable_auto_sync: bool | None
    created_at: datetime
    updated_at: datetime
    files_synced_at: datetime | None
    data_source_metadata: dict[str, Any]
    tags: dict[str, Any]


class DataSourceResponse(BaseModel):
    results: list[DataSource]
    count: int


class WebhookNoKey(BaseModel):
    id: int
    organization_id: int
    url: str
    status: Literal["ACTIVE", "FLAGGED"]
    created_at: datetime
    updated_at: datetime
    status_reason: str | None = None


class WebhookWithKey(WebhookNoKey):
    signing_key: str = Field(..., description="Shown this once; Mailroom keeps it encrypted")


class WebhookQueryResponse(BaseModel):
    results: list[WebhookNoKey]
    count: int


class Health(BaseModel):
    status: Literal["ok"]
    version: str
