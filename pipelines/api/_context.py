"""What every route shares: settings, the control store, read-only mail store access, Graph settings."""

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from pipelines.api._errors import Busy, NotFound, UpstreamError
from pipelines.api._links import LinkSigner
from pipelines.api._settings import ApiSettings
from pipelines.graph import GraphSettings
from pipelines.store import (
    CREATE_KEY,
    KEY_VARIABLE,
    ApiKey,
    ConflictError,
    ControlStore,
    Customer,
    FilePage,
    FileQuery,
    MailStore,
    SchemaError,
    SecretBox,
    SecretError,
    SharedReader,
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
            f"with it. {CREATE_KEY}"
        )
    try:
        SecretBox(key)  # checked at start: the first webhook, sign-in or file link would fail on it otherwise
    except SecretError as error:
        raise RuntimeError(str(error)) from None
    return key


def deleted_user(customer_id: str) -> str:
    """What a route says of a customer deleted through `/delete_users` whose data is still being removed."""
    return f"user {customer_id!r} was deleted; its data is being removed, after which the id names a new user"


@dataclass
class ApiContext:
    """The API's state, built once per app. `graph` is None until MAILROOM_GRAPH_CLIENT_ID is configured."""

    settings: ApiSettings
    stores: StoreSettings
    graph: GraphSettings | None
    control: ControlStore
    key: str
    links: LinkSigner
    reader: SharedReader
    _keys: dict[str, tuple[ApiKey, float]] = field(default_factory=dict)
    _customers: dict[tuple[int, str], tuple[Customer, float]] = field(default_factory=dict)
    _keys_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def build(cls, settings: ApiSettings, stores: StoreSettings, graph: GraphSettings | None) -> "ApiContext":
        key = secret_key(stores)
        control = ControlStore(stores.control_path, secret_key=key)
        reader = SharedReader(lock_timeout=settings.read_lock_timeout_s)
        return cls(settings, stores, graph, control, key, LinkSigner(key, settings.base_url), reader)

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

    def customer(self, organization_id: int, customer_id: str) -> Customer:
        """The caller named by `customer-id`, created on first sight (as in Carbon), remembered for
        `auth_cache_s`: it only identifies the caller; routes that show settings read them afresh.

        A customer deleted through `/delete_users` is NotFound until the delete run has purged it (its
        connections, token caches and mail go with it); after that, its id is new and names a fresh customer.
        """
        now = time.monotonic()
        with self._keys_lock:
            cached = self._customers.get((organization_id, customer_id))
        if cached is not None and cached[1] > now:
            return cached[0]
        found = self.control.customer(customer_id, organization_id=organization_id, include_deleted=True)
        if found is None:
            try:
                (found,) = self.control.update_customers([customer_id], organization_id=organization_id)
            except ConflictError:  # deleted between the two statements
                raise NotFound(deleted_user(customer_id)) from None
        if found.deleted_at is not None:
            raise NotFound(deleted_user(customer_id))
        if self.settings.auth_cache_s > 0:
            with self._keys_lock:
                if len(self._customers) > 10_000:
                    self._customers.clear()
                self._customers[(organization_id, customer_id)] = (found, now + self.settings.auth_cache_s)
        return found

    def forget_customers(self, organization_id: int, customer_ids: list[str]) -> None:
        """Drop remembered callers (deleted ones must not act for `auth_cache_s` more)."""
        with self._keys_lock:
            for customer_id in customer_ids:
                self._customers.pop((organization_id, customer_id), None)

    def graph_for(self, tenant: str | None) -> GraphSettings:
        """Graph settings for a sign-in or a connection, in `tenant` when one was named."""
        if self.graph is None or not self.graph.client_id:
            raise UpstreamError(
                "Outlook is not configured on this server: set MAILROOM_CLIENT_ID, MAILROOM_CLIENT_SECRET "
                "and MAILROOM_TENANT_ID (or their MAILROOM_GRAPH_* twins) for `mailroom api` and restart it"
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
        return self._guarded(lambda: read(store), empty)

    def list_files(self, customer_id: str, query: FileQuery) -> FilePage:
        """A page of the customer's files through the shared reader (the hot path of `/user_files_v2`)."""
        path = self.stores.mail_store_path(customer_id)
        return self._guarded(lambda: self.reader.list_files(path, query), FilePage(results=(), count=0))

    def _guarded(self, read: Callable[[], T], empty: T) -> T:
        try:
            return read()
        except StoreNotFound:
            return empty
        except StoreBusy:
            raise Busy("the customer's mail store is busy with a sync run; retry in a few seconds") from None
        except SchemaError:
            raise Busy("the customer's mail store is being upgraded by the next sync; retry later") from None
