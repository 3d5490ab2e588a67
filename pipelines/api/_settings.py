"""The API's own settings (`MAILROOM_API_*`); the stores and Graph read theirs from the environment too."""

import ipaddress

from pydantic import Field, HttpUrl, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    """Where the API listens, how it is reached from outside, and its limits.

    `public_url` is the base that browsers and clients use: Microsoft redirects to
    `<public_url>/integrations/outlook` after sign-in (register exactly that as the app's redirect URI),
    and file links point at `<public_url>/files/...`. Behind a proxy set it to the proxy's https URL.
    """

    model_config = SettingsConfigDict(env_prefix="MAILROOM_API_", extra="ignore")

    public: bool = Field(
        False, description="Allow binding a non-loopback host (serving beyond this machine) on purpose"
    )
    host: str = Field("127.0.0.1", description="Address to bind (loopback unless `public` says otherwise)")
    port: int = Field(8000, ge=0, le=65535)
    public_url: HttpUrl | None = Field(None, description="Default: http://<host>:<port>")
    max_body_bytes: int = Field(1 << 20, ge=1024, description="Larger request bodies get 413")
    access_token_ttl_s: int = Field(3600, ge=60, le=24 * 3600)
    read_lock_timeout_s: float = Field(
        10.0, gt=0, description="How long a read waits for a sync run to release a mail store"
    )
    auth_cache_s: float = Field(
        5.0, ge=0, description="How long a checked API key is trusted in memory (a revoke takes this long)"
    )
    deliver_webhooks: bool = Field(True, description="Run the webhook deliverer inside the API process")
    webhook_poll_s: float = Field(1.0, gt=0)
    webhook_timeout_s: float = Field(10.0, gt=0)
    webhook_retry_delays_s: tuple[float, ...] = Field(
        (10.0, 60.0, 300.0), description="Waits before each retry; Carbon retries 3 times"
    )
    webhook_concurrency: int = Field(
        8, ge=1, le=64, description="Webhooks sent to at once (each one's deliveries in order)"
    )
    allow_private_webhooks: bool = Field(
        False,
        description="Let webhooks reach loopback, private and link-local addresses (tests, a local demo)",
    )
    prune_every_s: float = Field(3600.0, gt=0, description="How often expired states, tokens and logs go")
    retention_days: int = Field(30, ge=1, description="How long settled webhook deliveries are kept")

    @field_validator("host")
    @classmethod
    def _loopback_unless_public(cls, host: str, info: ValidationInfo) -> str:
        if not info.data.get("public") and not is_loopback(host):
            raise ValueError(
                f"{host} is not a loopback address; to serve beyond this machine say so with --public "
                "(MAILROOM_API_PUBLIC=1), ideally behind a TLS proxy"
            )
        return host

    @field_validator("public_url")
    @classmethod
    def _no_trailing_path(cls, url: HttpUrl | None) -> HttpUrl | None:
        if url is not None and (url.query or url.fragment):
            raise ValueError("public_url must not have a query or a fragment")
        return url

    @property
    def base_url(self) -> str:
        """The public base URL without a trailing slash."""
        if self.public_url is not None:
            return str(self.public_url).rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine only: `localhost` or a loopback IP."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
