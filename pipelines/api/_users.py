"""Users (Carbon's organization users, Mailroom's customers) and their short-lived access tokens.

`/update_users` is how client apps switch Outlook auto-sync on (`auto_sync_enabled_sources`) and pick its
interval; the settings land in the control store at once and a request per customer tells the Dagster
sensor to add the customer's partition.

A customer deleted through `/delete_users` is gone at once (404 on `/user`, `/whoami` and every user route)
and stays gone until the delete run has purged its data; `/update_users` naming it meanwhile answers 409.
After the purge its id is new: first sight or `/update_users` creates a fresh customer, with nothing of the
old one's connections, token caches or mail.
"""

from collections import Counter
from datetime import timedelta
from typing import Any

from fastapi import APIRouter

from pipelines.api._auth import Caller, Context, KeyCaller, Org, check_customer_id
from pipelines.api._context import ApiContext
from pipelines.api._errors import Conflict, NotFound
from pipelines.api._files import file_format
from pipelines.api._models import (
    DeleteUsersInput,
    GenericSuccessResponse,
    ListUsersRequest,
    TokenResponse,
    UpdateUsersInput,
    UserListResponse,
    UserRequestContent,
    UserResponse,
)
from pipelines.store import ConflictError, Customer, CustomerUpdate, record_requests

router = APIRouter(tags=["Users"])

_LIMITS = ("max_files", "max_files_per_upload", "max_characters", "max_characters_per_file",
           "max_characters_per_upload")  # fmt: skip


def _listed(customer: Customer) -> dict[str, Any]:
    sources = customer.auto_sync_sources
    return {
        "id": customer.id,
        "organization_id": customer.organization_id,
        "organization_supplied_user_id": customer.customer_id,
        "created_at": customer.created_at,
        "updated_at": customer.updated_at,
        "deleted_at": customer.deleted_at,
        "enabled_features": None,
        "custom_limits": {
            name: getattr(customer, name) for name in _LIMITS if getattr(customer, name) is not None
        },
        "auto_sync_enabled_sources": ["ALL"] if sources == "ALL" else list(sources),
    }


def _user(ctx: ApiContext, customer: Customer) -> dict[str, Any]:
    counts, by_extension = ctx.read_mail(
        customer.customer_id, lambda store: (store.counts(), store.files_by_extension()), (None, {})
    )
    live = 0 if counts is None else counts.emails  # emails neither removed nor deleted
    characters = 0 if counts is None else counts.text_characters
    return _listed(customer) | {
        "num_files_synced": live,
        "num_characters_synced": characters,
        "num_tokens_synced": 0,  # Mailroom does not tokenize
        "aggregate_file_size": {},
        "aggregate_num_characters": {"OUTLOOK": characters},
        "aggregate_num_tokens": {},
        "aggregate_num_embeddings": {},
        "aggregate_num_files_by_source": {"OUTLOOK": sum(by_extension.values())},
        "aggregate_num_files_by_file_format": _by_format(by_extension),
        "unique_file_tags": [],
        "connector_settings": {
            "interval_hours": customer.interval_minutes / 60,
            "default_folder": customer.default_folder,
        },
    }


def _by_format(by_extension: dict[tuple[str, str], int]) -> dict[str, int]:
    """The files `/user_files_v2` lists, by Carbon's FileFormats as their `file_statistics` give it: emails
    are OUTLOOK, attachments go by extension; one whose extension is no Carbon format has no key to count
    under (it still counts by source)."""
    found: Counter[str] = Counter()
    for (kind, extension), count in by_extension.items():
        if (known := file_format(kind, extension)) is not None:
            found[known] += count
    return dict(found)


@router.post("/update_users", response_model=GenericSuccessResponse)
def update_users(body: UpdateUsersInput, ctx: Context, org: Org) -> dict[str, bool]:
    """Create the customers named (up to 100) and change the settings given; others stay as they were."""
    for index, customer_id in enumerate(body.customer_ids):
        check_customer_id(customer_id, ("body", "customer_ids", index))
    given = {name for name in body.model_fields_set if getattr(body, name) is not None}
    changes: dict[str, Any] = {name: getattr(body, name) for name in _LIMITS if name in given}
    if "auto_sync_enabled_sources" in given:
        changes["auto_sync_sources"] = body.auto_sync_enabled_sources
    if "auto_sync_interval" in given:
        hours = body.auto_sync_interval
        changes["auto_sync_interval_minutes"] = None if hours == -1 else hours * 60  # type: ignore[operator]
    try:
        customers = ctx.control.update_customers(
            body.customer_ids, CustomerUpdate(**changes), organization_id=org.organization_id
        )
    except ConflictError as error:
        raise Conflict(str(error)) from None
    payload = {
        "auto_sync_enabled_sources": body.auto_sync_enabled_sources,
        "auto_sync_interval": body.auto_sync_interval,
    }
    record_requests(
        ctx.control,
        "update_users",
        [(customer.customer_id, payload) for customer in customers],
        organization_id=org.organization_id,
    )
    return {"success": True}


@router.post("/list_users", response_model=UserListResponse)
def list_users(ctx: Context, org: Org, body: ListUsersRequest | None = None) -> dict[str, Any]:
    """The organization's live customers, paged; `starting_id` keeps those whose `id` is at least that."""
    body = body or ListUsersRequest()
    customers, total = ctx.control.list_customers(
        organization_id=org.organization_id,
        customer_ids=body.filters.customer_ids or None,
        pks=body.filters.carbon_user_ids or None,
        order_by=body.order_by,
        descending=body.order_dir == "desc",
        limit=body.pagination.limit,
        offset=body.pagination.offset,
        starting_id=body.pagination.starting_id,
    )
    users = [_listed(c) for c in customers]
    return {"users": users, "count": total if body.include_count else None}


@router.post("/user", response_model=UserResponse)
def get_user(body: UserRequestContent, ctx: Context, org: Org) -> dict[str, Any]:
    """One customer with what Mailroom holds for it."""
    customer = ctx.control.customer(body.customer_id, organization_id=org.organization_id)
    if customer is None:
        raise NotFound(f"no user {body.customer_id!r} in this organization")
    return _user(ctx, customer)


@router.get("/whoami", response_model=UserResponse)
def whoami(ctx: Context, caller: Caller) -> dict[str, Any]:
    """The calling customer."""
    fresh = ctx.control.customer_by_pk(caller.customer.id)
    if fresh is None or fresh.deleted_at is not None:
        raise NotFound("this user was deleted")
    return _user(ctx, fresh)


@router.post("/delete_users", response_model=GenericSuccessResponse)
def delete_users(body: DeleteUsersInput, ctx: Context, org: Org) -> dict[str, bool]:
    """Hide the customers at once and revoke their tokens; a Dagster run deletes their data."""
    for index, customer_id in enumerate(body.customer_ids):
        check_customer_id(customer_id, ("body", "customer_ids", index))
    pks = ctx.control.mark_customers_deleted(body.customer_ids, organization_id=org.organization_id)
    ctx.forget_customers(org.organization_id, body.customer_ids)
    deleted = [ctx.control.customer_by_pk(pk) for pk in pks]
    for pk in pks:
        ctx.control.revoke_access_tokens(pk)
    record_requests(
        ctx.control,
        "delete_users",
        [(c.customer_id, {"customer_pk": c.id}) for c in deleted if c is not None],
        organization_id=org.organization_id,
    )
    return {"success": True}


@router.get("/auth/v1/access_token", response_model=TokenResponse, tags=["Auth"])
def access_token(ctx: Context, caller: KeyCaller) -> dict[str, str]:
    """A short-lived token for the customer, for `authorization: Token <access_token>` (e.g. a browser).

    Only `Bearer <api key>` + `customer-id` may ask: a token minting its successor would never expire.
    """
    issued = ctx.control.issue_access_token(
        caller.customer.id, ttl=timedelta(seconds=ctx.settings.access_token_ttl_s)
    )
    return {"access_token": issued.access_token, "refresh_token": issued.refresh_token}
