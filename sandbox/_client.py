"""``AdminClient``: the admin API for tests, benches and demos, over httpx (sync).

    admin = AdminClient.for_sandbox(info)          # trusts info.ca_cert, ignores proxies and CA env vars
    admin.reset()
    ids = admin.add_message("adele@contoso.test", subject="Hello", folder="Inbox/Receipts/2024")
    admin.move_message("adele@contoso.test", ids["id"], "archive")
    token = admin.mint_token()                     # app-only, Mail.Read
    truth = admin.ground_truth("adele@contoso.test")

Errors from the API raise ``AdminError`` (status, code, message).
"""

from __future__ import annotations

import ssl
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from sandbox._errors import AdminError
from sandbox._faults import FaultRule, FaultSettings
from sandbox._options import Profile, SandboxInfo


def ssl_context(ca_cert: str | Path) -> ssl.SSLContext:
    """A TLS context that trusts the sandbox's CA (and only it)."""
    return ssl.create_default_context(cafile=str(ca_cert))


class AdminClient:
    """Typed calls to ``/_sandbox/...``. ``base_url`` is the sandbox's base URL (or its admin URL)."""

    def __init__(
        self,
        base_url: str,
        *,
        ca_cert: str | Path | None = None,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        root = base_url.rstrip("/").removesuffix("/_sandbox")
        verify: ssl.SSLContext | bool = ssl_context(ca_cert) if ca_cert else True
        self._http = httpx.Client(
            base_url=f"{root}/_sandbox", verify=verify, timeout=timeout, trust_env=False, transport=transport
        )

    @classmethod
    def for_sandbox(cls, info: SandboxInfo, **kwargs: Any) -> AdminClient:
        return cls(info.base_url, ca_cert=info.ca_cert, **kwargs)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def _call(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        response = self._http.request(
            method, path, json=json, params={k: v for k, v in (params or {}).items() if v is not None}
        )
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
                raise AdminError(response.status_code, error["code"], error["message"])
            except (ValueError, KeyError, TypeError):
                raise AdminError(response.status_code, "HttpError", response.text[:500]) from None
        return response.json()

    # -- whole sandbox ------------------------------------------------------------------------------------

    def health(self) -> bool:
        return bool(self._call("GET", "/health").get("ok"))

    def info(self) -> dict[str, Any]:
        return self._call("GET", "/info")

    def reset(
        self, *, seed: int | None = None, messages: int | None = None, profile: Profile | None = None
    ) -> dict[str, Any]:
        """Rebuild every mailbox from the seed and clear faults, log and delta state (tokens stay valid)."""
        return self._call("POST", "/reset", json={"seed": seed, "messages": messages, "profile": profile})

    # -- mailboxes ----------------------------------------------------------------------------------------

    def mailboxes(self) -> list[dict[str, Any]]:
        return self._call("GET", "/mailboxes")

    def folders(self, mailbox: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/mailboxes/{mailbox}/folders")

    def add_folder(self, mailbox: str, display_name: str, parent: str = "msgfolderroot") -> dict[str, Any]:
        return self._call(
            "POST", f"/mailboxes/{mailbox}/folders", json={"parent": parent, "displayName": display_name}
        )

    def ground_truth(self, mailbox: str, *, bodies: str | None = None) -> dict[str, Any]:
        """Folders and messages (Graph JSON, immutable ids, plus ``folderPath``); bodies 'html' or 'text'."""
        return self._call("GET", f"/mailboxes/{mailbox}/ground-truth", params={"bodies": bodies})

    def add_message(self, mailbox: str, **fields: Any) -> dict[str, str]:
        """Add a message; fields use Graph's names (subject, from, toRecipients, body, categories, ...).

        ``from``/recipients accept ``{"name", "address"}`` dicts or plain addresses; returns ``id``
        (immutable), ``mutable_id`` and ``folder_id``.
        """
        payload = dict(fields)
        if "sender" in payload:
            payload["from"] = payload.pop("sender")
        for key in ("from",):
            if isinstance(payload.get(key), str):
                payload[key] = {"address": payload[key]}
        for key in ("toRecipients", "ccRecipients", "bccRecipients"):
            if key in payload:
                payload[key] = [{"address": a} if isinstance(a, str) else a for a in payload[key]]
        if isinstance(payload.get("body"), str):
            payload["body"] = {"contentType": "html", "content": payload["body"]}
        return self._call("POST", f"/mailboxes/{mailbox}/messages", json=payload)

    def update_message(self, mailbox: str, message_id: str, **changes: Any) -> dict[str, str]:
        """Change isRead, categories, flag, importance or subject."""
        return self._call("PATCH", f"/mailboxes/{mailbox}/messages/{message_id}", json=changes)

    def move_message(self, mailbox: str, message_id: str, folder: str) -> dict[str, str]:
        return self._call("POST", f"/mailboxes/{mailbox}/messages/{message_id}/move", json={"folder": folder})

    def delete_message(self, mailbox: str, message_id: str) -> dict[str, str]:
        return self._call("DELETE", f"/mailboxes/{mailbox}/messages/{message_id}")

    # -- identity -----------------------------------------------------------------------------------------

    def mint_token(
        self,
        *,
        user: str | None = None,
        scopes: list[str] | None = None,
        roles: list[str] | None = None,
        lifetime: int | None = None,
        client_id: str | None = None,
    ) -> str:
        """An access token without MSAL: app-only (roles, default Mail.Read) or for ``user`` (scopes)."""
        body = {"user": user, "scopes": scopes, "roles": roles, "lifetime": lifetime, "client_id": client_id}
        return self._call("POST", "/tokens", json={k: v for k, v in body.items() if v is not None})[
            "access_token"
        ]

    def expire_tokens(
        self, *, token: str | None = None, user: str | None = None, app: str | None = None, all: bool = False
    ) -> None:
        """Make tokens issued so far fail with 'Lifetime validation failed, the token is expired.'"""
        self._call("POST", "/tokens/expire", json={"token": token, "user": user, "app": app, "all": all})

    def revoke_tokens(
        self, *, token: str | None = None, user: str | None = None, app: str | None = None, all: bool = False
    ) -> None:
        """Revoke access tokens (and, for a user, refresh tokens) issued so far."""
        self._call("POST", "/tokens/revoke", json={"token": token, "user": user, "app": app, "all": all})

    def set_signin(self, *, user: str | None = None, deny_next: bool = False) -> None:
        """Who /authorize signs in when no login_hint is given; ``deny_next`` makes the next consent fail."""
        self._call("POST", "/signin", json={"user": user, "deny_next": deny_next})

    def approve_device(self, user_code: str, user: str, *, deny: bool = False) -> str:
        return self._call(
            "POST", "/device/approve", json={"user_code": user_code, "user": user, "deny": deny}
        )["status"]

    # -- delta, faults, log -------------------------------------------------------------------------------

    def invalidate_delta(self, *, mailbox: str | None = None, folder: str | None = None) -> None:
        """Make existing delta and next links answer 410 SyncStateNotFound."""
        self._call("POST", "/delta/invalidate", json={"mailbox": mailbox, "folder": folder})

    def faults(self) -> FaultSettings:
        return FaultSettings.model_validate(self._call("GET", "/faults"))

    def set_faults(self, settings: FaultSettings | None = None, **fields: Any) -> FaultSettings:
        """Replace the fault settings (pass a FaultSettings, or fields to change on the current ones)."""
        chosen = settings or self.faults().model_copy(update=fields)
        return FaultSettings.model_validate(self._call("PUT", "/faults", json=chosen.model_dump(mode="json")))

    def set_profile(self, profile: Profile) -> FaultSettings:
        return FaultSettings.model_validate(self._call("POST", "/faults/profile", json={"profile": profile}))

    def add_rule(self, **rule: Any) -> FaultSettings:
        """Add a custom rule (see FaultRule: path regex, nth, times, action, status, retry_after, ...)."""
        current = self.faults()
        return self.set_faults(current.model_copy(update={"rules": [*current.rules, FaultRule(**rule)]}))

    def held(self, mailbox: str | None = None) -> int:
        """How many requests ``hold`` rules keep waiting at the server (to ``mailbox``, or in all)."""
        if mailbox is not None:
            return int(self.counters(mailbox)["held"])
        return int(self._call("GET", "/faults/held")["held"])

    def wait_held(self, count: int, *, mailbox: str | None = None, timeout: float = 30.0) -> None:
        """Wait until at least ``count`` requests are held, or raise ``TimeoutError`` saying how many are."""
        deadline = time.monotonic() + timeout
        while (held := self.held(mailbox)) < count:
            if time.monotonic() > deadline:
                where = f" for {mailbox}" if mailbox else ""
                raise TimeoutError(f"{held} of {count} requests held{where} after {timeout:g} s")
            time.sleep(0.01)

    def release(self) -> int:
        """Let every request that a ``hold`` rule keeps waiting go on; returns how many there were."""
        return int(self._call("POST", "/faults/release")["released"])

    def log(self, *, mailbox: str | None = None, since: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        return self._call("GET", "/log", params={"mailbox": mailbox, "since": since, "limit": limit})

    def clear_log(self) -> None:
        """Forget the request log, the counters and the throttling memory."""
        self._call("DELETE", "/log")

    def counters(self, mailbox: str | None = None) -> dict[str, Any]:
        """Per mailbox: in_flight, max_in_flight, held, requests, throttled, violations, faults, by_route."""
        data = self._call("GET", "/counters")
        if mailbox is None:
            return data
        return data.get(
            mailbox.lower(),
            {
                "in_flight": 0,
                "max_in_flight": 0,
                "held": 0,
                "requests": 0,
                "throttled": 0,
                "violations": 0,
                "faults": 0,
                "by_route": {},
            },
        )
