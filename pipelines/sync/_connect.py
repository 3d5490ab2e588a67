"""From a customer in the control store to a Graph mailbox: pick the connection, build its token provider.

App-only connections read `/users/{UPN}` with the app's client credentials; delegated connections read `/me`
with the person's tokens, refreshed silently from the connection's encrypted token cache, which is written
back to the control store only when MSAL changed it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from pipelines.graph import (
    ClientCredentialsProvider,
    DelegatedTokenProvider,
    EncryptedTokenCache,
    GraphClient,
    GraphSettings,
    Mailbox,
    TokenCacheError,
    TokenProvider,
)
from pipelines.settings import Settings
from pipelines.store import Connection, ControlStore, Customer
from pipelines.sync._errors import ConnectionNotFound, CustomerNotFound, NotConfigured


@dataclass(frozen=True)
class Target:
    """A customer's connection, opened: the client (for its stats) and the mailbox to read."""

    customer: Customer
    connection: Connection
    graph: GraphClient
    mailbox: Mailbox


def find_customer(control: ControlStore, customer_id: str) -> Customer:
    customer = control.customer(customer_id)
    if customer is None:
        raise CustomerNotFound(
            f"no customer {customer_id!r} in the control store ({control.path}); "
            "add it with `mailroom customers add` or the API's /update_users"
        )
    return customer


def find_connection(control: ControlStore, customer: Customer, connection_id: int | None) -> Connection:
    """The connection named, or the customer's only live one (the oldest, when there are several)."""
    if connection_id is not None:
        connection = control.connection(connection_id, customer_pk=customer.id)
        if connection is None:
            raise ConnectionNotFound(
                f"customer {customer.customer_id!r} has no Outlook connection {connection_id}"
            )
        if connection.revoked:
            raise ConnectionNotFound(
                f"Outlook connection {connection_id} of customer {customer.customer_id!r} was revoked; "
                "connect the mailbox again"
            )
        return connection
    live = [c for c in control.connections(customer.id, include_revoked=False) if c.source == "OUTLOOK"]
    if not live:
        raise ConnectionNotFound(
            f"customer {customer.customer_id!r} has no Outlook connection; add one with "
            "`mailroom customers add --mailbox ...` or through the API's Outlook connect flow"
        )
    return live[0]


def _graph_settings(settings: Settings, connection: Connection) -> GraphSettings:
    graph = settings.graph
    if not graph.client_id:
        raise NotConfigured("no app registration configured: set MAILROOM_CLIENT_ID (and MAILROOM_TENANT_ID)")
    if connection.tenant and connection.tenant != graph.tenant:
        graph = graph.model_copy(update={"tenant": connection.tenant})
    return graph


def _secret_key(settings: Settings) -> str | None:
    return settings.secret_key.get_secret_value() if settings.secret_key is not None else None


@asynccontextmanager
async def open_target(
    settings: Settings, control: ControlStore, customer: Customer, connection: Connection
) -> AsyncIterator[Target]:
    """The connection's mailbox behind a Graph client; a delegated cache MSAL refreshed is saved on exit."""
    graph_settings = _graph_settings(settings, connection)
    name = f"connection {connection.id} ({connection.mailbox})"
    cache: EncryptedTokenCache | None = None
    provider: TokenProvider
    if connection.auth_kind == "app":
        if graph_settings.client_secret is None:
            raise NotConfigured(
                f"{name} reads the mailbox as the app, which needs MAILROOM_CLIENT_SECRET; it is not set"
            )
        provider = ClientCredentialsProvider(graph_settings, name=name)
    else:
        sealed = control.token_cache(connection.id)
        if not sealed:
            raise ConnectionNotFound(f"{name} has no sign-in stored; connect the mailbox again")
        try:
            cache = EncryptedTokenCache.open(sealed, key=_secret_key(settings))
        except TokenCacheError as error:
            raise NotConfigured(f"{name}: {error.message}") from None
        provider = DelegatedTokenProvider(graph_settings, cache, name=name)
    client = GraphClient(graph_settings, provider)
    mailbox = client.me() if connection.auth_kind == "delegated" else client.user(connection.mailbox)
    try:
        yield Target(customer=customer, connection=connection, graph=client, mailbox=mailbox)
    finally:
        await client.aclose()
        if cache is not None and (changed := cache.sealed_if_changed()) is not None:
            control.save_token_cache(connection.id, changed)
