"""Outlook: connecting a mailbox (OAuth with PKCE through msal), syncs, folder and category listings, and
the customer's data sources.

The connect step is the one place the API talks to Microsoft on a request's path (besides the listings):
`/integrations/oauth_url` starts MSAL's auth-code flow and keeps it, encrypted, under a random `state` bound
to the customer; Microsoft sends the browser back to `/integrations/outlook`, which redeems the code, stores
the sealed token cache as an OUTLOOK data source, records the first sync and queues the ADD webhook.
"""

import asyncio
import html
import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict

import filters
from pipelines.api._auth import Caller, Context, CustomerCaller
from pipelines.api._context import ApiContext
from pipelines.api._errors import Conflict, InvalidInput, NotFound, UpstreamError
from pipelines.api._models import (
    MAX_ID,
    DataSourceQueryInput,
    DataSourceResponse,
    GenericSuccessResponse,
    OAuthURLRequest,
    OuthURLResponse,
    OutlookSyncInput,
    RevokeAccessTokenInput,
)
from pipelines.graph import (
    AuthCodeSignIn,
    AuthError,
    ClientCredentialsProvider,
    DelegatedTokenProvider,
    EncryptedTokenCache,
    GraphClient,
    GraphError,
    Mailbox,
)
from pipelines.store import Connection, WebhookEvent, enqueue_webhook_events, normalise_tags, record_requests

router = APIRouter(tags=["Integrations"])
T = TypeVar("T")
SourceId = Annotated[int | None, Query(ge=0, le=MAX_ID)]

CALLBACK_PATH = "/integrations/outlook"
# MSAL adds these itself and refuses them when asked for explicitly.
_RESERVED_SCOPES = {"openid", "profile", "offline_access"}
_DATA_SOURCE_STATUSES = {"QUEUED_FOR_SYNCING", "SYNCING", "READY", "SYNC_ERROR"}


class FolderList(BaseModel):
    """The mailbox's folders, with display-name paths usable as `folder` in `/integrations/outlook/sync`."""

    model_config = ConfigDict(extra="allow")
    folders: list[dict[str, Any]]


class CategoryList(BaseModel):
    """The mailbox's categories (Outlook's master category list), usable in `category:` filters."""

    model_config = ConfigDict(extra="allow")
    categories: list[dict[str, Any]]


def _connection(ctx: ApiContext, caller: CustomerCaller, data_source_id: int | None) -> Connection:
    """The data source a request means: the one named, or the customer's only live Outlook connection."""
    if data_source_id is not None:
        found = ctx.control.connection(data_source_id, customer_pk=caller.customer.id)
        if found is None:
            raise NotFound(f"no data source {data_source_id} for this customer")
        if found.revoked:
            raise Conflict(f"data source {data_source_id} was revoked; connect it again first")
        return found
    live = [
        c for c in ctx.control.connections(caller.customer.id, include_revoked=False) if c.source == "OUTLOOK"
    ]
    if not live:
        raise NotFound(
            "this customer has no Outlook data source; connect one through /integrations/oauth_url"
        )
    if len(live) > 1:
        ids = ", ".join(str(c.id) for c in live)
        raise InvalidInput(
            f"this customer has several Outlook data sources ({ids}); say which with data_source_id",
            loc=("body", "data_source_id"),
        )
    return live[0]


def _with_mailbox(ctx: ApiContext, connection: Connection, use: Callable[[Mailbox], Awaitable[T]]) -> T:
    """Run `use` against the connection's mailbox; a refreshed token cache is stored back."""
    graph = ctx.graph_for(connection.tenant)
    cache: EncryptedTokenCache | None = None
    if connection.auth_kind == "delegated":
        cache = EncryptedTokenCache.open(ctx.control.token_cache(connection.id), key=ctx.key)
        provider: Any = DelegatedTokenProvider(graph, cache, name=f"data source {connection.id}")
    else:
        provider = ClientCredentialsProvider(graph, name=f"data source {connection.id}")

    async def run() -> T:
        async with GraphClient(graph, provider) as client:
            mailbox = client.me() if connection.auth_kind == "delegated" else client.user(connection.mailbox)
            return await use(mailbox)

    try:
        result = asyncio.run(run())
    except AuthError as error:
        raise UpstreamError(
            f"Microsoft refused data source {connection.id}'s sign-in ({error.message}); connect it again"
        ) from None
    except GraphError as error:
        raise UpstreamError(
            f"Microsoft Graph failed for data source {connection.id}: {error.message}"
        ) from None
    finally:
        sealed = cache.sealed_if_changed() if cache is not None else None
        if sealed is not None:
            ctx.control.save_token_cache(connection.id, sealed)
    return result


def _filter_payload(raw: dict[str, Any] | str) -> tuple[dict[str, Any], str]:
    try:
        tree = filters.parse(raw)
    except filters.FilterError as error:
        raise InvalidInput(str(error), loc=("body", "filters"), kind="filter_error") from None
    return filters.to_carbon(tree), filters.to_text(tree)


# -- connect --------------------------------------------------------------------------------------------


@router.post("/integrations/oauth_url", response_model=OuthURLResponse)
def oauth_url(body: OAuthURLRequest, ctx: Context, caller: Caller) -> dict[str, str]:
    """Microsoft's sign-in URL for connecting the customer's Outlook mailbox (auth code with PKCE)."""
    if body.service != "OUTLOOK":
        raise InvalidInput(
            f"Mailroom connects Outlook mailboxes only; service {body.service} is not served here",
            loc=("body", "service"),
        )
    hint = None
    if body.data_source_id is not None and not body.connecting_new_account:
        found = ctx.control.connection(body.data_source_id, customer_pk=caller.customer.id)
        if found is None:
            raise NotFound(f"no data source {body.data_source_id} for this customer")
        hint = found.mailbox
    requested = [*(body.scopes or ()), *((body.scope or "").split())]
    scopes = tuple(s for s in requested if s.lower() not in _RESERVED_SCOPES) or None
    tags = _tags(body.tags)  # refused before a sign-in is started for it
    graph = ctx.graph_for(body.microsoft_tenant)
    state = secrets.token_urlsafe(32)
    signin = AuthCodeSignIn(graph, EncryptedTokenCache(key=ctx.key), scopes=scopes)
    try:
        flow = signin.start(f"{ctx.settings.base_url}{CALLBACK_PATH}", state=state, login_hint=hint)
    except (AuthError, ValueError) as error:
        if body.microsoft_tenant:
            # MSAL checks the authority first: an unknown tenant is the caller's mistake, not Microsoft's.
            raise InvalidInput(
                f"Microsoft's sign-in does not accept tenant {body.microsoft_tenant!r}: {error}",
                loc=("body", "microsoft_tenant"),
            ) from None
        raise UpstreamError(f"cannot start the Microsoft sign-in: {error}") from None
    options = body.model_dump(
        include={
            "request_id",
            "incremental_sync",
            "file_sync_config",
            "data_source_tags",
            "chunk_size",
            "chunk_overlap",
            "skip_embedding_generation",
            "embedding_model",
        }
    )
    options |= {"tags": tags, "tenant": body.microsoft_tenant, "scopes": list(scopes) if scopes else None}
    ctx.control.save_oauth_state(state, caller.customer.id, flow, payload=options)
    return {"oauth_url": flow["auth_uri"]}


def _page(status: int, title: str, text: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>",
        status_code=status,
    )


@router.get(CALLBACK_PATH, response_class=HTMLResponse, include_in_schema=False)
def outlook_callback(request: Request, ctx: Context) -> HTMLResponse:
    """Where Microsoft sends the browser after sign-in (register this URL as the app's redirect URI)."""
    query = dict(request.query_params.items())
    state = query.get("state")
    pending = ctx.control.consume_oauth_state(state) if state else None
    if pending is None:
        return _page(
            400, "Sign-in link expired", "This sign-in is unknown, expired or already used. Start again."
        )
    customer = ctx.control.customer_by_pk(pending.customer_pk)
    if customer is None or customer.deleted_at is not None:
        return _page(400, "Sign-in refused", "The user this sign-in was for no longer exists.")
    options = pending.payload
    if "error" in query:
        enqueue_webhook_events(
            ctx.control,
            [
                WebhookEvent(
                    "CANCEL", customer.customer_id, "DATA_SOURCE", "null", {"data_source_type": "OUTLOOK"}
                )
            ],
            organization_id=customer.organization_id,
        )
        reason = (query.get("error_description") or query["error"]).splitlines()[0][:300]
        return _page(400, "Outlook was not connected", f"The sign-in ended without access: {reason}")
    graph = ctx.graph_for(options.get("tenant"))
    cache = EncryptedTokenCache(key=ctx.key)
    signin = AuthCodeSignIn(graph, cache, scopes=tuple(options["scopes"]) if options.get("scopes") else None)
    try:
        signed_in = signin.finish(pending.flow, query)
    except AuthError as error:
        return _page(400, "Outlook was not connected", error.message)
    mailbox = signed_in.username or signed_in.home_account_id
    connection = ctx.control.save_connection(
        customer.id,
        mailbox,
        auth_kind="delegated",
        token_cache=cache.seal(),
        tenant=options.get("tenant"),
        metadata={"connected_through": "oauth", "scopes": options.get("scopes")},
        tags=options.get("data_source_tags") or {},
    )
    ctx.control.record_connection_sync(connection.id, status="QUEUED_FOR_SYNCING")
    file_sync = options.get("file_sync_config") or {}
    sync = {
        "data_source_id": connection.id,
        "folder": "Inbox",
        "filters": {},
        "filter_text": "",
        "sync_attachments": bool(file_sync.get("sync_attachments")),
        "incremental_sync": bool(options.get("incremental_sync")),
        "request_id": options.get("request_id"),
        "tags": options.get("tags") or {},
        "trigger": "connect",
    }
    record_requests(
        ctx.control, "sync", [(customer.customer_id, sync)], organization_id=customer.organization_id
    )
    info = {
        "data_source_type": "OUTLOOK",
        "data_source_external_id": mailbox,
        "request_id": options.get("request_id"),
    }
    enqueue_webhook_events(
        ctx.control,
        [WebhookEvent("ADD", customer.customer_id, "DATA_SOURCE", connection.id, info)],
        organization_id=customer.organization_id,
    )
    return _page(200, "Outlook connected", f"{mailbox} is connected to Mailroom. You can close this window.")


# -- outlook --------------------------------------------------------------------------------------------


def _tags(value: Any) -> dict[str, Any]:
    """A sync's tags as files will carry them (values as strings, as Carbon has them); 422 otherwise."""
    try:
        return normalise_tags(value)
    except ValueError as error:
        raise InvalidInput(str(error), loc=("body", "tags")) from None


@router.post("/integrations/outlook/sync", response_model=GenericSuccessResponse)
def sync_outlook(body: OutlookSyncInput, ctx: Context, caller: Caller) -> dict[str, bool]:
    """Queue a sync of a folder of the connected mailbox with a filter; a Dagster run carries it out."""
    carbon, text = _filter_payload(body.filters)
    tags = _tags(body.tags)
    connection = _connection(ctx, caller, body.data_source_id)
    file_sync = body.file_sync_config
    payload = {
        "data_source_id": connection.id,
        "folder": body.folder or "Inbox",
        "filters": carbon,
        "filter_text": text,
        "sync_attachments": bool(body.sync_attachments or (file_sync and file_sync.sync_attachments)),
        "incremental_sync": body.incremental_sync,
        "request_id": body.request_id,
        "tags": tags,
        "trigger": "api",
        "chunking": {
            "chunk_size": body.chunk_size,
            "chunk_overlap": body.chunk_overlap,
            "skip_embedding_generation": body.skip_embedding_generation,
            "embedding_model": body.embedding_model,
            "generate_sparse_vectors": body.generate_sparse_vectors,
            "prepend_filename_to_chunks": body.prepend_filename_to_chunks,
            "file_sync_config": file_sync.model_dump() if file_sync else None,
        },
    }
    record_requests(
        ctx.control, "sync", [(caller.customer.customer_id, payload)], organization_id=caller.organization_id
    )
    ctx.control.record_connection_sync(connection.id, status="QUEUED_FOR_SYNCING")
    return {"success": True}


@router.get("/integrations/outlook/user_folders", response_model=FolderList)
def user_folders(ctx: Context, caller: Caller, data_source_id: SourceId = None) -> dict[str, Any]:
    """Every mail folder of the connected mailbox, asked of Microsoft Graph now."""
    connection = _connection(ctx, caller, data_source_id)

    async def listing(mailbox: Mailbox) -> list[dict[str, Any]]:
        tree = await mailbox.folder_tree()
        return [
            {
                "id": node.id,
                "display_name": node.folder.display_name,
                "path": node.path,
                "parent_folder_id": node.folder.parent_folder_id,
                "well_known_name": node.well_known_name,
                "total_item_count": node.folder.total_item_count,
                "unread_item_count": node.folder.unread_item_count,
                "child_folder_count": node.folder.child_folder_count,
            }
            for node in tree
        ]

    return {"folders": _with_mailbox(ctx, connection, listing), "data_source_id": connection.id}


@router.get("/integrations/outlook/user_categories", response_model=CategoryList)
def user_categories(ctx: Context, caller: Caller, data_source_id: SourceId = None) -> dict[str, Any]:
    """The connected mailbox's categories, asked of Microsoft Graph now."""
    connection = _connection(ctx, caller, data_source_id)

    async def listing(mailbox: Mailbox) -> list[dict[str, Any]]:
        found = await mailbox.categories()
        return [{"id": c.id, "display_name": c.display_name, "color": c.color} for c in found[:250]]

    return {"categories": _with_mailbox(ctx, connection, listing), "data_source_id": connection.id}


# -- data sources ---------------------------------------------------------------------------------------


def data_source(connection: Connection, caller: CustomerCaller) -> dict[str, Any]:
    """Carbon's OrganizationUserDataSourceAPI for a connection; its token never leaves the store."""
    status = connection.sync_status if connection.sync_status in _DATA_SOURCE_STATUSES else "READY"
    return {
        "id": connection.id,
        "data_source_external_id": connection.mailbox,
        "data_source_type": connection.source,
        "token": None,
        "sync_status": status,
        "source_items_synced_at": connection.files_synced_at,
        "organization_user_id": caller.customer.id,
        "organization_id": caller.organization_id,
        "organization_supplied_user_id": caller.customer.customer_id,
        "revoked_access": connection.revoked,
        "last_synced_at": connection.last_synced_at or connection.created_at,
        "last_sync_action": connection.last_sync_action,
        "enable_auto_sync": connection.enable_auto_sync,
        "created_at": connection.created_at,
        "updated_at": connection.updated_at,
        "files_synced_at": connection.files_synced_at,
        "data_source_metadata": {
            **connection.metadata,
            "auth_kind": connection.auth_kind,
            "sync_error_message": connection.sync_error,
        },
        "tags": connection.tags,
    }


@router.post("/user_data_sources", response_model=DataSourceResponse, tags=["Data Sources"])
def user_data_sources(
    ctx: Context, caller: Caller, body: DataSourceQueryInput | None = None
) -> dict[str, Any]:
    """The customer's connected mailboxes."""
    body = body or DataSourceQueryInput()
    wanted = body.filters
    found = [
        c
        for c in ctx.control.connections(caller.customer.id)
        if (wanted.source is None or c.source == wanted.source)
        and (not wanted.ids or c.id in wanted.ids)
        and (wanted.revoked_access is None or c.revoked == wanted.revoked_access)
        and all(c.tags.get(k) == v for k, v in (wanted.tags or {}).items())
        and c.id >= body.pagination.starting_id
    ]
    found.sort(key=lambda c: (getattr(c, body.order_by), c.id), reverse=body.order_dir == "desc")
    page = found[body.pagination.offset : body.pagination.offset + body.pagination.limit]
    return {"results": [data_source(c, caller) for c in page], "count": len(found)}


@router.post("/revoke_access_token", response_model=GenericSuccessResponse, tags=["Data Sources"])
def revoke_access_token(body: RevokeAccessTokenInput, ctx: Context, caller: Caller) -> dict[str, bool]:
    """Forget a data source's tokens and stop syncing it; sends REVOKE."""
    if not ctx.control.revoke_connection(body.data_source_id, customer_pk=caller.customer.id):
        raise NotFound(f"no data source {body.data_source_id} for this customer")
    enqueue_webhook_events(
        ctx.control,
        [WebhookEvent("REVOKE", caller.customer.customer_id, "DATA_SOURCE", body.data_source_id)],
        organization_id=caller.organization_id,
    )
    return {"success": True}
