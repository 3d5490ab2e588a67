"""The one `api` command line, for `mailroom api` and `python -m pipelines.api` alike."""

from __future__ import annotations

from typing import Annotated

import typer

from pipelines.api._server import run


def api_command(
    host: Annotated[
        str | None, typer.Option(help="Address to bind (env MAILROOM_API_HOST; default 127.0.0.1)")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port; 0 picks a free one (env MAILROOM_API_PORT; default 8000)")
    ] = None,
    public_url: Annotated[
        str | None, typer.Option(help="Base URL clients and browsers use (env MAILROOM_API_PUBLIC_URL)")
    ] = None,
    public: Annotated[
        bool,
        typer.Option(
            "--public",
            help="Allow a non-loopback --host (serve beyond this machine) (env MAILROOM_API_PUBLIC)",
        ),
    ] = False,
    json: Annotated[bool, typer.Option("--json", help="Announce {url, pid} as one JSON line")] = False,
) -> None:
    """Serve the HTTP API (Carbon's routes for Outlook, docs at /docs) and deliver webhooks."""
    status = run(host=host, port=port, public_url=public_url, public=public, announce_json=json)
    if status:
        raise typer.Exit(status)
