"""The Dagster room's errors. Callers catch them by meaning, never by message text.

    DefsError                  anything this room refuses
     ├── BadRequest            a recorded API request that cannot become a run (the reason is stored on it)
     └── LaunchError           a run launched from the CLI or the demo did not start, failed or timed out

A run that fails raises `dagster.Failure` (its description is what the UI shows); these are for the code
around runs.
"""


class DefsError(Exception):
    """Base of the Dagster room's errors."""


class BadRequest(DefsError):
    """A recorded request that cannot become a run: unknown customer, malformed payload, bad filter."""


class LaunchError(DefsError):
    """A run launched by `mailroom` did not start, ended in failure, or did not finish in time."""
