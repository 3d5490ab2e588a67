"""`mailroom sandbox`: serve the local Microsoft 365 for mail; the same command as `python -m sandbox`."""

from sandbox import cli_app as app

__all__ = ["app"]
