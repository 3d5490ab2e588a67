"""Running Dagster on one machine: an instance directory made from the repo's yaml, the webserver and the
daemon as child processes stopped by their PIDs, and launching runs with `dagster job launch` and waiting.

Used by `mailroom dev`, `demo` and `customers`, and by the end-to-end tests (tests/defs/harness.py).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal

import dagster as dg
import httpx

from pipelines.defs import _tags
from pipelines.defs._clock import FINISHED
from pipelines.defs._errors import LaunchError
from pipelines.defs.partitions import add_customer_partition
from pipelines.defs.resources import MailroomStores
from pipelines.store import ControlStore, Customer, CustomerUpdate

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKSPACE = REPO_ROOT / "workspace.yaml"
# "queued": the production instance (dagster.yaml: queue, per-customer limit, retries; needs the daemon).
# "direct": the daemon-less variant (dagster-ci.yaml): runs start as soon as they are launched.
INSTANCE_FILES = {"queued": REPO_ROOT / "dagster.yaml", "direct": REPO_ROOT / "dagster-ci.yaml"}
InstanceKind = Literal["queued", "direct"]
_BIN = Path(sys.executable).parent


def prepare_home(home: Path, kind: InstanceKind = "queued") -> Path:
    """Make `home` a DAGSTER_HOME whose dagster.yaml is the repo's file of that kind, its storage created;
    returns it. Creating the SQLite storage here, before any daemon, webserver or run starts, matters:
    two processes opening a fresh home at once race to create the same tables, and one of them fails."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(INSTANCE_FILES[kind], home / "dagster.yaml")
    with open_instance(home):
        pass
    return home


def open_instance(home: Path) -> dg.DagsterInstance:
    """The instance in `home`, without touching this process's DAGSTER_HOME."""
    return dg.DagsterInstance.from_config(str(home))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Service:
    """A long-running child process in its own session (so a terminal's Ctrl-C reaches only us), logging
    to a file, stopped by its PID: SIGTERM, then SIGKILL after a grace period."""

    def __init__(self, name: str, argv: list[str], *, env: Mapping[str, str], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = dict(env)
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.process is None:
            raise LaunchError(f"{self.name} is not running")
        return self.process.pid

    def start(self) -> Service:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (kept open for the child's lifetime)
        self.process = subprocess.Popen(  # noqa: S603 (our own tools, fixed arguments)
            self.argv,
            env=self.env,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_until(self, ready: Callable[[], bool], *, timeout: float, what: str) -> None:
        """Poll `ready` until it holds; LaunchError with the log's tail if the process dies or time is up."""
        deadline = time.monotonic() + timeout
        while not ready():
            if not self.alive():
                raise LaunchError(f"{self.name} exited before {what}; log: {self.log_tail()}")
            if time.monotonic() > deadline:
                raise LaunchError(f"{self.name}: no {what} within {timeout:.0f} s; log: {self.log_tail()}")
            time.sleep(0.25)

    def log_tail(self, size: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-size:].strip() or "(empty)"
        except OSError:
            return "(no log)"

    def stop(self, grace: float = 20.0) -> None:
        process = self.process
        if process is not None:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    os.kill(process.pid, signal.SIGKILL)
                    process.wait(timeout=grace)
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Service:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def webserver(env: Mapping[str, str], *, port: int, log_path: Path) -> Service:
    """`dagster-webserver` on 127.0.0.1:`port` for the workspace (ready once `webserver_ready(port)`)."""
    argv = [str(_BIN / "dagster-webserver"), "-w", str(WORKSPACE), "-h", "127.0.0.1", "-p", str(port)]
    return Service("dagster-webserver", argv, env=env, log_path=log_path)


def answers(url: str) -> Callable[[], bool]:
    """A readiness probe: True once `url` answers 200."""

    def ready() -> bool:
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    return ready


def webserver_ready(port: int) -> Callable[[], bool]:
    return answers(f"http://127.0.0.1:{port}/server_info")


def daemon(env: Mapping[str, str], *, log_path: Path) -> Service:
    """`dagster-daemon run` for the workspace: the run queue, sensors, schedules, run retries."""
    argv = [str(_BIN / "dagster-daemon"), "run", "-w", str(WORKSPACE)]
    return Service("dagster-daemon", argv, env=env, log_path=log_path)


def daemon_ready(instance: dg.DagsterInstance) -> Callable[[], bool]:
    """True once every daemon the instance needs has sent a heartbeat."""

    def ready() -> bool:
        statuses = instance.get_daemon_statuses()
        return bool(statuses) and all(status.healthy for status in statuses.values())

    return ready


def launch_command(
    job: str, customer_id: str, run_config: Mapping[str, Any], *, trigger: str, run_id: str
) -> list[str]:
    """`dagster job launch` of one customer's partition, as an argv."""
    return [
        str(_BIN / "dagster"),
        "job",
        "launch",
        "-w",
        str(WORKSPACE),
        "-j",
        job,
        "--run-id",
        run_id,
        "--tags",
        json.dumps(_tags.run_tags(customer_id, trigger)),
        "--config-json",
        json.dumps(dict(run_config)),
    ]


def launch_runs(
    launches: Iterable[tuple[str, str, Mapping[str, Any]]],
    *,
    env: Mapping[str, str],
    trigger: str,
    timeout: float = 1800.0,
) -> list[str]:
    """Launch (job, customer id, run config) each with `dagster job launch`, all at once; their run ids.

    Each command returns once its run is queued (an instance with a daemon) or, daemon-less, once the run
    has ended (the command's own code server waits for the runs it started); `wait_for_runs` gives the
    outcome either way. If one launch fails, the others are stopped by their PIDs.
    """
    started: list[tuple[str, str, subprocess.Popen[bytes]]] = []
    try:
        for job, customer_id, run_config in launches:
            run_id = str(uuid.uuid4())
            argv = launch_command(job, customer_id, run_config, trigger=trigger, run_id=run_id)
            process = subprocess.Popen(  # noqa: S603 (our own tool, fixed arguments)
                argv,
                env=dict(env),
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            started.append((customer_id, run_id, process))
        for customer_id, _, process in started:
            try:
                output, _ = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                raise LaunchError(
                    f"dagster job launch for {customer_id!r} took over {timeout:.0f} s"
                ) from None
            if process.returncode != 0:
                tail = output.decode(errors="replace").strip()[-2000:]
                raise LaunchError(
                    f"dagster job launch for {customer_id!r} failed (exit {process.returncode}): {tail}"
                )
    finally:
        for _, _, process in started:
            if process.poll() is None:
                process.terminate()  # SIGTERM first, so the command can stop the code server it started
                try:
                    process.communicate(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.communicate()
    return [run_id for _, run_id, _ in started]


def wait_for_runs(
    instance: dg.DagsterInstance, run_ids: Iterable[str], *, timeout: float = 300.0, poll: float = 0.5
) -> dict[str, dg.DagsterRun]:
    """Poll until every run has finished (success, failure or canceled); LaunchError on timeout."""
    pending = set(run_ids)
    done: dict[str, dg.DagsterRun] = {}
    deadline = time.monotonic() + timeout
    while pending:
        for run_id in sorted(pending):
            run = instance.get_run_by_id(run_id)
            if run is not None and run.status in FINISHED:
                done[run_id] = run
                pending.discard(run_id)
        if pending:
            if time.monotonic() > deadline:
                states = {r: getattr(instance.get_run_by_id(r), "status", None) for r in pending}
                raise LaunchError(f"runs still unfinished after {timeout:.0f} s: {states}")
            time.sleep(poll)
    return done


def run_failure(instance: dg.DagsterInstance, run_id: str) -> str:
    """Why a run failed, for a person: the first failed step's own description (a `dg.Failure`) or the
    innermost error's message, else a pointer to the UI."""
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        failure = record.dagster_event.step_failure_data if record.dagster_event else None
        if failure is None:
            continue
        if failure.user_failure_data is not None and failure.user_failure_data.description:
            return failure.user_failure_data.description
        error = failure.error
        while error is not None and error.cause is not None:
            error = error.cause
        if error is not None:
            return error.message.strip()
    return f"run {run_id} failed; see its logs in the Dagster UI"


def graph_env(
    *, graph_url: str, authority: str, client_id: str, client_secret: str, ca_bundle: str | None = None
) -> dict[str, str]:
    """The MAILROOM_* variables that point Mailroom at a Graph endpoint and its sign-in authority."""
    env = {
        "MAILROOM_GRAPH_URL": graph_url,
        "MAILROOM_AUTHORITY": authority,
        "MAILROOM_CLIENT_ID": client_id,
        "MAILROOM_CLIENT_SECRET": client_secret,
    }
    if ca_bundle:
        env["MAILROOM_CA_BUNDLE"] = ca_bundle
    return env


class LocalSite:
    """A DAGSTER_HOME, a data directory and the environment of every process started for them.

    The environment is this process's minus any MAILROOM_* and DAGSTER_* variables, plus DAGSTER_HOME,
    MAILROOM_DATA_DIR, a fresh MAILROOM_SECRET_KEY and `extra_env` (the Graph settings, typically).
    """

    def __init__(
        self,
        home: Path,
        data_dir: Path,
        *,
        kind: InstanceKind,
        extra_env: Mapping[str, str] | None = None,
        logs: Path | None = None,
    ) -> None:
        from cryptography.fernet import Fernet

        self.home = prepare_home(home, kind)
        self.data_dir = data_dir
        self.logs = logs or home / "logs"
        self.secret_key = Fernet.generate_key().decode()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILROOM_", "DAGSTER_"))}
        env |= {
            "DAGSTER_HOME": str(home),
            "MAILROOM_DATA_DIR": str(data_dir),
            "MAILROOM_SECRET_KEY": self.secret_key,
        }
        self.env = env | dict(extra_env or {})
        self._instance: dg.DagsterInstance | None = None

    def __repr__(self) -> str:
        return f"LocalSite(home={str(self.home)!r}, data_dir={str(self.data_dir)!r})"

    @property
    def instance(self) -> dg.DagsterInstance:
        if self._instance is None:
            self._instance = open_instance(self.home)
        return self._instance

    @property
    def stores(self) -> MailroomStores:
        return MailroomStores(data_dir=str(self.data_dir), secret_key=self.secret_key)

    @property
    def control(self) -> ControlStore:
        return self.stores.control()

    def add_customer(
        self, customer_id: str, mailbox: str, *, auto_sync: bool = True, partition: bool = True
    ) -> Customer:
        """A customer with an app-only connection to `mailbox`, and (unless told not to) its partition."""
        update = CustomerUpdate(auto_sync_sources=["OUTLOOK"] if auto_sync else [])
        (customer,) = self.control.update_customers([customer_id], update)
        self.control.save_connection(customer.id, mailbox, auth_kind="app")
        if partition:
            add_customer_partition(self.instance, customer_id)
        return customer

    def launch(
        self, job: str, customer_id: str, run_config: Mapping[str, Any] | None = None, *, trigger: str
    ) -> str:
        """`dagster job launch` of one partition; its run id (the run may still be queued or running)."""
        (run_id,) = launch_runs([(job, customer_id, run_config or {})], env=self.env, trigger=trigger)
        return run_id

    def wait(self, run_ids: Iterable[str], *, timeout: float = 300.0) -> dict[str, dg.DagsterRun]:
        return wait_for_runs(self.instance, run_ids, timeout=timeout)

    @contextmanager
    def daemon(self, *, timeout: float = 90.0) -> Iterator[Service]:
        """`dagster-daemon run` for this site, healthy before the block starts, stopped by its PID after."""
        with daemon(self.env, log_path=self.logs / "daemon.log") as service:
            service.wait_until(daemon_ready(self.instance), timeout=timeout, what="healthy daemons")
            yield service

    @contextmanager
    def webserver(self, port: int | None = None, *, timeout: float = 90.0) -> Iterator[int]:
        """`dagster-webserver` on 127.0.0.1 (a free port unless given); yields the port; stopped by PID."""
        port = port or free_port()
        with webserver(self.env, port=port, log_path=self.logs / "webserver.log") as service:
            service.wait_until(webserver_ready(port), timeout=timeout, what="answer on /server_info")
            yield port


_MARKER = ".mailroom-scratch"


def scratch_directory(path: Path) -> Path:
    """Empty `path` for a fresh start, refusing to touch a directory this function did not make.

    The demo and `mailroom dev` start from scratch each time (their sandbox is new, so old delta links
    would point nowhere); a marker file says a directory is theirs to clear.
    """
    path = path.resolve()
    if path.exists() and any(path.iterdir()):
        if not (path / _MARKER).exists():
            raise LaunchError(f"{path} is not empty and was not made by mailroom; choose another directory")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / _MARKER).write_text("made by mailroom demo/dev; emptied at each start\n")
    return path
