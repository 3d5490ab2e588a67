"""`python -m pipelines.api`: the same command as `mailroom api`."""

import typer

from pipelines.api._command import api_command

typer.run(api_command)
