"""Sealed token caches: opaque without the key, written back only when they changed, never shown."""

from __future__ import annotations

import json
import stat

import msal
import pytest
from cryptography.fernet import Fernet

from pipelines.graph import KEY_VARIABLE, EncryptedTokenCache, TokenCacheError

TOKEN_RESPONSE = {
    "access_token": "at-secret-123",
    "refresh_token": "rt-secret-456",
    "token_type": "Bearer",
    "expires_in": 3600,
    "scope": "Mail.Read User.Read",
    "client_info": "eyJ1aWQiOiAidTEiLCAidXRpZCI6ICJ0MSJ9",
}


def filled(key: bytes) -> EncryptedTokenCache:
    cache = EncryptedTokenCache(key=key)
    cache.msal.add(
        {
            "client_id": "client",
            "scope": ["Mail.Read", "User.Read"],
            "token_endpoint": "https://login.test/contoso/oauth2/v2.0/token",
            "response": dict(TOKEN_RESPONSE),
        }
    )
    cache.remember(client="confidential", account="u1.t1")
    return cache


def test_sealed_bytes_hold_no_token_and_open_again_with_the_key() -> None:
    key = Fernet.generate_key()
    sealed = filled(key).seal()
    for secret in (b"at-secret-123", b"rt-secret-456", b"RefreshToken"):
        assert secret not in sealed
    opened = EncryptedTokenCache.open(sealed, key=key)
    assert opened.account == "u1.t1"
    assert opened.client == "confidential"
    refresh = list(opened.msal.search(msal.TokenCache.CredentialType.REFRESH_TOKEN))
    assert [r["secret"] for r in refresh] == ["rt-secret-456"]
    assert not opened.changed
    assert opened.sealed_if_changed() is None


def test_a_cache_on_disk_is_unreadable_without_its_key(tmp_path) -> None:
    key = Fernet.generate_key()
    path = tmp_path / "connections" / "adele.cache"
    assert filled(key).write(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    raw = path.read_bytes()
    assert b"rt-secret-456" not in raw
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw)
    with pytest.raises(TokenCacheError, match="cannot be decrypted") as caught:
        EncryptedTokenCache.read(path, key=Fernet.generate_key())
    assert key.decode() not in str(caught.value)
    assert EncryptedTokenCache.read(path, key=key).account == "u1.t1"


def test_only_changes_are_written_back(tmp_path) -> None:
    key = Fernet.generate_key()
    path = tmp_path / "c.cache"
    filled(key).write(path)
    before = path.stat().st_mtime_ns
    reopened = EncryptedTokenCache.read(path, key=key)
    assert reopened.write(path) is False
    assert path.stat().st_mtime_ns == before
    reopened.remember(client="confidential", account="u2.t1")
    assert reopened.sealed_if_changed() is not None
    assert reopened.sealed_if_changed() is None


def test_the_key_comes_from_the_environment_and_rotates(monkeypatch) -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    monkeypatch.setenv(KEY_VARIABLE, old.decode())
    sealed = filled(old).seal()
    monkeypatch.setenv(KEY_VARIABLE, f"{new.decode()},{old.decode()}")
    opened = EncryptedTokenCache.open(sealed)
    assert opened.account == "u1.t1"
    resealed = opened.seal()
    assert EncryptedTokenCache.open(resealed, key=new).account == "u1.t1"


def test_a_missing_or_malformed_key_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.delenv(KEY_VARIABLE, raising=False)
    with pytest.raises(TokenCacheError, match=f"{KEY_VARIABLE} is not set"):
        EncryptedTokenCache.open(b"whatever")
    monkeypatch.setenv(KEY_VARIABLE, "not-a-key-but-secret-text")
    with pytest.raises(TokenCacheError, match="not a valid Fernet key") as caught:
        EncryptedTokenCache.open(None)
    assert "not-a-key-but-secret-text" not in str(caught.value)


def test_damaged_or_foreign_bytes_are_refused_by_meaning() -> None:
    key = Fernet.generate_key()
    with pytest.raises(TokenCacheError, match="cannot be decrypted"):
        EncryptedTokenCache.open(b"garbage", key=key)
    with pytest.raises(TokenCacheError, match="not a Mailroom token cache"):
        EncryptedTokenCache.open(Fernet(key).encrypt(b"\xff not json"), key=key)
    with pytest.raises(TokenCacheError, match="unknown format"):
        EncryptedTokenCache.open(Fernet(key).encrypt(b'{"v": 99}'), key=key)


def test_the_cache_never_shows_its_tokens() -> None:
    cache = filled(Fernet.generate_key())
    assert "secret" not in repr(cache)
    assert "secret" not in str(cache)
