"""The code location loads, with a Dagster deprecation anywhere in our code failing the test, and holds the
names the rest of Mailroom relies on."""

import subprocess
import sys
from pathlib import Path

import dagster as dg

from pipelines.definitions import defs

ROOT = Path(__file__).resolve().parents[2]

# A fresh interpreter, so that warnings raised while our modules import are seen (pytest may have imported
# them already). Warnings are attributed to the caller, so the filter catches our uses, not Dagster's own.
LOAD = """
import warnings
warnings.filterwarnings("error", category=DeprecationWarning, module=r"pipelines(\\.|$)")
import dagster as dg
from pipelines.definitions import defs
dg.Definitions.validate_loadable(defs)
defs.get_repository_def().get_all_jobs()
"""


def test_definitions_load_without_deprecated_dagster_apis() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", LOAD], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]


def test_the_names_other_rooms_use() -> None:
    repository = defs.get_repository_def()
    assert {job.name for job in repository.get_all_jobs()} >= {
        "sync_outlook_job",
        "resync_emails_job",
        "delete_emails_job",
        "delete_customer_job",
        "check_outlook_freshness_job",
    }
    assert {s.name for s in repository.schedule_defs} == {
        "outlook_auto_sync_schedule",
        "check_outlook_freshness_schedule",
    }
    assert {s.name for s in repository.sensor_defs} == {"api_requests_sensor"}
    assert {key.to_user_string() for key in repository.asset_graph.get_all_asset_keys()} == {
        "outlook_emails",
        "email_search_index",
    }
    checks = {key.name for key in repository.asset_graph.asset_check_keys}
    assert checks == {"outlook_emails_ids_unique", "outlook_emails_have_bodies", "outlook_emails_fresh"}


def test_every_customer_job_is_partitioned_by_customer_and_runs_in_process() -> None:
    for name in ("sync_outlook_job", "resync_emails_job", "delete_emails_job", "delete_customer_job"):
        job = defs.resolve_job_def(name)
        assert job.partitions_def == dg.DynamicPartitionsDefinition(name="customers"), name
        assert job.executor_def is dg.in_process_executor, name
        assert job.tags["trigger"] == "manual", name
