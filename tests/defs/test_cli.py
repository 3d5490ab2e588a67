"""This room's `mailroom` commands as a person runs them (`demo`, `dev`, `customers add`), and the scratch
directories they clear."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from pipelines.cli import app as mailroom_app
from pipelines.cli.dev import env_script
from pipelines.defs import LaunchError
from pipelines.defs.local import free_port, open_instance, prepare_home, scratch_directory
from pipelines.store import ControlStore, mail_store_path

MAILROOM = Path(sys.executable).parent / "mailroom"


def test_scratch_directories_are_cleared_only_if_they_are_ours(tmp_path: Path) -> None:
    ours = scratch_directory(tmp_path / "demo")
    (ours / "old.duckdb").write_text("x")
    assert list(scratch_directory(ours).iterdir()) == [ours / ".mailroom-scratch"]
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "thesis.tex").write_text("years of work")
    with pytest.raises(LaunchError, match="not empty and was not made by mailroom"):
        scratch_directory(theirs)
    assert (theirs / "thesis.tex").exists()


def test_the_env_file_of_mailroom_dev_makes_mailroom_and_dagster_work_in_a_bare_shell(tmp_path: Path) -> None:
    # A second terminal has no virtualenv active: after `source env.sh`, the README runs `mailroom customers
    # add` and `dagster job launch` by name.
    env_file = tmp_path / "env.sh"
    stack = {"MAILROOM_DATA_DIR": str(tmp_path / "it's data"), "DAGSTER_HOME": str(tmp_path), "HOME": "/x"}
    env_file.write_text(env_script(stack, MAILROOM.parent))
    probe = f'source "{env_file}" && command -v mailroom && command -v dagster && echo "$MAILROOM_DATA_DIR"'
    done = subprocess.run(
        ["/bin/bash", "--noprofile", "--norc", "-c", probe],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        str(MAILROOM),
        str(MAILROOM.parent / "dagster"),
        stack["MAILROOM_DATA_DIR"],
    ]
    assert "export HOME=" not in env_file.read_text()  # only the stack's own variables


def test_customers_add_changes_an_existing_customers_settings_and_keeps_its_connection(
    tmp_path: Path,
) -> None:
    # The way to change a customer's interval from the command line; it asked for --mailbox again, and
    # re-running it switched auto-sync back on.
    key = Fernet.generate_key().decode()
    env = {"MAILROOM_DATA_DIR": str(tmp_path), "MAILROOM_SECRET_KEY": key, "DAGSTER_HOME": None}

    def mailroom(*args: str) -> tuple[int, str]:
        done = CliRunner().invoke(mailroom_app, ["customers", *args], env=env)
        return done.exit_code, done.output

    code, out = mailroom("add", "acme", "--mailbox", "adele@contoso.test", "--no-auto-sync")
    assert code == 0, out
    assert "customer 'acme': connection 1 to adele@contoso.test (app); auto-sync off" in out
    code, out = mailroom("add", "acme", "--interval", "6h", "--folder", "Inbox/Receipts")
    assert code == 0, out
    assert "customer 'acme': connection 1 to adele@contoso.test (app) kept; auto-sync off" in out
    code, out = mailroom("add", "acme", "--auto-sync")
    assert "connection 1 to adele@contoso.test (app) kept; auto-sync every 6 h 0 min" in out
    control = ControlStore(tmp_path / "control.sqlite3", secret_key=key)
    customer = control.customer("acme")
    assert customer is not None
    assert (customer.interval_minutes, customer.default_folder) == (360, "Inbox/Receipts")
    assert [c.mailbox for c in control.connections(customer.id)] == ["adele@contoso.test"]

    code, out = mailroom("add", "newco", "--interval", "6h")
    assert code == 2
    assert "--auth app reads a mailbox by its UPN: give --mailbox" in out
    assert control.customer("newco") is None
    code, out = mailroom("add", "acme", "--tenant", "contoso.onmicrosoft.com")
    assert code == 2
    assert "--tenant belongs to a connection: give --mailbox with it" in out


def test_customers_remove_of_a_busy_customer_says_what_state_it_is_left_in(tmp_path: Path) -> None:
    # It said only "try again", while the customer stayed marked deleted with no delete run queued.
    from pipelines.sync._lock import run_lock

    key = Fernet.generate_key().decode()
    env = {"MAILROOM_DATA_DIR": str(tmp_path), "MAILROOM_SECRET_KEY": key, "DAGSTER_HOME": None}
    runner = CliRunner()
    added = runner.invoke(mailroom_app, ["customers", "add", "acme", "--mailbox", "a@contoso.test"], env=env)
    assert added.exit_code == 0, added.output
    control = ControlStore(tmp_path / "control.sqlite3", secret_key=key)
    store = mail_store_path(tmp_path, "acme")
    with run_lock(store, customer_id="acme"):  # a sync run's hold on the store
        busy = runner.invoke(mailroom_app, ["customers", "remove", "acme", "--yes"], env=env)
    assert busy.exit_code == 1
    assert "another run is working on the mail store of customer 'acme'" in busy.output
    assert "is marked deleted already (the API answers 404 for it and runs queued for it do nothing)" in (
        busy.output
    )
    assert control.customer_deleted("acme")
    again = runner.invoke(mailroom_app, ["customers", "remove", "acme", "--yes"], env=env)
    assert again.exit_code == 0, again.output
    assert control.customer("acme", include_deleted=True) is None


@pytest.mark.slow
def test_customers_add_and_remove_keep_the_partition_in_step(tmp_path: Path) -> None:
    home = prepare_home(tmp_path / "home", "direct")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILROOM_", "DAGSTER_"))}
    env |= {"MAILROOM_DATA_DIR": str(tmp_path / "data"), "DAGSTER_HOME": str(home)}

    def mailroom(*args: str, **changes: str | None) -> str:
        run_env = {k: v for k, v in (env | changes).items() if v is not None}
        done = subprocess.run([MAILROOM, *args], env=run_env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "Dagster partition 'acme' added" in mailroom(
        "customers", "add", "acme", "--mailbox", "a@contoso.test"
    )
    with open_instance(home) as instance:
        assert instance.has_dynamic_partition("customers", "acme")
    assert "was there already" in mailroom("customers", "add", "acme", "--mailbox", "a@contoso.test")
    assert "Dagster partition 'acme' removed" in mailroom("customers", "remove", "acme", "--yes")
    with open_instance(home) as instance:
        assert not instance.has_dynamic_partition("customers", "acme")
    unset = mailroom("customers", "add", "solo", "--mailbox", "s@contoso.test", DAGSTER_HOME=None)
    assert "Dagster partition not added: DAGSTER_HOME is not set" in unset


@pytest.mark.slow
def test_the_demo_syncs_three_customers_and_says_what_landed(tmp_path: Path) -> None:
    done = subprocess.run(
        [MAILROOM, "demo", "--messages", "20", "--data", tmp_path / "data", "--home", tmp_path / "home"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for customer in ("adele", "alex", "megan"):
        assert f"== {customer} ({customer}@contoso.test): run " in out
    assert out.count(" SUCCESS") == 3
    assert "Posteingang" in out  # megan's Inbox, by its German name
    megan = out[out.index("== megan") :]
    assert " emails in 1 folder, " in megan  # it said "1 folders"
    assert str(tmp_path / "data" / "mail") in out
    assert "mailroom filter explain 'has:attachment OR is:flagged'" in out
    assert len(list((tmp_path / "data" / "mail").glob("*.duckdb"))) == 3


@pytest.mark.slow
def test_dev_serves_everything_and_stops_it_all_on_ctrl_c(tmp_path: Path) -> None:
    port, api_port = free_port(), free_port()
    dev = subprocess.Popen(
        [
            MAILROOM,
            "dev",
            "--port",
            str(port),
            "--api-port",
            str(api_port),
            "--messages",
            "20",
            "--data",
            tmp_path / "data",
            "--home",
            tmp_path / "home",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 240
        while not lines or lines[-1] != "Ctrl-C stops everything.\n":
            assert time.monotonic() < deadline, "".join(lines)
            line = dev.stdout.readline()
            assert line, "mailroom dev exited early:\n" + "".join(lines)
            lines.append(line)
        assert httpx.get(f"http://127.0.0.1:{port}/server_info").status_code == 200
        # A key made without the stack's environment goes to ./data's control store: the API refuses it.
        assert any("mailroom api-keys create NAME, after sourcing env.sh" in line for line in lines)
        env_file = tmp_path / "home" / "env.sh"
        made = subprocess.run(
            [
                "/bin/bash",
                "--noprofile",
                "--norc",
                "-c",
                f'source "{env_file}" && mailroom api-keys create t',
            ],
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert made.returncode == 0, made.stderr
        whoami = httpx.get(
            f"http://127.0.0.1:{api_port}/whoami",
            headers={"authorization": f"Bearer {made.stdout.strip()}", "customer-id": "adele"},
        )
        assert whoami.json()["organization_supplied_user_id"] == "adele"
        assert httpx.get(f"http://127.0.0.1:{api_port}/health").json()["status"] == "ok"
        assert (tmp_path / "home" / "env.sh").stat().st_mode & 0o077 == 0
        children = psutil.Process(dev.pid).children(recursive=True)
        assert len(children) >= 4  # sandbox, webserver, daemon, API (and what they started)

        dev.send_signal(signal.SIGINT)  # what Ctrl-C in its terminal sends
        rest, _ = dev.communicate(timeout=120)
    finally:
        if dev.poll() is None:
            dev.kill()
            dev.communicate()
    assert dev.returncode == 0, rest
    assert "Stopped: the API, the daemon, the webserver and the sandbox." in rest
    _, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], f"still running after Ctrl-C: {[p.cmdline() for p in alive]}"
