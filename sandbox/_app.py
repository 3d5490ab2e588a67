"""The sandbox as one ASGI app: Graph under ``/v1.0``, sign-in under ``/{tenant}``, admin under ``/_sandbox``.

``create_app(options)`` returns a ``SandboxApp``; its ``sandbox`` attribute is the live ``Sandbox`` (state,
auth, faults). Use it in-process with ``httpx.ASGITransport(app)`` (no TLS, no sockets) or serve it with
uvicorn (``_server``). Graph requests bypass FastAPI: they are read and answered at the ASGI level, which
is faster and lets a fault drop a connection mid-response.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from sandbox import _admin, _render, _signin
from sandbox._auth import Auth
from sandbox._delta import DeltaRounds
from sandbox._errors import GraphFault
from sandbox._faults import Faults, FaultSettings
from sandbox._graph import GraphRequest, GraphResponse, GraphService, error_response
from sandbox._model import Mailbox
from sandbox._options import SandboxOptions
from sandbox._render import View
from sandbox._state import SandboxState

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class Sandbox:
    """Everything one sandbox knows: options, state, identity, faults, delta rounds."""

    def __init__(self, options: SandboxOptions, ca_cert: Path | None = None) -> None:
        self.options = options
        self.ca_cert = ca_cert
        self.state = SandboxState(options)
        self.auth = Auth(self.state.tenant, options.token_lifetime, options.device_code_interval)
        self.faults = Faults(FaultSettings.for_profile(options.profile), options.seed)
        self.rounds = DeltaRounds()
        self.graph = GraphService(self.state, self.auth, self.faults, self.rounds)

    def reset(self, **changes: Any) -> None:
        """Rebuild the mailboxes (optionally with a new seed, size or profile), forget faults, the log, delta
        rounds and sign-in choices, and let held requests go. Issued tokens stay valid unless the seed (so the
        tenant) changes."""
        self.options = self.options.model_copy(update=changes)
        self.state.reset(self.options)
        if self.auth.tenant.id != self.state.tenant.id:
            self.auth = Auth(
                self.state.tenant, self.options.token_lifetime, self.options.device_code_interval
            )
            self.graph.auth = self.auth
        self.auth.tenant = self.state.tenant
        self.auth.signin_user = None
        self.auth.deny_next_signin = False
        self.faults.seed = self.options.seed
        self.faults.configure(FaultSettings.for_profile(self.options.profile))
        self.faults.clear()
        self.faults.release()
        self.rounds.clear()

    def describe(self, base: str, pid: int | None = None) -> dict[str, Any]:
        """The announcement a client needs (the secret included: this is how clients learn it)."""
        tenant = self.state.tenant
        app = next(iter(tenant.apps.values()))
        return {
            "graph_url": f"{base}/v1.0",
            "authority": f"{base}/{tenant.id}",
            "tenant_id": tenant.id,
            "client_id": app.client_id,
            "client_secret": app.secret,
            "ca_cert": str(self.ca_cert) if self.ca_cert else "",
            "admin_url": f"{base}/_sandbox",
            "base_url": base,
            "token_url": f"{base}/{tenant.id}/oauth2/v2.0/token",
            "mailboxes": [mb.user.upn for mb in self.state.mailboxes.values()],
            "unlicensed": [u.upn for u in tenant.users.values() if not u.licensed],
            "pid": pid or 0,
            "seed": self.options.seed,
            "profile": self.options.profile,
            "messages": self.options.messages,
        }

    def ground_truth(self, mb: Mailbox, bodies: Literal["html", "text"] | None = None) -> dict[str, Any]:
        """Every folder and message of ``mb`` as a correct sync would have stored them (immutable ids)."""
        state = self.state
        view = View(immutable=True, body_type=bodies or "html")
        fields = [f for f in _render.DEFAULT_MESSAGE_FIELDS if bodies or f not in {"body", "bodyPreview"}]
        if bodies:
            fields.append("uniqueBody")
        folders = []
        for folder in mb.folders.values():
            folders.append(
                {
                    **_render.folder_json(state, mb, folder),
                    "path": state.folder_path(mb, folder),
                    "wellKnownName": folder.well_known,
                }
            )
        messages = []
        for msg in sorted(mb.messages.values(), key=lambda m: m.serial):
            data = _render.message_json(state, mb, msg, fields, view)
            data["folderPath"] = state.folder_path(mb, mb.folders[msg.folder])
            data["attachments"] = [
                _render.attachment_json(
                    state, mb, msg, i, a, ["name", "contentType", "size", "isInline", "contentId"]
                )
                for i, a in enumerate(msg.attachments)
            ]
            messages.append(data)
        return {"mailbox": mb.user.upn, "userId": mb.user.id, "folders": folders, "messages": messages}


class SandboxApp:
    """The ASGI callable. ``sandbox`` is the live state behind it."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.web = FastAPI(
            title="Mailroom sandbox",
            docs_url="/_sandbox/docs",
            openapi_url="/_sandbox/openapi.json",
            redoc_url=None,
        )
        self.web.include_router(_admin.build_router(sandbox))
        self.web.include_router(_signin.build_router(sandbox))

        @self.web.exception_handler(_admin.AdminProblem)
        async def _problem(request: Request, exc: _admin.AdminProblem) -> JSONResponse:
            return _admin.admin_error(exc.status, exc.code, exc.message)

        @self.web.exception_handler(RequestValidationError)
        async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
            return _admin.validation_error(exc)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == "/v1.0" or path.startswith("/v1.0/")):
            await self._graph(scope, receive, send)
        elif scope["type"] == "http" and not path.startswith("/_sandbox"):
            await self._signin(scope, receive, send)
        else:
            await self.web(scope, receive, send)

    async def _graph(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await _read_body(receive)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host") or "{}:{}".format(*(scope.get("server") or ("127.0.0.1", 443)))
        request = GraphRequest(
            scope["method"],
            scope["path"][len("/v1.0") :] or "/",
            scope.get("query_string", b"").decode("latin-1"),
            headers,
            body,
            f"{scope.get('scheme', 'https')}://{host}/v1.0",
        )
        response = await self.sandbox.graph.handle(request)
        await _send(send, response)

    async def _signin(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Sign-in and other routes: logged, and subject to custom fault rules."""
        faults = self.sandbox.faults
        request_id = str(uuid.uuid4())
        query = scope.get("query_string", b"").decode("latin-1")
        entry = faults.new_entry(
            scope["method"], scope["path"], query, None, f"{scope['method']} signin", request_id, None
        )
        started = time.perf_counter()
        decision = faults.signin_rule(entry, scope["method"], scope["path"])
        if isinstance(decision, GraphFault):
            entry.status = decision.status
            await _send(send, error_response(decision, request_id, request_id))
            return
        if decision is not None and decision.drop:
            await _read_body(receive)
            await _send(send, GraphResponse(200, drop=True))
            return
        if decision is not None:
            await faults.wait(decision)

        async def recording_send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                entry.status = message["status"]
                entry.duration_ms = round((time.perf_counter() - started) * 1000, 3)
            await send(message)

        await self.web(scope, receive, recording_send)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _send(send: Send, response: GraphResponse) -> None:
    if response.drop:
        # Promise a body, send part of it, then stop: the server closes the connection mid-response.
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"value": [', "more_body": True})
        return
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()]
    headers.append((b"content-length", str(len(response.body)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


def create_app(
    options: SandboxOptions | None = None, *, ca_cert: Path | None = None, **overrides: Any
) -> SandboxApp:
    """A sandbox app for ``options`` (or ``SandboxOptions(**overrides)``), ready for ASGI servers or httpx."""
    chosen = options or SandboxOptions(**overrides)
    if options is not None and overrides:
        chosen = options.model_copy(update=overrides)
    return SandboxApp(Sandbox(chosen, ca_cert))
