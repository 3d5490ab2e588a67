"""What every route shares: settings, the control store, read-only mail store access, Graph settings."""

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from pipelines.api._errors import Busy, UpstreamError
from pipelines.api._links import LinkSigner
from pipelines.api._settings import ApiSettings
from pipelines.graph import GraphSettings
from pipelines.store import (
    KEY_VARIABLE,
    ApiKey,
    ControlStore,
    MailStore,
    SchemaError,
    StoreBusy,
    StoreNotFound,
    StoreSettings,
)

T = TypeVar("T")


def secret_key(stores: StoreSettings) -> str:
    """MAILROOM_SECRET_KEY: the API cannot run without it (webhook keys, OAuth flows, token caches, links)."""
    key = (
        stores.secret_key.get_secret_value()
        if stores.secret_key is not None
        else os.environ.get(KEY_VARIABLE)
    )
    if not key:
        raise RuntimeError(
            f"{KEY_VARIABLE} is not set; the API encrypts webhook signing keys, OAuth flows and token caches "
            "with it. Create one with `python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'`"
        )
    return key


@dataclass
class ApiContext:
    """The API's state, built once per app. `graph` is None until MAILROOM_GRAPH_CLIENT_ID is configured."""

    settings: ApiSettings
    stores: StoreSettings
    graph: GraphSettings | None
    control: ControlStore
    key: str
    links: LinkSigner
    _keys: dict[str, tuple[ApiKey, float]] = field(default_factory=dict)
    _keys_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def build(cls, settings: ApiSettings, stores: StoreSettings, graph: GraphSettings | None) -> "ApiContext":
        key = secret_key(stores)
        control = ControlStore(stores.control_path, secret_key=key)
        return cls(settings, stores, graph, control, key, LinkSigner(key, settings.base_url))

    def api_key(self, plain: str) -> ApiKey | None:
        """The live key for `plain`, remembered for `auth_cache_s` so hot routes skip a database read."""
        now = time.monotonic()
        with self._keys_lock:
            cached = self._keys.get(plain)
        if cached is not None and cached[1] > now:
            return cached[0]
        found = self.control.authenticate_api_key(plain)
        if found is not None and self.settings.auth_cache_s > 0:
            with self._keys_lock:
                if len(self._keys) > 1000:  # keys are few; anything else is someone guessing
                    self._keys.clear()
                self._keys[plain] = (found, now + self.settings.auth_cache_s)
        return found

    def graph_for(self, tenant: str | None) -> GraphSettings:
        """Graph settings for a sign-in or a connection, in `tenant` when one was named."""
        if self.graph is None or not self.graph.client_id:
            raise UpstreamError(
                "Outlook is not configured on this server: set MAILROOM_GRAPH_CLIENT_ID, "
                "MAILROOM_GRAPH_CLIENT_SECRET and MAILROOM_GRAPH_TENANT"
            )
        return self.graph.model_copy(update={"tenant": tenant}) if tenant else self.graph

    def read_mail(self, customer_id: str, read: Callable[[MailStore], T], empty: T) -> T:
        """Run `read` on a short read-only connection to the customer's mail store.

        A customer never synced has no store: `empty`. The store's own gate and retries wait for a sync run
        that holds the file, up to `read_lock_timeout_s`.
        """
        store = MailStore(
            self.stores.mail_store_path(customer_id),
            read_only=True,
            lock_timeout=self.settings.read_lock_timeout_s,
        )
        try:
            return read(store)
        except StoreNotFound:
            return empty
        except StoreBusy:
            raise Busy("the customer's mail store is busy with a sync run; retry in a few seconds") from None
        except SchemaError:
            raise Busy("the customer's mail store is being upgraded by the next sync; retry later") from None
