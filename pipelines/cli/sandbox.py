"""`mailroom sandbox`: serve the local Microsoft 365 for mail; the same command as `python -m sandbox`."""

from sandbox._cli import app

__all__ = ["app"]
