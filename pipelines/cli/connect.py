"""`mailroom connect`: sign a person in at a terminal (device code) and keep their sealed token cache.

For now the cache goes to a file named on the command line; once the control store holds connections, the
same sealed bytes (`EncryptedTokenCache.seal()`) go into its connection row instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=False, add_completion=False)


def _settings(overrides: dict[str, object]):  # -> GraphSettings; the import stays inside for a fast --help
    from pydantic import ValidationError

    from pipelines.graph import GraphSettings

    try:
        return GraphSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in error.errors()
        )
        raise typer.BadParameter(problems) from None


_Text = str | None


@app.command()
def connect(
    cache: Annotated[
        Path, typer.Option("--cache", help="File for the sealed token cache (0600; updated in place)")
    ],
    client_id: Annotated[_Text, typer.Option(help="App (client) id (env MAILROOM_GRAPH_CLIENT_ID)")] = None,
    tenant: Annotated[_Text, typer.Option(help="Tenant id or domain (env MAILROOM_GRAPH_TENANT)")] = None,
    authority_host: Annotated[
        _Text, typer.Option(help="Sign-in host (env MAILROOM_GRAPH_AUTHORITY_HOST)")
    ] = None,
    graph_url: Annotated[_Text, typer.Option(help="Graph root (env MAILROOM_GRAPH_GRAPH_URL)")] = None,
    ca_bundle: Annotated[Path | None, typer.Option(help="PEM file to trust (the sandbox's CA)")] = None,
    scope: Annotated[list[str] | None, typer.Option("--scope", help="Delegated scope (repeatable)")] = None,
    check: Annotated[bool, typer.Option(help="After signing in, read the Inbox once to prove access")] = True,
) -> None:
    """Sign in to Outlook with a device code and keep the tokens, encrypted with MAILROOM_SECRET_KEY.

    Prints where to go and which code to enter, waits until you have signed in, then seals the token
    cache into --cache. Scopes default to Mail.Read and User.Read.
    """
    import asyncio

    from pipelines.graph import (
        DelegatedTokenProvider,
        DeviceCodeSignIn,
        EncryptedTokenCache,
        GraphClient,
        GraphError,
    )

    settings = _settings(
        {
            "client_id": client_id,
            "tenant": tenant,
            "authority_host": authority_host,
            "graph_url": graph_url,
            "ca_bundle": ca_bundle,
            "scopes": tuple(scope) if scope else None,
        }
    )
    try:
        sealed = EncryptedTokenCache.read(cache)
        signin = DeviceCodeSignIn(settings, sealed)
        code = signin.start()
        typer.echo(code.message, err=True)
        signed_in = signin.finish(code)
        sealed.write(cache)
    except GraphError as error:
        typer.echo(f"mailroom connect: {error}", err=True)
        raise typer.Exit(1) from None
    who = signed_in.username or signed_in.home_account_id
    typer.echo(f"Signed in as {who}; token cache sealed in {cache}")
    if not check:
        return

    async def read_inbox() -> tuple[str | None, int | None]:
        provider = DelegatedTokenProvider(settings, sealed, name=f"connection {signed_in.username}")
        async with GraphClient(settings, provider) as graph:
            inbox = await graph.me().get_folder("inbox")
        return inbox.display_name, inbox.total_item_count

    try:
        name, total = asyncio.run(read_inbox())
    except GraphError as error:
        typer.echo(f"mailroom connect: signed in, but reading the Inbox failed: {error}", err=True)
        raise typer.Exit(1) from None
    finally:
        sealed.write(cache)
    typer.echo(f"Checked: {name} holds {total} items")
