"""Where a customer's files live: a readable slug plus a hash, so no customer id can steer a path."""

import hashlib
import re
import unicodedata
from pathlib import Path

from pipelines.store._errors import InvalidCustomerId

_SLUG_MAX = 40
_UNSAFE = re.compile(r"[^a-z0-9]+")
MAIL_SUBDIR = "mail"
MAIL_SUFFIX = ".duckdb"
GATE_SUFFIXES = (".turnstile", ".room")


def customer_slug(customer_id: str) -> str:
    """A file-name-safe stem for `customer_id`: `team@carbon.ai` → `team-carbon-ai-<16 hex>`.

    The slug is for people reading a directory listing; the hash of the exact id is what makes it unique
    (ids that differ only in case, punctuation or length beyond the slug still get different files).
    """
    if not isinstance(customer_id, str) or not customer_id.strip():
        raise InvalidCustomerId(f"customer id must be non-empty text, got {customer_id!r}")
    if "\x00" in customer_id:
        raise InvalidCustomerId("customer id must not contain NUL characters")
    ascii_form = unicodedata.normalize("NFKD", customer_id).encode("ascii", "ignore").decode("ascii")
    readable = _UNSAFE.sub("-", ascii_form.lower()).strip("-")[:_SLUG_MAX].strip("-") or "customer"
    digest = hashlib.sha256(customer_id.encode("utf-8")).hexdigest()[:16]
    return f"{readable}-{digest}"


def mail_store_path(data_dir: str | Path, customer_id: str) -> Path:
    """The mail store file for `customer_id` under `data_dir` (`<data_dir>/mail/<slug>.duckdb`)."""
    return Path(data_dir) / MAIL_SUBDIR / f"{customer_slug(customer_id)}{MAIL_SUFFIX}"


def derived_paths(store_path: Path) -> tuple[Path, ...]:
    """Every file of a store: the database, its write-ahead log, its spill directory, its gate's locks."""
    return tuple(
        store_path.with_name(store_path.name + suffix) for suffix in ("", ".wal", ".tmp", *GATE_SUFFIXES)
    )


def gate_paths(store_path: Path) -> tuple[Path, Path]:
    """The turnstile and room lock files of a store (see pipelines.store._gate)."""
    turnstile, room = (store_path.with_name(store_path.name + suffix) for suffix in GATE_SUFFIXES)
    return turnstile, room
