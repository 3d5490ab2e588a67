"""The process environment of every Mailroom process (sync runs, Dagster, the API, the CLI), in one model.

    settings = Settings()                       # reads MAILROOM_* from the environment
    settings.mail_store("team@carbon.ai")       # the stores' part (StoreSettings)
    settings.graph                              # the Graph client's part (GraphSettings)

The stores' fields (`MAILROOM_DATA_DIR`, `MAILROOM_CONTROL_DB`, `MAILROOM_SECRET_KEY`,
`MAILROOM_LOCK_TIMEOUT`) come from `StoreSettings`; the Graph client's settings are the graph room's own
`GraphSettings`, which reads `MAILROOM_GRAPH_*` (every field: page sizes, timeouts, retries). The six a
deployment always sets also have short names, read here and handed to `GraphSettings`:

| variable | GraphSettings field |
|---|---|
| `MAILROOM_GRAPH_URL` | `graph_url` (Graph's versioned root) |
| `MAILROOM_AUTHORITY` | `authority_host`, and `tenant` when it ends with one: `https://login…/<tenant>` |
| `MAILROOM_TENANT_ID` | `tenant` |
| `MAILROOM_CLIENT_ID` | `client_id` |
| `MAILROOM_CLIENT_SECRET` | `client_secret` |
| `MAILROOM_CA_BUNDLE` | `ca_bundle` |

Setting a short name and its `MAILROOM_GRAPH_*` twin to different values is an error, not a silent choice.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from pydantic import Field, ValidationError
from pydantic_settings import SettingsConfigDict

from pipelines.graph import GraphSettings
from pipelines.store import StoreSettings

# Short name -> (GraphSettings field, its own MAILROOM_GRAPH_* variable).
SHORT_NAMES: Mapping[str, tuple[str, str]] = {
    "MAILROOM_GRAPH_URL": ("graph_url", "MAILROOM_GRAPH_GRAPH_URL"),
    "MAILROOM_AUTHORITY": ("authority_host", "MAILROOM_GRAPH_AUTHORITY_HOST"),
    "MAILROOM_TENANT_ID": ("tenant", "MAILROOM_GRAPH_TENANT"),
    "MAILROOM_CLIENT_ID": ("client_id", "MAILROOM_GRAPH_CLIENT_ID"),
    "MAILROOM_CLIENT_SECRET": ("client_secret", "MAILROOM_GRAPH_CLIENT_SECRET"),
    "MAILROOM_CA_BUNDLE": ("ca_bundle", "MAILROOM_GRAPH_CA_BUNDLE"),
}


class SettingsError(ValueError):
    """The environment is inconsistent or malformed; the message names the variable."""


def graph_settings_from_environment(environ: Mapping[str, str] | None = None) -> GraphSettings:
    """GraphSettings from the short names above plus everything `MAILROOM_GRAPH_*` sets."""
    environ = os.environ if environ is None else environ
    given: dict[str, str] = {}
    for short, (field, long) in SHORT_NAMES.items():
        value = environ.get(short)
        if not value:
            continue
        if environ.get(long) and environ[long] != value:
            raise SettingsError(f"{short} and {long} are both set, to different values; set one of them")
        given[field] = value
    authority = given.get("authority_host")
    if authority is not None:
        parts = urlsplit(authority)
        tenant = parts.path.strip("/")
        if tenant:
            # The sandbox and MSAL speak of an authority as host + tenant; GraphSettings keeps them apart.
            given["authority_host"] = f"{parts.scheme}://{parts.netloc}"
            if given.setdefault("tenant", tenant) != tenant:
                raise SettingsError(
                    f"MAILROOM_AUTHORITY names tenant {tenant!r} "
                    f"but MAILROOM_TENANT_ID is {given['tenant']!r}"
                )
    try:
        return GraphSettings(**given)  # type: ignore[arg-type]
    except ValidationError as error:
        problems = "; ".join(
            f"{_variable(str(e['loc'][0]) if e['loc'] else '')}: {e['msg']}" for e in error.errors()
        )
        raise SettingsError(f"Graph settings from the environment are invalid: {problems}") from None


def _variable(field: str) -> str:
    for short, (name, long) in SHORT_NAMES.items():
        if name == field:
            return f"{short} (or {long})"
    return f"MAILROOM_GRAPH_{field.upper()}"


class Settings(StoreSettings):
    """Where the stores live and how Graph is reached: everything a Mailroom process takes from MAILROOM_*.

    Build it from the environment (`Settings()`), or pass parts in tests:
    `Settings(data_dir=tmp, graph=GraphSettings(graph_url=..., ...))`.
    """

    model_config = SettingsConfigDict(env_prefix="MAILROOM_", extra="ignore")

    graph: GraphSettings = Field(default_factory=graph_settings_from_environment)
