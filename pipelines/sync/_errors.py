"""The sync engine's exceptions: one tree, caught by meaning, never by message text.

    SyncError                   anything the engine refuses or cannot finish
    ├── InvalidRequest          the caller asked for something impossible (a bad filter, no ids, …)
    │   └── FolderNotFound      a folder reference matched nothing (with the closest folder paths)
    ├── CustomerNotFound        no such customer in the control store
    ├── ConnectionNotFound      the customer has no live Outlook connection (or not the one named)
    ├── NotConfigured           a setting the run needs is missing (client id, secret key, …)
    ├── SyncBusy                another run holds this customer's mail store
    ├── ConnectionRefused       Microsoft refused the connection's credentials: it must sign in again
    └── SyncFailed              Graph or the store failed mid-run; what was committed stays, the next
                                run resumes from there

Every message says what was wrong and where (the customer, the folder, the id). None carries a token, a
secret or a token cache: the Graph client's errors, which these wrap, never do either.
"""

from typing import Any


class SyncError(Exception):
    """Base of every error the sync engine raises on purpose.

    `result` holds the run's record (a failed `SyncResult`) when the error stopped a run that had begun.
    """

    result: Any = None


class InvalidRequest(SyncError, ValueError):
    """The request itself is wrong (a filter that does not parse, no ids to resync, …)."""


class FolderNotFound(InvalidRequest):
    """A folder reference matched no folder; `suggestions` holds the closest display-name paths."""

    def __init__(self, message: str, *, reference: str, suggestions: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.reference = reference
        self.suggestions = suggestions


class CustomerNotFound(SyncError, LookupError):
    """The customer id names no (live) customer in the control store."""


class ConnectionNotFound(SyncError, LookupError):
    """The customer has no live Outlook connection, or not the one that was named."""


class NotConfigured(SyncError):
    """A setting the run needs is missing or unusable; the message names the variable."""


class SyncBusy(SyncError):
    """Another run is working on this customer's mail store; two runs never overlap."""


class ConnectionRefused(SyncError):
    """Microsoft refused the connection's credentials (revoked consent, expired sign-in, wrong secret)."""


class SyncFailed(SyncError):
    """Graph or the store failed part-way; everything committed so far stays and the next run resumes."""
