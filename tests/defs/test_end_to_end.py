"""End to end with real Dagster processes and a temporary DAGSTER_HOME: the README's `dagster job launch`, the
webserver (GraphQL, the launchpad's mutations, a screenshot in headless Chromium), and with `dagster-daemon`
running: the sensor syncing a recorded request, the schedule syncing a due customer, two requests for one
customer never running at the same time, and the request of a run killed mid-sync settled by the sensor.
Every process is stopped by its PID."""

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import dagster as dg
import psutil
import pytest

from pipelines.defs.local import REPO_ROOT
from sandbox import AdminClient, SandboxInfo

from .harness import DagsterSite, chromium, png_size, require_chromium

pytestmark = pytest.mark.slow

T = TypeVar("T")

SCREENSHOT = "dagster-outlook-emails-partitions.png"
SCHEDULED = "scheduled-team"


def readme_launch_block() -> str:
    """The shell block under the README's launch-example marker, exactly as written."""
    readme = (REPO_ROOT / "README.md").read_text()
    found = re.search(r"<!-- launch-example[^>]*-->\n```bash\n(.*?)\n```", readme, re.DOTALL)
    assert found, "README.md lost its launch-example block"
    return found.group(1)


def inbox(admin: AdminClient, mailbox: str, *, with_attachments: bool = False) -> list[dict]:
    """The messages of the mailbox's Inbox (whatever its display name) per the sandbox's ground truth."""
    truth = admin.ground_truth(mailbox)
    (path,) = [f["path"] for f in truth["folders"] if f.get("wellKnownName") == "inbox"]
    return [
        m
        for m in truth["messages"]
        if m["folderPath"] == path and (m["hasAttachments"] or not with_attachments)
    ]


@pytest.fixture(scope="module")
def direct_site(tmp_path_factory: pytest.TempPathFactory, sandbox_server: SandboxInfo) -> DagsterSite:
    return DagsterSite.create(tmp_path_factory.mktemp("direct"), sandbox=sandbox_server, instance="direct")


def test_the_readme_launch_command_syncs_a_customer(
    direct_site: DagsterSite, sandbox_admin: AdminClient
) -> None:
    site = direct_site
    site.add_customer("adele", "adele@contoso.test")
    env = site.env | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{site.env.get('PATH', '')}"}

    subprocess.run(
        ["bash", "-euo", "pipefail", "-c", readme_launch_block()],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        timeout=180,
    )

    (run,) = site.instance.get_runs(filters=dg.RunsFilter(tags={"dagster/partition": "adele"}))
    finished = site.wait([run.run_id])[run.run_id]
    assert finished.status == dg.DagsterRunStatus.SUCCESS
    assert finished.tags["trigger"] == "manual"
    assert finished.tags["customer"] == "adele"  # added by the run itself
    wanted = inbox(sandbox_admin, "adele@contoso.test", with_attachments=True)
    store = site.stores.mail("adele", read_only=True)
    assert store.counts().emails == len(wanted) > 0
    assert {e.subject for e in store.newest(1000)} == {m["subject"] for m in wanted}


LOCATION = {"repositoryLocationName": "pipelines", "repositoryName": "__repository__"}
WORKSPACE = """query { workspaceOrError { ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on RepositoryLocation { repositories { jobs { name } } }
  ... on PythonError { message } } } } } }"""
ADD_PARTITION = """mutation($key: String!, $repo: RepositorySelector!) {
  addDynamicPartition(repositorySelector: $repo, partitionsDefName: "customers", partitionKey: $key) {
    __typename ... on PythonError { message } } }"""
LAUNCH = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) { __typename
  ... on LaunchRunSuccess { run { runId } } ... on RunConfigValidationInvalid { errors { message } }
  ... on PythonError { message } } }"""


def test_the_webserver_serves_the_code_location_and_launches_like_the_launchpad(
    direct_site: DagsterSite, tmp_path: Path
) -> None:
    site = direct_site
    site.add_customer("alex", "alex@contoso.test", partition=False)
    with site.webserver() as port:
        (entry,) = site.graphql(port, WORKSPACE)["workspaceOrError"]["locationEntries"]
        assert entry["name"] == "pipelines"
        assert entry["loadStatus"] == "LOADED"
        (repository,) = entry["locationOrLoadError"]["repositories"]
        assert {"sync_outlook_job", "delete_customer_job"} <= {job["name"] for job in repository["jobs"]}

        # What the UI does: add the partition, then launch the job for it with the launchpad's config.
        added = site.graphql(port, ADD_PARTITION, {"key": "alex", "repo": LOCATION})["addDynamicPartition"]
        assert added["__typename"] == "AddDynamicPartitionSuccess"
        params = {
            "selector": {**LOCATION, "jobName": "sync_outlook_job"},
            "runConfigData": {
                "ops": {"outlook_emails": {"config": {"folders": ["Inbox"], "subfolders": True}}}
            },
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": "alex"}]},
        }
        launched = site.graphql(port, LAUNCH, {"params": params})["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["run"]["runId"]
        assert site.wait([run_id])[run_id].status == dg.DagsterRunStatus.SUCCESS
        assert site.stores.mail("alex", read_only=True).counts().emails > 0

        require_chromium()
        take_screenshot(site, port, tmp_path)


def take_screenshot(site: DagsterSite, port: int, tmp_path: Path) -> None:
    # The UI's first-visit newsletter dialog would cover the page.
    site.graphql(port, "mutation { setNuxSeen }")
    url = f"http://127.0.0.1:{port}/assets/outlook_emails?view=partitions&partition=alex"
    dom = chromium(url, tmp_path / "profile-dom")
    materialized = site.instance.get_materialized_partitions(dg.AssetKey("outlook_emails"))
    assert f"Materialized ({len(materialized)})" in dom
    for customer in materialized:
        assert f">{customer}<" in dom
    shot = tmp_path / SCREENSHOT
    chromium(url, tmp_path / "profile-shot", screenshot=shot, size=(1400, 1100))
    assert png_size(shot) == (1400, 1100)
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
    # `MAILROOM_SCREENSHOT_DIR=docs make test` refreshes the README's picture.
    if target := os.environ.get("MAILROOM_SCREENSHOT_DIR"):
        shutil.copyfile(shot, Path(target) / SCREENSHOT)


@pytest.fixture(scope="module")
def queued_site(
    tmp_path_factory: pytest.TempPathFactory, sandbox_server: SandboxInfo
) -> Iterator[DagsterSite]:
    """The production instance (a queue, one run per customer) and its daemon; a schedule tick a minute."""
    site = DagsterSite.create(
        tmp_path_factory.mktemp("queued"),
        sandbox=sandbox_server,
        instance="queued",
        extra_env={"MAILROOM_AUTO_SYNC_CRON": "* * * * *"},
    )
    # Due from the start (auto-sync on, never synced), so the first minute's tick is spent while the
    # sensor test runs rather than waited for.
    site.add_customer(SCHEDULED, "alex@contoso.test", auto_sync=True)
    with site.daemon():
        yield site


def wait_for_runs_of(
    site: DagsterSite, customer: str, count: int, *, timeout: float = 150
) -> list[dg.DagsterRun]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = site.instance.get_runs(filters=dg.RunsFilter(tags={"dagster/partition": customer}))
        if len(runs) >= count:
            site.wait([r.run_id for r in runs], timeout=max(deadline - time.monotonic(), 1))
            return site.instance.get_runs(filters=dg.RunsFilter(tags={"dagster/partition": customer}))
        time.sleep(1)
    raise AssertionError(f"fewer than {count} runs for {customer!r} after {timeout} s")


def test_the_sensor_syncs_recorded_requests_one_run_per_customer_at_a_time(
    queued_site: DagsterSite, sandbox_admin: AdminClient
) -> None:
    site = queued_site
    site.add_customer("megan", "megan@contoso.test", auto_sync=False, partition=False)
    first = site.control.record_request("sync", "megan", {"folder": "inbox", "trigger": "api"})
    second = site.control.record_request("sync", "megan", {"folder": "inbox"})

    runs = wait_for_runs_of(site, "megan", 2)

    assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
    assert {run.tags["dagster/run_key"] for run in runs} == {first.run_key, second.run_key}
    assert {run.tags["trigger"] for run in runs} == {"api"}
    assert site.control.request(first.id).status == site.control.request(second.id).status == "succeeded"
    assert site.control.request(first.id).run_id in {run.run_id for run in runs}
    records = site.instance.get_run_records(filters=dg.RunsFilter(run_ids=[r.run_id for r in runs]))
    (a, b) = sorted(records, key=lambda r: r.start_time)
    assert a.end_time <= b.start_time, "two runs of one customer overlapped"
    assert site.stores.mail("megan", read_only=True).counts().emails == len(
        inbox(sandbox_admin, "megan@contoso.test")
    )


def test_the_schedule_syncs_a_due_customer(queued_site: DagsterSite, sandbox_admin: AdminClient) -> None:
    site = queued_site

    (run,) = wait_for_runs_of(site, SCHEDULED, 1, timeout=150)

    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert run.tags["trigger"] == "schedule"
    assert run.tags["dagster/schedule_name"] == "outlook_auto_sync_schedule"
    assert site.stores.mail(SCHEDULED, read_only=True).counts().emails == len(
        inbox(sandbox_admin, "alex@contoso.test")
    )


def wait_for(what: str, probe: Callable[[], T], *, timeout: float = 120) -> T:
    """Poll `probe` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := probe():
            return found
        time.sleep(0.5)
    raise AssertionError(f"no {what} after {timeout} s")


def run_worker_pid(instance: dg.DagsterInstance, run_id: str) -> int:
    """The run worker's PID, from the engine event the code server logs when it starts the process."""
    for event in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        if found := re.search(r"Started process for run \(pid: (\d+)\)", event.message or ""):
            return int(found.group(1))
    raise AssertionError(f"run {run_id} logged no run worker PID")


def test_the_request_of_a_run_killed_mid_sync_is_settled(
    queued_site: DagsterSite, sandbox_admin: AdminClient
) -> None:
    site = queued_site
    mailbox = "adele@contoso.test"
    site.add_customer("killed", mailbox, auto_sync=False, partition=False)
    # The run's message listings wait at the sandbox, so it is killed mid-sync, after it took its request.
    sandbox_admin.add_rule(path="/messages", mailbox=mailbox, action="hold", times=0, delay_ms=60_000)
    try:
        request = site.control.record_request("sync", "killed", {"folder": "inbox"})
        run_id = wait_for("run taking the request", lambda: site.control.request(request.id).run_id)
        sandbox_admin.wait_held(1, mailbox=mailbox, timeout=60)
        worker = psutil.Process(run_worker_pid(site.instance, run_id))
        helpers = worker.children(recursive=True)  # its HTML-to-text workers
        worker.kill()
        worker.wait(timeout=30)
        for helper in helpers:
            if helper.is_running():
                helper.kill()
    finally:
        sandbox_admin.set_faults(rules=[])
        sandbox_admin.release()

    # With its worker dead the run ends one of two ways, whichever comes first: an operator cancels it in the
    # UI (no retry: the request fails with the reason), or run monitoring, which asks the code server whether
    # the worker lives, fails it and the retry daemon runs it again (the request follows the retry).
    assert site.control.request(request.id).status == "submitted"
    run = site.instance.get_run_by_id(run_id)
    if run.status == dg.DagsterRunStatus.STARTED:
        site.instance.report_run_canceled(run, "Run marked as canceled: its process was killed")
    settled = wait_for(
        "settled request",
        lambda: (now := site.control.request(request.id)).status != "submitted" and now,
        timeout=240,
    )
    retries = site.instance.get_runs(filters=dg.RunsFilter(tags={"dagster/root_run_id": run_id}))
    if not retries:
        final = site.instance.get_run_by_id(run_id)
        assert settled.status == "failed"
        assert f"run {run_id} ended {final.status.value}" in settled.reason
    else:
        final = max(retries, key=lambda r: int(r.tags["dagster/retry_number"]))
        assert (settled.run_id, settled.status) == (final.run_id, "succeeded"), settled.reason
        finished = site.wait([final.run_id], timeout=120)[final.run_id]  # the op settles it as the run ends
        assert finished.status == dg.DagsterRunStatus.SUCCESS
