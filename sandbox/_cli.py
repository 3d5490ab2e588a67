"""The sandbox's command line, shared by ``python -m sandbox`` and ``mailroom sandbox``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

cli_app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Serve the local Microsoft 365 for mail (Graph, sign-in, admin API) over HTTPS.",
)


class ProfileChoice(StrEnum):
    none = "none"
    flaky = "flaky"
    hostile = "hostile"


@cli_app.callback(invoke_without_command=True)
def sandbox(
    host: Annotated[str, typer.Option(help="Loopback address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port; 0 picks a free one.")] = 0,
    seed: Annotated[int, typer.Option(help="Seed for the demo tenant and its mailboxes.")] = 1,
    messages: Annotated[int, typer.Option(help="Generated messages in the primary mailbox (adele).")] = 120,
    profile: Annotated[ProfileChoice, typer.Option(help="Fault profile.")] = ProfileChoice.none,
    imports: Annotated[
        list[str] | None,
        typer.Option(
            "--import",
            help="An mbox file or .eml folder to serve as a mailbox; PATH or UPN=PATH. Repeatable.",
        ),
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(help="Where to keep the CA and server certificates (default: a temporary directory)."),
    ] = None,
    token_lifetime: Annotated[int, typer.Option(help="Seconds an access token lives.")] = 3599,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the settings as one JSON object on the first line.")
    ] = False,
) -> None:
    """Serve the sandbox until interrupted; print what a client needs to reach it."""
    from pydantic import ValidationError

    from sandbox._errors import MailImportError
    from sandbox._options import SandboxOptions
    from sandbox._server import serve

    try:
        options = SandboxOptions(
            host=host,
            port=port,
            seed=seed,
            messages=messages,
            profile=profile.value,
            imports=tuple(imports or ()),
            state_dir=state_dir,
            token_lifetime=token_lifetime,
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"--{'-'.join(str(p) for p in e['loc']).replace('_', '-')}: {e['msg']}" for e in exc.errors()
        )
        raise typer.BadParameter(problems) from None
    try:
        serve(options, as_json=as_json)
    except (MailImportError, ValueError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def main() -> None:
    cli_app(prog_name="python -m sandbox")
