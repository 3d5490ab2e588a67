"""Token caches sealed with Fernet: what a connection keeps between runs, unreadable without the key.

The sealed bytes are opaque to everyone else (the control store keeps them as a blob). Inside is a small JSON
envelope: MSAL's serialised cache, which kind of client app wrote it (a refresh token issued to a public
client must be redeemed without a client secret, and one issued to a confidential client with it), and the
account it signed in. The key comes from `MAILROOM_SECRET_KEY`: one Fernet key, or several separated by
commas to rotate (the first seals, any of them opens).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import msal
import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from pipelines.graph._errors import TokenCacheError

KEY_VARIABLE = "MAILROOM_SECRET_KEY"
_ENVELOPE_VERSION = 1

ClientKind = Literal["public", "confidential"]


def _fernet(key: str | bytes | None) -> MultiFernet:
    if key is None:
        key = os.environ.get(KEY_VARIABLE)
        if not key:
            raise TokenCacheError(
                f"{KEY_VARIABLE} is not set; token caches are encrypted with it. Create one with "
                "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`"
            )
    raw = key.decode() if isinstance(key, bytes) else key
    try:
        return MultiFernet([Fernet(part.strip()) for part in raw.split(",") if part.strip()])
    except ValueError:
        # The key's text must not reach the message: it is the secret.
        raise TokenCacheError(
            f"{KEY_VARIABLE} is not a valid Fernet key (32 url-safe base64-encoded bytes; several may be "
            "separated by commas)"
        ) from None


class EncryptedTokenCache:
    """An `msal.SerializableTokenCache` with its metadata, sealed and opened with a Fernet key.

    `msal` is the live cache to hand to MSAL; `sealed_if_changed()` returns new bytes only when MSAL (or a
    new sign-in) changed something, so a run that only read a cached token writes nothing back.
    """

    def __init__(self, *, key: str | bytes | None = None) -> None:
        self._fernet = _fernet(key)
        self.msal = msal.SerializableTokenCache()
        self._client: ClientKind | None = None
        self._account: str | None = None
        self._meta_changed = False

    def __repr__(self) -> str:
        return f"EncryptedTokenCache(client={self._client!r}, account={self._account!r})"

    @classmethod
    def open(cls, sealed: bytes | None, *, key: str | bytes | None = None) -> EncryptedTokenCache:
        """Open sealed bytes (None or empty: an empty cache); TokenCacheError if they cannot be opened."""
        cache = cls(key=key)
        if not sealed:
            return cache
        try:
            envelope = orjson.loads(cache._fernet.decrypt(sealed))
        except InvalidToken:
            raise TokenCacheError(
                f"the token cache cannot be decrypted with {KEY_VARIABLE}: the key differs from the one it "
                "was sealed with, or the bytes are damaged"
            ) from None
        except orjson.JSONDecodeError:
            raise TokenCacheError("the token cache decrypted but is not a Mailroom token cache") from None
        if not isinstance(envelope, dict) or envelope.get("v") != _ENVELOPE_VERSION:
            raise TokenCacheError(
                f"the token cache has an unknown format (expected version {_ENVELOPE_VERSION})"
            )
        cache.msal.deserialize(envelope.get("msal") or "{}")
        cache._client = envelope.get("client")
        cache._account = envelope.get("account")
        return cache

    @classmethod
    def read(cls, path: Path, *, key: str | bytes | None = None) -> EncryptedTokenCache:
        """Open the sealed cache in a file; a missing file gives an empty cache."""
        try:
            sealed = path.read_bytes()
        except FileNotFoundError:
            sealed = None
        return cls.open(sealed, key=key)

    @property
    def client(self) -> ClientKind | None:
        """Which kind of client app signed in: `public` (device code) or `confidential` (auth code)."""
        return self._client

    @property
    def account(self) -> str | None:
        """MSAL's `home_account_id` of the signed-in account, or None before a sign-in."""
        return self._account

    def remember(self, *, client: ClientKind, account: str) -> None:
        """Record who signed in and through which kind of app (called by the sign-in flows)."""
        if (client, account) != (self._client, self._account):
            self._client, self._account = client, account
            self._meta_changed = True

    @property
    def changed(self) -> bool:
        """Whether anything changed since the cache was opened or last sealed."""
        return self._meta_changed or self.msal.has_state_changed

    def seal(self) -> bytes:
        """The whole cache, encrypted."""
        envelope = {"v": _ENVELOPE_VERSION, "client": self._client, "account": self._account}
        envelope["msal"] = self.msal.serialize()  # resets has_state_changed
        self._meta_changed = False
        return self._fernet.encrypt(orjson.dumps(envelope))

    def sealed_if_changed(self) -> bytes | None:
        """The encrypted cache if it changed since it was opened or last sealed, else None."""
        return self.seal() if self.changed else None

    def write(self, path: Path) -> bool:
        """Seal into a file readable by its owner only (written beside it, then renamed). True if written."""
        sealed = self.sealed_if_changed()
        if sealed is None and path.exists():
            return False
        sealed = sealed if sealed is not None else self.seal()
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(sealed)
        partial.replace(path)
        return True
