"""Schema migrations for both stores: ordered SQL files `migrations/<store>/NNNN_<what>.sql`."""

import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from pipelines.store._errors import SchemaError

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


@cache
def migrations(store: str) -> tuple[Migration, ...]:
    """The migrations of `store` ('mail' or 'control') in order, numbered 1, 2, 3, ... without gaps."""
    folder = files("pipelines.store").joinpath("migrations", store)
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise SchemaError(f"{store} migrations must be numbered 0001, 0002, ... without gaps: {found}")
    return tuple(found)


def pending(store: str, current: int) -> tuple[Migration, ...]:
    """What is left to apply on a database at version `current`; refuses a database newer than this code."""
    known = migrations(store)
    if current > len(known):
        raise SchemaError(
            f"this {store} store is at schema version {current}, newer than this Mailroom knows "
            f"({len(known)}); upgrade Mailroom before opening it"
        )
    return known[current:]


def latest(store: str) -> int:
    """The schema version this code writes."""
    return len(migrations(store))
