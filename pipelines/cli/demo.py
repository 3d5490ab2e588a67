"""`mailroom demo`: the whole pipeline on the sandbox, start to finish, in well under a minute.

It starts the sandbox (a local Microsoft 365), adds three demo customers with their Outlook connections and
Dagster partitions, launches `sync_outlook_job` for each through `dagster job launch` (a daemon-less instance,
so the runs start at once), waits for them, and prints what landed in each customer's DuckDB file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from pipelines.store import MailStore

app = typer.Typer(add_completion=False)

# (customer id, mailbox, run config of outlook_emails, what the run asks for)
DEMO_CUSTOMERS: tuple[tuple[str, str, dict[str, Any], str], ...] = (
    (
        "adele",
        "adele@contoso.test",
        {"folders": ["inbox"], "subfolders": True},
        "her Inbox and every folder in it",
    ),
    (
        "alex",
        "alex@contoso.test",
        {"folders": ["inbox", "sentitems"], "filter": "has:attachment OR is:flagged"},
        "Inbox and Sent Items, only mail with attachments or a flag",
    ),
    ("megan", "megan@contoso.test", {}, "her default folder, the Inbox (her folders have German names)"),
)
DEMO_FILTER = "has:attachment OR is:flagged"
SHOWN_SUBJECTS = 3


def _fail(message: str) -> typer.Exit:
    typer.echo(f"mailroom demo: {message}", err=True)
    return typer.Exit(1)


@app.command()
def demo(
    messages: Annotated[
        int, typer.Option(min=0, max=100_000, help="Generated messages in adele's mailbox.")
    ] = 200,
    seed: Annotated[int, typer.Option(help="Seed of the sandbox's mailboxes.")] = 1,
    data: Annotated[Path, typer.Option(help="Data directory (emptied first).")] = Path("data/demo"),
    home: Annotated[Path, typer.Option(help="DAGSTER_HOME for the demo's runs (emptied first).")] = Path(
        ".dagster_home/demo"
    ),
) -> None:
    """Sync three demo customers from the sandbox through Dagster and show what landed in DuckDB."""
    import time

    from pipelines.defs import DefsError
    from pipelines.defs.local import LocalSite, graph_env, launch_runs, run_failure, scratch_directory
    from sandbox import SandboxError, SandboxProcess

    started = time.monotonic()
    try:
        data_dir, dagster_home = scratch_directory(data), scratch_directory(home)
        typer.echo("Starting the sandbox (a local Microsoft 365 with seeded mailboxes)…")
        with SandboxProcess(seed=seed, messages=messages) as info:
            site = LocalSite(
                dagster_home,
                data_dir,
                kind="direct",
                extra_env=graph_env(
                    graph_url=info.graph_url,
                    authority=info.authority,
                    client_id=info.client_id,
                    client_secret=info.client_secret.get_secret_value(),
                    ca_bundle=str(info.ca_cert),
                ),
            )
            typer.echo(f"  Graph at {info.graph_url}; sign-in at {info.authority}\n")
            for customer_id, mailbox, _, wanted in DEMO_CUSTOMERS:
                site.add_customer(customer_id, mailbox, auto_sync=False)
                typer.echo(f"Customer {customer_id!r}: {mailbox}, app-only connection; syncing {wanted}.")
            typer.echo("\nLaunching sync_outlook_job for each customer with `dagster job launch`…")
            launches = [
                ("sync_outlook_job", c, {"ops": {"outlook_emails": {"config": config}}})
                for c, _, config, _ in DEMO_CUSTOMERS
            ]
            run_ids = launch_runs(launches, env=site.env, trigger="demo")
            runs = site.wait(run_ids, timeout=600)
    except (DefsError, SandboxError, OSError) as error:
        raise _fail(str(error)) from None
    except KeyboardInterrupt:
        raise _fail("interrupted; the sandbox and the launches were stopped") from None

    failed = 0
    for (customer_id, mailbox, _, _), run_id in zip(DEMO_CUSTOMERS, run_ids, strict=True):
        run = runs[run_id]
        typer.echo(f"\n== {customer_id} ({mailbox}): run {run_id[:8]} {run.status.value}")
        if run.status.value != "SUCCESS":
            failed += 1
            typer.echo(f"   {run_failure(site.instance, run_id)}")
            continue
        _describe(site.stores.mail(customer_id, read_only=True))

    typer.echo(f"\nDone in {time.monotonic() - started:.0f} s.")
    typer.echo(f"  Mail stores: {data_dir / 'mail'} (one DuckDB file per customer; open them read-only)")
    typer.echo(f"  Control store: {data_dir / 'control.sqlite3'}")
    typer.echo(f"  Dagster runs: DAGSTER_HOME={dagster_home} dagster-webserver -w workspace.yaml")
    typer.echo(f"  Why alex kept only some mail: mailroom filter explain '{DEMO_FILTER}'")
    typer.echo("  The whole stack with the UI, daemon and API: make dev")
    if failed:
        raise _fail(f"{failed} of {len(DEMO_CUSTOMERS)} runs failed")


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" + ("" if number == 1 else "s")


def _describe(store: MailStore) -> None:
    """Emails, folders with how many emails each, a few subjects, and the file."""
    from pipelines.store import FileQuery

    counts = store.counts()
    per_folder = []
    for folder in store.folders():
        held = store.list_files(FileQuery(folder_ids=[folder.folder_id], kinds=["email"], limit=0)).count
        if held:
            per_folder.append((folder.path, held))
    typer.echo(
        f"   {_count(counts.emails, 'email')} in {_count(len(per_folder), 'folder')}, "
        f"{_count(counts.attachments, 'attachment')}, {counts.text_characters:,} characters of text"
    )
    width = max((len(path) for path, _ in per_folder), default=0)
    for path, held in per_folder:
        typer.echo(f"     {path:<{width}}  {held:>5}")
    typer.echo("   newest:")
    for email in store.newest(SHOWN_SUBJECTS):
        received = f"{email.received_at:%Y-%m-%d}" if email.received_at else "          "
        typer.echo(f"     {received}  {email.subject or '(no subject)'}  <{email.from_address or '?'}>")
    typer.echo(f"   file: {store.path}")
