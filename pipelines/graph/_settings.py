"""Settings of the Graph client: where Graph and the sign-in authority live, who we are, and our manners."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, HttpUrl, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class GraphSettings(BaseSettings):
    """How to reach Microsoft Graph (or the sandbox) and how politely to use it.

    Read from keyword arguments or, for anything not given, from `MAILROOM_GRAPH_*` environment variables
    (`MAILROOM_GRAPH_CLIENT_SECRET`, `MAILROOM_GRAPH_TENANT`, …). Sovereign clouds and the sandbox differ only
    in `graph_url` and `authority_host`.
    """

    model_config = SettingsConfigDict(env_prefix="MAILROOM_GRAPH_", extra="forbid", frozen=True)

    graph_url: HttpUrl = Field(
        HttpUrl("https://graph.microsoft.com/v1.0"), description="Graph's versioned root, e.g. .../v1.0"
    )
    authority_host: HttpUrl = Field(
        HttpUrl("https://login.microsoftonline.com"), description="Sign-in host; the tenant is appended"
    )
    tenant: str = Field("organizations", min_length=1, description="Tenant id or domain for sign-in")
    client_id: str = Field("", description="The app registration's client id")
    client_secret: SecretStr | None = Field(None, description="The app's client secret (confidential flows)")
    ca_bundle: Path | None = Field(None, description="PEM file to trust instead of the system's CAs")
    scopes: tuple[str, ...] = Field(("Mail.Read", "User.Read"), description="Delegated scopes to request")

    max_in_flight_per_mailbox: int = Field(4, ge=1, le=4, description="Graph allows 4 concurrent per mailbox")
    request_budget: int = Field(10_000, ge=1, description="Requests allowed per mailbox per budget window")
    budget_window_s: float = Field(600.0, gt=0, description="Length of Graph's request-budget window")
    budget_slowdown_at: float = Field(
        0.8, gt=0, le=1, description="Fraction of the budget after which requests are paced"
    )
    connect_timeout_s: float = Field(10.0, gt=0)
    read_timeout_s: float = Field(60.0, gt=0)
    max_attempts: int = Field(8, ge=1, le=50, description="Tries per request, the first included")
    backoff_base_s: float = Field(1.0, ge=0, description="First backoff step when Graph gives no Retry-After")
    backoff_cap_s: float = Field(60.0, ge=0, description="Longest backoff step")
    max_retry_after_s: float = Field(
        300.0, ge=0, description="Longer Retry-After values raise ThrottledError instead of sleeping"
    )
    page_size: int = Field(100, ge=1, le=1000, description="$top for listings")
    delta_page_size: int = Field(100, ge=1, le=1000, description="Prefer: odata.maxpagesize for delta")

    @field_validator("graph_url", "authority_host")
    @classmethod
    def _https_without_trailing_slash(cls, url: HttpUrl) -> HttpUrl:
        if url.scheme != "https":
            raise ValueError(f"must be an https:// URL (MSAL and Graph refuse anything else), got {url}")
        return HttpUrl(str(url).rstrip("/"))

    @field_validator("ca_bundle")
    @classmethod
    def _ca_bundle_exists(cls, path: Path | None) -> Path | None:
        if path is not None and not path.is_file():
            raise ValueError(f"CA bundle {path} does not exist or is not a file")
        return path

    @property
    def graph_root(self) -> str:
        """Graph's versioned root without a trailing slash, e.g. `https://graph.microsoft.com/v1.0`."""
        return str(self.graph_url).rstrip("/")

    @property
    def authority(self) -> str:
        """The MSAL authority URL: the sign-in host followed by the tenant."""
        return f"{str(self.authority_host).rstrip('/')}/{self.tenant}"
