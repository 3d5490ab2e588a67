"""Mailroom's HTTP API, wire-compatible with Carbon's for Outlook (FastAPI on uvicorn).

    app = create_app()                       # settings from MAILROOM_API_*, MAILROOM_*, MAILROOM_GRAPH_*
    with ApiProcess(env, log_path=...) as api:   # `mailroom api` in a child process, stopped by its PID
        httpx.get(f"{api.url}/health")

Webhook receivers check deliveries with `verify_signature(body, headers["Carbon-Signature"], signing_key)`.
"""

from pipelines.api._app import create_app
from pipelines.api._command import api_command
from pipelines.api._errors import (
    ApiError,
    Busy,
    Conflict,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    UpstreamError,
)
from pipelines.api._server import ApiProcess, serve
from pipelines.api._settings import ApiSettings
from pipelines.api._webhooks import WebhookDeliverer, signed_body, verify_signature

__all__ = [
    "ApiError",
    "ApiProcess",
    "ApiSettings",
    "Busy",
    "Conflict",
    "InvalidInput",
    "NotFound",
    "PayloadTooLarge",
    "Unauthorized",
    "UpstreamError",
    "WebhookDeliverer",
    "api_command",
    "create_app",
    "serve",
    "signed_body",
    "verify_signature",
]
