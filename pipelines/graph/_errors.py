"""The Graph client's exceptions: one tree, caught by meaning, never by message text.

    GraphError                  anything the Graph client raises on purpose
    ├── AuthError               sign-in failed, a 401 survived one token refresh, or a 403
    │   └── TokenCacheError     an encrypted token cache could not be read (wrong or missing key)
    ├── NotFoundError           404: no such message, attachment, mailbox
    │   └── FolderNotFoundError a folder name, path or id matched nothing (with close matches)
    ├── SyncStateExpired        410, syncStateNotFound, resyncRequired: restart that folder's delta
    ├── BadRequestError         other 4xx: the request itself is wrong (a bad $filter, a malformed id, 405 …)
    ├── TransientError          5xx, timeouts, dropped connections that outlasted the retries
    │   └── ThrottledError      429 that outlasted the retries, or a Retry-After longer than we wait
    └── AttachmentTooLarge      attachment content over the caller's size cap

Every error carries what Graph said (`status`, `code`) and the ids to find the request in Graph's logs
(`request_id`, `client_request_id`). None of them ever carries a token, a secret or a token cache.
"""

from __future__ import annotations


class GraphError(Exception):
    """Base of every error the Graph client raises on purpose."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        client_request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.client_request_id = client_request_id

    def __str__(self) -> str:
        parts = [self.message]
        if self.status is not None or self.code:
            parts.append(f"[{' '.join(str(p) for p in (self.status, self.code) if p)}]")
        if self.request_id or self.client_request_id:
            parts.append(
                f"(request-id {self.request_id or '-'}, client-request-id {self.client_request_id or '-'})"
            )
        return " ".join(parts)


def _context(context: dict[str, object]) -> dict:
    """Pass through only the keywords GraphError knows, so a typo fails loudly instead of vanishing."""
    unknown = set(context) - {"status", "code", "request_id", "client_request_id"}
    if unknown:
        raise TypeError(f"unexpected keyword(s): {', '.join(sorted(unknown))}")
    return context


class AuthError(GraphError):
    """Signing in failed, a token was refused after one refresh, or access was denied."""


class TokenCacheError(AuthError):
    """A token cache cannot be opened: the key is missing, malformed, or not the one that sealed it."""


class NotFoundError(GraphError):
    """Graph answered 404: the message, attachment, folder or mailbox does not exist (any more)."""


class FolderNotFoundError(NotFoundError):
    """A folder reference matched nothing; `suggestions` holds the closest display-name paths."""

    def __init__(self, message: str, *, reference: str, suggestions: tuple[str, ...] = ()) -> None:
        super().__init__(message, status=404, code="FolderNotFound")
        self.reference = reference
        self.suggestions = suggestions


class SyncStateExpired(GraphError):
    """A delta or next link is no longer valid: start the folder over. `location`: Graph's fresh start URL."""

    def __init__(self, message: str, *, location: str | None = None, **context: object) -> None:
        super().__init__(message, **_context(context))
        self.location = location


class BadRequestError(GraphError):
    """Graph refused the request itself (400 and other 4xx): retrying it unchanged cannot help."""


class TransientError(GraphError):
    """A server error, timeout or dropped connection that lasted through every retry; try again later."""


class ThrottledError(TransientError):
    """Graph kept throttling (429), or asked for a wait longer than the client is willing to sleep."""

    def __init__(self, message: str, *, retry_after: float | None = None, **context: object) -> None:
        super().__init__(message, **_context(context))
        self.retry_after = retry_after


class AttachmentTooLarge(GraphError):
    """An attachment's content is larger than the cap the caller set; nothing past the cap was read."""

    def __init__(self, message: str, *, size: int | None, cap: int) -> None:
        super().__init__(message)
        self.size = size
        self.cap = cap
