"""A delegated connection: a person signed in (device code, real MSAL), synced through /me, its sealed token
cache written back to the control store only when MSAL refreshed it."""

from __future__ import annotations

import pytest

from pipelines.graph import DeviceCodeSignIn, EncryptedTokenCache
from pipelines.settings import Settings
from pipelines.sync import ConnectionRefused, sync_customer
from sandbox import AdminClient
from tests.sync.conftest import CUSTOMER
from tests.sync.truth import differences, expected_messages, stored_emails

MEGAN = "megan@contoso.test"  # her mailbox is German: the Inbox is "Posteingang"


def test_a_delegated_connection_syncs_through_me_and_keeps_its_cache_fresh(
    settings: Settings, fresh_sandbox, sandbox_admin: AdminClient
) -> None:
    key = settings.secret_key.get_secret_value()
    cache = EncryptedTokenCache(key=key)
    signin = DeviceCodeSignIn(settings.graph, cache)
    code = signin.start()
    assert sandbox_admin.approve_device(code.user_code, MEGAN)
    signed_in = signin.finish(code)
    control = settings.control_store()
    [customer] = control.update_customers([CUSTOMER])
    connection = control.save_connection(
        customer.id, signed_in.username, auth_kind="delegated", token_cache=cache.seal()
    )
    sealed = control.token_cache(connection.id)

    result = sync_customer(CUSTOMER, settings=settings)
    assert result.mailbox == MEGAN
    assert result.folders[0].path == "Posteingang"
    truth = sandbox_admin.ground_truth(MEGAN)
    inbox = [f["id"] for f in truth["folders"] if f.get("wellKnownName") == "inbox"]
    expected = expected_messages(truth, inbox)
    assert differences(stored_emails(settings.mail_store_path(CUSTOMER)), expected) == []
    assert control.token_cache(connection.id) == sealed  # the cached token served: nothing to write back
    assert [e for e in sandbox_admin.log(mailbox=MEGAN) if e["path"].startswith("/users/")] == []

    # Expired tokens make MSAL refresh: the rotated tokens are sealed back into the control store.
    sandbox_admin.expire_tokens(user=MEGAN)
    sync_customer(CUSTOMER, settings=settings)
    refreshed = control.token_cache(connection.id)
    assert refreshed != sealed
    assert EncryptedTokenCache.open(refreshed, key=key).account == cache.account

    # A revoked sign-in is the connection's problem, said as such (and never with a token in it).
    sandbox_admin.revoke_tokens(user=MEGAN)
    sandbox_admin.expire_tokens(user=MEGAN)
    with pytest.raises(ConnectionRefused, match="connected again") as caught:
        sync_customer(CUSTOMER, settings=settings)
    assert "invalid_grant" in str(caught.value)
    assert control.connection(connection.id).sync_status == "SYNC_ERROR"
