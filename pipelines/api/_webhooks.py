"""Webhooks: the routes that manage them, Carbon's signature, and the deliverer that empties the outbox.

Events reach the outbox (`webhook_deliveries` in the control store) from the API (ADD, CANCEL, REVOKE)
and from runs (FILES_CREATED, FILE_READY, FILE_ERROR, DATA_SOURCE_READY, FILE_DELETED, ...), through
`pipelines.store.enqueue_webhook_events`. The deliverer is a thread in the API process: it is the one
long-running process every deployment has, it sends within a second of an event rather than at a sensor's
next tick, and the outbox's leases let several API replicas share the work without sending twice.

Each attempt re-stamps the payload's `timestamp` (it must equal the signature's `t`, and receivers may
refuse old ones), signs the exact body bytes, and is logged: delivered on any 2xx, otherwise retried after
each of `webhook_retry_delays_s` (3 retries, as Carbon), then failed.

Webhooks are sent to concurrently (`webhook_concurrency` at once), each one's deliveries in order, one at a
time, a batch per claim: a receiver that hangs holds up only its own events. Only public addresses are
reached (`pipelines.api._addresses`). The same thread prunes the control store every `prune_every_s`.
"""

import hashlib
import hmac
import ipaddress
import json
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
from fastapi import APIRouter, Path

from pipelines.api._addresses import ALLOW_SETTING, PublicOnlyTransport, literal_host_problem
from pipelines.api._auth import Context, Org
from pipelines.api._errors import Conflict, InvalidInput, NotFound
from pipelines.api._models import (
    MAX_ID,
    AddWebhookProps,
    GenericSuccessResponse,
    WebhookQueryInput,
    WebhookQueryResponse,
    WebhookWithKey,
)
from pipelines.store import MAX_WEBHOOKS, ConflictError, ControlStore, Delivery, Webhook

router = APIRouter(tags=["Webhooks"])
log = logging.getLogger("mailroom.api.webhooks")


# -- the signature --------------------------------------------------------------------------------------


def signed_body(payload: str, signing_key: str, timestamp: int) -> tuple[bytes, dict[str, str]]:
    """The body Carbon sends for `payload` and its two signature headers, for the moment `timestamp`.

    `Carbon-Signature` signs `f"{t}.{body}"` with the body as sent (Python's default JSON separators);
    `Carbon-Signature-Compact` signs the same over the compact re-serialisation. The HMAC key is the
    signing key's bytes (`bytes.fromhex`), as in Carbon's official verifier.
    """
    document = json.loads(payload)
    document["timestamp"] = str(timestamp)
    envelope = {"payload": json.dumps(document)}
    body = json.dumps(envelope)
    compact = json.dumps(envelope, separators=(",", ":"))
    key = bytes.fromhex(signing_key)
    v1 = hmac.new(key, f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    v2 = hmac.new(key, f"{timestamp}.{compact}".encode(), hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "Carbon-Signature": f"t={timestamp},v1={v1}",
        "Carbon-Signature-Compact": f"t={timestamp},v2={v2}",
    }
    return body.encode(), headers


def verify_signature(body: bytes, header: str, signing_key: str, *, tolerance_s: float | None = 300) -> bool:
    """Check a `Carbon-Signature` header against the body received (what a receiver does)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    if "t" not in fields or "v1" not in fields or not fields["t"].isdigit():
        return False
    if tolerance_s is not None and abs(time.time() - int(fields["t"])) > tolerance_s:
        return False
    message = f"{fields['t']}.".encode() + body
    expected = hmac.new(bytes.fromhex(signing_key), message, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"])


# -- routes ---------------------------------------------------------------------------------------------


def check_webhook_url(url: str, *, allow_private: bool = False) -> str:
    """An absolute http(s) URL with a host and no credentials, query-string allowed, fragment not; its host
    may not be a loopback, private or link-local address unless `allow_private`."""
    loc = ("body", "url")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as error:
        raise InvalidInput(f"the webhook URL is malformed: {error}", loc=loc) from None
    if parts.scheme not in ("http", "https"):
        raise InvalidInput("the webhook URL must start with http:// or https://", loc=loc)
    if not parts.hostname:
        raise InvalidInput("the webhook URL has no host", loc=loc)
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(
            "the webhook URL must not carry credentials (user:password@); verify the signature instead",
            loc=loc,
        )
    if parts.fragment:
        raise InvalidInput("the webhook URL must not have a #fragment", loc=loc)
    if port == 0:
        raise InvalidInput("the webhook URL's port must be between 1 and 65535", loc=loc)
    host = parts.hostname
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and (address.is_unspecified or address.is_multicast):
        raise InvalidInput(f"the webhook URL's host {host} cannot receive requests", loc=loc)
    if not allow_private and (problem := literal_host_problem(host)) is not None:
        raise InvalidInput(
            f"{problem}; webhooks go to public addresses only ({ALLOW_SETTING} allows it)", loc=loc
        )
    return url.strip()


def _no_key(hook: Webhook) -> dict[str, Any]:
    return {
        "id": hook.id,
        "organization_id": hook.organization_id,
        "url": hook.url,
        "status": hook.status,
        "status_reason": hook.status_reason,
        "created_at": hook.created_at,
        "updated_at": hook.updated_at,
    }


@router.post("/add_webhook", response_model=WebhookWithKey)
def add_webhook(body: AddWebhookProps, ctx: Context, org: Org) -> dict[str, Any]:
    """Register a URL for every event (at most 3 per organization); the signing key is shown this once."""
    url = check_webhook_url(body.url, allow_private=ctx.settings.allow_private_webhooks)
    try:
        hook, signing_key = ctx.control.add_webhook(url, organization_id=org.organization_id)
    except ConflictError:
        raise Conflict(
            f"an organization may have at most {MAX_WEBHOOKS} webhooks; delete one before adding another"
        ) from None
    return _no_key(hook) | {"signing_key": signing_key}


@router.post("/webhooks", response_model=WebhookQueryResponse)
def list_webhooks(ctx: Context, org: Org, body: WebhookQueryInput | None = None) -> dict[str, Any]:
    """The organization's webhooks, without their keys."""
    body = body or WebhookQueryInput()
    ids = body.filters.ids
    hooks = [
        h
        for h in ctx.control.webhooks(organization_id=org.organization_id)
        if (not ids or h.id in ids) and h.id >= body.pagination.starting_id
    ]
    hooks.sort(key=lambda h: (getattr(h, body.order_by), h.id), reverse=body.order_dir == "desc")
    page = hooks[body.pagination.offset : body.pagination.offset + body.pagination.limit]
    return {"results": [_no_key(h) for h in page], "count": len(hooks)}


@router.delete("/delete_webhook/{webhook_id}", response_model=GenericSuccessResponse)
def delete_webhook(
    webhook_id: Annotated[int, Path(ge=0, le=MAX_ID)], ctx: Context, org: Org
) -> dict[str, bool]:
    """Remove a webhook and its delivery log."""
    if not ctx.control.delete_webhook(webhook_id, organization_id=org.organization_id):
        raise NotFound(f"no webhook {webhook_id} in this organization")
    return {"success": True}


# -- delivery -------------------------------------------------------------------------------------------


class WebhookDeliverer:
    """Sends due deliveries from the outbox: `run_once` for one pass, `start`/`stop` for a thread that also
    prunes the control store every `prune_every_s` (expired states and tokens, deliveries past `retention`).

    At most `concurrency` webhooks are sent to at once, `batch` deliveries of each per claim, in order.
    """

    def __init__(
        self,
        control: ControlStore,
        *,
        retry_delays_s: tuple[float, ...] = (10.0, 60.0, 300.0),
        timeout_s: float = 10.0,
        poll_s: float = 1.0,
        concurrency: int = 8,
        batch: int = 10,
        allow_private: bool = False,
        prune_every_s: float = 3600.0,
        retention: timedelta = timedelta(days=30),
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.control = control
        self.retry_delays_s = retry_delays_s
        self.poll_s = poll_s
        self.concurrency = concurrency
        self.batch = batch
        self.prune_every_s = prune_every_s
        self.retention = retention
        # A claim outlives the slowest batch, so another replica never takes a delivery still being sent.
        self._lease = timedelta(seconds=timeout_s * batch + 30)
        if transport is None and not allow_private:
            transport = PublicOnlyTransport(max_connections=concurrency)
        # No redirects (a receiver cannot bounce signed events elsewhere) and no proxies from the environment.
        self._http = httpx.Client(
            timeout=timeout_s,
            follow_redirects=False,
            trust_env=False,
            transport=transport,
            limits=httpx.Limits(max_connections=concurrency),
        )
        self._workers = ThreadPoolExecutor(concurrency, thread_name_prefix="webhook-delivery")
        self._busy: set[int] = set()  # webhooks with a batch in flight
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._next_prune = 0.0

    def run_once(self) -> int:
        """Send a batch to every webhook with due deliveries (up to `concurrency` of them) and wait for them;
        returns how many deliveries were attempted."""
        return sum(future.result() for future in self._dispatch())

    def _dispatch(self) -> list[Future[int]]:
        with self._lock:
            busy = set(self._busy)
        free = self.concurrency - len(busy)
        if free <= 0:
            return []
        due = self.control.claim_due_deliveries(
            limit=free * self.batch,
            lease=self._lease,
            per_webhook=self.batch,
            max_webhooks=free,
            skip_webhooks=busy,
        )
        batches: dict[int, list[Delivery]] = {}
        for delivery in due:
            batches.setdefault(delivery.webhook_id, []).append(delivery)
        with self._lock:
            self._busy.update(batches)
        return [self._workers.submit(self._send, hook, batch) for hook, batch in batches.items()]

    def _send(self, webhook_id: int, batch: list[Delivery]) -> int:
        try:
            for delivery in batch:
                if self._stopping:
                    break  # the rest are sent when their lease runs out, by whichever deliverer runs then
                self._attempt(delivery)
        finally:
            with self._lock:
                self._busy.discard(webhook_id)
            self._wake.set()
        return len(batch)

    def _attempt(self, delivery: Delivery) -> None:
        status: int | None = None
        error: str | None = None
        try:
            key = self.control.webhook_signing_key(delivery.webhook_id)
            body, headers = signed_body(delivery.payload, key, int(time.time()))
            response = self._http.post(delivery.url, content=body, headers=headers)
            status = response.status_code
            if not 200 <= status < 300:
                error = f"the receiver answered {status}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        except Exception as exc:  # one broken delivery must not stop the others
            error = f"{type(exc).__name__}"
            log.exception("webhook delivery %s failed unexpectedly", delivery.id)
        delivered = error is None
        retry_in = None
        if not delivered and delivery.attempts < len(self.retry_delays_s):
            retry_in = timedelta(seconds=self.retry_delays_s[delivery.attempts])
        self.control.record_delivery_attempt(
            delivery.id, delivered=delivered, status_code=status, error=error, retry_in=retry_in
        )
        if not delivered:
            log.warning(
                "webhook delivery %s (%s) to webhook %s: %s; %s",
                delivery.id,
                delivery.event_type,
                delivery.webhook_id,
                error,
                f"retry in {retry_in.total_seconds():.0f} s" if retry_in else "giving up",
            )

    def prune_if_due(self) -> int | None:
        """Prune the control store if `prune_every_s` has passed since the last prune: rows gone, or None."""
        now = time.monotonic()
        if now < self._next_prune:
            return None
        self._next_prune = now + self.prune_every_s
        gone = self.control.prune(older_than=self.retention)
        log.info("pruned %d expired OAuth states, access tokens and old webhook deliveries", gone)
        return gone

    def _loop(self) -> None:
        while not self._stopping:
            started: list[Future[int]] = []
            try:
                self.prune_if_due()
                started = self._dispatch()
            except Exception:
                log.exception("the webhook deliverer could not read the outbox")
            if not started:
                # Woken early when a batch ends, so a webhook with more due is served at once.
                self._wake.wait(self.poll_s)
                self._wake.clear()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="webhook-deliverer", daemon=True)
            self._thread.start()

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop claiming; let the attempts in flight end for up to `grace_s` (a hanging receiver does not
        hold up a shutdown for its whole timeout), then close the connections."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self._workers.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + grace_s
        while self._busy and time.monotonic() < deadline:
            time.sleep(0.02)
        self._http.close()
