"""The identity platform's logic: access tokens, authorization codes, refresh tokens, device codes.

``Auth`` issues and checks everything; ``_signin`` puts it on HTTP. Access tokens are JWTs signed with a
key that lives only in this process (HS256), carrying ``roles`` for app-only tokens and ``scp`` for
delegated ones. Every token, refresh token included, has a serial number, so "expire (or revoke) every
token of this user issued so far" is one threshold. Error results mirror Microsoft's token endpoint:
``{"error", "error_description": "AADSTS<n>: ...", "error_codes": [n], ...}``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from sandbox._errors import GraphFault, OAuthError
from sandbox._model import App, Tenant, User

GRAPH_RESOURCES = ("https://graph.microsoft.com/", "00000003-0000-0000-c000-000000000000/")
OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
AUTH_CODE_LIFETIME = 600
DEVICE_CODE_LIFETIME = 900
REFRESH_LIFETIME = 90 * 86_400
_USER_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


class Principal(NamedTuple):
    """Who an access token speaks for: an app alone, or a user through an app."""

    kind: str  # "app" or "user"
    client_id: str
    user: User | None
    scopes: frozenset[str]
    roles: frozenset[str]
    serial: int


@dataclass(slots=True)
class AuthCode:
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    user: User
    nonce: str | None
    challenge: str | None
    method: str
    expires: float
    used: bool = False


@dataclass(slots=True)
class RefreshGrant:
    client_id: str
    user: User
    scopes: tuple[str, ...]
    confidential: bool
    serial: int
    expires: float


@dataclass(slots=True)
class DeviceGrant:
    device_code: str
    user_code: str
    client_id: str
    scopes: tuple[str, ...]
    expires: float
    status: str = "pending"  # pending, approved, declined, redeemed
    user: User | None = None


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Auth:
    """Issued tokens and grants of one sandbox, and the thresholds that expire or revoke them."""

    tenant: Tenant
    lifetime: int
    device_interval: int
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    issued: int = 0
    codes: dict[str, AuthCode] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshGrant] = field(default_factory=dict)
    devices: dict[str, DeviceGrant] = field(default_factory=dict)
    expired: set[int] = field(default_factory=set)
    revoked: set[int] = field(default_factory=set)
    # subject ("app:<client id>", "user:<oid>" or "*") -> tokens with a serial at or below are expired/revoked
    expire_upto: dict[str, int] = field(default_factory=dict)
    revoke_upto: dict[str, int] = field(default_factory=dict)
    signin_user: str | None = None
    deny_next_signin: bool = False

    # -- access tokens -----------------------------------------------------------------------------------

    def mint(
        self, app: App, user: User | None, permissions: tuple[str, ...], lifetime: int | None = None
    ) -> tuple[str, int]:
        """A signed access token for ``app`` (and ``user`` when delegated); returns it and its lifetime."""
        self.issued += 1
        now = int(time.time())
        life = self.lifetime if lifetime is None else lifetime
        claims: dict[str, Any] = {
            "aud": "https://graph.microsoft.com",
            "iss": f"https://sts.windows.net/{self.tenant.id}/",
            "iat": now,
            "nbf": now,
            "exp": now + life,
            "tid": self.tenant.id,
            "appid": app.client_id,
            "app_displayname": app.display_name,
            "jti": f"{self.issued}.{secrets.token_hex(6)}",
            "ver": "1.0",
        }
        if user is None:
            claims.update(idtyp="app", roles=list(permissions), oid=app.client_id, sub=app.client_id)
        else:
            claims.update(
                idtyp="user",
                scp=" ".join(permissions),
                oid=user.id,
                sub=user.id,
                upn=user.upn,
                unique_name=user.upn,
                name=user.display_name,
            )
        return self._sign(claims), life

    def _sign(self, claims: dict[str, Any]) -> str:
        head = b64url(orjson.dumps({"typ": "JWT", "alg": "HS256", "kid": "sandbox"}))
        body = b64url(orjson.dumps(claims))
        signature = hmac.new(self.key, f"{head}.{body}".encode(), hashlib.sha256).digest()
        return f"{head}.{body}.{b64url(signature)}"

    def verify(self, authorization: str | None) -> Principal:
        """The principal behind an ``Authorization`` header, or Graph's 401 ``InvalidAuthenticationToken``."""

        def reject(message: str) -> GraphFault:
            return GraphFault(
                401,
                "InvalidAuthenticationToken",
                message,
                {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'},
            )

        if not authorization:
            raise reject("Access token is empty.")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise reject("Access token is empty.")
        parts = token.strip().split(".")
        if len(parts) != 3:
            raise reject("IDX14100: JWT is not well formed, there are no dots (.).")
        try:
            claims = orjson.loads(_b64url_decode(parts[1]))
            signature = _b64url_decode(parts[2])
        except (ValueError, orjson.JSONDecodeError):
            raise reject("IDX14100: JWT is not well formed.") from None
        expected = hmac.new(self.key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(signature, expected):
            raise reject("Access token validation failure. Invalid signature.")
        serial = int(str(claims.get("jti", "0")).split(".", 1)[0])
        subject = f"user:{claims['oid']}" if claims.get("idtyp") == "user" else f"app:{claims.get('appid')}"
        if serial in self.revoked or serial <= max(
            self.revoke_upto.get(subject, 0), self.revoke_upto.get("*", 0)
        ):
            raise reject("Access token has been revoked.")
        expired_by_admin = serial in self.expired or serial <= max(
            self.expire_upto.get(subject, 0), self.expire_upto.get("*", 0)
        )
        if expired_by_admin or claims.get("exp", 0) <= time.time():
            raise reject("Lifetime validation failed, the token is expired.")
        if claims.get("tid") != self.tenant.id:
            raise reject("Access token validation failure. Invalid audience.")
        user = self.tenant.user(claims["upn"]) if claims.get("idtyp") == "user" else None
        return Principal(
            "user" if user else "app",
            str(claims.get("appid")),
            user,
            frozenset(str(claims.get("scp", "")).split()),
            frozenset(claims.get("roles", [])),
            serial,
        )

    def serial_of(self, token: str) -> int | None:
        """The serial of an access token this sandbox issued (for expiring or revoking just that one)."""
        try:
            claims = orjson.loads(_b64url_decode(token.split(".")[1]))
            return int(str(claims["jti"]).split(".", 1)[0])
        except (IndexError, KeyError, ValueError, orjson.JSONDecodeError):
            return None

    def expire(self, subject: str) -> None:
        self.expire_upto[subject] = self.issued

    def revoke(self, subject: str) -> None:
        """Revoke access and refresh tokens so far of ``subject`` (``user:<oid>``, ``app:<id>``, ``*``)."""
        self.revoke_upto[subject] = self.issued

    # -- the token endpoint -------------------------------------------------------------------------------

    def app(self, client_id: str | None) -> App:
        if not client_id:
            raise OAuthError(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_id'.",
            )
        app = self.tenant.apps.get(client_id)
        if app is None:
            raise OAuthError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.tenant.domain}'.",
            )
        return app

    def authenticate(self, form: dict[str, str], *, required: bool) -> tuple[App, bool]:
        """The calling app and whether it proved itself with its secret."""
        app = self.app(form.get("client_id"))
        secret = form.get("client_secret")
        if secret is None:
            if required or not app.allow_public_client:
                raise OAuthError(
                    401,
                    "invalid_client",
                    7000218,
                    "The request body must contain the following parameter: 'client_assertion' "
                    "or 'client_secret'.",
                )
            return app, False
        if not hmac.compare_digest(secret.encode(), app.secret.encode()):
            raise OAuthError(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the "
                f"client secret value, not the client secret ID, for a secret added to app "
                f"'{app.client_id}'.",
            )
        return app, True

    def token(self, form: dict[str, str], base: str) -> dict[str, Any]:
        """Answer a POST to ``{base}/{tenant}/oauth2/v2.0/token``; errors raise ``OAuthError``."""
        grant = form.get("grant_type")
        if not grant:
            raise OAuthError(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'grant_type'.",
            )
        if grant == "client_credentials":
            return self._client_credentials(form)
        if grant == "authorization_code":
            return self._authorization_code(form, base)
        if grant == "refresh_token":
            return self._refresh(form, base)
        if grant in {"urn:ietf:params:oauth:grant-type:device_code", "device_code"}:
            return self._device(form, base)
        raise OAuthError(
            400, "unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant}'."
        )

    def _client_credentials(self, form: dict[str, str]) -> dict[str, Any]:
        app, _ = self.authenticate(form, required=True)
        scopes = form.get("scope", "").split()
        if (
            len(scopes) != 1
            or not scopes[0].endswith("/.default")
            or not scopes[0].startswith(GRAPH_RESOURCES)
        ):
            raise OAuthError(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {form.get('scope', '')} is not valid. Client credential "
                "flows must have a scope value with /.default suffixed to the resource identifier "
                "(application ID URI).",
            )
        token, life = self.mint(app, None, app.roles)
        return {"token_type": "Bearer", "expires_in": life, "ext_expires_in": life, "access_token": token}

    def delegated_scopes(self, app: App, requested: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(scopes as requested, Graph permissions they grant); unknown ones are ``invalid_scope``."""
        asked = tuple(dict.fromkeys(requested.split()))
        if not asked:
            raise OAuthError(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'scope'.",
            )
        granted: list[str] = []
        for scope in asked:
            if scope in OIDC_SCOPES:
                continue
            short = scope
            for prefix in GRAPH_RESOURCES:
                short = short.removeprefix(prefix)
            if short == ".default":
                granted += app.scopes
            elif short in app.scopes:
                granted.append(short)
            else:
                raise OAuthError(
                    400,
                    "invalid_scope",
                    70011,
                    f"The provided request must include a 'scope' input parameter. The provided value "
                    f"for the input parameter 'scope' is not valid. The scope {scope} is not valid.",
                )
        return asked, tuple(dict.fromkeys(granted))

    def _user_tokens(
        self,
        app: App,
        user: User,
        asked: tuple[str, ...],
        granted: tuple[str, ...],
        form: dict[str, str],
        base: str,
        *,
        confidential: bool,
        nonce: str | None = None,
    ) -> dict[str, Any]:
        token, life = self.mint(app, user, granted)
        result: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join(asked),
            "expires_in": life,
            "ext_expires_in": life,
            "access_token": token,
        }
        if "offline_access" in asked:
            refresh = secrets.token_urlsafe(48)
            self.refresh_tokens[refresh] = RefreshGrant(
                app.client_id, user, asked, confidential, self.issued, time.time() + REFRESH_LIFETIME
            )
            result["refresh_token"] = refresh
        if "openid" in asked:
            result["id_token"] = self.id_token(app, user, nonce, base)
        if form.get("client_info") == "1":
            result["client_info"] = b64url(orjson.dumps({"uid": user.id, "utid": self.tenant.id}))
        return result

    def id_token(self, app: App, user: User, nonce: str | None, base: str) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": app.client_id,
            "iss": f"{base}/{self.tenant.id}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "name": user.display_name,
            "oid": user.id,
            "preferred_username": user.upn,
            "sub": user.id,
            "tid": self.tenant.id,
            "ver": "2.0",
        }
        if nonce is not None:
            claims["nonce"] = nonce
        return self._sign(claims)

    def _authorization_code(self, form: dict[str, str], base: str) -> dict[str, Any]:
        app, confidential = self.authenticate(form, required=False)
        code_text = form.get("code")
        if not code_text:
            raise OAuthError(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'code'.",
            )
        code = self.codes.get(code_text)
        if code is None or code.client_id != app.client_id:
            raise OAuthError(
                400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid."
            )
        if code.used:
            raise OAuthError(
                400,
                "invalid_grant",
                54005,
                "OAuth2 Authorization code was already redeemed, please "
                "retry with a new valid code or use an existing refresh token.",
            )
        if code.expires < time.time():
            raise OAuthError(
                400,
                "invalid_grant",
                70008,
                "The provided authorization code or refresh token has "
                "expired due to inactivity. Send a new interactive authorization request for this user "
                "and resource.",
            )
        if form.get("redirect_uri") != code.redirect_uri:
            raise OAuthError(
                400,
                "invalid_grant",
                500112,
                "The reply address does not match the reply address "
                "that was used when the authorization code was requested.",
            )
        if code.challenge is not None:
            verifier = form.get("code_verifier")
            if not verifier:
                raise OAuthError(
                    400,
                    "invalid_grant",
                    50148,
                    "The code_verifier does not match the "
                    "code_challenge supplied in the authorization request for PKCE.",
                )
            computed = (
                b64url(hashlib.sha256(verifier.encode()).digest()) if code.method == "S256" else verifier
            )
            if not hmac.compare_digest(computed, code.challenge):
                raise OAuthError(
                    400,
                    "invalid_grant",
                    501481,
                    "The Code_Verifier does not match the code_challenge supplied in the authorization "
                    "request.",
                )
        code.used = True
        _, granted = self.delegated_scopes(app, " ".join(code.scopes))
        return self._user_tokens(
            app, code.user, code.scopes, granted, form, base, confidential=confidential, nonce=code.nonce
        )

    def _refresh(self, form: dict[str, str], base: str) -> dict[str, Any]:
        text = form.get("refresh_token")
        if not text:
            raise OAuthError(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'refresh_token'.",
            )
        grant = self.refresh_tokens.get(text)
        app, confidential = self.authenticate(form, required=bool(grant and grant.confidential))
        if grant is None or grant.client_id != app.client_id:
            raise OAuthError(
                400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid."
            )
        subject = f"user:{grant.user.id}"
        if grant.serial <= max(self.revoke_upto.get(subject, 0), self.revoke_upto.get("*", 0)):
            raise OAuthError(
                400,
                "invalid_grant",
                50173,
                "The provided grant has expired due to it being revoked, "
                "a fresh auth token is needed. The user might have changed or reset their password.",
            )
        if grant.expires < time.time():
            raise OAuthError(400, "invalid_grant", 700082, "The refresh token has expired due to inactivity.")
        asked, granted = self.delegated_scopes(app, form.get("scope") or " ".join(grant.scopes))
        if "offline_access" not in asked:
            asked = (*asked, "offline_access")
        return self._user_tokens(app, grant.user, asked, granted, form, base, confidential=confidential)

    def _device(self, form: dict[str, str], base: str) -> dict[str, Any]:
        app, confidential = self.authenticate(form, required=False)
        device_code = form.get("device_code") or form.get("code")
        grant = self.devices.get(device_code or "")
        if grant is None or grant.client_id != app.client_id:
            raise OAuthError(
                400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid."
            )
        if grant.expires < time.time():
            raise OAuthError(
                400,
                "expired_token",
                70020,
                "The provided value for the input parameter 'device_code' "
                "is not valid. This device code has expired.",
            )
        if grant.status == "pending":
            raise OAuthError(
                400,
                "authorization_pending",
                70016,
                "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
            )
        if grant.status == "declined":
            raise OAuthError(
                400, "authorization_declined", 70000, "The user denied the authorization request."
            )
        if grant.status == "redeemed" or grant.user is None:
            raise OAuthError(
                400,
                "invalid_grant",
                70000,
                "The provided value for the 'device_code' is not valid: it was already used.",
            )
        grant.status = "redeemed"
        _, granted = self.delegated_scopes(app, " ".join(grant.scopes))
        return self._user_tokens(
            app, grant.user, grant.scopes, granted, form, base, confidential=confidential
        )

    # -- authorize and device authorization ---------------------------------------------------------------

    def issue_code(
        self,
        app: App,
        redirect_uri: str,
        scopes: tuple[str, ...],
        user: User,
        nonce: str | None,
        challenge: str | None,
        method: str,
    ) -> str:
        code = secrets.token_urlsafe(48)
        self.codes[code] = AuthCode(
            app.client_id,
            redirect_uri,
            scopes,
            user,
            nonce,
            challenge,
            method,
            time.time() + AUTH_CODE_LIFETIME,
        )
        return code

    def start_device_flow(self, form: dict[str, str]) -> DeviceGrant:
        app = self.app(form.get("client_id"))
        asked, _ = self.delegated_scopes(app, form.get("scope", ""))
        user_code = "".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(9))
        grant = DeviceGrant(
            secrets.token_urlsafe(48), user_code, app.client_id, asked, time.time() + DEVICE_CODE_LIFETIME
        )
        self.devices[grant.device_code] = grant
        return grant

    def decide_device(self, user_code: str, user: User | None, *, approve: bool) -> DeviceGrant | None:
        """Approve (as ``user``) or decline the pending device flow with ``user_code``; None if unknown."""
        wanted = user_code.strip().upper().replace("-", "")
        grant = next(
            (g for g in self.devices.values() if g.user_code == wanted and g.status == "pending"), None
        )
        if grant is None or grant.expires < time.time():
            return None
        grant.status = "approved" if approve else "declined"
        grant.user = user
        return grant
