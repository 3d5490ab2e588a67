"""`mailroom api` serves the Carbon-compatible HTTP API; `mailroom api-keys create|list|revoke` keeps keys."""

from __future__ import annotations

from typing import Annotated

import typer

from pipelines.api import api_command

app = typer.Typer(no_args_is_help=False, add_completion=False)
keys = typer.Typer(
    name="api-keys", help="Create, list and revoke API keys (stored as hashes).", no_args_is_help=True
)
app.add_typer(keys, name="api-keys")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"mailroom: {message}", err=True)
    return typer.Exit(2)


app.command("api")(api_command)


def _control():
    from pipelines.store import StoreSettings

    return StoreSettings().control_store()


@keys.command("create")
def create(name: Annotated[str, typer.Argument(help="What the key is for, to tell keys apart")]) -> None:
    """Create a key and print it once (only its hash is kept)."""
    key, plain = _control().create_api_key(name)
    typer.echo(plain)
    typer.echo(f"Created API key {key.id} ({name}). Keep it now: it cannot be shown again.", err=True)


@keys.command("list")
def list_keys() -> None:
    """The organization's keys: id, name, first characters, created, last used, revoked."""
    found = _control().api_keys()
    if not found:
        typer.echo("No API keys yet; create one with `mailroom api-keys create NAME`.")
    for key in found:
        used = key.last_used_at.isoformat(timespec="seconds") if key.last_used_at else "never"
        state = f"revoked {key.revoked_at.isoformat(timespec='seconds')}" if key.revoked_at else "live"
        typer.echo(
            f"{key.id}\t{key.name}\t{key.prefix}…\tcreated {key.created_at.isoformat(timespec='seconds')}"
            f"\tused {used}\t{state}"
        )


@keys.command("revoke")
def revoke(
    key_id: Annotated[int, typer.Argument(help="The key's id, from `mailroom api-keys list`")],
) -> None:
    """Revoke a key; requests with it are refused from then on."""
    if not _control().revoke_api_key(key_id):
        raise _fail(f"no live API key {key_id}")
    typer.echo(f"Revoked API key {key_id}.")
