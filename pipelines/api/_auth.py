"""Who is calling: Carbon's two auth forms, as FastAPI dependencies.

- Org-scoped routes take `authorization: Bearer <api key>` only.
- User-scoped routes take `authorization: Token <access token>`, or `Bearer <api key>` with a `customer-id`
  header. A client configured with both sends two `authorization` lines (Token first); every line is
  tried, so either order works. `/auth/v1/access_token` takes the key form only (as Carbon declares it),
  so a token cannot renew itself. A customer named by `customer-id` is created on first sight, as in Carbon.
"""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from pipelines.api._context import ApiContext
from pipelines.api._errors import InvalidInput, Unauthorized
from pipelines.api._models import MAX_CUSTOMER_ID
from pipelines.store import Customer

# Declared for the OpenAPI document (and so /docs can send them); the values are read from the request,
# because Starlette's single-value lookup would see only the first of two `authorization` lines.
_authorization = APIKeyHeader(
    name="authorization",
    scheme_name="authorization",
    description="`Bearer <api key>` (org and user routes) or `Token <access token>` (user routes)",
    auto_error=False,
)
_customer_id = APIKeyHeader(
    name="customer-id",
    scheme_name="customerId",
    description="Your id for the end user; needed with `Bearer <api key>` on user routes",
    auto_error=False,
)


@dataclass(frozen=True, slots=True)
class OrgCaller:
    organization_id: int


@dataclass(frozen=True, slots=True)
class CustomerCaller:
    organization_id: int
    customer: Customer


def context(request: Request) -> ApiContext:
    return request.app.state.context


def _credentials(request: Request) -> list[tuple[str, str]]:
    found = []
    for value in request.headers.getlist("authorization"):
        scheme, _, credential = value.strip().partition(" ")
        if credential.strip():
            found.append((scheme.lower(), credential.strip()))
    return found


def check_customer_id(value: str, loc: tuple[str | int, ...]) -> str:
    """A usable customer id: non-empty text of at most 256 characters without control characters."""
    if not value.strip():
        raise InvalidInput("customer id must not be empty", loc=loc)
    if len(value) > MAX_CUSTOMER_ID:
        raise InvalidInput(f"customer id is longer than {MAX_CUSTOMER_ID} characters", loc=loc)
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidInput("customer id must not contain control characters", loc=loc)
    return value


def org_caller(request: Request, _: Annotated[str | None, Depends(_authorization)] = None) -> OrgCaller:
    ctx = context(request)
    for scheme, credential in _credentials(request):
        if scheme == "bearer" and (key := ctx.api_key(credential)) is not None:
            return OrgCaller(key.organization_id)
    raise Unauthorized("this route needs `authorization: Bearer <api key>` with a live API key")


def _header_text(value: str) -> str:
    """A header's text as its sender wrote it. Starlette reads header bytes as Latin-1, which is what the SDK
    sends (Python's http.client encodes headers so), while curl, browsers and most clients send UTF-8: bytes
    that are valid UTF-8 are read as UTF-8, so `ädele` names one customer from either and from a JSON body."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeDecodeError:
        return value


def _key_customer(request: Request, ctx: ApiContext, credential: str) -> CustomerCaller | None:
    """The caller for `Bearer <api key>` with a `customer-id` header; None if the key is not live."""
    key = ctx.api_key(credential)
    if key is None:
        return None
    header = request.headers.get("customer-id")
    if header is None:
        raise Unauthorized("with `Bearer <api key>`, this route also needs a `customer-id` header")
    customer_id = _header_text(header)
    check_customer_id(customer_id, ("header", "customer-id"))
    return CustomerCaller(key.organization_id, ctx.customer(key.organization_id, customer_id))


def customer_caller(
    request: Request,
    _a: Annotated[str | None, Depends(_authorization)] = None,
    _c: Annotated[str | None, Depends(_customer_id)] = None,
) -> CustomerCaller:
    return _caller(
        request,
        tokens=True,
        refusal="this route needs `authorization: Token <access token>`, or "
        "`authorization: Bearer <api key>` with a `customer-id` header; none given was valid",
    )


def key_customer_caller(
    request: Request,
    _a: Annotated[str | None, Depends(_authorization)] = None,
    _c: Annotated[str | None, Depends(_customer_id)] = None,
) -> CustomerCaller:
    """Only `Bearer <api key>` + `customer-id`: an access token must not mint its own successor."""
    return _caller(
        request,
        tokens=False,
        refusal="this route needs `authorization: Bearer <api key>` with a `customer-id` header "
        "(an access token cannot mint another)",
    )


def _caller(request: Request, *, tokens: bool, refusal: str) -> CustomerCaller:
    """The first valid credential of the request's authorization lines (access tokens only if `tokens`)."""
    ctx = context(request)
    for scheme, credential in _credentials(request):
        if scheme == "token" and tokens:
            customer = ctx.control.authenticate_access_token(credential)
            if customer is not None:
                return CustomerCaller(customer.organization_id, customer)
        elif scheme == "bearer" and (caller := _key_customer(request, ctx, credential)) is not None:
            return caller
    raise Unauthorized(refusal)


Org = Annotated[OrgCaller, Depends(org_caller)]
Caller = Annotated[CustomerCaller, Depends(customer_caller)]
KeyCaller = Annotated[CustomerCaller, Depends(key_customer_caller)]
Context = Annotated[ApiContext, Depends(context)]
