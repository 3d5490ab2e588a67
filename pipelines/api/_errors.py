"""The HTTP API's exception tree; each error becomes a status code and `{"detail": "<message>"}`.

ApiError                    anything a route refuses on purpose (status 400)
├── Unauthorized            no usable credentials: a missing, malformed, unknown or revoked key or token (401)
├── NotFound                the id names nothing the caller may see: absent, or another customer's (404)
├── Conflict                a rule of the organization would break: a 4th webhook (409)
├── PayloadTooLarge         a request body over the size limit (413, from the body-limit middleware)
├── InvalidInput            input that passed the schema but not the meaning (422, FastAPI's list shape)
├── UpstreamError           Microsoft's sign-in or Graph failed for a listing or a connect step (502)
└── Busy                    a sync run kept the customer's mail store locked past the read timeout (503)

Messages say what was wrong and where; they never hold a key, a token or a token cache.
"""

from typing import Any


class ApiError(Exception):
    """Base of the errors the API answers with; `status` is the HTTP status."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unauthorized(ApiError):
    status = 401


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class PayloadTooLarge(ApiError):
    status = 413


class InvalidInput(ApiError):
    """A 422 with FastAPI's `detail` list: `loc` says where (`["body", "filters"]`), `msg` what."""

    status = 422

    def __init__(self, message: str, *, loc: tuple[str | int, ...], kind: str = "value_error") -> None:
        super().__init__(message)
        self.loc = loc
        self.kind = kind

    def detail(self) -> list[dict[str, Any]]:
        return [{"loc": list(self.loc), "msg": self.message, "type": self.kind}]


class UpstreamError(ApiError):
    status = 502


class Busy(ApiError):
    status = 503
