"""The Microsoft identity platform look-alike on HTTP: discovery, authorize, token, device code.

Routes (``{tenant}`` is the tenant id, its domain, ``common`` or ``organizations``):

    GET  /{tenant}/v2.0/.well-known/openid-configuration     (and /{tenant}/.well-known/openid-configuration)
    GET  /{tenant}/oauth2/v2.0/authorize     signs in (login_hint, else the admin-chosen user, else adele),
                                              consents, and redirects with ?code=&state= (query, fragment
                                              or form_post)
    POST /{tenant}/oauth2/v2.0/token         authorization_code (+PKCE), refresh_token, client_credentials,
                                              device_code
    POST /{tenant}/oauth2/v2.0/devicecode
    GET  /{tenant}/discovery/v2.0/keys
    GET|POST /devicelogin                    the page where a person enters a device code

There is no password prompt: the sandbox trusts whoever asks, which is what tests and demos need. The routes
are coroutines, so they run on the event loop like Graph's and the admin API's, never beside them in a thread.
"""

from __future__ import annotations

import base64
import html
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from sandbox._errors import OAuthError

if TYPE_CHECKING:
    from sandbox._app import Sandbox

_LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]"}


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _page(status: int, title: str, text: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><title>{html.escape(title)}</title><h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(text)}</p>",
        status_code=status,
    )


def build_router(sandbox: Sandbox) -> APIRouter:
    router = APIRouter()

    def tenant_id(tenant: str) -> str:
        t = sandbox.state.tenant
        if tenant.lower() in {t.id, t.domain, "common", "organizations"}:
            return t.id
        raise OAuthError(
            400,
            "invalid_tenant",
            90002,
            f"Tenant '{tenant}' not found. Check to make sure you have "
            "the correct tenant ID and are signing into the correct cloud.",
        )

    def oauth_json(exc: OAuthError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @router.get("/{tenant}/v2.0/.well-known/openid-configuration")
    @router.get("/{tenant}/.well-known/openid-configuration")
    async def discovery(tenant: str, request: Request) -> Response:
        try:
            tid = tenant_id(tenant)
        except OAuthError as exc:
            return oauth_json(exc)
        base = _base(request)
        root = f"{base}/{tenant}"
        issuer = (
            f"{base}/{{tenantid}}/v2.0"
            if tenant.lower() in {"common", "organizations"}
            else f"{base}/{tid}/v2.0"
        )
        return JSONResponse(
            {
                "issuer": issuer,
                "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
                "token_endpoint": f"{root}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
                "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
                "jwks_uri": f"{root}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "response_types_supported": ["code"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["HS256"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                "code_challenge_methods_supported": ["S256", "plain"],
                "grant_types_supported": [
                    "authorization_code",
                    "refresh_token",
                    "client_credentials",
                    "urn:ietf:params:oauth:grant-type:device_code",
                ],
                "tenant_region_scope": "EU",
                "cloud_instance_name": "sandbox.test",
                "msgraph_host": urlsplit(base).netloc,
            }
        )

    @router.get("/{tenant}/discovery/v2.0/keys")
    async def keys(tenant: str) -> dict[str, Any]:
        return {"keys": []}

    @router.get("/{tenant}/oauth2/v2.0/authorize")
    async def authorize(tenant: str, request: Request) -> Response:
        params = dict(request.query_params)
        try:
            tenant_id(tenant)
            app = sandbox.auth.app(params.get("client_id"))
        except OAuthError as exc:
            return _page(400, "Sign-in error", f"AADSTS{exc.code}: {exc.description}")
        redirect_uri = params.get("redirect_uri", "")
        parts = urlsplit(redirect_uri)
        allowed = redirect_uri in app.redirect_uris or (
            parts.scheme in {"http", "https"} and (parts.hostname or "") in _LOOPBACK
        )
        if not allowed:
            return _page(
                400,
                "Sign-in error",
                f"AADSTS50011: The redirect URI '{redirect_uri}' specified in the "
                f"request does not match the redirect URIs configured for the application '{app.client_id}'.",
            )
        mode = params.get("response_mode", "query")
        state = params.get("state")

        def back(values: dict[str, str]) -> Response:
            if state is not None:
                values["state"] = state
            if mode == "form_post":
                fields = "".join(
                    f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                    for k, v in values.items()
                )
                return HTMLResponse(
                    f'<!doctype html><body onload="document.forms[0].submit()"><form method="post" '
                    f'action="{html.escape(redirect_uri)}">{fields}</form></body>'
                )
            joiner = "#" if mode == "fragment" else ("&" if "?" in redirect_uri else "?")
            return RedirectResponse(f"{redirect_uri}{joiner}{urlencode(values)}", status_code=302)

        def fail(error: str, code: int, description: str) -> Response:
            return back({"error": error, "error_description": f"AADSTS{code}: {description}"})

        if params.get("response_type") != "code":
            return fail(
                "unsupported_response_type", 700054, "response_type 'code' is the only one supported here."
            )
        if not params.get("scope"):
            return fail(
                "invalid_request", 900144, "The request body must contain the following parameter: 'scope'."
            )
        try:
            asked, _ = sandbox.auth.delegated_scopes(app, params["scope"])
        except OAuthError as exc:
            return fail(exc.error, exc.code, exc.description)
        challenge = params.get("code_challenge")
        method = params.get("code_challenge_method", "plain" if challenge else "S256")
        if challenge is not None and method not in {"S256", "plain"}:
            return fail("invalid_request", 501491, "Invalid code_challenge_method: use S256 or plain.")
        hint = params.get("login_hint")
        chosen = hint or sandbox.auth.signin_user or next(iter(sandbox.state.mailboxes.values())).user.upn
        user = sandbox.state.tenant.user(chosen)
        if user is None:
            return _page(
                400,
                "Sign-in error",
                f"AADSTS50034: The user account {chosen} does not exist in the "
                f"{sandbox.state.tenant.domain} directory.",
            )
        if sandbox.auth.deny_next_signin:
            sandbox.auth.deny_next_signin = False
            return fail("access_denied", 65004, "User declined to consent to access the app.")
        code = sandbox.auth.issue_code(app, redirect_uri, asked, user, params.get("nonce"), challenge, method)
        return back({"code": code, "session_state": sandbox.state.tenant.id})

    @router.post("/{tenant}/oauth2/v2.0/token")
    async def token(tenant: str, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        basic = request.headers.get("authorization", "")
        if basic.lower().startswith("basic ") and "client_secret" not in form:
            client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
            form.setdefault("client_id", client_id)
            form["client_secret"] = secret
        try:
            tenant_id(tenant)
            result = sandbox.auth.token(form, _base(request))
        except OAuthError as exc:
            return oauth_json(exc)
        return JSONResponse(result, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    @router.post("/{tenant}/oauth2/v2.0/devicecode")
    async def devicecode(tenant: str, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        try:
            tenant_id(tenant)
            grant = sandbox.auth.start_device_flow(form)
        except OAuthError as exc:
            return oauth_json(exc)
        uri = f"{_base(request)}/devicelogin"
        return JSONResponse(
            {
                "user_code": grant.user_code,
                "device_code": grant.device_code,
                "verification_uri": uri,
                "expires_in": int(grant.expires - time.time()),
                "interval": sandbox.auth.device_interval,
                "message": f"To sign in, use a web browser to open the page {uri} and enter the code "
                f"{grant.user_code} "
                "to authenticate.",
            }
        )

    @router.get("/devicelogin")
    async def device_page() -> HTMLResponse:
        users = "".join(
            f'<option value="{html.escape(u.upn)}">{html.escape(u.display_name)} ({html.escape(u.upn)})'
            "</option>"
            for u in sandbox.state.tenant.users.values()
        )
        return HTMLResponse(
            "<!doctype html><title>Enter code</title><h1>Enter code</h1><form method=post>"
            '<label>Code <input name="user_code" autofocus></label> '
            f'<label>Account <select name="user">{users}</select></label> '
            '<button name="decision" value="approve">Sign in</button> '
            '<button name="decision" value="deny">Cancel</button></form>'
        )

    @router.post("/devicelogin")
    async def device_decide(request: Request) -> HTMLResponse:
        form = {k: str(v) for k, v in (await request.form()).items()}
        user = sandbox.state.tenant.user(form.get("user", ""))
        if user is None:
            return _page(
                400, "Unknown account", f"There is no account {form.get('user', '')!r} in this tenant."
            )
        grant = sandbox.auth.decide_device(
            form.get("user_code", ""), user, approve=form.get("decision") != "deny"
        )
        if grant is None:
            return _page(
                400,
                "Code not found",
                "That code is unknown, expired or already used. Check it and try again.",
            )
        return _page(200, "Done", f"You have signed in as {user.upn}. You can close this window.")

    return router
