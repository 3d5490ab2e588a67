"""The harness's own rules: where Chromium is missing, the screenshot test skips, except in CI (which sets
MAILROOM_REQUIRE_CHROMIUM=1, see .ci/run), where it fails and says why."""

from pathlib import Path

import pytest

from pipelines.defs.local import REPO_ROOT, prepare_home

from .harness import require_chromium


def test_a_missing_chromium_skips_outside_ci(tmp_path: Path) -> None:
    with pytest.raises(pytest.skip.Exception, match="chromium package"):
        require_chromium(tmp_path / "chromium", env={})


def test_a_missing_chromium_fails_when_ci_requires_it(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match=r"no .*chromium .*MAILROOM_REQUIRE_CHROMIUM=1"):
        require_chromium(tmp_path / "chromium", env={"MAILROOM_REQUIRE_CHROMIUM": "1"})


def test_a_present_chromium_passes(tmp_path: Path) -> None:
    binary = tmp_path / "chromium"
    binary.touch()
    require_chromium(binary, env={"MAILROOM_REQUIRE_CHROMIUM": "1"})


def test_ci_requires_chromium() -> None:
    assert "export MAILROOM_REQUIRE_CHROMIUM=1" in (REPO_ROOT / ".ci" / "run").read_text()


def test_a_prepared_home_has_its_storage_before_any_process_opens_it(tmp_path: Path) -> None:
    # A daemon and the test (or the webserver) opening a fresh home at once race to create the same tables.
    home = prepare_home(tmp_path / "home", "queued")
    assert {"history/runs.db", "history/runs/index.db", "schedules/schedules.db"} <= {
        str(p.relative_to(home)) for p in home.rglob("*.db")
    }
