"""Token providers: how the client gets a bearer token, from MSAL's flows or a fixed string.

    TokenProvider               the interface the client calls: `await provider.token(rejected=...)`
    ├── StaticTokenProvider     a fixed token (tests, tokens minted elsewhere)
    ├── ClientCredentialsProvider  app-only: any mailbox of the tenant through /users/{id or UPN}
    └── DelegatedTokenProvider  one person's mailbox (/me), silently refreshed from an EncryptedTokenCache

and the sign-ins that fill such a cache: `AuthCodeSignIn` (the web flow with PKCE that the HTTP API drives)
and `DeviceCodeSignIn` (a person at a terminal, `mailroom connect`).

MSAL is synchronous (it speaks `requests`), so providers call it in a worker thread and keep the access
token in memory until shortly before it expires; only a rejected token forces a refresh. MSAL gets its own
`requests.Session` so that a configured CA bundle is honoured even where `REQUESTS_CA_BUNDLE` is set
(reference/graph.md §0.12), and skips instance discovery for hosts that are not Microsoft's (§0.11).
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable
from urllib.parse import urlsplit

import msal
import requests
from pydantic import SecretStr

from pipelines.graph._cache import EncryptedTokenCache
from pipelines.graph._errors import AuthError, TransientError
from pipelines.graph._settings import GraphSettings

APP_ONLY_SCOPES = ("https://graph.microsoft.com/.default",)

# Refresh this long before expiry, so a token never expires between being handed out and being used.
_EXPIRY_MARGIN_S = 300.0


@runtime_checkable
class TokenProvider(Protocol):
    """What the Graph client needs from authentication: a name for errors, and a bearer token.

    `token(rejected=t)` means Graph refused `t`: return a different, fresh token or raise AuthError.
    """

    @property
    def name(self) -> str: ...

    async def token(self, *, rejected: str | None = None) -> str: ...


class StaticTokenProvider:
    """A fixed bearer token. It cannot be refreshed: once Graph refuses it, AuthError."""

    def __init__(self, token: str | SecretStr, *, name: str = "static token") -> None:
        self._token = token if isinstance(token, SecretStr) else SecretStr(token)
        self._name = name

    def __repr__(self) -> str:
        return f"StaticTokenProvider(name={self._name!r})"

    @property
    def name(self) -> str:
        return self._name

    async def token(self, *, rejected: str | None = None) -> str:
        value = self._token.get_secret_value()
        if rejected == value:
            raise AuthError(f"{self._name}: Graph refused the token and a static token cannot be refreshed")
        return value


def _http_client(settings: GraphSettings) -> requests.Session:
    session = requests.Session()
    if settings.ca_bundle is not None:
        # With trust_env on, REQUESTS_CA_BUNDLE silently overrides `verify` (reference/graph.md §0.12).
        session.trust_env = False
        session.verify = str(settings.ca_bundle)
    return session


def _app(settings: GraphSettings, cache: msal.TokenCache | None, *, public: bool) -> msal.ClientApplication:
    if not settings.client_id:
        raise AuthError("no client id configured (set MAILROOM_GRAPH_CLIENT_ID or GraphSettings.client_id)")
    host = urlsplit(settings.authority).hostname or ""
    options: dict[str, Any] = {
        "authority": settings.authority,
        "token_cache": cache,
        "http_client": _http_client(settings),
        "timeout": (settings.connect_timeout_s, settings.read_timeout_s),
        # Instance discovery asks login.microsoftonline.com about the host: pointless (and offline, fatal)
        # for anything but Microsoft's own clouds.
        "instance_discovery": host in msal.authority.WELL_KNOWN_AUTHORITY_HOSTS,
    }
    try:
        if public:
            return msal.PublicClientApplication(settings.client_id, **options)
        if settings.client_secret is None:
            raise AuthError("no client secret configured (set MAILROOM_GRAPH_CLIENT_SECRET)")
        return msal.ConfidentialClientApplication(
            settings.client_id, client_credential=settings.client_secret.get_secret_value(), **options
        )
    except requests.RequestException as exc:
        raise TransientError(f"cannot reach the sign-in authority {settings.authority}: {exc}") from None
    except ValueError as exc:
        raise AuthError(f"the sign-in authority {settings.authority} is not usable: {exc}") from None


def _check(result: Mapping[str, Any] | None, who: str) -> Mapping[str, Any]:
    if not result:
        raise AuthError(f"{who}: no usable token in the cache; the connection must sign in again")
    if "access_token" not in result:
        # error_description is Microsoft's AADSTS text: it names the problem, never a secret.
        error = result.get("error", "unknown_error")
        description = (result.get("error_description") or "").strip().split("\n", 1)[0]
        detail = f": {description}" if description else ""
        raise AuthError(f"{who}: sign-in failed: {error}{detail}", code=error)
    return result


class _MsalProvider:
    """Shared machinery: one MSAL app built lazily, a lock, and the current token kept until near expiry."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._fresh_until = 0.0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self._name!r})"

    @property
    def name(self) -> str:
        return self._name

    async def token(self, *, rejected: str | None = None) -> str:
        async with self._lock:
            current = self._token
            if current is not None and current != rejected and time.monotonic() < self._fresh_until:
                return current
            force = rejected is not None and rejected == current
            try:
                result = await asyncio.to_thread(self._acquire, force)
            except requests.RequestException as exc:
                raise TransientError(f"{self._name}: cannot reach the sign-in authority: {exc}") from None
            result = _check(result, self._name)
            lifetime = float(result.get("expires_in") or 0)
            self._token = result["access_token"]
            self._fresh_until = time.monotonic() + max(0.0, lifetime - min(_EXPIRY_MARGIN_S, lifetime / 10))
            return self._token

    def _acquire(self, force: bool) -> Mapping[str, Any] | None:
        raise NotImplementedError


class ClientCredentialsProvider(_MsalProvider):
    """App-only access (client credentials): any mailbox of the tenant, always through /users/{id or UPN}."""

    def __init__(self, settings: GraphSettings, *, name: str | None = None) -> None:
        super().__init__(name or f"app {settings.client_id} in tenant {settings.tenant}")
        self._settings = settings
        self._app: msal.ConfidentialClientApplication | None = None

    def _acquire(self, force: bool) -> Mapping[str, Any] | None:
        if self._app is None:
            self._app = _app(self._settings, msal.TokenCache(), public=False)
        if force:
            # MSAL would hand back the cached token Graph just refused.
            self._app.remove_tokens_for_client()
        return self._app.acquire_token_for_client(scopes=list(APP_ONLY_SCOPES))


class DelegatedTokenProvider(_MsalProvider):
    """One signed-in person's mailbox (/me), refreshed silently from the cache a sign-in filled.

    After use, `cache.sealed_if_changed()` gives the bytes to store back (a refresh rotates tokens).
    """

    def __init__(
        self,
        settings: GraphSettings,
        cache: EncryptedTokenCache,
        *,
        name: str | None = None,
        scopes: tuple[str, ...] | None = None,
    ) -> None:
        if cache.account is None or cache.client is None:
            raise AuthError(f"{name or 'connection'}: the token cache holds no sign-in; connect first")
        super().__init__(name or f"connection {cache.account}")
        self._settings = settings
        self._cache = cache
        self._scopes = list(scopes or settings.scopes)
        self._app: msal.ClientApplication | None = None

    def _acquire(self, force: bool) -> Mapping[str, Any] | None:
        if self._app is None:
            self._app = _app(self._settings, self._cache.msal, public=self._cache.client == "public")
        accounts = [a for a in self._app.get_accounts() if a.get("home_account_id") == self._cache.account]
        if not accounts:
            return None
        return self._app.acquire_token_silent_with_error(self._scopes, accounts[0], force_refresh=force)


@dataclass(frozen=True)
class SignedIn:
    """A completed sign-in: who it was, and the cache (now holding their tokens) to seal and keep."""

    username: str | None
    home_account_id: str
    cache: EncryptedTokenCache


def _signed_in(result: Mapping[str, Any], cache: EncryptedTokenCache, *, public: bool, who: str) -> SignedIn:
    result = _check(result, who)
    claims = result.get("id_token_claims") or {}
    app_accounts = list(cache.msal.search(msal.TokenCache.CredentialType.ACCOUNT))
    username = claims.get("preferred_username") or claims.get("upn")
    matching = [a for a in app_accounts if not username or a.get("username") == username] or app_accounts
    if not matching:
        raise AuthError(
            f"{who}: the sign-in returned no account (no client_info or id_token), so it cannot refresh"
        )
    account = matching[0]["home_account_id"]
    cache.remember(client="public" if public else "confidential", account=account)
    return SignedIn(username=username or matching[0].get("username"), home_account_id=account, cache=cache)


class AuthCodeSignIn:
    """The web sign-in (authorization code with PKCE, state and nonce), driven by the HTTP API's connect step.

    `start()` returns the flow: send the browser to `flow["auth_uri"]` and keep the flow on the server (it
    holds the PKCE verifier, so store it as a secret). `finish(flow, query)` redeems the callback's query
    parameters. Both block on the network: call them from a worker thread in async code.
    """

    def __init__(
        self, settings: GraphSettings, cache: EncryptedTokenCache, *, scopes: tuple[str, ...] | None = None
    ) -> None:
        self._settings = settings
        self._cache = cache
        self._scopes = list(scopes or settings.scopes)
        self._public = settings.client_secret is None
        self._app: msal.ClientApplication | None = None

    def _application(self) -> msal.ClientApplication:
        if self._app is None:
            self._app = _app(self._settings, self._cache.msal, public=self._public)
        return self._app

    def start(
        self,
        redirect_uri: str,
        *,
        state: str | None = None,
        login_hint: str | None = None,
        response_mode: Literal["query", "form_post"] = "query",
    ) -> dict:
        """Begin a sign-in; the returned dict's `auth_uri` is where the browser goes.

        The code comes back in the redirect's query by default (a GET callback, as Carbon's connect step
        has); `form_post` has the browser POST it instead.
        """
        application = self._application()
        with warnings.catch_warnings():
            # MSAL warns on every flow that is not form_post; the choice is the caller's, made above.
            warnings.filterwarnings("ignore", message="response_mode='form_post' is recommended")
            return application.initiate_auth_code_flow(
                self._scopes,
                redirect_uri=redirect_uri,
                state=state,
                login_hint=login_hint,
                response_mode=response_mode,
            )

    def finish(self, flow: Mapping[str, Any], query: Mapping[str, str]) -> SignedIn:
        """Redeem the redirect's query (`code`, `state`, or `error`) for tokens, checked against the flow."""
        try:
            result = self._application().acquire_token_by_auth_code_flow(dict(flow), dict(query))
        except ValueError as exc:
            # MSAL raises ValueError on a state mismatch or a flow that was already used.
            raise AuthError(f"the sign-in callback does not match its flow: {exc}") from None
        return _signed_in(result, self._cache, public=self._public, who="sign-in")


@dataclass(frozen=True)
class DeviceCode:
    """What to show a person: `message` says where to go and which code to type."""

    user_code: str
    verification_uri: str
    message: str
    expires_in: int
    flow: dict


class DeviceCodeSignIn:
    """Sign-in for a person at a terminal (`mailroom connect`): show a code, wait until they enter it."""

    def __init__(
        self, settings: GraphSettings, cache: EncryptedTokenCache, *, scopes: tuple[str, ...] | None = None
    ) -> None:
        self._settings = settings
        self._cache = cache
        self._scopes = list(scopes or settings.scopes)
        self._app: msal.PublicClientApplication | None = None

    def _application(self) -> msal.PublicClientApplication:
        if self._app is None:
            self._app = _app(self._settings, self._cache.msal, public=True)
        return self._app

    def start(self) -> DeviceCode:
        """Ask the authority for a device code."""
        flow = self._application().initiate_device_flow(scopes=self._scopes)
        if "user_code" not in flow:
            _check(flow, "device sign-in")
        return DeviceCode(
            user_code=flow["user_code"],
            verification_uri=flow.get("verification_uri") or flow.get("verification_url", ""),
            message=flow.get("message")
            or f"Go to {flow.get('verification_uri')} and enter {flow['user_code']}",
            expires_in=int(flow.get("expires_in") or 0),
            flow=flow,
        )

    def finish(self, code: DeviceCode) -> SignedIn:
        """Poll until the person has signed in, the code expired, or they declined (blocks)."""
        result = self._application().acquire_token_by_device_flow(dict(code.flow))
        return _signed_in(result, self._cache, public=True, who="device sign-in")
