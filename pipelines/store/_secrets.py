"""Secrets at rest: Fernet with MAILROOM_SECRET_KEY for what must come back, hashes for the rest."""

import hashlib
import os
import secrets

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from pipelines.store._errors import SecretError

KEY_VARIABLE = "MAILROOM_SECRET_KEY"


def hash_secret(value: str) -> str:
    """SHA-256 of a high-entropy token (API keys, access tokens, OAuth states): enough to look it up by.

    Unsalted on purpose: the tokens are random 256-bit values, so there is nothing to brute-force, and an
    unsalted hash can be found with an index.
    """
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def new_token(prefix: str = "") -> str:
    """A fresh random token (256 bits, URL-safe)."""
    return prefix + secrets.token_urlsafe(32)


def new_signing_key() -> str:
    """A webhook signing key in Carbon's shape: 32 hex characters (128 random bits)."""
    return secrets.token_hex(16)


CREATE_KEY = (
    "Create one with `python -c 'from cryptography.fernet import Fernet; "
    "print(Fernet.generate_key().decode())'`"
)


def _fernet(part: str, index: int, count: int) -> Fernet:
    try:
        return Fernet(part)
    except ValueError:
        # Never echo the key: it is the secret.
        which = f"key {index + 1} of {count} in " if count > 1 else ""
        raise SecretError(
            f"{which}{KEY_VARIABLE} is not a valid Fernet key (32 url-safe base64-encoded bytes, "
            f"44 characters; several keys are separated by commas to rotate). {CREATE_KEY}"
        ) from None


class SecretBox:
    """Encrypts and decrypts small secrets. The key is one Fernet key, or several separated by commas to
    rotate (the first encrypts, any of them decrypts), the same format `pipelines.graph` uses.
    """

    def __init__(self, key: str | bytes | None = None) -> None:
        if key is None:
            key = os.environ.get(KEY_VARIABLE, "")
        raw = key.decode() if isinstance(key, bytes) else key
        parts = [part.strip() for part in raw.split(",") if part.strip()]
        if not parts:
            raise SecretError(
                f"{KEY_VARIABLE} is not set; webhook signing keys and OAuth flows are encrypted with it. "
                f"{CREATE_KEY}"
            )
        self._fernet = MultiFernet([_fernet(part, index, len(parts)) for index, part in enumerate(parts)])

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"

    def encrypt(self, plain: bytes) -> bytes:
        return self._fernet.encrypt(plain)

    def decrypt(self, sealed: bytes) -> bytes:
        try:
            return self._fernet.decrypt(sealed)
        except InvalidToken:
            raise SecretError(
                f"a stored secret cannot be decrypted with {KEY_VARIABLE}: the key differs from the one "
                "it was encrypted with, or the bytes are damaged"
            ) from None
