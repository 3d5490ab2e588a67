"""The sandbox's exceptions, for code that starts it, drives it or evaluates its query languages.

    SandboxError                  base of everything raised here
    ├── SandboxStartError         the server process exited or did not announce itself in time
    ├── AdminError                the admin API answered with an error (``status``, ``code``, ``message``)
    ├── MailImportError           an mbox file or .eml folder could not be read (``path``)
    ├── ODataError                bad $filter/$orderby/$select/$search text (``code``, ``position``)
    ├── GraphFault                a Graph error response raised inside the server (``status``, ``code``)
    └── OAuthError                a sign-in error raised inside the server (``status``, ``error``, ``code``)

``GraphFault`` and ``OAuthError`` never reach a caller of the package: the server turns them into Graph's
JSON error body and the identity platform's token-endpoint error body.
"""

from __future__ import annotations

import time
import uuid
from typing import Any


class SandboxError(Exception):
    """Base class of every sandbox error."""


class SandboxStartError(SandboxError):
    """The sandbox process did not start: it exited, or printed no JSON line in time."""


class AdminError(SandboxError):
    """The admin API answered a request with an error."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"admin API {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class MailImportError(SandboxError):
    """Mail to import could not be read; says which file and why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"cannot import mail from {path}: {reason}")
        self.path = path
        self.reason = reason


class ODataError(SandboxError):
    """An OData query option (or a KQL $search) is invalid.

    ``code`` is the Graph error code the server answers with; ``position`` is the 0-based column in the
    option's text where the problem was found, when there is one.
    """

    def __init__(self, message: str, *, code: str = "BadRequest", position: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.position = position


class GraphFault(SandboxError):
    """A Graph error response: raised by handlers, rendered as ``{"error": {"code", "message", ...}}``."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


class OAuthError(SandboxError):
    """A token-endpoint error: rendered as Microsoft's JSON error body with ``status``."""

    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(f"{error}: AADSTS{code}: {description}")
        self.status, self.error, self.code, self.description = status, error, code, description

    def body(self) -> dict[str, Any]:
        now = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        return {
            "error": self.error,
            "error_description": f"AADSTS{self.code}: {self.description} Trace ID: {trace} "
            f"Correlation ID: {correlation} Timestamp: {now}",
            "error_codes": [self.code],
            "timestamp": now,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"https://login.microsoftonline.com/error?code={self.code}",
        }
