"""`mailroom dev`: the whole stack on this machine for exploring the UI, stopped cleanly on Ctrl-C.

It starts the sandbox, the Dagster webserver and daemon on the production instance config (`dagster.yaml`:
the queue, one run per customer, run retries) and the HTTP API; adds the demo customers with auto-sync on
and records a sync request for each, as the API would, so the sensor has work at once; then waits. Every
child runs in a session of its own and is stopped by its PID, newest first, on Ctrl-C (or SIGTERM).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from contextlib import ExitStack

    from pipelines.defs.local import Service

app = typer.Typer(add_completion=False)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"mailroom dev: {message}", err=True)
    return typer.Exit(1)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@app.command()
def dev(
    port: Annotated[int, typer.Option(help="Port of the Dagster UI on 127.0.0.1.")] = 3000,
    api_port: Annotated[int, typer.Option(help="Port of the HTTP API on 127.0.0.1.")] = 8000,
    api: Annotated[bool, typer.Option(help="Also serve the HTTP API.")] = True,
    messages: Annotated[
        int, typer.Option(min=0, max=100_000, help="Generated messages in adele's mailbox.")
    ] = 200,
    seed: Annotated[int, typer.Option(help="Seed of the sandbox's mailboxes.")] = 1,
    data: Annotated[Path, typer.Option(help="Data directory (emptied at start).")] = Path("data/dev"),
    home: Annotated[Path, typer.Option(help="DAGSTER_HOME (emptied at start).")] = Path(".dagster_home/dev"),
) -> None:
    """Serve the sandbox, Dagster (webserver and daemon) and the API until Ctrl-C."""
    import signal
    from contextlib import ExitStack

    from pipelines.defs import DefsError
    from sandbox import SandboxError

    # A shell that starts us in the background (`cmd &` in a script, CI) leaves SIGINT ignored, and Python
    # keeps an inherited SIG_IGN: install both handlers so Ctrl-C and SIGTERM always stop everything.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with ExitStack() as running:
            try:
                watched = _start(running, port, api_port if api else None, messages, seed, data, home)
            except (DefsError, SandboxError, OSError) as error:
                raise _fail(str(error)) from None
            _watch(watched)
    except KeyboardInterrupt:
        pass
    typer.echo("\nStopped: the API, the daemon, the webserver and the sandbox.")


def _start(
    running: ExitStack, port: int, api_port: int | None, messages: int, seed: int, data: Path, home: Path
) -> list[Service]:
    import os
    import sys

    from pipelines.cli.demo import DEMO_CUSTOMERS
    from pipelines.defs.local import (
        LocalSite,
        Service,
        answers,
        graph_env,
        scratch_directory,
        webserver,
        webserver_ready,
    )
    from sandbox import SandboxProcess

    data_dir, dagster_home = scratch_directory(data), scratch_directory(home)
    typer.echo("Starting the sandbox…")
    info = running.enter_context(SandboxProcess(seed=seed, messages=messages))
    graph = graph_env(
        graph_url=info.graph_url,
        authority=info.authority,
        client_id=info.client_id,
        client_secret=info.client_secret.get_secret_value(),
        ca_bundle=str(info.ca_cert),
    )
    api_env = {"MAILROOM_API_HOST": "127.0.0.1", "MAILROOM_API_PORT": str(api_port or 0)}
    site = LocalSite(dagster_home, data_dir, kind="queued", extra_env=graph | api_env)
    for customer_id, mailbox, _, _ in DEMO_CUSTOMERS:
        site.add_customer(customer_id, mailbox, auto_sync=True)
        site.control.record_request("sync", customer_id, {"trigger": "dev"})

    typer.echo("Starting the Dagster webserver and daemon…")
    web = running.enter_context(webserver(site.env, port=port, log_path=site.logs / "webserver.log"))
    web.wait_until(webserver_ready(port), timeout=120, what="answer on /server_info")
    watched = [web, running.enter_context(site.daemon(timeout=120))]
    if api_port is not None:
        typer.echo("Starting the HTTP API…")
        argv = [str(Path(sys.executable).parent / "mailroom"), "api"]
        service = running.enter_context(
            Service("mailroom api", argv, env=site.env, log_path=site.logs / "api.log")
        )
        service.wait_until(
            answers(f"http://127.0.0.1:{api_port}/health"), timeout=60, what="answer on /health"
        )
        watched.append(service)

    env_file = dagster_home / "env.sh"
    env_file.write_text(env_script(site.env, Path(sys.executable).parent))
    os.chmod(env_file, 0o600)  # it holds the sandbox's client secret and the secret key
    customers = ", ".join(c for c, _, _, _ in DEMO_CUSTOMERS)
    typer.echo(
        f"\nDagster UI  http://127.0.0.1:{port}   customers {customers}: the sensor is syncing them now"
    )
    if api_port is not None:
        typer.echo(
            f"HTTP API    http://127.0.0.1:{api_port}/docs   (an API key: mailroom api-keys create NAME, "
            "after sourcing env.sh below: keys live in this stack's control store)"
        )
    typer.echo(f"Sandbox     {info.admin_url}/docs")
    typer.echo(f"Logs        {site.logs}")
    typer.echo(f"Elsewhere:  source {env_file}   then mailroom …, dagster job launch -w workspace.yaml …")
    typer.echo("Ctrl-C stops everything.")
    return watched


def env_script(env: dict[str, str], bin_dir: Path) -> str:
    """The shell lines a second terminal sources: the stack's `MAILROOM_*` and `DAGSTER_*` variables, and
    this installation's scripts first on PATH, so `mailroom` and `dagster` work there without activating
    the virtualenv (the README's next steps run them by name)."""
    import shlex

    exported = {k: v for k, v in env.items() if k.startswith(("MAILROOM_", "DAGSTER_"))}
    lines = [f"export {k}={shlex.quote(v)}\n" for k, v in sorted(exported.items())]
    lines.append(f'export PATH={shlex.quote(str(bin_dir))}:"$PATH"\n')
    return "".join(lines)


def _watch(services: list[Service]) -> None:
    """Wait until interrupted; a service that dies ends the session with its log's tail."""
    import time

    while True:
        time.sleep(1)
        for service in services:
            if not service.alive():
                raise _fail(f"{service.name} stopped; the end of its log:\n{service.log_tail()}")
