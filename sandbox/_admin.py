"""The admin API (under ``/_sandbox``): drive the sandbox from tests, benches and demos.

    GET    /_sandbox/health | /_sandbox/info
    POST   /_sandbox/reset                              {seed?, messages?, profile?}
    GET    /_sandbox/mailboxes
    GET    /_sandbox/mailboxes/{upn}/folders            POST .../folders {parent, displayName}
    GET    /_sandbox/mailboxes/{upn}/ground-truth?bodies=html|text
    POST   /_sandbox/mailboxes/{upn}/messages           add one (see NewMessage)
    PATCH  /_sandbox/mailboxes/{upn}/messages/{id}      {isRead?, categories?, flag?, importance?, subject?}
    POST   /_sandbox/mailboxes/{upn}/messages/{id}/move {folder}
    DELETE /_sandbox/mailboxes/{upn}/messages/{id}      hard delete
    POST   /_sandbox/tokens                             mint an access token (no MSAL needed)
    POST   /_sandbox/tokens/expire | /_sandbox/tokens/revoke   {token? | user? | app? | all?}
    POST   /_sandbox/delta/invalidate                   {mailbox?, folder?}
    GET|PUT /_sandbox/faults                            FaultSettings
    POST   /_sandbox/faults/profile                     {profile}
    GET    /_sandbox/faults/held                        how many requests "hold" rules keep waiting
    POST   /_sandbox/faults/release                     let them all go on
    GET    /_sandbox/log?mailbox=&since=&limit=         DELETE /_sandbox/log (log, counters, throttle memory)
    GET    /_sandbox/counters
    POST   /_sandbox/signin                             {user?, deny_next?}: who /authorize signs in
    POST   /_sandbox/device/approve                     {user_code, user, deny?}

Folders are named by id, well-known name or display-name path (``Inbox/Receipts/2024``; ``\\/`` for a
slash inside a name). Messages by immutable or current id. Errors: ``{"error": {"code", "message"}}``.

The routes are coroutines, so they run on the event loop between Graph requests (which are answered there
too), never in a worker thread in the middle of one: a delta round or a listing never sees a mailbox half
changed, and releasing held requests happens on the loop that holds them.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from sandbox import _render
from sandbox._errors import GraphFault
from sandbox._faults import FaultSettings
from sandbox._model import Address, AttachmentSpec, Folder, Mailbox
from sandbox._options import Profile

if TYPE_CHECKING:
    from sandbox._app import Sandbox


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ResetBody(_Body):
    seed: int | None = None
    messages: int | None = Field(None, ge=0, le=2_000_000)
    profile: Profile | None = None


class EmailAddress(_Body):
    name: str = ""
    address: str


class NewAttachment(_Body):
    name: str
    content_type: str = Field("application/octet-stream", alias="contentType")
    content_bytes: str | None = Field(None, alias="contentBytes", description="base64; or give size")
    size: int | None = Field(None, ge=0, le=200_000_000, description="generate this many random bytes")
    is_inline: bool = Field(False, alias="isInline")
    content_id: str | None = Field(None, alias="contentId")


class NewBody(_Body):
    content_type: Literal["html", "text"] = Field("html", alias="contentType")
    content: str


class NewMessage(_Body):
    folder: str = "inbox"
    subject: str = ""
    sender: EmailAddress | None = Field(None, alias="from")
    to: list[EmailAddress] = Field([], alias="toRecipients")
    cc: list[EmailAddress] = Field([], alias="ccRecipients")
    bcc: list[EmailAddress] = Field([], alias="bccRecipients")
    received: int | str | None = Field(
        None, alias="receivedDateTime", description="ISO-8601 or epoch seconds"
    )
    categories: list[str] = []
    importance: Literal["low", "normal", "high"] = "normal"
    is_read: bool = Field(False, alias="isRead")
    flag: Literal["notFlagged", "flagged", "complete"] = "notFlagged"
    body: NewBody | None = None
    kind: Literal["plain", "newsletter", "reply", "i18n", "attachments", "invite", "empty"] = "plain"
    attachments: list[NewAttachment] = []
    internet_message_id: str | None = Field(None, alias="internetMessageId")


class MessageChanges(_Body):
    is_read: bool | None = Field(None, alias="isRead")
    categories: list[str] | None = None
    flag: Literal["notFlagged", "flagged", "complete"] | None = None
    importance: Literal["low", "normal", "high"] | None = None
    subject: str | None = None


class MoveBody(_Body):
    folder: str


class NewFolder(_Body):
    parent: str = "msgfolderroot"
    display_name: str = Field(alias="displayName", min_length=1)


class TokenRequest(_Body):
    user: str | None = Field(None, description="UPN for a delegated token; omit for an app-only token")
    client_id: str | None = None
    scopes: list[str] | None = Field(None, description="delegated permissions (default Mail.Read User.Read)")
    roles: list[str] | None = Field(
        None, description="application permissions (default the app's: Mail.Read)"
    )
    lifetime: int | None = Field(None, ge=1, le=86_400 * 30)


class TokenTarget(_Body):
    token: str | None = None
    user: str | None = None
    app: str | None = None
    all: bool = False


class InvalidateBody(_Body):
    mailbox: str | None = None
    folder: str | None = None


class SigninBody(_Body):
    user: str | None = None
    deny_next: bool = False


class ProfileBody(_Body):
    profile: Profile


class DeviceDecision(_Body):
    user_code: str
    user: str
    deny: bool = False


class AdminProblem(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def admin_error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def validation_error(exc: RequestValidationError) -> JSONResponse:
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        problems.append(f"{where or 'body'}: {err.get('msg')}")
    return admin_error(400, "InvalidRequest", "; ".join(problems))


def split_path(path: str) -> list[str]:
    """``Inbox/Q1\\/Q2 Reports`` -> ["Inbox", "Q1/Q2 Reports"]."""
    parts, current, escaped = [], "", False
    for char in path:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "/":
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p for p in parts if p]


def build_router(sandbox: Sandbox) -> APIRouter:
    router = APIRouter(prefix="/_sandbox")

    def mailbox(upn: str) -> Mailbox:
        found = sandbox.state.mailbox(upn)
        if found is None:
            raise AdminProblem(
                404,
                "MailboxNotFound",
                f"No mailbox for '{upn}'; mailboxes: " + ", ".join(sorted(sandbox.state.mailboxes)),
            )
        return found

    def folder(mb: Mailbox, name: str) -> Folder:
        try:
            return sandbox.state.find_folder(mb, name)
        except GraphFault:
            pass
        current = sandbox.state.root(mb)
        for part in split_path(name):
            match = next(
                (mb.folders[c] for c in current.children if mb.folders[c].name.casefold() == part.casefold()),
                None,
            )
            if match is None and current is sandbox.state.root(mb):
                wk = mb.well_known.get(part.lower())
                match = mb.folders[wk] if wk is not None else None
            if match is None:
                raise AdminProblem(404, "FolderNotFound", f"No folder '{part}' in '{name}' of {mb.user.upn}.")
            current = match
        return current

    def message_of(mb: Mailbox, mid: str) -> Any:
        try:
            return sandbox.state.find_message(mb, mid)
        except GraphFault as fault:
            raise AdminProblem(
                fault.status, fault.code, f"{fault.message} (id {mid!r} in {mb.user.upn})"
            ) from None

    def ids(mb: Mailbox, msg: Any) -> dict[str, str]:
        return {
            "id": sandbox.state.message_id(mb, msg, True),
            "mutable_id": sandbox.state.message_id(mb, msg, False),
            "folder_id": sandbox.state.ids.encode(3, mb.number, msg.folder),
        }

    @router.get("/health")
    async def health() -> dict[str, Any]:
        return {"ok": True}

    @router.get("/info")
    async def info(request: Request) -> dict[str, Any]:
        return sandbox.describe(str(request.base_url).rstrip("/"))

    @router.post("/reset")
    async def reset(body: ResetBody, request: Request) -> dict[str, Any]:
        sandbox.reset(**body.model_dump(exclude_none=True))
        return sandbox.describe(str(request.base_url).rstrip("/"))

    @router.get("/mailboxes")
    async def mailboxes() -> list[dict[str, Any]]:
        return [
            {
                "upn": mb.user.upn,
                "id": mb.user.id,
                "displayName": mb.user.display_name,
                "messages": len(mb.messages),
                "folders": len(mb.folders),
            }
            for mb in sandbox.state.mailboxes.values()
        ]

    @router.get("/mailboxes/{upn}/folders")
    async def folders(upn: str) -> list[dict[str, Any]]:
        mb = mailbox(upn)
        return [folder_row(mb, f) for f in mb.folders.values()]

    def folder_row(mb: Mailbox, f: Folder) -> dict[str, Any]:
        return {
            **_render.folder_json(sandbox.state, mb, f),
            "path": sandbox.state.folder_path(mb, f),
            "wellKnownName": f.well_known,
        }

    @router.post("/mailboxes/{upn}/folders", status_code=201)
    async def add_folder(upn: str, body: NewFolder) -> dict[str, Any]:
        mb = mailbox(upn)
        try:
            created = sandbox.state.add_folder(mb, folder(mb, body.parent), body.display_name)
        except GraphFault as fault:
            raise AdminProblem(fault.status, fault.code, fault.message) from None
        return folder_row(mb, created)

    @router.get("/mailboxes/{upn}/ground-truth")
    async def ground_truth(upn: str, bodies: Literal["html", "text"] | None = None) -> dict[str, Any]:
        return sandbox.ground_truth(mailbox(upn), bodies)

    @router.post("/mailboxes/{upn}/messages", status_code=201)
    async def add_message(upn: str, body: NewMessage) -> dict[str, str]:
        mb = mailbox(upn)
        target = folder(mb, body.folder)
        if target.search_query is not None or target.parent is None:
            raise AdminProblem(400, "InvalidFolder", f"Messages cannot be added to '{body.folder}'.")
        received = _timestamp(body.received)
        attachments = [_attachment(a, index) for index, a in enumerate(body.attachments)]
        html_body = text_body = None
        if body.body is not None:
            if body.body.content_type == "html":
                html_body = body.body.content
            else:
                text_body = body.body.content
        msg = sandbox.state.add_message(
            mb,
            target,
            subject=body.subject,
            sender=Address(body.sender.name, body.sender.address) if body.sender else None,
            to=[Address(a.name, a.address) for a in body.to],
            cc=[Address(a.name, a.address) for a in body.cc],
            bcc=[Address(a.name, a.address) for a in body.bcc],
            received=received,
            categories=body.categories,
            importance=body.importance,
            is_read=body.is_read,
            flag=body.flag,
            body_html=html_body,
            body_text=text_body,
            attachments=attachments,
            kind=body.kind,
            message_id=body.internet_message_id,
        )
        return ids(mb, msg)

    @router.patch("/mailboxes/{upn}/messages/{mid}")
    async def update_message(upn: str, mid: str, body: MessageChanges) -> dict[str, str]:
        mb = mailbox(upn)
        msg = message_of(mb, mid)
        sandbox.state.update_message(mb, msg, body.model_dump(by_alias=True, exclude_none=True))
        return ids(mb, msg)

    @router.post("/mailboxes/{upn}/messages/{mid}/move")
    async def move_message(upn: str, mid: str, body: MoveBody) -> dict[str, str]:
        mb = mailbox(upn)
        msg = message_of(mb, mid)
        target = folder(mb, body.folder)
        if target.search_query is not None or target.parent is None:
            raise AdminProblem(400, "InvalidFolder", f"Messages cannot be moved to '{body.folder}'.")
        sandbox.state.move_message(mb, msg, target)
        return ids(mb, msg)

    @router.delete("/mailboxes/{upn}/messages/{mid}")
    async def delete_message(upn: str, mid: str) -> dict[str, str]:
        mb = mailbox(upn)
        msg = message_of(mb, mid)
        result = ids(mb, msg)
        sandbox.state.delete_message(mb, msg)
        return result

    @router.post("/tokens")
    async def mint(body: TokenRequest) -> dict[str, Any]:
        tenant = sandbox.state.tenant
        app = tenant.apps.get(body.client_id) if body.client_id else next(iter(tenant.apps.values()))
        if app is None:
            raise AdminProblem(404, "AppNotFound", f"No app registration with client id {body.client_id!r}.")
        user = None
        if body.user is not None:
            user = tenant.user(body.user)
            if user is None:
                raise AdminProblem(404, "UserNotFound", f"No user {body.user!r} in {tenant.domain}.")
            permissions = tuple(body.scopes if body.scopes is not None else ("Mail.Read", "User.Read"))
        else:
            permissions = tuple(body.roles if body.roles is not None else app.roles)
        token, life = sandbox.auth.mint(app, user, permissions, body.lifetime)
        return {"token_type": "Bearer", "access_token": token, "expires_in": life}

    def subject(body: TokenTarget) -> str | None:
        if body.all:
            return "*"
        if body.user:
            user = sandbox.state.tenant.user(body.user)
            if user is None:
                raise AdminProblem(404, "UserNotFound", f"No user {body.user!r}.")
            return f"user:{user.id}"
        if body.app:
            return f"app:{body.app}"
        return None

    @router.post("/tokens/expire")
    async def expire(body: TokenTarget) -> dict[str, Any]:
        return _apply(body, subject(body), sandbox.auth.expired, sandbox.auth.expire)

    @router.post("/tokens/revoke")
    async def revoke(body: TokenTarget) -> dict[str, Any]:
        return _apply(body, subject(body), sandbox.auth.revoked, sandbox.auth.revoke)

    def _apply(body: TokenTarget, who: str | None, one: set[int], many: Any) -> dict[str, Any]:
        if body.token:
            serial = sandbox.auth.serial_of(body.token)
            if serial is None:
                raise AdminProblem(400, "InvalidToken", "That is not an access token this sandbox issued.")
            one.add(serial)
            return {"ok": True, "tokens": "one"}
        if who is None:
            raise AdminProblem(400, "InvalidRequest", "Say which tokens: token, user, app or all.")
        many(who)
        return {"ok": True, "tokens": who}

    @router.post("/delta/invalidate")
    async def invalidate(body: InvalidateBody) -> dict[str, Any]:
        boxes = [mailbox(body.mailbox)] if body.mailbox else list(sandbox.state.mailboxes.values())
        for mb in boxes:
            if body.folder:
                target = folder(mb, body.folder)
                mb.folder_generations[target.serial] = mb.folder_generations.get(target.serial, 0) + 1
            else:
                mb.delta_generation += 1
        return {"ok": True, "mailboxes": [mb.user.upn for mb in boxes]}

    @router.get("/faults")
    async def get_faults() -> dict[str, Any]:
        return sandbox.faults.settings.model_dump(mode="json")

    @router.put("/faults")
    async def put_faults(body: FaultSettings) -> dict[str, Any]:
        sandbox.faults.configure(body)
        return body.model_dump(mode="json")

    @router.post("/faults/profile")
    async def set_profile(body: ProfileBody) -> dict[str, Any]:
        settings = FaultSettings.for_profile(body.profile)
        sandbox.faults.configure(settings)
        return settings.model_dump(mode="json")

    @router.get("/faults/held")
    async def held() -> dict[str, Any]:
        return {"held": sandbox.faults.held}

    @router.post("/faults/release")
    async def release() -> dict[str, Any]:
        return {"released": sandbox.faults.release()}

    @router.get("/log")
    async def log(mailbox: str | None = None, since: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        return sandbox.faults.entries(mailbox=mailbox, since=since, limit=limit)

    @router.delete("/log")
    async def clear_log() -> dict[str, Any]:
        sandbox.faults.clear()
        return {"ok": True}

    @router.get("/counters")
    async def counters() -> dict[str, Any]:
        return {name: c.public() for name, c in sandbox.faults.counters.items()}

    @router.post("/signin")
    async def signin(body: SigninBody) -> dict[str, Any]:
        if body.user is not None and sandbox.state.tenant.user(body.user) is None:
            raise AdminProblem(404, "UserNotFound", f"No user {body.user!r}.")
        sandbox.auth.signin_user = body.user
        sandbox.auth.deny_next_signin = body.deny_next
        return {"ok": True}

    @router.post("/device/approve")
    async def device(body: DeviceDecision) -> dict[str, Any]:
        user = sandbox.state.tenant.user(body.user)
        if user is None:
            raise AdminProblem(404, "UserNotFound", f"No user {body.user!r}.")
        grant = sandbox.auth.decide_device(body.user_code, user, approve=not body.deny)
        if grant is None:
            raise AdminProblem(404, "DeviceCodeNotFound", f"No pending device code {body.user_code!r}.")
        return {"ok": True, "status": grant.status}

    return router


def _timestamp(value: int | str | None) -> int | None:
    if value is None or isinstance(value, int):
        return value
    from sandbox._odata import parse_datetime

    try:
        return int(parse_datetime(value).timestamp())
    except ValueError:
        raise AdminProblem(
            400, "InvalidRequest", f"receivedDateTime {value!r} is not an ISO-8601 date."
        ) from None


def _attachment(spec: NewAttachment, index: int) -> AttachmentSpec:
    if spec.content_bytes is not None:
        try:
            data = base64.b64decode(spec.content_bytes, validate=True)
        except (binascii.Error, ValueError):
            raise AdminProblem(
                400, "InvalidRequest", f"attachments[{index}].contentBytes is not base64."
            ) from None
        return AttachmentSpec(
            "file",
            spec.name,
            spec.content_type,
            len(data),
            "raw",
            is_inline=spec.is_inline,
            content_id=spec.content_id,
            data=data,
        )
    size = spec.size if spec.size is not None else 1024
    return AttachmentSpec(
        "file",
        spec.name,
        spec.content_type,
        size,
        "random",
        seed=zlib.crc32(spec.name.encode()),
        is_inline=spec.is_inline,
        content_id=spec.content_id,
    )
