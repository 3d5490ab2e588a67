"""`python -m pipelines.api`: the same as `mailroom api`."""

from pipelines.cli.api import serve_app

serve_app()
