"""Fixtures of the Dagster room's tests: a control store and the `stores` resource on a temporary data
directory, a Dagster test instance, and a way to add customers with an Outlook connection.

The end-to-end machinery (a temporary DAGSTER_HOME, `dagster job launch` polled to the end, a daemon and a
webserver stopped by their PIDs) is in `tests/defs/harness.py`, for other rooms' tests to import too.
"""

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from pipelines.defs import MailroomStores
from pipelines.store import ControlStore, Customer, CustomerUpdate


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def stores(data_dir: Path) -> MailroomStores:
    return MailroomStores(data_dir=str(data_dir))


@pytest.fixture
def control(stores: MailroomStores) -> ControlStore:
    return stores.control()


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def add_customer(
    control: ControlStore,
    customer_id: str,
    mailbox: str | None = "adele@contoso.test",
    *,
    auto_sync: bool = True,
    interval_minutes: int | None = None,
) -> Customer:
    """A customer with (unless `mailbox` is None) an app-only Outlook connection to `mailbox`."""
    fields: dict[str, object] = {"auto_sync_sources": ["OUTLOOK"] if auto_sync else []}
    if interval_minutes is not None:
        fields["auto_sync_interval_minutes"] = interval_minutes
    (customer,) = control.update_customers([customer_id], CustomerUpdate(**fields))  # type: ignore[arg-type]
    if mailbox is not None:
        control.save_connection(customer.id, mailbox, auth_kind="app")
    return customer
