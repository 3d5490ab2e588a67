"""Microsoft Graph's mail endpoints (under ``/v1.0``): routing, auth checks, query options, handlers, $batch.

``GraphService.handle`` takes a framework-free ``GraphRequest`` and returns a ``GraphResponse``; the ASGI
layer (``_app``) and ``$batch`` both call it, so inner batch requests get the same checks, faults and
throttling as top-level ones. Supported, for ``/me/...`` and ``/users/{id or UPN}/...``:

    GET   /me | /users/{u}
    GET   .../mailFolders[?includeHiddenFolders=true]     GET .../mailFolders/delta
    GET   .../mailFolders/{id|well-known}[/childFolders[/{id}...]]
    GET   .../mailFolders/{f}/messages                     GET .../mailFolders/{f}/messages/delta
    GET   .../messages                                     GET|PATCH|DELETE .../messages/{m}
    POST  .../messages/{m}/move                            GET .../messages/{m}/$value
    GET   .../messages/{m}/attachments[/{a}[/$value]]      POST /$batch
    GET   .../outlook/masterCategories

Query options: $select, $top (1-1000; 10 by default), $skip (in next links), $filter, $orderby (Graph's
InefficientFilter rule), $search (KQL; not with $filter or $orderby), $count, $expand=attachments.
Prefer headers: ``IdType="ImmutableId"``, ``outlook.body-content-type``, ``odata.maxpagesize``, each echoed in
``Preference-Applied`` when honoured.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

import orjson

from sandbox import _delta, _ids, _render
from sandbox._auth import Auth, Principal
from sandbox._errors import GraphFault, ODataError
from sandbox._faults import Faults
from sandbox._model import Folder, Mailbox, Message
from sandbox._odata import (
    ATTACHMENT,
    MAIL_FOLDER,
    compile_filter,
    filter_properties,
    parse_orderby,
    parse_select,
)
from sandbox._render import View
from sandbox._search import compile_search
from sandbox._state import SandboxState

JSON_TYPE = (
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
)
MAX_TOP = 1000
SEARCH_CAP = 1000
BATCH_LIMIT = 20
# Outlook's preset category names, present in every mailbox's master list.
PRESET_CATEGORIES = ("Blue category", "Green category", "Orange category", "Purple category", "Red category")
READ = frozenset({"Mail.Read", "Mail.ReadWrite"})
WRITE = frozenset({"Mail.ReadWrite"})
USER_READ = frozenset({"User.Read", "User.Read.All", "User.ReadBasic.All", "Directory.Read.All"})
_LINK_SAFE = "$,()/:='"
_SEGMENT = re.compile(r"^([^(]+)\('?(.*?)'?\)$")


@dataclass(slots=True)
class GraphRequest:
    method: str
    path: str  # after /v1.0, e.g. "/users/adele@contoso.test/messages"
    query: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    base: str  # scheme://host[:port]/v1.0
    batch: str | None = None


@dataclass(slots=True)
class GraphResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    drop: bool = False


@dataclass(slots=True)
class Route:
    name: str
    mailbox_ref: str | None  # "me", a user key, or None for /$batch
    params: list[str]
    handler: Callable[..., GraphResponse] | None
    write: bool = False
    user_read: bool = False


def _prefer(headers: dict[str, str]) -> dict[str, str]:
    prefs = {}
    for item in headers.get("prefer", "").split(","):
        name, _, value = item.strip().partition("=")
        if name:
            prefs[name.strip().lower()] = value.strip().strip('"')
    return prefs


class Options:
    """A request's query options (both ``$name`` and bare ``name`` spellings) and Prefer headers."""

    def __init__(self, req: GraphRequest) -> None:
        self.raw = parse_qsl(req.query, keep_blank_values=True)
        self.values: dict[str, str] = {}
        for name, value in self.raw:
            key = (
                name if name.startswith("$") or name in {"changeType", "includeHiddenFolders"} else f"${name}"
            )
            if key in self.values:
                raise GraphFault(
                    400,
                    "BadRequest",
                    f"Query option '{name}' was specified more than once, "
                    "but it must be specified at most once.",
                )
            self.values[key] = value
        prefs = _prefer(req.headers)
        self.immutable = prefs.get("idtype", "").lower() == "immutableid"
        body_type = prefs.get("outlook.body-content-type", "").lower()
        self.body_type = body_type if body_type in {"text", "html"} else "html"
        self.body_type_asked = body_type in {"text", "html"}
        self.max_page: int | None = None
        if "odata.maxpagesize" in prefs:
            try:
                self.max_page = max(1, int(prefs["odata.maxpagesize"]))
            except ValueError:
                self.max_page = None

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def integer(self, name: str, low: int, high: int, default: int) -> int:
        raw = self.values.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise GraphFault(
                400, "BadRequest", f"Invalid value '{raw}' for query option '{name}': expected an integer."
            ) from None
        if not low <= value <= high:
            raise GraphFault(
                400,
                "ErrorInvalidUrlQuery",
                f"The value '{value}' for '{name}' is out of range: it must be between {low} and {high}.",
            )
        return value

    def view(self) -> View:
        return View(self.immutable, self.body_type)

    def applied(self, *, page: bool = False) -> dict[str, str]:
        """The Preference-Applied header for what this request's Prefer asked and the server honoured."""
        parts = []
        if self.immutable:
            parts.append('IdType="ImmutableId"')
        if self.body_type_asked:
            parts.append(f'outlook.body-content-type="{self.body_type}"')
        if page and self.max_page is not None:
            parts.append(f"odata.maxpagesize={self.max_page}")
        return {"Preference-Applied": ", ".join(parts)} if parts else {}


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> GraphResponse:
    return GraphResponse(
        status, {"Content-Type": JSON_TYPE, "OData-Version": "4.0", **(headers or {})}, orjson.dumps(payload)
    )


def error_response(fault: GraphFault, request_id: str, client_request_id: str) -> GraphResponse:
    payload = {
        "error": {
            "code": fault.code,
            "message": fault.message,
            "innerError": {
                "date": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
                "request-id": request_id,
                "client-request-id": client_request_id,
            },
        }
    }
    return GraphResponse(
        fault.status, {"Content-Type": "application/json", **fault.headers}, orjson.dumps(payload)
    )


class GraphService:
    """The Graph side of a sandbox: state, auth and faults, behind ``handle``."""

    def __init__(self, state: SandboxState, auth: Auth, faults: Faults, rounds: _delta.DeltaRounds) -> None:
        self.state = state
        self.auth = auth
        self.faults = faults
        self.rounds = rounds

    # -- the entry point --------------------------------------------------------------------------------

    async def handle(self, req: GraphRequest) -> GraphResponse:
        request_id = str(uuid.uuid4())
        client_request_id = req.headers.get("client-request-id") or request_id
        started = time.perf_counter()
        entry = self.faults.new_entry(
            req.method, req.path, req.query, None, "unrouted", request_id, client_request_id, req.batch
        )
        try:
            route = self.route(req)
            entry.route = route.name
            if route.name == "POST /$batch":
                response = await self.batch(req)
            else:
                principal = self.auth.verify(req.headers.get("authorization"))
                mb = self.resolve(route, principal)
                entry.mailbox = mailbox_key = mb.user.upn.lower()
                admission = self.faults.admit(entry, req.method, req.path, req.query, mailbox_key)
                counters = self.faults.counters_for(mailbox_key)
                counters.in_flight += 1
                try:
                    await self.faults.wait(admission, counters)
                    if admission.drop:
                        response = GraphResponse(200, drop=True)
                    else:
                        assert route.handler is not None
                        response = route.handler(req, mb, *route.params)
                finally:
                    counters.in_flight -= 1
        except GraphFault as fault:
            response = error_response(fault, request_id, client_request_id)
        except ODataError as exc:
            response = error_response(GraphFault(400, exc.code, exc.message), request_id, client_request_id)
        except Exception:  # a bug here must still answer like Graph, and say what happened on stderr
            traceback.print_exc()
            response = error_response(
                GraphFault(500, "generalException", "An internal server error occurred."),
                request_id,
                client_request_id,
            )
        response.headers.setdefault("request-id", request_id)
        response.headers.setdefault("client-request-id", client_request_id)
        response.headers.setdefault(
            "x-ms-ags-diagnostic",
            '{"ServerInfo":{"DataCenter":"Sandbox","Slice":"E",'
            '"Ring":"0","ScaleUnit":"000","RoleInstance":"SANDBOX1"}}',
        )
        entry.status = 0 if response.drop else response.status
        if response.status >= 400 and response.body:
            try:
                entry.code = orjson.loads(response.body)["error"]["code"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                entry.code = None
        entry.duration_ms = round((time.perf_counter() - started) * 1000, 3)
        return response

    # -- routing and access -------------------------------------------------------------------------------

    def route(self, req: GraphRequest) -> Route:
        segments: list[str] = []
        for raw in req.path.strip("/").split("/"):
            if not raw:
                continue
            # Functions may be called with empty parentheses, as SDKs do: messages/delta() is messages/delta.
            raw = raw.removesuffix("()")
            match = _SEGMENT.match(raw)
            if match and match.group(1).lower() in {
                "mailfolders",
                "messages",
                "attachments",
                "childfolders",
                "users",
            }:
                segments += [match.group(1), match.group(2)]
            else:
                segments.append(raw)
        method = req.method
        if segments == ["$batch"]:
            if method != "POST":
                raise GraphFault(405, "BadRequest", "Only POST is supported on /$batch.")
            return Route("POST /$batch", None, [], None)
        lower = [s.lower() for s in segments]
        if lower[:1] == ["me"]:
            ref, rest, template = "me", segments[1:], "/me"
        elif lower[:1] == ["users"] and len(segments) >= 2:
            ref, rest, template = segments[1], segments[2:], "/users/{id}"
        else:
            raise self._unknown(segments[0] if segments else "")
        low = [s.lower() for s in rest]
        if not rest:
            return self._r(method, template, ref, [], self.get_user, user_read=True)
        if low[0] == "mailfolders":
            if len(rest) == 1:
                return self._r(method, template + "/mailFolders", ref, [None], self.list_folders)
            if low[1] == "delta" and len(rest) == 2:
                return self._r(method, template + "/mailFolders/delta", ref, [], self.folder_delta)
            folder_key = rest[1]
            tail, low_tail = rest[2:], low[2:]
            while len(tail) >= 2 and low_tail[0] == "childfolders":
                folder_key = f"{folder_key}\x00{tail[1]}"
                tail, low_tail = tail[2:], low_tail[2:]
            base = template + "/mailFolders/{id}"
            if not tail:
                return self._r(method, base, ref, [folder_key], self.get_folder)
            if low_tail == ["childfolders"]:
                return self._r(method, base + "/childFolders", ref, [folder_key], self.list_folders)
            if low_tail[0] == "messages":
                if len(tail) == 1:
                    return self._r(method, base + "/messages", ref, [folder_key], self.list_messages)
                if low_tail[1] == "delta" and len(tail) == 2:
                    return self._r(method, base + "/messages/delta", ref, [folder_key], self.message_delta)
                return self._message_route(method, base, ref, tail[1:], low_tail[1:], folder_key)
            raise self._unknown(tail[0])
        if low[0] == "messages":
            if len(rest) == 1:
                return self._r(method, template + "/messages", ref, [None], self.list_messages)
            return self._message_route(method, template, ref, rest[1:], low[1:], None)
        if low == ["outlook", "mastercategories"]:
            return self._r(method, template + "/outlook/masterCategories", ref, [], self.master_categories)
        raise self._unknown(rest[0])

    def _message_route(
        self, method: str, base: str, ref: str, tail: list[str], low: list[str], folder_key: str | None
    ) -> Route:
        template = base + "/messages/{id}"
        mid = tail[0]
        if len(tail) == 1:
            if method == "PATCH":
                return Route(f"PATCH {template}", ref, [mid, folder_key], self.patch_message, write=True)
            if method == "DELETE":
                return Route(f"DELETE {template}", ref, [mid, folder_key], self.delete_message, write=True)
            return self._r(method, template, ref, [mid, folder_key], self.get_message)
        if low[1:] == ["$value"]:
            return self._r(method, template + "/$value", ref, [mid, folder_key], self.message_value)
        if low[1:] == ["move"]:
            if method != "POST":
                raise GraphFault(405, "ErrorInvalidRequest", "move needs POST.")
            return Route(f"POST {template}/move", ref, [mid, folder_key], self.move_message, write=True)
        if low[1] == "attachments":
            if len(tail) == 2:
                return self._r(
                    method, template + "/attachments", ref, [mid, folder_key], self.list_attachments
                )
            if len(tail) == 3:
                return self._r(
                    method,
                    template + "/attachments/{id}",
                    ref,
                    [mid, folder_key, tail[2]],
                    self.get_attachment,
                )
            if len(tail) == 4 and low[3] == "$value":
                return self._r(
                    method,
                    template + "/attachments/{id}/$value",
                    ref,
                    [mid, folder_key, tail[2]],
                    self.attachment_value,
                )
        raise self._unknown(tail[1])

    def _r(
        self,
        method: str,
        template: str,
        ref: str,
        params: list[Any],
        handler: Callable[..., GraphResponse],
        *,
        user_read: bool = False,
    ) -> Route:
        if method != "GET":
            raise GraphFault(
                405, "ErrorInvalidRequest", f"The OData request is not supported: {method} on {template}."
            )
        return Route(f"GET {template}", ref, params, handler, user_read=user_read)

    @staticmethod
    def _unknown(segment: str) -> GraphFault:
        return GraphFault(400, "BadRequest", f"Resource not found for the segment '{segment}'.")

    def resolve(self, route: Route, principal: Principal) -> Mailbox:
        """The mailbox a request addresses, after Graph's access checks."""
        assert route.mailbox_ref is not None
        if route.mailbox_ref == "me":
            if principal.user is None:
                raise GraphFault(
                    403, "ErrorAccessDenied", "/me request is only valid with delegated authentication flow."
                )
            user = principal.user
        else:
            found = self.state.tenant.user(route.mailbox_ref)
            if found is None:
                raise GraphFault(
                    404, "ErrorInvalidUser", f"The requested user '{route.mailbox_ref}' is invalid."
                )
            user = found
            if principal.user is not None and principal.user.id != user.id:
                raise GraphFault(
                    403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
                )
        granted = principal.roles if principal.kind == "app" else principal.scopes
        needed = USER_READ if route.user_read else WRITE if route.write else READ
        if not granted & needed:
            raise GraphFault(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
        mb = self.state.mailboxes.get(user.upn.lower())
        if mb is None:
            if route.user_read:
                return Mailbox(0, user)  # the user exists without a mailbox: enough for GET /users/{id}
            raise GraphFault(
                404,
                "MailboxNotEnabledForRESTAPI",
                "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
            )
        return mb

    def _context(self, req: GraphRequest, mb: Mailbox, suffix: str) -> str:
        return f"{req.base}/$metadata#users('{quote(mb.user.id)}'){suffix}"

    # -- users and folders ---------------------------------------------------------------------------------

    def get_user(self, req: GraphRequest, mb: Mailbox) -> GraphResponse:
        user = mb.user
        return json_response(
            200,
            {
                "@odata.context": f"{req.base}/$metadata#users/$entity",
                "id": user.id,
                "displayName": user.display_name,
                "mail": user.upn,
                "userPrincipalName": user.upn,
                "preferredLanguage": user.locale,
            },
        )

    def master_categories(self, req: GraphRequest, mb: Mailbox) -> GraphResponse:
        """The mailbox's category list: Outlook's presets plus every category a message carries."""
        names = dict.fromkeys(PRESET_CATEGORIES)
        for msg in mb.messages.values():
            names.update(dict.fromkeys(msg.categories))
        ordered = sorted(names, key=str.casefold)
        value = [
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{mb.user.id}/category/{name.casefold()}")),
                "displayName": name,
                "color": f"preset{i % 25}",
            }
            for i, name in enumerate(ordered)
        ]
        return json_response(
            200, {"@odata.context": self._context(req, mb, "/outlook/masterCategories"), "value": value}
        )

    def folder(self, mb: Mailbox, key: str) -> Folder:
        parts = key.split("\x00")
        folder = self.state.find_folder(mb, parts[0])
        for child in parts[1:]:
            nested = self.state.find_folder(mb, child)
            if nested.parent != folder.serial:
                raise GraphFault(404, "ErrorItemNotFound", "The specified object was not found in the store.")
            folder = nested
        return folder

    def _folder_json(self, mb: Mailbox, folder: Folder) -> dict[str, Any]:
        if folder.search_query is None:
            return _render.folder_json(self.state, mb, folder)
        serials = self._search_folder_members(mb, folder)
        unread = sum(1 for s in serials if not mb.messages[s].is_read)
        return _render.folder_json(self.state, mb, folder, total=len(serials), unread=unread)

    def get_folder(self, req: GraphRequest, mb: Mailbox, key: str) -> GraphResponse:
        opts = Options(req)
        data = self._folder_json(mb, self.folder(mb, key))
        if opts.get("$select"):
            fields = parse_select(opts.get("$select") or "", MAIL_FOLDER, "mailFolder")
            data = {k: v for k, v in data.items() if k in fields or k in {"id", "@odata.type"}}
        data = {"@odata.context": self._context(req, mb, "/mailFolders/$entity"), **data}
        return json_response(200, data)

    def list_folders(self, req: GraphRequest, mb: Mailbox, key: str | None) -> GraphResponse:
        opts = Options(req)
        parent = self.state.root(mb) if key is None else self.folder(mb, key)
        hidden = (opts.get("includeHiddenFolders") or "").lower() == "true"
        folders = [mb.folders[c] for c in parent.children if hidden or not mb.folders[c].hidden]
        rows = [self._folder_json(mb, f) for f in folders]
        if opts.get("$filter"):
            test = compile_filter(opts.get("$filter") or "", "mailFolder")
            rows = [r for r in rows if test(r)]
        if opts.get("$orderby"):
            for order in reversed(parse_orderby(opts.get("$orderby") or "", MAIL_FOLDER)):
                rows.sort(key=lambda r, o=order: _sort_key(r.get(o.path[0])), reverse=order.descending)
        fields = (
            parse_select(opts.get("$select") or "", MAIL_FOLDER, "mailFolder")
            if opts.get("$select")
            else None
        )
        top = opts.integer("$top", 1, MAX_TOP, opts.max_page or 10)
        skip = opts.integer("$skip", 0, 10**9, 0)
        page = rows[skip : skip + top]
        if fields is not None:
            page = [{k: v for k, v in r.items() if k in fields or k in {"id", "@odata.type"}} for r in page]
        suffix = (
            "/mailFolders"
            if key is None
            else f"/mailFolders('{self.state.folder_id(mb, parent)}')/childFolders"
        )
        body: dict[str, Any] = {"@odata.context": self._context(req, mb, suffix)}
        if (opts.get("$count") or "").lower() == "true":
            body["@odata.count"] = len(rows)
        body["value"] = page
        if skip + top < len(rows):
            body["@odata.nextLink"] = self._next_link(req, opts, skip + top)
        return json_response(200, body, opts.applied(page=True))

    def folder_delta(self, req: GraphRequest, mb: Mailbox) -> GraphResponse:
        """The folder hierarchy as a delta round: every folder first, then folders changed since."""
        opts = Options(req)
        token = opts.get("$deltatoken") or opts.get("$skiptoken")
        base = -1
        if token:
            state = self.rounds.get(token)
            if state is None or state.mailbox != mb.number or state.folder != 0:
                raise self._sync_state_not_found(req, mb, None)
            base = state.watermark
        root = self.state.root(mb)
        rows = [self._folder_json(mb, f) for f in self._walk(mb, root) if f.change_seq > base or base < 0]
        state = _delta.RoundState(
            mb.number, 0, mb.delta_generation, None, None, None, base, mb.seq, complete=True
        )
        link = f"{req.base}{req.path}?$deltatoken={self.rounds.put(state)}"
        return json_response(
            200,
            {
                "@odata.context": f"{req.base}/$metadata#Collection(mailFolder)",
                "value": rows,
                "@odata.deltaLink": link,
            },
        )

    def _walk(self, mb: Mailbox, folder: Folder) -> list[Folder]:
        out = []
        for child in folder.children:
            out.append(mb.folders[child])
            out += self._walk(mb, mb.folders[child])
        return out

    # -- messages ---------------------------------------------------------------------------------------

    def _search_folder_members(self, mb: Mailbox, folder: Folder) -> list[int]:
        query = folder.search_query or ""
        test = compile_filter(query)

        def compute() -> list[int]:
            hits = [m for m in mb.messages.values() if test(_render.message_facts(self.state, mb, m))]
            hits.sort(key=lambda m: (m.received, m.serial), reverse=True)
            return [m.serial for m in hits]

        return self.state.cached(mb, ("searchfolder", folder.serial), compute)

    def list_messages(self, req: GraphRequest, mb: Mailbox, key: str | None) -> GraphResponse:
        opts = Options(req)
        folder = self.folder(mb, key) if key is not None else None
        filter_text, orderby_text, search_text = (
            opts.get("$filter"),
            opts.get("$orderby"),
            opts.get("$search"),
        )
        if search_text is not None and filter_text is not None:
            raise GraphFault(
                400, "SearchWithFilter", "The query parameter '$filter' is not supported with '$search'."
            )
        if search_text is not None and orderby_text is not None:
            raise GraphFault(
                400, "SearchWithOrderBy", "The query parameter '$orderBy' is not supported with '$search'."
            )
        fields = parse_select(opts.get("$select") or "") if opts.get("$select") else None
        test = compile_filter(filter_text) if filter_text else None
        orders = parse_orderby(orderby_text) if orderby_text else []
        if orders and filter_text:
            in_filter = filter_properties(filter_text)
            wanted = ["/".join(o.path).casefold() for o in orders]
            if in_filter[: len(wanted)] != wanted:
                raise GraphFault(
                    400,
                    "InefficientFilter",
                    "The restriction or sort order is too complex for this operation.",
                )
        searcher = compile_search(search_text) if search_text is not None else None
        top = opts.integer("$top", 1, MAX_TOP, min(opts.max_page or 10, MAX_TOP))
        skip = opts.integer("$skip", 0, 10**9, 0)
        expand = (opts.get("$expand") or "").strip()
        if expand and not expand.lower().startswith("attachments"):
            raise GraphFault(
                400,
                "BadRequest",
                f"Parsing OData Select and Expand failed: Could not find a property "
                f"named '{expand}' to expand on type 'microsoft.graph.message'.",
            )

        def compute() -> list[int]:
            if folder is None:
                pool = list(mb.messages.values())
            elif folder.search_query is not None:
                pool = [mb.messages[s] for s in self._search_folder_members(mb, folder)]
            else:
                pool = [mb.messages[s] for s in folder.members]
            needs_body = searcher is not None or bool(filter_text and "bodypreview" in filter_text.lower())
            if test is not None or searcher is not None or orders:
                facts = [(m, _render.message_facts(self.state, mb, m, with_body=needs_body)) for m in pool]
                if test is not None:
                    facts = [(m, f) for m, f in facts if test(f)]
                if searcher is not None:
                    facts = [(m, f) for m, f in facts if searcher(f)]
                    facts.sort(key=lambda p: (p[0].sent, p[0].serial), reverse=True)
                    facts = facts[:SEARCH_CAP]
                    return [m.serial for m, _ in facts]
                facts.sort(key=lambda p: (p[0].received, p[0].serial), reverse=True)
                for order in reversed(orders):
                    facts.sort(key=lambda p, o=order: _sort_key(_dig(p[1], o.path)), reverse=order.descending)
                return [m.serial for m, _ in facts]
            pool.sort(key=lambda m: (m.received, m.serial), reverse=True)
            return [m.serial for m in pool]

        cache_key = ("list", folder.serial if folder else None, filter_text, orderby_text, search_text)
        serials = self.state.cached(mb, cache_key, compute)
        view = opts.view()
        page = serials[skip : skip + top]
        values = [self._message_with_expand(mb, mb.messages[s], fields, view, expand) for s in page]
        body: dict[str, Any] = {"@odata.context": self._context(req, mb, "/messages")}
        if (opts.get("$count") or "").lower() == "true":
            body["@odata.count"] = len(serials)
        body["value"] = values
        if skip + top < len(serials):
            body["@odata.nextLink"] = self._next_link(req, opts, skip + top)
        response = json_response(200, body, opts.applied(page=True))
        self._check_page_size(response)
        return response

    def _message_with_expand(
        self, mb: Mailbox, msg: Message, fields: list[str] | None, view: View, expand: str
    ) -> dict[str, Any]:
        data = _render.message_json(self.state, mb, msg, fields, view)
        if expand:
            inner = re.search(r"\(\s*\$?select=([^)]*)\)", expand, re.IGNORECASE)
            att_fields = parse_select(inner.group(1), ATTACHMENT, "attachment") if inner else None
            data["attachments"] = [
                _render.attachment_json(self.state, mb, msg, i, a, att_fields)
                for i, a in enumerate(msg.attachments)
            ]
        return data

    def _check_page_size(self, response: GraphResponse) -> None:
        limit = self.faults.settings.max_page_bytes
        if limit and len(response.body) > limit:
            raise GraphFault(
                504,
                "UnknownError",
                "The gateway timed out: the page was too large to return in time; "
                "ask for fewer items ($top) or fewer properties ($select).",
            )

    def _next_link(self, req: GraphRequest, opts: Options, skip: int) -> str:
        params = [(k, v) for k, v in opts.raw if k.lstrip("$") != "skip"]
        params.append(("$skip", str(skip)))
        return f"{req.base}{req.path}?{urlencode(params, quote_via=quote, safe=_LINK_SAFE)}"

    def _message(self, mb: Mailbox, mid: str, folder_key: str | None) -> Message:
        msg = self.state.find_message(mb, mid)
        if folder_key is not None and self.folder(mb, folder_key).serial != msg.folder:
            raise GraphFault(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        return msg

    def get_message(self, req: GraphRequest, mb: Mailbox, mid: str, folder_key: str | None) -> GraphResponse:
        opts = Options(req)
        msg = self._message(mb, mid, folder_key)
        fields = parse_select(opts.get("$select") or "") if opts.get("$select") else None
        data = self._message_with_expand(mb, msg, fields, opts.view(), (opts.get("$expand") or "").strip())
        data = {"@odata.context": self._context(req, mb, "/messages/$entity"), **data}
        return json_response(200, data, opts.applied())

    def message_value(
        self, req: GraphRequest, mb: Mailbox, mid: str, folder_key: str | None
    ) -> GraphResponse:
        msg = self._message(mb, mid, folder_key)
        return GraphResponse(200, {"Content-Type": "text/plain"}, _render.message_mime(mb, msg))

    def _json_body(self, req: GraphRequest) -> dict[str, Any]:
        try:
            data = orjson.loads(req.body or b"{}")
        except orjson.JSONDecodeError as exc:
            raise GraphFault(400, "BadRequest", f"Unable to read JSON request payload: {exc}.") from None
        if not isinstance(data, dict):
            raise GraphFault(400, "BadRequest", "The request body must be a JSON object.")
        return data

    def patch_message(
        self, req: GraphRequest, mb: Mailbox, mid: str, folder_key: str | None
    ) -> GraphResponse:
        opts = Options(req)
        msg = self._message(mb, mid, folder_key)
        changes = self._json_body(req)
        allowed = {"isRead", "categories", "flag", "importance", "subject", "inferenceClassification"}
        unknown = sorted(set(changes) - allowed)
        if unknown:
            raise GraphFault(
                400,
                "ErrorInvalidPropertyRequest",
                f"The property '{unknown[0]}' cannot be updated "
                "through this sandbox; updatable: " + ", ".join(sorted(allowed)) + ".",
            )
        self.state.update_message(mb, msg, changes)
        return json_response(
            200, _render.message_json(self.state, mb, msg, None, opts.view()), opts.applied()
        )

    def move_message(self, req: GraphRequest, mb: Mailbox, mid: str, folder_key: str | None) -> GraphResponse:
        opts = Options(req)
        msg = self._message(mb, mid, folder_key)
        destination = self._json_body(req).get("destinationId")
        if not isinstance(destination, str):
            raise GraphFault(400, "ErrorInvalidRequest", "The request body needs 'destinationId'.")
        self.state.move_message(mb, msg, self.state.find_folder(mb, destination))
        return json_response(
            201, _render.message_json(self.state, mb, msg, None, opts.view()), opts.applied()
        )

    def delete_message(
        self, req: GraphRequest, mb: Mailbox, mid: str, folder_key: str | None
    ) -> GraphResponse:
        msg = self._message(mb, mid, folder_key)
        deleted = mb.folders[mb.well_known["deleteditems"]]
        if msg.folder == deleted.serial:
            self.state.delete_message(mb, msg)
        else:
            self.state.move_message(mb, msg, deleted)
        return GraphResponse(204)

    # -- attachments ------------------------------------------------------------------------------------

    def list_attachments(
        self, req: GraphRequest, mb: Mailbox, mid: str, folder_key: str | None
    ) -> GraphResponse:
        opts = Options(req)
        msg = self._message(mb, mid, folder_key)
        fields = (
            parse_select(opts.get("$select") or "", ATTACHMENT, "attachment") if opts.get("$select") else None
        )
        values = [
            _render.attachment_json(self.state, mb, msg, i, a, fields) for i, a in enumerate(msg.attachments)
        ]
        return json_response(
            200,
            {
                "@odata.context": self._context(req, mb, f"/messages('{mid}')/attachments"),
                "value": values,
            },
        )

    def get_attachment(
        self, req: GraphRequest, mb: Mailbox, mid: str, folder_key: str | None, aid: str
    ) -> GraphResponse:
        opts = Options(req)
        msg = self._message(mb, mid, folder_key)
        index, spec = self.state.find_attachment(mb, msg, aid)
        fields = (
            parse_select(opts.get("$select") or "", ATTACHMENT, "attachment") if opts.get("$select") else None
        )
        expand = "itemattachment/item" in (opts.get("$expand") or "").lower()
        data = _render.attachment_json(self.state, mb, msg, index, spec, fields, expand_item=expand)
        return json_response(200, {"@odata.context": self._context(req, mb, "/attachments/$entity"), **data})

    def attachment_value(
        self, req: GraphRequest, mb: Mailbox, mid: str, folder_key: str | None, aid: str
    ) -> GraphResponse:
        msg = self._message(mb, mid, folder_key)
        _, spec = self.state.find_attachment(mb, msg, aid)
        if spec.kind == "reference":
            raise GraphFault(
                405,
                "ErrorInvalidRequest",
                "The raw content of a reference attachment cannot be "
                "read: it is a link to a file in the cloud.",
            )
        data, content_type = _render.attachment_value(spec)
        return GraphResponse(200, {"Content-Type": content_type}, data)

    # -- delta ------------------------------------------------------------------------------------------

    def _sync_state_not_found(
        self, req: GraphRequest, mb: Mailbox, state: _delta.RoundState | None
    ) -> GraphFault:
        highest = mb.delta_generation
        generation = state.generation if state is not None else 0
        return GraphFault(
            410,
            "SyncStateNotFound",
            f"The sync state generation is not found; generation={generation};[highest={highest}].",
            {"Location": f"{req.base}{req.path}"},
        )

    def message_delta(self, req: GraphRequest, mb: Mailbox, key: str) -> GraphResponse:
        opts = Options(req)
        folder = self.folder(mb, key)
        if folder.search_query is not None:
            raise GraphFault(400, "ErrorInvalidRequest", "Delta queries are not supported on search folders.")
        token = opts.get("$skiptoken") or opts.get("$deltatoken")
        if token and token.lower() != "latest":
            state = self.rounds.get(token)
            generation = mb.delta_generation + mb.folder_generations.get(folder.serial, 0)
            if (
                state is None
                or state.mailbox != mb.number
                or state.folder != folder.serial
                or state.generation != generation
            ):
                raise self._sync_state_not_found(req, mb, state)
            if state.complete:
                state = _delta.start_round(
                    mb, folder, state.select, state.received, state.change_type, base=state.watermark
                )
        else:
            received, change_type = _delta.parse_initial(opts.values)
            fields = parse_select(opts.get("$select") or "") if opts.get("$select") else None
            state = _delta.start_round(mb, folder, tuple(fields) if fields else None, received, change_type)
        size = opts.integer("$top", 1, MAX_TOP, min(opts.max_page or 10, MAX_TOP))
        rng, s = self.faults.rng, self.faults.settings
        page = _delta.next_page(
            mb,
            state,
            size,
            replay=rng.random() < s.delta_replay_rate,
            empty=rng.random() < s.delta_empty_page_rate,
        )
        view = opts.view()
        fields = list(state.select) if state.select else None
        values = []
        for item in page.items:
            if isinstance(item, _delta.Entry):
                current = mb.messages.get(item.serial)
                if view.immutable and current is not None and current.folder == folder.serial:
                    continue
                values.append(_delta.removed_json(self._removed_id(mb, item, view.immutable)))
            else:
                values.append(
                    {
                        "@odata.type": "#microsoft.graph.message",
                        **_render.message_json(self.state, mb, item, fields, view),
                    }
                )
        link_token = self.rounds.put(page.next_state)
        path = f"{req.base}{req.path}"
        body: dict[str, Any] = {"@odata.context": f"{req.base}/$metadata#Collection(message)"}
        if page.next_state.complete:
            body["@odata.deltaLink"] = f"{path}?$deltatoken={link_token}"
        else:
            body["@odata.nextLink"] = f"{path}?$skiptoken={link_token}"
        body["value"] = values
        response = json_response(200, body, opts.applied(page=True))
        self._check_page_size(response)
        return response

    def _removed_id(self, mb: Mailbox, entry: _delta.Entry, immutable: bool) -> str:
        if immutable:
            return self.state.ids.encode(_ids.IMMUTABLE_MESSAGE, mb.number, entry.serial)
        return self.state.ids.encode(_ids.MESSAGE, mb.number, entry.serial, entry.moves)

    # -- $batch -----------------------------------------------------------------------------------------

    async def batch(self, req: GraphRequest) -> GraphResponse:
        self.auth.verify(req.headers.get("authorization"))
        try:
            payload = orjson.loads(req.body or b"")
        except orjson.JSONDecodeError as exc:
            raise GraphFault(400, "BadRequest", f"Unable to read JSON request payload: {exc}.") from None
        requests = payload.get("requests") if isinstance(payload, dict) else None
        if not isinstance(requests, list) or not requests:
            raise GraphFault(
                400, "BadRequest", "Invalid batch payload: 'requests' must be a non-empty array."
            )
        if len(requests) > BATCH_LIMIT:
            raise GraphFault(
                400,
                "BadRequest",
                f"Invalid batch payload format: the number of requests "
                f"({len(requests)}) exceeds the limit of {BATCH_LIMIT}.",
            )
        by_id: dict[str, dict[str, Any]] = {}
        for index, item in enumerate(requests):
            if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item.get("id"):
                raise GraphFault(
                    400, "BadRequest", f"Invalid batch payload: request #{index + 1} needs a string 'id'."
                )
            if item["id"] in by_id:
                raise GraphFault(
                    400, "BadRequest", f"Invalid batch payload: the id '{item['id']}' is used twice."
                )
            if not isinstance(item.get("method"), str) or not isinstance(item.get("url"), str):
                raise GraphFault(
                    400,
                    "BadRequest",
                    f"Invalid batch payload: request '{item['id']}' needs 'method' and 'url'.",
                )
            if item["url"].lower().startswith(("http://", "https://")):
                raise GraphFault(
                    400,
                    "BadRequest",
                    f"Invalid batch payload: request '{item['id']}' must use a relative url (without /v1.0).",
                )
            headers = item.get("headers") or {}
            if "body" in item and not any(k.lower() == "content-type" for k in headers):
                raise GraphFault(
                    400,
                    "BadRequest",
                    f"Invalid batch payload: request '{item['id']}' has a body but no Content-Type header.",
                )
            by_id[item["id"]] = item
        for item in requests:
            depends = item.get("dependsOn") or []
            if not isinstance(depends, list) or any(d not in by_id or d == item["id"] for d in depends):
                raise GraphFault(
                    400,
                    "BadRequest",
                    f"Invalid batch payload: request '{item['id']}' depends on an unknown request.",
                )
        results: dict[str, dict[str, Any]] = {}
        done: dict[str, asyncio.Future[int]] = {k: asyncio.get_running_loop().create_future() for k in by_id}
        parent = str(uuid.uuid4())

        async def run(item: dict[str, Any]) -> None:
            status = 424
            try:
                statuses = [await done[d] for d in item.get("dependsOn") or []]
                if any(s >= 400 for s in statuses):
                    results[item["id"]] = {
                        "id": item["id"],
                        "status": 424,
                        "headers": {"Content-Type": "application/json"},
                        "body": {
                            "error": {
                                "code": "FailedDependency",
                                "message": "A request this one depends on failed.",
                            }
                        },
                    }
                    return
                inner = self._inner_request(req, item, parent)
                response = await self.handle(inner)
                if response.drop:
                    response = error_response(
                        GraphFault(504, "GatewayTimeout", "The gateway timed out."),
                        response.headers.get("request-id", ""),
                        "",
                    )
                status = response.status
                results[item["id"]] = _batch_item(item["id"], response)
            finally:
                done[item["id"]].set_result(status)

        await asyncio.gather(*(run(item) for item in requests))
        return json_response(200, {"responses": [results[item["id"]] for item in requests]})

    def _inner_request(self, outer: GraphRequest, item: dict[str, Any], parent: str) -> GraphRequest:
        url = item["url"] if item["url"].startswith("/") else "/" + item["url"]
        path, _, query = url.partition("?")
        # Top-level paths arrive percent-decoded from the ASGI server; inner URLs are decoded the same way.
        path = unquote(path)
        headers = {k: v for k, v in outer.headers.items() if k in {"authorization", "prefer"}}
        headers.update({str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()})
        body = item.get("body")
        raw = b"" if body is None else body.encode() if isinstance(body, str) else orjson.dumps(body)
        return GraphRequest(item["method"].upper(), path, query, headers, raw, outer.base, batch=parent)


def _batch_item(item_id: str, response: GraphResponse) -> dict[str, Any]:
    headers = {
        k: v
        for k, v in response.headers.items()
        if k.lower() in {"content-type", "retry-after", "location", "preference-applied"}
    }
    out: dict[str, Any] = {"id": item_id, "status": response.status, "headers": headers}
    if response.body:
        if headers.get("Content-Type", "").startswith("application/json"):
            out["body"] = orjson.loads(response.body)
        else:
            out["body"] = base64.b64encode(response.body).decode()
    return out


def _dig(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = data
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, str):
        return (1, value.casefold())
    return (1, value)
