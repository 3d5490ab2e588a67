"""A local Microsoft 365 for mail: Graph endpoints, sign-in endpoints, faults. Imports nothing of Mailroom.

Serve it with ``python -m sandbox`` / ``mailroom sandbox``, or from Python:

- ``SandboxProcess(**options)``: a context manager that runs it as a subprocess and yields
  ``SandboxInfo`` (``graph_url``, ``authority``, ``tenant_id``, ``client_id``, ``client_secret``,
  ``ca_cert``, ``admin_url``, ``mailboxes``, ``pid``, ...).
- ``create_app(options)``: the ASGI app for in-process use (``httpx.ASGITransport``); ``app.sandbox`` is its
  live state.
- ``AdminClient``: the admin API (reset, add/update/move/delete messages, tokens, faults, log, ground truth).
- ``cli_app``: the command line (a ``typer.Typer``) that ``python -m sandbox`` and ``mailroom sandbox`` run.
- ``compile_filter`` / ``filter_matches``: the sandbox's own evaluation of Graph ``$filter`` over message
  dicts; ``compile_search`` the same for ``$search`` (KQL).
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sandbox._app import Sandbox, SandboxApp, create_app
    from sandbox._cli import cli_app
    from sandbox._client import AdminClient, ssl_context
    from sandbox._errors import (
        AdminError,
        GraphFault,
        MailImportError,
        ODataError,
        SandboxError,
        SandboxStartError,
    )
    from sandbox._faults import FaultRule, FaultSettings
    from sandbox._odata import compile_filter, filter_matches
    from sandbox._options import SandboxInfo, SandboxOptions
    from sandbox._process import SandboxProcess
    from sandbox._search import compile_search

# Loaded on first use, so that `mailroom --help` (which imports the CLI module) stays fast.
_EXPORTS = {
    "Sandbox": "_app",
    "SandboxApp": "_app",
    "create_app": "_app",
    "cli_app": "_cli",
    "AdminClient": "_client",
    "ssl_context": "_client",
    "AdminError": "_errors",
    "GraphFault": "_errors",
    "MailImportError": "_errors",
    "ODataError": "_errors",
    "SandboxError": "_errors",
    "SandboxStartError": "_errors",
    "FaultRule": "_faults",
    "FaultSettings": "_faults",
    "compile_filter": "_odata",
    "filter_matches": "_odata",
    "SandboxInfo": "_options",
    "SandboxOptions": "_options",
    "SandboxProcess": "_process",
    "compile_search": "_search",
}
__all__ = [
    "AdminClient",
    "AdminError",
    "FaultRule",
    "FaultSettings",
    "GraphFault",
    "MailImportError",
    "ODataError",
    "Sandbox",
    "SandboxApp",
    "SandboxError",
    "SandboxInfo",
    "SandboxOptions",
    "SandboxProcess",
    "SandboxStartError",
    "cli_app",
    "compile_filter",
    "compile_search",
    "create_app",
    "filter_matches",
    "ssl_context",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sandbox' has no attribute {name!r}")
    value = getattr(import_module(f"sandbox.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
