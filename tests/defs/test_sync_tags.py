"""Sync tags from a recorded request to the run: `plan_request` puts them, as files will carry them, into
`SyncConfig.tags`; tags that cannot be stored refuse the request (or fail a launchpad run) saying which."""

import dagster as dg
import pytest

from pipelines.defs._errors import BadRequest
from pipelines.defs._requests import plan_request
from pipelines.defs.config import SyncConfig
from pipelines.store import ControlStore

from .conftest import add_customer


def test_a_sync_requests_tags_become_its_run_config(control: ControlStore) -> None:
    add_customer(control, "acme")
    tagged = control.record_request("sync", "acme", {"folder": "Inbox", "tags": {"n": 7, "who": ["a", True]}})
    untagged = control.record_request("sync", "acme", {"folder": "Inbox"})

    def tags(request_id: int) -> dict:
        plan = plan_request(control.request(request_id), control)
        return plan.run.run_config["ops"]["outlook_emails"]["config"]["tags"]

    assert tags(tagged.id) == {"n": "7", "who": ["a", "True"]}
    assert tags(untagged.id) == {}
    assert SyncConfig(tags=tags(tagged.id)).sync_tags() == {"n": "7", "who": ["a", "True"]}
    assert SyncConfig().sync_tags() is None


def test_tags_that_cannot_be_stored_are_refused_by_key(control: ControlStore) -> None:
    add_customer(control, "acme")
    bad = control.record_request("sync", "acme", {"tags": {"owner": None}})
    with pytest.raises(BadRequest, match="bad tags: tag 'owner'"):
        plan_request(control.request(bad.id), control)
    with pytest.raises(dg.Failure, match="bad tags: tag 'owner'"):
        SyncConfig(tags={"owner": {"x": 1}}).sync_tags()
