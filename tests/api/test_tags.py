"""Tags through every layer: `/integrations/outlook/sync` with tags, the recorded request, `plan_request`'s
run config, an in-process `sync_outlook_job` against the sandbox, then `/user_files_v2`'s tags filters and
`UserFile.tags` on the real server."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import dagster as dg
import httpx
import pytest

from pipelines.definitions import defs
from pipelines.defs import MailroomStores
from pipelines.defs._requests import plan_request
from pipelines.store import ControlStore
from sandbox import SandboxInfo
from tests.api.conftest import as_customer
from tests.defs.test_assets import graph_resource

MAILBOX = "alex@contoso.test"  # mail the sandbox seeds in both the Inbox and Sent Items


def sync_through_dagster(
    client: httpx.Client, control: ControlStore, customer: str, body: dict, run: dict
) -> dict[str, object]:
    """POST a sync, plan its recorded request as the sensor would, run the job it names; the run's config."""
    response = client.post("/integrations/outlook/sync", json=body, headers=as_customer(customer))
    assert response.status_code == 200, response.text
    request = control.requests(customer_id=customer, limit=1)[0]
    plan = plan_request(request, control)
    assert plan.run is not None
    config = plan.run.run_config
    result = defs.resolve_job_def(plan.run.job_name).execute_in_process(
        run_config=config, partition_key=customer, raise_on_error=False, **run
    )
    assert result.success
    return config["ops"]["outlook_emails"]["config"]


def files(client: httpx.Client, customer: str, **filters: object) -> dict:
    body = {"filters": filters, "order_by": "id", "pagination": {"limit": 1000}}
    response = client.post("/user_files_v2", json=body, headers=as_customer(customer))
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.slow
def test_sync_tags_reach_the_files_and_their_filters(
    client: httpx.Client,
    control: ControlStore,
    customer: str,
    api_data_dir: Path,
    sandbox_server: SandboxInfo,
) -> None:
    (record,) = control.update_customers([customer])
    control.save_connection(record.id, MAILBOX, auth_kind="app")
    stores = MailroomStores(data_dir=str(api_data_dir), secret_key=None)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("customers", [customer])
        run = {"instance": instance, "resources": {"stores": stores, "graph": graph_resource(sandbox_server)}}
        inbox = {"filters": {}, "folder": "Inbox", "tags": {"box": "inbox", "batch": 1}}
        config = sync_through_dagster(client, control, customer, inbox, run)
        assert config["tags"] == {"box": "inbox", "batch": "1"}  # the sensor's run config carries them
        sent = {"filters": {}, "folder": "sentitems", "tags": {"box": "sent", "team": ["a", "b"]}}
        sync_through_dagster(client, control, customer, sent, run)

    expected = {
        "Inbox": {"box": "inbox", "batch": "1"},
        "Sent Items": {"box": "sent", "team": ["a", "b"]},
    }
    by_box: dict[str, list[int]] = {"inbox": [], "sent": []}
    for file in files(client, customer)["results"]:  # emails and attachments, in id order
        assert file["tags"] == expected[file["file_metadata"]["folder_path"]]
        by_box[file["tags"]["box"]].append(file["id"])
    assert by_box["inbox"]
    assert by_box["sent"]

    def ids(**filters: object) -> list[int]:
        return [f["id"] for f in files(client, customer, **filters)["results"]]

    sent_only = {"AND": [{"key": "box", "value": "sent"}]}
    assert ids(tags_v2=sent_only) == by_box["sent"]
    assert ids(tags_v2={"OR": [{"key": "box", "value": "sent", "negate": True}]}) == by_box["inbox"]
    assert ids(tags_v2={"OR": [{"key": "team", "value": "b"}, {"key": "batch", "value": 1}]}) == sorted(
        by_box["inbox"] + by_box["sent"]
    )
    assert ids(tags={"box": "inbox"}) == by_box["inbox"]  # the deprecated spelling
    assert ids(tags={"box": "sent"}, tags_v2={"AND": [{"key": "box", "value": "inbox"}]}) == by_box["inbox"]
    assert files(client, customer, tags_v2=sent_only)["count"] == len(by_box["sent"])


def test_bad_tags_are_refused_where_they_are(
    client: httpx.Client, control: ControlStore, customer: str
) -> None:
    (record,) = control.update_customers([customer])
    control.save_connection(record.id, MAILBOX, auth_kind="app")
    bad_sync = {"filters": {}, "tags": {"owner": {"name": "x"}}}
    response = client.post("/integrations/outlook/sync", json=bad_sync, headers=as_customer(customer))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "tags"]
    assert "tag 'owner'" in response.json()["detail"][0]["msg"]
    assert control.requests(customer_id=customer) == []  # nothing recorded

    bad_filter = {"filters": {"tags_v2": {"AND": [{"key": "box"}]}}}
    response = client.post("/user_files_v2", json=bad_filter, headers=as_customer(customer))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "filters", "tags_v2"]
    assert "tags_v2.AND[0].value: required" in response.json()["detail"][0]["msg"]


def test_oauth_url_refuses_bad_tags_before_a_sign_in_and_keeps_them_normalised(
    client: httpx.Client, control: ControlStore, customer: str
) -> None:
    start = {"service": "OUTLOOK", "tags": {"owner": {"name": "x"}}}
    refused = client.post("/integrations/oauth_url", json=start, headers=as_customer(customer))
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "tags"]

    start["tags"] = {"priority": 4, "teams": ["a", 2]}
    started = client.post("/integrations/oauth_url", json=start, headers=as_customer(customer))
    assert started.status_code == 200, started.text
    state = parse_qs(urlsplit(started.json()["oauth_url"]).query)["state"][0]
    saved = control.consume_oauth_state(state)
    assert saved is not None
    assert saved.payload["tags"] == {"priority": "4", "teams": ["a", "2"]}  # as the files will carry them
