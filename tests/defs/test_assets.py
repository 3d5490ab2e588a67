"""`materialize` of each asset on a test instance against the sandbox, and every asset check passing and
failing."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import duckdb
import pytest

from pipelines.defs import (
    MailroomStores,
    OutlookGraph,
    email_search_index,
    outlook_emails,
    outlook_emails_fresh,
    outlook_emails_have_bodies,
    outlook_emails_ids_unique,
)
from pipelines.store import ControlStore
from sandbox import AdminClient, SandboxInfo

from .conftest import add_customer

MAILBOX = "alex@contoso.test"
ASSETS = [outlook_emails, email_search_index, outlook_emails_ids_unique, outlook_emails_have_bodies]


@pytest.fixture
def graph(sandbox_server: SandboxInfo) -> OutlookGraph:
    return graph_resource(sandbox_server)


def graph_resource(info: SandboxInfo) -> OutlookGraph:
    return OutlookGraph(
        graph_url=info.graph_url,
        authority=info.authority,
        client_id=info.client_id,
        client_secret=info.client_secret.get_secret_value(),
        ca_bundle=str(info.ca_cert),
    )


def sync(
    instance: dg.DagsterInstance,
    stores: MailroomStores,
    graph: OutlookGraph,
    customer_id: str = "alex",
    config: dict | None = None,
    *,
    assets: list = ASSETS,
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        assets,
        partition_key=customer_id,
        instance=instance,
        resources={"stores": stores, "graph": graph},
        run_config={"ops": {"outlook_emails": {"config": config or {}}}},
        tags={"customer": customer_id, "trigger": "test"},
        raise_on_error=False,
    )


def metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    (event,) = result.asset_materializations_for_node(asset)
    return {key: getattr(value, "value", value) for key, value in event.metadata.items()}


@pytest.fixture
def alex(instance: dg.DagsterInstance, control: ControlStore) -> str:
    add_customer(control, "alex", MAILBOX)
    instance.add_dynamic_partitions("customers", ["alex"])
    return "alex"


def test_a_sync_fills_the_store_and_reports_what_it_did(
    instance: dg.DagsterInstance,
    stores: MailroomStores,
    graph: OutlookGraph,
    alex: str,
    sandbox_admin: AdminClient,
) -> None:
    inbox = [m for m in sandbox_admin.ground_truth(MAILBOX)["messages"] if m["folderPath"] == ["Inbox"]]

    first = sync(instance, stores, graph)

    assert first.success
    emails = metadata(first, "outlook_emails")
    assert emails["emails"] == len(inbox) > 0
    assert emails["changed"] == len(inbox)
    assert f"| {len(inbox)} | {len(inbox)} | {len(inbox)} | {len(inbox)} | 0 |" in emails["outcomes"]
    assert "Inbox: first round, 1 page" in emails["folders"]
    assert "delta" in emails["plan"].lower()
    newest = max(inbox, key=lambda m: m["receivedDateTime"])
    assert (newest["subject"] or "")[:40].replace("|", "\\|") in emails["preview"]
    assert emails["store"].endswith(".duckdb")
    index = metadata(first, "email_search_index")
    assert index["indexed_emails"] == len(inbox)
    assert stores.mail("alex", read_only=True).search(newest["subject"].split()[0], limit=50)
    checks = {e.check_name: e.passed for e in first.get_asset_check_evaluations()}
    assert checks == {"outlook_emails_ids_unique": True, "outlook_emails_have_bodies": True}

    second = sync(instance, stores, graph)

    assert second.success
    assert metadata(second, "outlook_emails")["changed"] == 0
    assert second.asset_materializations_for_node("email_search_index") == []
    (skipped,) = second.asset_observations_for_node("email_search_index")
    assert skipped.metadata["skipped"].value == "no email changed since the index was built"


def test_the_search_index_is_rebuilt_by_its_step_after_a_sync_that_changed_something(
    instance: dg.DagsterInstance,
    stores: MailroomStores,
    graph: OutlookGraph,
    alex: str,
    sandbox_admin: AdminClient,
) -> None:
    assert metadata(sync(instance, stores, graph), "email_search_index")["reason"] == "no index yet"
    sandbox_admin.add_message(MAILBOX, subject="Zanzibar shipping manifest", body="<p>Cargo list</p>")

    again = sync(instance, stores, graph, assets=[outlook_emails])
    assert metadata(again, "outlook_emails")["changed"] == 1
    assert stores.mail("alex").search_index_status() == "stale", "the sync leaves the rebuild to its asset"

    result = sync(instance, stores, graph)  # changes nothing itself; the index is still behind the store
    assert metadata(result, "outlook_emails")["changed"] == 0
    index = metadata(result, "email_search_index")
    assert (index["rebuilt_by"], index["reason"]) == ("this step", "emails changed since the index was built")
    [hit] = stores.mail("alex", read_only=True).search("zanzibar")
    assert hit.subject == "Zanzibar shipping manifest"


def test_run_options_reach_the_engine(
    instance: dg.DagsterInstance,
    stores: MailroomStores,
    graph: OutlookGraph,
    alex: str,
    sandbox_admin: AdminClient,
) -> None:
    truth = sandbox_admin.ground_truth(MAILBOX)["messages"]
    flagged = [
        m for m in truth if m["folderPath"] == ["Inbox"] and m.get("flag", {}).get("flagStatus") == "flagged"
    ]

    result = sync(
        instance, stores, graph, config={"filters": {"key": "is", "value": "flagged"}, "folders": ["inbox"]}
    )

    assert result.success
    assert metadata(result, "outlook_emails")["emails"] == len(flagged)
    assert "is:flagged" in metadata(result, "outlook_emails")["plan"]


def test_a_bad_filter_fails_the_run_with_the_filter_error(
    instance: dg.DagsterInstance, stores: MailroomStores, graph: OutlookGraph, alex: str
) -> None:
    result = sync(instance, stores, graph, config={"filter": "categroy:Work"})
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.user_failure_data.description
    assert "unknown key 'categroy'" in message
    assert "did you mean 'category'" in message


def test_the_request_a_run_carries_out_follows_it(
    instance: dg.DagsterInstance,
    stores: MailroomStores,
    graph: OutlookGraph,
    alex: str,
    control: ControlStore,
) -> None:
    good = control.record_request("sync", "alex", {})
    bad = control.record_request("sync", "alex", {})

    assert sync(instance, stores, graph, config={"request_id": good.id}).success
    assert not sync(
        instance, stores, graph, config={"request_id": bad.id, "folders": ["No such folder"]}
    ).success

    assert control.request(good.id).status == "succeeded"
    failed = control.request(bad.id)
    assert failed.status == "failed"
    assert "No such folder" in failed.reason
    assert failed.run_id is not None


def test_the_search_index_alone_is_rebuilt(
    instance: dg.DagsterInstance, stores: MailroomStores, graph: OutlookGraph, alex: str
) -> None:
    assert sync(instance, stores, graph).success
    alone = index_alone(instance, stores)
    assert alone.success
    assert metadata(alone, "email_search_index")["rebuilt_by"] == "this step"


def index_alone(instance: dg.DagsterInstance, stores: MailroomStores) -> dg.ExecuteInProcessResult:
    """Materialize alex's email_search_index on its own, as the UI does for one asset."""
    return dg.materialize(
        [email_search_index],
        partition_key="alex",
        instance=instance,
        resources={"stores": stores},
        selection=[email_search_index],
        raise_on_error=False,
    )


def test_the_search_index_alone_of_a_customer_never_synced_fails_and_creates_nothing(
    instance: dg.DagsterInstance, stores: MailroomStores, alex: str
) -> None:
    # It created an empty mail store and materialized an index of nothing.
    alone = index_alone(instance, stores)
    assert not alone.success
    (failure,) = [e for e in alone.all_events if e.is_step_failure]
    description = failure.step_failure_data.user_failure_data.description
    assert description.startswith("'alex' has no mail store yet, so nothing to index: sync it first")
    assert not stores.mail("alex").exists()


def check(asset_check, instance: dg.DagsterInstance, stores: MailroomStores) -> dg.AssetCheckResult:
    """Evaluate a check on its own: over every customer with a partition."""
    return asset_check(dg.build_asset_check_context(instance=instance, resources={"stores": stores}))


def test_integrity_checks_fail_on_a_duplicate_and_on_a_missing_body(
    instance: dg.DagsterInstance, stores: MailroomStores, graph: OutlookGraph, alex: str
) -> None:
    assert sync(instance, stores, graph).success
    assert check(outlook_emails_ids_unique, instance, stores).passed
    assert check(outlook_emails_have_bodies, instance, stores).passed
    # What no correct writer ever does: the checks exist to notice if one did.
    with duckdb.connect(str(stores.mail("alex").path)) as con:
        con.execute("INSERT INTO emails SELECT * FROM emails ORDER BY file_id LIMIT 1")
        con.execute(
            "UPDATE emails SET body_html = NULL, body_text = NULL "
            "WHERE file_id = (SELECT max(file_id) FROM emails)"
        )
    duplicates = check(outlook_emails_ids_unique, instance, stores)
    bodies = check(outlook_emails_have_bodies, instance, stores)
    assert not duplicates.passed
    assert duplicates.metadata["duplicate_message_ids"].value == 1
    assert "alex" in duplicates.metadata["customers_with_duplicates"].value
    assert not bodies.passed
    assert bodies.metadata["emails_without_body"].value == 1


def test_freshness_passes_after_a_sync_and_fails_for_a_stale_customer(
    instance: dg.DagsterInstance,
    stores: MailroomStores,
    graph: OutlookGraph,
    alex: str,
    control: ControlStore,
) -> None:
    assert sync(instance, stores, graph).success
    fresh = check(outlook_emails_fresh, instance, stores)
    assert fresh.passed
    assert fresh.metadata["customers_checked"].value == 1
    # A customer added two days ago that never synced is stale; one without auto-sync is not judged.
    old = ControlStore(control.path, clock=lambda: datetime.now(UTC) - timedelta(days=2))
    add_customer(old, "forgotten", MAILBOX)
    add_customer(old, "manual", MAILBOX, auto_sync=False)
    instance.add_dynamic_partitions("customers", ["forgotten", "manual"])
    stale = check(outlook_emails_fresh, instance, stores)
    assert not stale.passed
    assert stale.metadata["customers_checked"].value == 2
    assert "forgotten: never synced" in stale.metadata["stale"].value
