"""The store's one exception tree; callers catch by meaning, never by message text.

StoreError                     anything the stores refuse or cannot do
├── InvalidCustomerId          an empty or unusable customer id
├── StoreNotFound              a mail store file that does not exist (yet)
├── StoreBusy                  a lock still held by another process after the retry budget
├── SchemaError                a file written by a newer Mailroom, or a failed migration
├── NotFound                   a record the caller named does not exist
├── ConflictError              a write that breaks a rule (a 4th webhook, a duplicate, a bad cursor)
└── SecretError                a secret that cannot be decrypted (wrong or missing MAILROOM_SECRET_KEY)
"""


class StoreError(Exception):
    """Base of every error raised by `pipelines.store`."""


class InvalidCustomerId(StoreError, ValueError):
    """The customer id cannot name a store (empty, or not text)."""


class StoreNotFound(StoreError):
    """The customer's mail store does not exist; nothing has been synced for it yet."""


class StoreBusy(StoreError):
    """Another process held the database lock for longer than the retry budget."""


class SchemaError(StoreError):
    """The database's schema is newer than this code, or a migration failed."""


class NotFound(StoreError, LookupError):
    """A record named by the caller does not exist."""


class ConflictError(StoreError):
    """The write would break a rule of the store (a limit, a uniqueness, the order of a round)."""


class SecretError(StoreError):
    """A secret could not be encrypted or decrypted with the configured key."""
