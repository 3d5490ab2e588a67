"""The `mailroom` command. Each room adds its subcommands here; heavy imports stay inside commands."""

import typer

from pipelines.cli import api as api_cli
from pipelines.cli import connect, customers, demo, dev
from pipelines.cli import filter as filter_cli
from pipelines.cli import sandbox as sandbox_cli
from pipelines.cli import sync as sync_cli

app = typer.Typer(
    name="mailroom",
    help="Mailroom: self-hosted Outlook mail ingestion (Microsoft Graph to DuckDB, orchestrated by Dagster).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Mailroom: self-hosted Outlook mail ingestion (Microsoft Graph to DuckDB, orchestrated by Dagster)."""


@app.command()
def version() -> None:
    """Print Mailroom's version and the versions of the parts it pins."""
    from importlib.metadata import version as installed

    for name in ("mailroom", "dagster", "duckdb", "msal", "httpx"):
        typer.echo(f"{name} {installed(name)}")


app.add_typer(connect.app)
app.add_typer(api_cli.app)
app.add_typer(filter_cli.app)
app.add_typer(demo.app)
app.add_typer(dev.app)
app.add_typer(sandbox_cli.app, name="sandbox")
app.add_typer(sync_cli.app)
app.add_typer(customers.app, name="customers")


def main() -> None:
    app()
