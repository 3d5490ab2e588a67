"""Dagster resources: where the stores live and how to reach Microsoft Graph (or the sandbox).

Both are `ConfigurableResource`s bound to `MAILROOM_*` variables through `dg.EnvVar`, so a secret is resolved
in the run's process and never written into run config, the UI or the event log. The sandbox is one
configuration of them (its URLs, client and CA), Microsoft another (the defaults plus tenant, client id and
secret). The variables are the ones `pipelines.settings` documents.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import dagster as dg

from pipelines.settings import Settings, SettingsError, graph_settings_from_environment
from pipelines.store import DEFAULT_LOCK_TIMEOUT, ControlStore, MailStore, StoreSettings


class MailroomStores(dg.ConfigurableResource):
    """The data directory (one mail store per customer under `mail/`), the control store, the secret key."""

    data_dir: str = "data"
    control_db: str | None = None  # default: <data_dir>/control.sqlite3
    secret_key: str | None = None  # seals token caches and webhook keys in the control store
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT

    def store_fields(self) -> dict[str, object]:
        return {
            "data_dir": Path(self.data_dir),
            "control_db": Path(self.control_db) if self.control_db else None,
            "secret_key": self.secret_key,
            "lock_timeout": self.lock_timeout,
        }

    def control(self) -> ControlStore:
        return StoreSettings(**self.store_fields()).control_store()  # type: ignore[arg-type]

    def mail(self, customer_id: str, *, read_only: bool = False) -> MailStore:
        store_settings = StoreSettings(**self.store_fields())  # type: ignore[arg-type]
        return store_settings.mail_store(customer_id, read_only=read_only)

    def refuse_deleted(self, customer_id: str) -> None:
        """Raise `dg.Failure` if the customer is marked deleted and waits to be purged (by its delete run, or
        a `mailroom customers remove` that a busy store turned away): a run queued before the delete has
        nothing to do (the engine would only say there is no customer)."""
        if self.control().customer_deleted(customer_id):
            raise dg.Failure(
                description=f"customer {customer_id!r} was deleted before this run started (/delete_users, "
                "or `mailroom customers remove`), so it did nothing; its delete run (delete_customer_job), "
                "or the remove command run again, removes the customer's mail and records"
            )


class OutlookGraph(dg.ConfigurableResource):
    """How sync runs reach Microsoft Graph and its sign-in authority (Microsoft's unless set)."""

    graph_url: str | None = None
    authority: str | None = None  # the sign-in host, optionally followed by /<tenant>
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    ca_bundle: str | None = None

    def as_environment(self) -> dict[str, str]:
        given = {name: getattr(self, field) for field, name in GRAPH_ENV.items()}
        return {name: value for name, value in given.items() if value}


def settings(stores: MailroomStores, graph: OutlookGraph) -> Settings:
    """The engine's settings from the two resources; a `dg.Failure` naming the variable if they are wrong."""
    try:
        graph_settings = graph_settings_from_environment(graph.as_environment())
        return Settings(**stores.store_fields(), graph=graph_settings)  # type: ignore[arg-type]
    except SettingsError as error:
        raise dg.Failure(description=str(error)) from None


# Resource field -> environment variable (see pipelines/settings.py). Only variables set when the code
# location loads are bound (as EnvVar, resolved again in each run's process); the others keep the default.
STORE_ENV: Mapping[str, str] = {
    "data_dir": "MAILROOM_DATA_DIR",
    "control_db": "MAILROOM_CONTROL_DB",
    "secret_key": "MAILROOM_SECRET_KEY",
}
GRAPH_ENV: Mapping[str, str] = {
    "graph_url": "MAILROOM_GRAPH_URL",
    "authority": "MAILROOM_AUTHORITY",
    "tenant_id": "MAILROOM_TENANT_ID",
    "client_id": "MAILROOM_CLIENT_ID",
    "client_secret": "MAILROOM_CLIENT_SECRET",
    "ca_bundle": "MAILROOM_CA_BUNDLE",
}


def _bound(fields: Mapping[str, str]) -> dict[str, dg.EnvVar]:
    return {field: dg.EnvVar(name) for field, name in fields.items() if os.environ.get(name)}


def resources_from_environment() -> dict[str, dg.ConfigurableResource]:
    """The code location's resources, bound to whichever MAILROOM_* variables are set."""
    return {"stores": MailroomStores(**_bound(STORE_ENV)), "graph": OutlookGraph(**_bound(GRAPH_ENV))}
