"""The code location loads without a single Dagster deprecation warning, and holds the names the rest of
Mailroom relies on.

The deprecation guard records every warning raised while a fresh interpreter imports `pipelines.definitions`
and builds and validates `defs`, wherever Dagster attributes it: most of Dagster's deprecations name one of
Dagster's own frames (its decorators), not the module that used the deprecated API, so a filter on our
modules' names sees almost none of them. A negative control proves the guard fires on a deprecated API.
No allow-list: nothing needs one today. If Dagster ever warns where we cannot avoid it, name the warning
here with the reason.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from pipelines.definitions import defs

ROOT = Path(__file__).resolve().parents[2]

# Run as `python -c GUARD <module>`: import the module, build and validate its `defs`, and print the warnings
# that mean "deprecated" (Python's and Dagster's own: SupersessionWarning is a FutureWarning) as JSON.
GUARD = """
import importlib, json, sys, warnings

DEPRECATIONS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import dagster as dg
    defs = importlib.import_module(sys.argv[1]).defs
    dg.Definitions.validate_loadable(defs)
    repository = defs.get_repository_def()
    repository.get_all_jobs()
    repository.asset_graph.get_all_asset_keys()
    repository.schedule_defs, repository.sensor_defs
found = [
    {"category": w.category.__name__, "message": str(w.message), "where": f"{w.filename}:{w.lineno}"}
    for w in caught
    if issubclass(w.category, DEPRECATIONS)
]
print(json.dumps(found))
"""

# What the negative control loads: two deprecated Dagster APIs, which Dagster reports from its own frames.
DEPRECATED_DEFS = """
import dagster as dg

upstream = dg.SourceAsset(key="upstream")


@dg.asset(auto_materialize_policy=dg.AutoMaterializePolicy.eager())
def downstream(upstream) -> None:
    return None


defs = dg.Definitions(assets=[upstream, downstream])
"""


def deprecations(module: str, *, path: Path | None = None) -> list[dict[str, str]]:
    """The deprecation warnings raised while a fresh interpreter loads `module`'s `defs`."""
    env = dict(os.environ)
    if path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(path), str(ROOT), env.get("PYTHONPATH", "")])
    loaded = subprocess.run(
        [sys.executable, "-c", GUARD, module],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    return json.loads(loaded.stdout.strip().splitlines()[-1])


def test_definitions_load_without_deprecated_dagster_apis() -> None:
    assert deprecations("pipelines.definitions") == []


def test_the_guard_catches_deprecations_dagster_reports_from_its_own_frames(tmp_path: Path) -> None:
    (tmp_path / "deprecated_defs.py").write_text(DEPRECATED_DEFS)

    found = deprecations("deprecated_defs", path=tmp_path)

    messages = " ".join(f["message"] for f in found)
    assert "`SourceAsset` is deprecated" in messages
    assert "`auto_materialize_policy`" in messages
    # The point of recording everything: some are attributed to Dagster's files, not to the module.
    assert any("dagster" in f["where"] and "deprecated_defs" not in f["where"] for f in found)


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
