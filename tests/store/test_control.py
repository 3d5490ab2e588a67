"""The control store: customers and settings, connections, requests, webhooks, keys, tokens, OAuth states."""

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from pipelines.store import (
    ConflictError,
    ControlStore,
    CustomerUpdate,
    NotFound,
    SchemaError,
    SecretError,
    StoreSettings,
    record_requests,
)

KEY = Fernet.generate_key().decode()


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def control(tmp_path: Path, clock: Clock) -> ControlStore:
    return ControlStore(tmp_path / "control.sqlite3", secret_key=KEY, clock=clock)


def raw(control: ControlStore) -> sqlite3.Connection:
    return sqlite3.connect(control.path)


def test_the_file_is_wal_and_versioned(control: ControlStore) -> None:
    assert control.organization().name == "default"
    with raw(control) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("SELECT max(version) FROM schema_version").fetchone()[0] == 3
    again = ControlStore(control.path, secret_key=KEY)
    assert again.organization().id == 1, "opening a migrated file applies nothing twice"


def test_a_newer_file_is_refused(control: ControlStore) -> None:
    control.organization()
    with raw(control) as con:
        con.execute("INSERT INTO schema_version VALUES (42, 'x')")
    with pytest.raises(SchemaError, match="newer than this Mailroom"):
        ControlStore(control.path).organization()


def test_update_users_creates_then_changes_only_given_fields(control: ControlStore, clock: Clock) -> None:
    created = control.update_customers(["team@carbon.ai", "acme", "acme"])
    assert [c.customer_id for c in created] == ["team@carbon.ai", "acme"]
    assert created[0].auto_sync_sources == []
    assert not created[0].outlook_auto_sync
    assert created[0].interval_minutes == 24 * 60
    clock.advance(minutes=1)
    control.update_customers(
        ["acme"], CustomerUpdate(auto_sync_sources=["OUTLOOK"], auto_sync_interval_minutes=180, max_files=500)
    )
    control.update_customers(["acme"], CustomerUpdate(max_characters=10_000))
    acme = control.customer("acme")
    assert acme is not None
    assert (acme.auto_sync_sources, acme.interval_minutes, acme.max_files) == (["OUTLOOK"], 180, 500)
    assert acme.max_characters == 10_000
    assert acme.outlook_auto_sync
    assert acme.updated_at > acme.created_at
    control.update_customers(
        ["acme"], CustomerUpdate(auto_sync_sources="ALL", auto_sync_interval_minutes=None)
    )
    acme = control.customer("acme")
    assert acme is not None
    assert acme.auto_sync_sources == "ALL"
    assert acme.interval_minutes == 24 * 60
    assert control.customer("nobody") is None


def test_settings_are_validated() -> None:
    with pytest.raises(ValidationError, match="auto_sync_interval_minutes"):
        CustomerUpdate(auto_sync_interval_minutes=4)
    with pytest.raises(ValidationError, match="max_files"):
        CustomerUpdate(max_files=-2)
    with pytest.raises(ValidationError, match="extra"):
        CustomerUpdate(colour="blue")  # type: ignore[call-arg]


def test_listing_orders_filters_and_counts(control: ControlStore, clock: Clock) -> None:
    for name in ("a", "b", "c", "d"):
        control.update_customers([name])
        clock.advance(seconds=1)
    page, total = control.list_customers(limit=2)
    assert [c.customer_id for c in page] == ["d", "c"]
    assert total == 4
    page, total = control.list_customers(descending=False, limit=2, offset=2)
    assert [c.customer_id for c in page] == ["c", "d"]
    assert total == 4
    page, total = control.list_customers(customer_ids=["a", "c", "zz"], descending=False)
    assert [c.customer_id for c in page] == ["a", "c"]
    assert total == 2
    b = control.customer("b")
    assert b is not None
    page, _ = control.list_customers(pks=[b.id])
    assert [c.customer_id for c in page] == ["b"]
    assert control.list_customers(offset=10) == ([], 4)
    c = control.customer("c")
    assert c is not None
    page, total = control.list_customers(starting_id=c.id, descending=False)
    assert ([x.customer_id for x in page], total) == (["c", "d"], 2)
    page, total = control.list_customers(starting_id=b.id, limit=1, offset=1)
    assert ([x.customer_id for x in page], total) == (["c"], 3)
    assert control.list_customers(starting_id=10_000) == ([], 0)


def test_one_organization_holds_every_key_and_no_second_can_be_added(control: ControlStore) -> None:
    key, _ = control.create_api_key("ci")
    assert key.organization_id == control.organization().id == 1
    assert not hasattr(control, "create_organization")
    with raw(control) as con, pytest.raises(sqlite3.IntegrityError, match="one organization per deployment"):
        con.execute("INSERT INTO organizations (name, created_at) VALUES ('second', '2024-01-01')")


def test_update_users_is_one_transaction_of_a_few_statements(control: ControlStore) -> None:
    statements: list[str] = []
    connect = control._connect

    def traced() -> sqlite3.Connection:
        con = connect()
        con.set_trace_callback(statements.append)
        return con

    control._connect = traced  # type: ignore[method-assign]
    control.update_customers(["first"])
    one = len(set(statements))
    statements.clear()
    named = [f"user-{n:03d}" for n in range(100)]
    found = control.update_customers(named, CustomerUpdate(max_files=7))
    assert [c.customer_id for c in found] == named
    assert {c.max_files for c in found} == {7}
    # A trigger firing for each new row is traced as its statement again: count the statements apart.
    assert len(set(statements)) == one, statements
    assert statements.count("COMMIT") == 1


def test_a_deleted_customer_stays_deleted_until_purged_then_comes_back_fresh(control: ControlStore) -> None:
    kept, gone = control.update_customers(["kept", "gone"], CustomerUpdate(max_files=5))
    control.save_connection(gone.id, "gone@contoso.com", auth_kind="delegated", token_cache=b"sealed")
    assert not control.customer_deleted("gone")
    assert len(control.mark_customers_deleted(["gone", "never-existed"])) == 1
    assert control.customer("gone") is None
    assert control.customer("gone", include_deleted=True) is not None
    assert control.customer_deleted("gone")
    assert not control.customer_deleted("never-existed")
    assert [c.customer_id for c in control.list_customers()[0]] == ["kept"]
    # Naming it again, alone or beside others, changes nothing: no resurrection, no half-done update.
    with pytest.raises(ConflictError, match=r"'gone' was deleted and its data is still being removed"):
        control.update_customers(["fresh", "gone"], CustomerUpdate(max_files=9))
    assert control.customer("fresh") is None
    assert control.customer("kept").max_files == 5  # type: ignore[union-attr]
    assert control.customer_deleted("gone")
    assert control.purge_customer(gone.id)
    assert not control.customer_deleted("gone")
    (again,) = control.update_customers(["gone"])
    assert again.id > gone.id > kept.id, "an id is never given twice, not even the newest one's"
    assert again.max_files is None
    assert control.connections(again.id) == []


def test_connections_keep_sealed_caches_and_walls(control: ControlStore, clock: Clock) -> None:
    alice, bob = control.update_customers(["alice", "bob"])
    first = control.save_connection(
        alice.id, "alice@contoso.com", auth_kind="delegated", token_cache=b"sealed-1"
    )
    assert "sealed" not in repr(first)
    assert control.token_cache(first.id) == b"sealed-1"
    control.save_token_cache(first.id, b"sealed-2")
    again = control.save_connection(alice.id, "alice@contoso.com", auth_kind="delegated", tags={"team": "x"})
    assert again.id == first.id
    assert again.tags == {"team": "x"}
    assert control.token_cache(first.id) == b"sealed-2", "reconnecting without a new cache keeps the old one"
    assert control.connection(first.id, customer_pk=bob.id) is None
    clock.advance(hours=1)
    control.record_connection_sync(first.id, status="READY", synced=True)
    got = control.connection(first.id)
    assert got is not None
    assert got.last_synced_at == clock.now
    assert got.sync_status == "READY"
    assert not control.revoke_connection(first.id, customer_pk=bob.id)
    assert control.revoke_connection(first.id, customer_pk=alice.id)
    assert control.token_cache(first.id) is None
    assert control.connections(alice.id, include_revoked=False) == []
    with pytest.raises(NotFound):
        control.token_cache(999)


def test_auto_sync_lists_enabled_customers_with_their_last_sync(control: ControlStore, clock: Clock) -> None:
    on, off, all_sources = control.update_customers(["on", "off", "all"])
    control.update_customers(
        ["on"], CustomerUpdate(auto_sync_sources=["OUTLOOK"], auto_sync_interval_minutes=360)
    )
    control.update_customers(["all"], CustomerUpdate(auto_sync_sources="ALL"))
    control.update_customers(["off"], CustomerUpdate(auto_sync_sources=["GMAIL"]))
    link = control.save_connection(on.id, "on@contoso.com", auth_kind="app")
    control.record_connection_sync(link.id, status="READY", synced=True)
    due = {c.customer_id: (c.interval_minutes, last) for c, last in control.auto_sync_customers()}
    assert due == {"on": (360, clock.now), "all": (24 * 60, None)}
    assert off.id not in {c.id for c, _ in control.auto_sync_customers()}
    assert all_sources.id in {c.id for c, _ in control.auto_sync_customers()}


def test_requests_are_claimed_once_and_reoffered_after_a_lease(control: ControlStore, clock: Clock) -> None:
    first = control.record_request("sync", "acme", {"folder": "Inbox", "filters": {}})
    second = control.record_request("delete_files", "acme", {"file_ids": [3]})
    assert first.run_key == f"req-{first.id}"
    assert first.status == "queued"
    claimed = control.claim_requests()
    assert [r.id for r in claimed] == [first.id, second.id]
    assert {r.status for r in claimed} == {"submitted"}
    assert control.claim_requests() == [], "claimed requests are not handed out twice"
    control.mark_request_running(first.id, "dagster-run-1")
    clock.advance(minutes=6)
    assert [r.id for r in control.claim_requests()] == [second.id], "only the one whose run never started"
    control.finish_request(first.id)
    control.finish_request(second.id, error="file ids must be integers")
    done, failed = control.request(first.id), control.request(second.id)
    assert done is not None
    assert (done.status, done.run_id) == ("succeeded", "dagster-run-1")
    assert failed is not None
    assert (failed.status, failed.reason) == ("failed", "file ids must be integers")
    assert [r.id for r in control.requests(customer_id="acme")] == [second.id, first.id]
    with pytest.raises(NotFound):
        control.finish_request(999)
    with pytest.raises(sqlite3.IntegrityError), raw(control) as con:  # the schema checks the kind too
        con.execute(
            "INSERT INTO requests (organization_id, customer_id, kind, payload, status, created_at, "
            "updated_at) VALUES (1, 'x', 'nonsense', '{}', 'queued', '', '')"
        )


def test_two_sensors_never_claim_the_same_request(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    ControlStore(path).organization()
    for n in range(200):
        ControlStore(path).record_request("sync", f"c{n}", {})
    claimed: list[int] = []

    def sensor() -> None:
        store = ControlStore(path)
        while batch := store.claim_requests(limit=7):
            claimed.extend(r.id for r in batch)

    threads = [threading.Thread(target=sensor) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(claimed) == list(range(1, 201))


def test_webhooks_at_most_three_with_recoverable_encrypted_keys(control: ControlStore) -> None:
    created = [control.add_webhook(f"https://hooks.example.com/{n}") for n in range(3)]
    hook, key = created[0]
    assert len(key) == 32
    assert int(key, 16) >= 0
    assert control.webhook_signing_key(hook.id) == key
    with raw(control) as con:
        stored = con.execute("SELECT signing_key FROM webhooks WHERE id = ?", (hook.id,)).fetchone()[0]
    assert key.encode() not in stored, "the signing key must not rest in the clear"
    with pytest.raises(ConflictError, match="at most 3"):
        control.add_webhook("https://hooks.example.com/4")
    assert control.delete_webhook(hook.id)
    assert [w.url for w in control.webhooks()] == [
        "https://hooks.example.com/1",
        "https://hooks.example.com/2",
    ]
    control.add_webhook("https://hooks.example.com/5")
    with pytest.raises(SecretError, match="cannot be decrypted"):
        ControlStore(control.path, secret_key=Fernet.generate_key()).webhook_signing_key(created[1][0].id)


def test_keys_rotate_without_losing_old_secrets(control: ControlStore) -> None:
    hook, key = control.add_webhook("https://hooks.example.com/a")
    rotated = ControlStore(control.path, secret_key=f"{Fernet.generate_key().decode()},{KEY}")
    assert rotated.webhook_signing_key(hook.id) == key


def test_a_missing_or_bad_secret_key_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MAILROOM_SECRET_KEY", raising=False)
    with pytest.raises(SecretError, match="MAILROOM_SECRET_KEY is not set"):
        ControlStore(tmp_path / "c.sqlite3").add_webhook("https://x.example.com")
    with pytest.raises(SecretError, match="not a valid Fernet key") as error:
        ControlStore(tmp_path / "c.sqlite3", secret_key="hunter2").add_webhook("https://x.example.com")
    assert "hunter2" not in str(error.value)


def test_deliveries_flow_through_the_outbox(control: ControlStore, clock: Clock) -> None:
    (one, _), (two, _) = (
        control.add_webhook("https://a.example.com"),
        control.add_webhook("https://b.example.com"),
    )
    ids = control.enqueue_deliveries("FILES_CREATED", '{"payload": "{}"}', customer_id="acme")
    assert len(ids) == 2
    due = control.claim_due_deliveries()
    assert [(d.url, d.event_type, d.attempts) for d in due] == [
        ("https://a.example.com", "FILES_CREATED", 0),
        ("https://b.example.com", "FILES_CREATED", 0),
    ]
    assert control.claim_due_deliveries() == [], "a claimed delivery is leased"
    ok = control.record_delivery_attempt(due[0].id, delivered=True, status_code=200)
    assert ok.status == "delivered"
    assert ok.delivered_at == clock.now
    retry = control.record_delivery_attempt(
        due[1].id, delivered=False, status_code=503, retry_in=timedelta(seconds=30)
    )
    assert (retry.status, retry.attempts, retry.last_status_code) == ("pending", 1, 503)
    clock.advance(seconds=29)
    assert control.claim_due_deliveries() == []
    clock.advance(seconds=2)
    (again,) = control.claim_due_deliveries()
    failed = control.record_delivery_attempt(again.id, delivered=False, error="connection refused")
    assert (failed.status, failed.attempts, failed.last_error) == ("failed", 2, "connection refused")
    assert [d.status for d in control.deliveries()] == ["failed", "delivered"]
    assert [d.id for d in control.deliveries(webhook_id=two.id)] == [failed.id]
    assert one.id != two.id


def test_a_claim_takes_a_batch_per_webhook_and_skips_busy_ones(control: ControlStore, clock: Clock) -> None:
    slow, _ = control.add_webhook("https://slow.example.com")
    fast, _ = control.add_webhook("https://fast.example.com")
    third, _ = control.add_webhook("https://third.example.com")
    for n in range(6):
        control.enqueue_deliveries("FILE_READY", f'{{"n": {n}}}', customer_id="acme")
        clock.advance(seconds=1)
    # Three per webhook, oldest first, rather than the six oldest rows whatever webhook they are for.
    first = control.claim_due_deliveries(limit=100, per_webhook=3, max_webhooks=2)
    assert [(d.webhook_id, d.payload) for d in first] == [
        (hook, f'{{"n": {n}}}') for n in range(3) for hook in (slow.id, fast.id)
    ]
    # The sender is still busy with `slow`: the next claim serves the others.
    second = control.claim_due_deliveries(limit=100, per_webhook=3, skip_webhooks={slow.id})
    assert {d.webhook_id for d in second} == {fast.id, third.id}
    assert [d.payload for d in second if d.webhook_id == fast.id] == [f'{{"n": {n}}}' for n in (3, 4, 5)]
    assert [d.payload for d in second if d.webhook_id == third.id] == [f'{{"n": {n}}}' for n in (0, 1, 2)]
    rest = control.claim_due_deliveries(limit=100)
    assert {d.webhook_id for d in rest} == {slow.id, third.id}
    assert len(rest) == 6


def test_prune_drops_expired_states_tokens_and_old_settled_deliveries(
    control: ControlStore, clock: Clock
) -> None:
    (acme,) = control.update_customers(["acme"])
    hook, _ = control.add_webhook("https://a.example.com")
    old_state_used, old_state_expired = "s-used", "s-expired"
    control.save_oauth_state(old_state_used, acme.id, {"state": "x"})
    control.consume_oauth_state(old_state_used)
    control.save_oauth_state(old_state_expired, acme.id, {"state": "y"}, ttl=timedelta(minutes=5))
    expired = control.issue_access_token(acme.id, ttl=timedelta(minutes=10))
    revoked = control.issue_access_token(acme.id, ttl=timedelta(days=1))
    control.revoke_access_tokens(acme.id)
    (old_done,) = control.enqueue_deliveries("FILE_READY", "{}")
    control.record_delivery_attempt(old_done, delivered=True, status_code=200)
    (old_pending,) = control.enqueue_deliveries("FILE_READY", "{}")
    clock.advance(days=31)
    control.save_oauth_state("s-live", acme.id, {"state": "z"})
    live = control.issue_access_token(acme.id, ttl=timedelta(hours=1))
    (recent_done,) = control.enqueue_deliveries("FILE_READY", "{}")
    control.record_delivery_attempt(recent_done, delivered=False, error="refused")

    assert control.prune(older_than=timedelta(days=30)) == 2 + 2 + 1
    with raw(control) as con:
        assert con.execute("SELECT count(*) FROM oauth_states").fetchone()[0] == 1
        assert con.execute("SELECT count(*) FROM access_tokens").fetchone()[0] == 1
        left = [r[0] for r in con.execute("SELECT id FROM webhook_deliveries ORDER BY id")]
    assert left == [old_pending, recent_done], "pending ones stay, however old; recent ones stay"
    assert control.authenticate_access_token(live.access_token) is not None
    assert control.authenticate_access_token(expired.access_token) is None
    assert control.authenticate_access_token(revoked.access_token) is None
    assert control.consume_oauth_state("s-live") is not None
    assert control.prune() == 1, "the state just used goes on the next pass"
    assert [d.webhook_id for d in control.deliveries()] == [hook.id, hook.id]


def test_api_keys_are_stored_as_hashes(control: ControlStore, clock: Clock) -> None:
    key, plain = control.create_api_key("ci")
    assert plain.startswith("mr_")
    assert len(plain) > 40
    assert key.prefix == plain[:10]
    with raw(control) as con:
        dump = "\n".join(con.iterdump())
    assert plain not in dump
    found = control.authenticate_api_key(plain)
    assert found is not None
    assert found.id == key.id
    assert control.api_keys()[0].last_used_at == clock.now
    assert control.authenticate_api_key(plain + "x") is None
    assert control.revoke_api_key(key.id)
    assert not control.revoke_api_key(key.id)
    assert control.authenticate_api_key(plain) is None


def test_access_tokens_expire_and_revoke(control: ControlStore, clock: Clock) -> None:
    (acme,) = control.update_customers(["acme"])
    issued = control.issue_access_token(acme.id, ttl=timedelta(minutes=10))
    assert issued.access_token not in repr(issued)
    who = control.authenticate_access_token(issued.access_token)
    assert who is not None
    assert who.customer_id == "acme"
    assert control.authenticate_access_token(issued.refresh_token) is None
    clock.advance(minutes=11)
    assert control.authenticate_access_token(issued.access_token) is None
    fresh = control.issue_access_token(acme.id)
    assert control.revoke_access_tokens(acme.id) == 2
    assert control.authenticate_access_token(fresh.access_token) is None
    with pytest.raises(NotFound):
        control.issue_access_token(999)


def test_oauth_states_are_single_use_encrypted_and_expire(control: ControlStore, clock: Clock) -> None:
    (acme,) = control.update_customers(["acme"])
    flow = {"state": "s-1", "code_verifier": "very-secret-verifier", "auth_uri": "https://login.example/x"}
    control.save_oauth_state("s-1", acme.id, flow, payload={"data_source_tags": {"a": 1}})
    with raw(control) as con:
        assert "very-secret-verifier" not in "\n".join(con.iterdump())
    state = control.consume_oauth_state("s-1")
    assert state is not None
    assert state.customer_pk == acme.id
    assert state.flow == flow
    assert state.payload == {"data_source_tags": {"a": 1}}
    assert "very-secret" not in repr(state)
    assert control.consume_oauth_state("s-1") is None
    control.save_oauth_state("s-2", acme.id, flow, ttl=timedelta(minutes=5))
    clock.advance(minutes=6)
    assert control.consume_oauth_state("s-2") is None
    assert control.consume_oauth_state("never") is None
    assert control.prune() >= 2


def test_purging_a_customer_removes_what_hangs_off_it(control: ControlStore) -> None:
    (acme,) = control.update_customers(["acme"])
    control.save_connection(acme.id, "a@contoso.com", auth_kind="delegated", token_cache=b"x")
    control.issue_access_token(acme.id)
    assert control.purge_customer(acme.id)
    assert control.customer_by_pk(acme.id) is None
    with raw(control) as con:
        assert con.execute("SELECT count(*) FROM connections").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM access_tokens").fetchone()[0] == 0


def test_settings_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILROOM_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("MAILROOM_SECRET_KEY", KEY)
    settings = StoreSettings()
    assert settings.control_path == tmp_path / "d" / "control.sqlite3"
    assert settings.mail_store_path("acme").parent == tmp_path / "d" / "mail"
    assert KEY not in repr(settings)
    hook, key = settings.control_store().add_webhook("https://x.example.com")
    assert settings.control_store().webhook_signing_key(hook.id) == key
    reader = settings.mail_store("acme", read_only=True)
    assert reader.read_only
    assert not reader.exists()
    assert not settings.delete_mail_store("acme")


def test_record_requests_queues_many_in_order_with_their_payloads(control: ControlStore) -> None:
    payloads = [{"n": n, "tags": {"team": "blé"}, "ids": [n, None]} for n in range(100)]
    recorded = record_requests(control, "update_users", [(f"c-{n}", p) for n, p in enumerate(payloads)])
    assert [r.customer_id for r in recorded] == [f"c-{n}" for n in range(100)]
    assert [r.payload for r in recorded] == payloads
    assert [r.id for r in recorded] == sorted(r.id for r in recorded)
    assert {(r.kind, r.status, r.organization_id) for r in recorded} == {("update_users", "queued", 1)}
    assert control.request(recorded[42].id).payload == payloads[42]  # type: ignore[union-attr]
    assert record_requests(control, "sync", []) == []


def test_writes_do_not_checkpoint_at_every_close_yet_the_wal_stays_bounded(control: ControlStore) -> None:
    """The store holds one idle connection: otherwise each call's close (the last one) would checkpoint and
    sync, and the next write would sync a new WAL, two fsyncs a call. Checkpoints still come as it grows."""
    wal = control.path.with_name(control.path.name + "-wal")
    control.update_customers(["acme"])
    assert wal.exists(), "the last close checkpointed and removed the WAL"
    payload = {"padding": "x" * 4000}
    for _ in range(20):
        record_requests(control, "sync", [(f"c-{n}", payload) for n in range(100)])  # 8 MB in all
    assert wal.stat().st_size < 6 << 20, "the WAL must be checkpointed as it grows (every 1000 pages)"
    other = ControlStore(control.path)
    assert len(other.requests(limit=5000)) == 2000
