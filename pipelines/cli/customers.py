"""`mailroom customers add|list|remove`: customers and their Outlook connection in the control store."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    name="customers",
    help="Add, list and remove customers and their Outlook connection (the control store).",
    no_args_is_help=True,
    add_completion=False,
)

_INTERVAL = re.compile(r"^\s*(\d+)\s*([mhd]?)\s*$", re.IGNORECASE)
_UNIT_MINUTES = {"": 60, "m": 1, "h": 60, "d": 24 * 60}


def interval_minutes(text: str) -> int:
    """'6h', '90m', '1d' or a number of hours, in minutes (at least 5)."""
    match = _INTERVAL.match(text)
    if match is None:
        raise typer.BadParameter(f"{text!r} is not an interval; write e.g. 6h, 90m or 1d")
    minutes = int(match.group(1)) * _UNIT_MINUTES[match.group(2).lower()]
    if minutes < 5:
        raise typer.BadParameter(f"{text!r} is shorter than the shortest interval, 5 minutes")
    return minutes


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"mailroom customers: {message}", err=True)
    return typer.Exit(code)


def _settings() -> Any:
    from pipelines.settings import Settings, SettingsError

    try:
        return Settings()
    except SettingsError as error:
        raise _fail(str(error), 2) from None


def _delegated_cache(settings: Any, token_cache: Path | None) -> tuple[bytes, str]:
    """A sealed cache and the signed-in account's name: from a `mailroom connect --cache` file, or from a
    device-code sign-in right now."""
    import msal

    from pipelines.graph import DeviceCodeSignIn, EncryptedTokenCache, GraphError

    key = settings.secret_key.get_secret_value() if settings.secret_key is not None else None
    try:
        if token_cache is not None:
            if not token_cache.is_file():
                raise _fail(f"--token-cache {token_cache} does not exist (`mailroom connect` makes one)", 2)
            cache = EncryptedTokenCache.read(token_cache, key=key)
            if cache.account is None:
                raise _fail(f"--token-cache {token_cache} holds no sign-in", 2)
            accounts = cache.msal.search(msal.TokenCache.CredentialType.ACCOUNT)
            username = next((a.get("username") for a in accounts if a.get("username")), None)
            return cache.seal(), username or cache.account
        cache = EncryptedTokenCache(key=key)
        signin = DeviceCodeSignIn(settings.graph, cache)
        code = signin.start()
        typer.echo(code.message, err=True)
        signed_in = signin.finish(code)
        return cache.seal(), signed_in.username or signed_in.home_account_id
    except GraphError as error:
        raise _fail(str(error)) from None


@app.command("add")
def add(
    customer: Annotated[str, typer.Argument(help="The customer's id (any text; it never names a file)")],
    mailbox: Annotated[
        str | None,
        typer.Option(
            help="The mailbox's UPN (app-only; an existing customer keeps its connection without it); with "
            "--auth delegated, the signed-in account's"
        ),
    ] = None,
    auth: Annotated[
        str, typer.Option(help="app: the app reads /users/{mailbox}; delegated: a person signs in")
    ] = "app",
    token_cache: Annotated[
        Path | None,
        typer.Option(help="With --auth delegated: a sealed cache from `mailroom connect` (else sign in now)"),
    ] = None,
    tenant: Annotated[str | None, typer.Option(help="The mailbox's tenant if not MAILROOM_TENANT_ID")] = None,
    interval: Annotated[
        str | None, typer.Option(help="Auto-sync interval: 3h, 6h, 12h, 24h (or e.g. 90m; at least 5m)")
    ] = None,
    auto_sync: Annotated[
        bool | None,
        typer.Option(
            "--auto-sync/--no-auto-sync",
            help="Sync this customer's Outlook on a schedule (default: on for a new customer, unchanged for "
            "one that exists)",
        ),
    ] = None,
    folder: Annotated[str | None, typer.Option(help="Default folder of its syncs (default: Inbox)")] = None,
    filter: Annotated[str | None, typer.Option(help="Default filter of its syncs (text or JSON)")] = None,
) -> None:
    """Add (or update) a customer and connect its Outlook mailbox.

    An existing customer with a live connection can be given new settings alone (`--interval 6h`): without
    --mailbox (and --auth app) its connection is kept."""
    from pipelines.store import CustomerUpdate, StoreError
    from pipelines.sync import SyncError, parse_filter

    if auth not in ("app", "delegated"):
        raise typer.BadParameter("--auth must be app or delegated")
    if tenant is not None and auth == "app" and not mailbox:
        raise typer.BadParameter("--tenant belongs to a connection: give --mailbox with it")
    if token_cache is not None and auth != "delegated":
        raise typer.BadParameter("--token-cache goes with --auth delegated")
    if filter is not None:
        try:
            parse_filter(filter)
        except SyncError as error:
            raise typer.BadParameter(str(error)) from None
    changes: dict[str, Any] = {}
    if interval is not None:
        changes["auto_sync_interval_minutes"] = interval_minutes(interval)
    if folder is not None:
        changes["default_folder"] = folder
    if filter is not None:
        changes["default_filter"] = filter
    settings = _settings()
    try:
        control = settings.control_store()
        existing = control.customer(customer)
        kept = None
        if auth == "app" and not mailbox:
            live = control.connections(existing.id, include_revoked=False) if existing else []
            if not live:
                raise typer.BadParameter(
                    "--auth app reads a mailbox by its UPN: give --mailbox"
                    + (f" ({customer!r} has no live connection to keep)" if existing else "")
                )
            kept = live[-1]
        if auto_sync is None and existing is None:
            auto_sync = True
        if auto_sync is not None:
            changes["auto_sync_sources"] = ["OUTLOOK"] if auto_sync else []
        sealed: bytes | None = None
        if auth == "delegated":
            sealed, signed_in = _delegated_cache(settings, token_cache)
            mailbox = mailbox or signed_in
        [record] = control.update_customers([customer], CustomerUpdate(**changes))
        if kept is None:
            assert mailbox is not None
            connection = control.save_connection(
                record.id,
                mailbox,
                auth_kind=auth,
                token_cache=sealed,
                tenant=tenant,  # type: ignore[arg-type]
            )
        else:
            connection = kept
    except StoreError as error:
        raise _fail(str(error)) from None
    every = record.interval_minutes
    typer.echo(
        f"customer {customer!r}: connection {connection.id} to {connection.mailbox} ({connection.auth_kind})"
        + (" kept" if kept else "")
        + "; "
        + (
            f"auto-sync every {every // 60} h {every % 60} min"
            if record.outlook_auto_sync
            else "auto-sync off"
        )
    )
    typer.echo(_partition(customer, present=True))


@app.command("list")
def list_customers(
    json: Annotated[bool, typer.Option("--json", help="One JSON object per customer")] = False,
) -> None:
    """Every customer with its connections and settings."""
    import orjson
    from rich.console import Console
    from rich.table import Table

    settings = _settings()
    control = settings.control_store()
    customers, _ = control.list_customers(limit=1_000_000, descending=False)
    if json:
        for customer in customers:
            connections = [
                {
                    "id": c.id,
                    "mailbox": c.mailbox,
                    "auth": c.auth_kind,
                    "status": c.sync_status,
                    "revoked": c.revoked,
                    "last_synced_at": c.last_synced_at,
                }
                for c in control.connections(customer.id)
            ]
            line = {
                "customer_id": customer.customer_id,
                "auto_sync": customer.outlook_auto_sync,
                "interval_minutes": customer.interval_minutes,
                "default_folder": customer.default_folder,
                "default_filter": customer.default_filter,
                "connections": connections,
            }
            typer.echo(orjson.dumps(line).decode())
        return
    table = Table("customer", "connection", "auth", "status", "last sync", "auto-sync", "folder", "filter")
    for customer in customers:
        every = customer.interval_minutes
        auto = f"every {every // 60}h{every % 60:02d}" if customer.outlook_auto_sync else "off"
        connections = control.connections(customer.id) or [None]
        for c in connections:
            table.add_row(
                customer.customer_id,
                f"{c.id} {c.mailbox}" + (" (revoked)" if c.revoked else "") if c else "-",
                c.auth_kind if c else "",
                c.sync_status if c else "",
                c.last_synced_at.strftime("%Y-%m-%d %H:%M") if c and c.last_synced_at else "never",
                auto,
                customer.default_folder or "Inbox",
                customer.default_filter or "",
            )
    console = Console()
    # Piped or redirected, rich would squeeze the table into 80 columns.
    (console if console.is_terminal else Console(width=160)).print(table)


@app.command("upgrade")
def upgrade() -> None:
    """Bring every customer's mail store to this version's schema now (after upgrading Mailroom; otherwise
    each store is upgraded by its next sync, and until then the API answers 503 for its files)."""
    from pipelines.store import StoreError
    from pipelines.sync import SyncBusy, upgrade_store

    settings = _settings()
    control = settings.control_store()
    customers, _ = control.list_customers(limit=1_000_000, descending=False)
    failed = 0
    for customer in customers:
        try:
            versions = upgrade_store(customer.customer_id, settings=settings)
        except SyncBusy:
            typer.echo(f"{customer.customer_id}: busy with a run, which upgrades it")
            continue
        except StoreError as error:
            failed += 1
            typer.echo(f"{customer.customer_id}: not upgraded: {error}", err=True)
            continue
        if versions is not None:
            before, after = versions
            change = f"{before} -> {after}" if before != after else f"already at {after}"
            typer.echo(f"{customer.customer_id}: schema {change}")
    if failed:
        raise _fail(f"{failed} store(s) not upgraded (see above)")


@app.command("remove")
def remove(
    customer: Annotated[str, typer.Argument(help="The customer's id")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask")] = False,
) -> None:
    """Remove a customer: its mail store (every email) and its records, connections and tokens."""
    from pipelines.sync import SyncBusy, SyncError, delete_customer

    settings = _settings()
    if settings.control_store().customer(customer, include_deleted=True) is None and not (
        settings.mail_store_path(customer).exists()
    ):
        raise _fail(f"no customer {customer!r}")
    if not yes:
        typer.confirm(f"Delete customer {customer!r} and all of its mail?", abort=True)
    try:
        result = delete_customer(customer, settings=settings)
    except SyncBusy as error:
        # The customer is hidden before its store is taken: say what state a busy store left it in.
        raise _fail(
            f"{error}. Customer {customer!r} is marked deleted already (the API answers 404 for it and runs "
            "queued for it do nothing); run this command again when that run has finished to remove its mail "
            "and records"
        ) from None
    except SyncError as error:
        raise _fail(str(error)) from None
    store = "its mail store deleted" if result.mail_store_deleted else "it had no mail store"
    typer.echo(f"customer {customer!r} removed; {store}")
    typer.echo(_partition(customer, present=False))


def _partition(customer: str, *, present: bool) -> str:
    """Add or remove the customer's partition in the Dagster instance of $DAGSTER_HOME; says what it did."""
    import os

    home = os.environ.get("DAGSTER_HOME")
    if not home:
        later = " (the sensor adds it for an auto-synced customer)" if present else ""
        return f"Dagster partition not {'added' if present else 'removed'}: DAGSTER_HOME is not set{later}"
    from pipelines.defs import add_customer_partition, remove_customer_partition
    from pipelines.defs.local import open_instance

    with open_instance(Path(home)) as instance:
        if present:
            done = add_customer_partition(instance, customer)
            return f"Dagster partition {customer!r} " + ("added" if done else "was there already")
        done = remove_customer_partition(instance, customer)
        return f"Dagster partition {customer!r} " + ("removed" if done else "was not there")
