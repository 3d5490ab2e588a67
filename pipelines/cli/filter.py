"""`mailroom filter explain '<text or JSON>'`: look at a filter the way Mailroom will run it."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

app = typer.Typer(
    name="filter", help="Work with the filter language.", no_args_is_help=True, add_completion=False
)


@app.command()
def explain(
    value: Annotated[
        str,
        typer.Argument(
            help="A filter as text (after:2024/01/07 category:Personal) or Carbon JSON; '-' reads stdin.",
            show_default=False,
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of prose.")] = False,
) -> None:
    """Print a filter's canonical text, its Carbon JSON, and its Graph plans for listing and for delta."""
    import filters

    source = sys.stdin.read() if value == "-" else value
    try:
        tree = filters.parse(source)
    except filters.FilterError as error:
        typer.echo(f"mailroom filter explain: {error}", err=True)
        raise typer.Exit(2) from None

    plans = {mode: filters.plan(tree, mode) for mode in ("list", "delta")}
    if as_json:
        out = {
            "text": filters.to_text(tree),
            "carbon": filters.to_carbon(tree),
            "select": list(filters.required_fields(tree)),
            **{
                mode: {
                    "filter": plan.odata_filter,
                    "residual": None if plan.residual is None else filters.to_text(plan.residual),
                    "selective": plan.selective,
                    "round_cap": plan.round_cap,
                }
                for mode, plan in plans.items()
            },
        }
        typer.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    typer.echo(f"text:   {filters.to_text(tree) or '(empty: every message)'}")
    typer.echo(f"carbon: {json.dumps(filters.to_carbon(tree), ensure_ascii=False)}")
    for plan in plans.values():
        typer.echo("")
        typer.echo(plan.explain())
