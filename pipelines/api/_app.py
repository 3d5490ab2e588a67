"""The FastAPI application: routers, error shapes, the body size limit, an access log without secrets, and
the webhook deliverer's lifetime."""

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from importlib.metadata import version
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipelines.api import _files, _integrations, _users, _webhooks
from pipelines.api._context import ApiContext
from pipelines.api._errors import ApiError, InvalidInput, PayloadTooLarge
from pipelines.api._models import Health
from pipelines.api._settings import ApiSettings
from pipelines.api._webhooks import WebhookDeliverer
from pipelines.graph import GraphSettings
from pipelines.store import StoreError, StoreSettings

log = logging.getLogger("mailroom.api")

DESCRIPTION = """Carbon's API for Outlook, served by Mailroom: point `carbon-python-sdk` here
(`Carbon(host="http://127.0.0.1:8000", api_key=..., customer_id=...)`).

Org routes take `authorization: Bearer <api key>`; user routes take `Token <access token>` or
`Bearer <api key>` with a `customer-id` header. Create keys with `mailroom api-keys create NAME`."""


def error_response(error: ApiError) -> JSONResponse:
    """The answer for an `ApiError`: its status and `{"detail": ...}` (a 401 also names the scheme)."""
    detail: Any = error.detail() if isinstance(error, InvalidInput) else error.message
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return JSONResponse({"detail": detail}, status_code=error.status, headers=headers)


class BodyLimit:
    """Refuse request bodies over `limit` bytes with 413 before any route reads them."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Outside FastAPI's exception handlers, so the error is rendered here the same way they would.
        error = PayloadTooLarge(
            f"the request body is larger than {self.limit} bytes (the limit is MAILROOM_API_MAX_BODY_BYTES)"
        )
        await error_response(error)(scope, receive, send)


class AccessLog:
    """One line per request: method, path without query (the OAuth callback's holds a code) and status;
    file links are shortened because the link is the credential."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording)
        finally:
            path = scope["path"]
            if path.startswith("/files/"):
                path = "/files/…"
            log.info(
                "%s %s %d %.1f ms", scope["method"], path, status, (time.perf_counter() - started) * 1000
            )


def _validation_details(errors: Any) -> list[dict[str, Any]]:
    # FastAPI's shape, without `input` (it echoes what was sent, which may be anything) or `ctx`.
    return [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors]


def create_app(
    settings: ApiSettings | None = None,
    *,
    stores: StoreSettings | None = None,
    graph: GraphSettings | None = None,
) -> FastAPI:
    """The API. Settings default to the environment: `MAILROOM_API_*` here, and for the stores and Graph
    what every Mailroom process reads (`pipelines.settings`: `MAILROOM_DATA_DIR`, `MAILROOM_CLIENT_ID`)."""
    settings = settings or ApiSettings()
    stores = stores or StoreSettings()
    if graph is None:
        from pipelines.settings import graph_settings_from_environment

        graph = graph_settings_from_environment()
    context = ApiContext.build(settings, stores, graph)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        deliverer = None
        if settings.deliver_webhooks:
            deliverer = WebhookDeliverer(
                context.control,
                retry_delays_s=settings.webhook_retry_delays_s,
                timeout_s=settings.webhook_timeout_s,
                poll_s=settings.webhook_poll_s,
                concurrency=settings.webhook_concurrency,
                allow_private=settings.allow_private_webhooks,
                prune_every_s=settings.prune_every_s,
                retention=timedelta(days=settings.retention_days),
            )
            deliverer.start()
        try:
            yield
        finally:
            if deliverer is not None:
                deliverer.stop()
            context.reader.close()

    app = FastAPI(
        title="Mailroom",
        version=version("mailroom"),
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.context = context

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_details(error.errors())}, status_code=422)

    @app.exception_handler(StoreError)
    async def store_error(request: Request, error: StoreError) -> JSONResponse:
        log.error("store error on %s %s: %s", request.method, request.url.path, type(error).__name__)
        return JSONResponse({"detail": "the store could not answer; retry later"}, status_code=503)

    @app.get("/health", response_model=Health, tags=["Health"])
    def health() -> dict[str, str]:
        """Whether the API is up (no authentication)."""
        return {"status": "ok", "version": app.version}

    for module in (_integrations, _files, _users, _webhooks):
        app.include_router(module.router)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(AccessLog)
    return app
