"""`mailroom sync`: run the sync engine for one customer, with a progress bar, and print the run's record."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from pipelines.sync import SyncResult

app = typer.Typer(no_args_is_help=False, add_completion=False)


@app.command("sync")
def sync(
    customer: Annotated[str, typer.Option("--customer", "-c", help="The customer's id")],
    folder: Annotated[
        list[str] | None,
        typer.Option(
            "--folder",
            "-f",
            help="Well-known name, display-name path (Inbox/Receipts) or id; repeatable "
            "[default: the customer's default folder, else the Inbox]",
        ),
    ] = None,
    subfolders: Annotated[bool, typer.Option(help="Also every folder below each folder")] = False,
    filter: Annotated[
        str | None,
        typer.Option(help="Filter, as text or Carbon JSON [default: the customer's default filter]"),
    ] = None,
    attachments: Annotated[bool, typer.Option(help="Download attachment content (metadata always)")] = False,
    one_off: Annotated[
        bool, typer.Option(help="List once with the filter pushed to Graph instead of delta rounds")
    ] = False,
    connection: Annotated[int | None, typer.Option(help="Connection id, if the customer has several")] = None,
    json: Annotated[bool, typer.Option("--json", help="Print the run record as JSON")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar (on a terminal)")] = True,
) -> None:
    """Sync a customer's Outlook mailbox into their DuckDB file and print what the run did.

    Needs MAILROOM_DATA_DIR and MAILROOM_SECRET_KEY (the stores) and MAILROOM_CLIENT_ID, MAILROOM_TENANT_ID,
    MAILROOM_CLIENT_SECRET (the app registration); see the README.
    """
    from pydantic import ValidationError
    from rich.console import Console

    from pipelines.settings import Settings, SettingsError
    from pipelines.sync import SyncError, SyncOptions, sync_customer

    errors = Console(stderr=True)
    try:
        options = SyncOptions(
            folders=tuple(folder) if folder else None,
            subfolders=subfolders,
            filter=filter,
            attachments=attachments,
            one_off=one_off,
            connection_id=connection,
            trigger="cli",
        )
        settings = Settings()
    except (ValidationError, SettingsError) as error:
        typer.echo(f"mailroom sync: {error}", err=True)
        raise typer.Exit(2) from None
    try:
        if progress and errors.is_terminal and not json:
            result = _with_progress(customer, options, settings, errors)
        else:
            result = sync_customer(customer, options, settings=settings)
    except SyncError as error:
        typer.echo(f"mailroom sync: {error}", err=True)
        if error.result is not None and not json:
            print_result(error.result, _console())
        raise typer.Exit(1) from None
    if json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        print_result(result, _console())


def _console() -> Any:
    from rich.console import Console

    console = Console()
    # Piped or redirected, rich would squeeze the table into 80 columns.
    return console if console.is_terminal else Console(width=160)


def _with_progress(customer: str, options: Any, settings: Any, console: Any) -> SyncResult:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from pipelines.sync import SyncProgress, sync_customer

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[folder]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(f"syncing {customer}", total=None, folder="")

        def update(event: SyncProgress) -> None:
            folders = f"{event.folders_done}/{event.folders_total} folders"
            where = f"{folders}, {event.folder}" if event.folder else folders
            bar.update(task, completed=event.seen, total=event.expected or None, folder=where)

        return sync_customer(customer, options, settings=settings, progress=update)


def print_result(result: SyncResult, console: Any) -> None:
    """The run's record for a person: the outcome, the plan, the counts per folder, the requests."""
    from rich.table import Table

    c = result.counts
    status = "[green]succeeded[/]" if result.status == "succeeded" else f"[red]failed[/]: {result.error}"
    console.print(
        f"Run {result.run_id} of {result.customer_id} ({result.mailbox}, connection {result.connection_id}) "
        f"{status} in {result.seconds:.1f} s"
    )
    console.print(result.plan, markup=False, highlight=False)
    table = Table("folder", "round", "pages", "seen", "matched", "inserted", "updated", "moved", "deleted")
    for f in result.folders:
        n = f.counts
        round_ = f.round + (" (restarted)" if f.restarted else "")
        table.add_row(
            f.path, round_, *map(str, (f.pages, n.seen, n.matched, n.inserted, n.updated, n.moved, n.deleted))
        )
    table.add_row(
        "[bold]total", "", "", *map(str, (c.seen, c.matched, c.inserted, c.updated, c.moved, c.deleted))
    )
    console.print(table)
    skipped = ", ".join(f"{reason} {count}" for reason, count in sorted(c.skipped.items())) or "none"
    console.print(
        f"fetched {c.fetched} bodies, {c.unchanged} unchanged; skipped: {skipped}; "
        f"{result.requests} requests, {result.throttled_waits} throttled "
        f"({result.throttled_seconds:.1f} s waited)",
        highlight=False,
    )
