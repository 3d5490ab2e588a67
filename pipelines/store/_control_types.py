"""The control store's record types (what readers get back) and its validated inputs."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RequestKind = Literal["update_users", "sync", "resync", "delete_files", "delete_users"]
RequestStatus = Literal["queued", "submitted", "succeeded", "failed"]
DEFAULT_AUTO_SYNC_MINUTES = 24 * 60
MIN_AUTO_SYNC_MINUTES = 5


@dataclass(frozen=True, slots=True)
class Organization:
    id: int
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Customer:
    """A customer (Carbon's organization user) and its settings."""

    id: int
    organization_id: int
    customer_id: str
    auto_sync_sources: list[str] | Literal["ALL"]
    auto_sync_interval_minutes: int | None
    default_folder: str | None
    default_filter: str | None
    max_files: int | None
    max_files_per_upload: int | None
    max_characters: int | None
    max_characters_per_file: int | None
    max_characters_per_upload: int | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None

    @property
    def outlook_auto_sync(self) -> bool:
        """Whether auto-sync covers Outlook (`"ALL"` or a list naming OUTLOOK)."""
        return self.auto_sync_sources == "ALL" or "OUTLOOK" in self.auto_sync_sources

    @property
    def interval_minutes(self) -> int:
        """The auto-sync interval in effect (24 h unless set)."""
        return self.auto_sync_interval_minutes or DEFAULT_AUTO_SYNC_MINUTES


class CustomerUpdate(BaseModel):
    """Settings to change on customers (`/update_users`); only the fields given are changed."""

    model_config = ConfigDict(extra="forbid")

    auto_sync_sources: list[str] | Literal["ALL"] | None = None
    auto_sync_interval_minutes: int | None = Field(default=None, ge=MIN_AUTO_SYNC_MINUTES)
    default_folder: str | None = None
    default_filter: str | None = None
    max_files: int | None = Field(default=None, ge=-1)
    max_files_per_upload: int | None = Field(default=None, ge=-1)
    max_characters: int | None = Field(default=None, ge=-1)
    max_characters_per_file: int | None = Field(default=None, ge=-1)
    max_characters_per_upload: int | None = Field(default=None, ge=-1)


@dataclass(frozen=True, slots=True)
class Connection:
    """An Outlook data source. `token_cache` is sealed by `pipelines.graph` and opaque here."""

    id: int
    customer_pk: int
    source: str
    mailbox: str
    auth_kind: Literal["delegated", "app"]
    tenant: str | None
    sync_status: str
    sync_error: str | None
    revoked: bool
    last_sync_action: str
    enable_auto_sync: bool | None
    last_synced_at: datetime | None
    files_synced_at: datetime | None
    metadata: dict[str, Any]
    tags: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    def __repr__(self) -> str:
        return f"Connection(id={self.id}, mailbox={self.mailbox!r}, auth_kind={self.auth_kind!r})"


@dataclass(frozen=True, slots=True)
class Request:
    """A recorded request; `run_key` is what Dagster deduplicates runs by."""

    id: int
    organization_id: int
    customer_id: str
    kind: RequestKind
    payload: dict[str, Any]
    status: RequestStatus
    reason: str | None
    run_id: str | None
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    finished_at: datetime | None

    @property
    def run_key(self) -> str:
        return f"req-{self.id}"


@dataclass(frozen=True, slots=True)
class Webhook:
    """A webhook URL (never with its signing key: ask `ControlStore.webhook_signing_key`)."""

    id: int
    organization_id: int
    url: str
    status: Literal["ACTIVE", "FLAGGED"]
    status_reason: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Delivery:
    """A webhook delivery from the outbox, with where it goes."""

    id: int
    webhook_id: int
    url: str
    event_type: str
    customer_id: str | None
    payload: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    organization_id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A customer access token as issued: the plain values exist only here, once."""

    access_token: str
    refresh_token: str
    expires_at: datetime

    def __repr__(self) -> str:
        return f"IssuedToken(expires_at={self.expires_at.isoformat()})"


@dataclass(frozen=True, slots=True)
class OAuthState:
    """A consumed connect flow: whose it is, MSAL's flow (decrypted) and the request's options."""

    customer_pk: int
    flow: dict[str, Any]
    payload: dict[str, Any]
    created_at: datetime

    def __repr__(self) -> str:
        return f"OAuthState(customer_pk={self.customer_pk}, payload={self.payload!r})"
