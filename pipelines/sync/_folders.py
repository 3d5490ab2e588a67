"""Which folders a run syncs: references (well-known names, display-name paths, ids) resolved to folders.

The folder tree costs several requests to walk (one per level and parent, plus a $batch for the well-known
names), so a run first tries the folders recorded by the last walk, and walks again only when a reference
is not among them, when subfolders are asked for and the record is older than `REFRESH` (new subfolders
appear only in a walk), when a recorded folder turns out to be gone, or, with subfolders, when mail moves
to a folder the records do not hold (one made since the last walk, maybe below a synced folder). An
unchanged mailbox then costs one request per folder: its delta round.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pipelines.graph import (
    WELL_KNOWN_NAMES,
    FolderNode,
    FolderNotFoundError,
    FolderTree,
    Mailbox,
    split_path,
)
from pipelines.store import FolderRow
from pipelines.sync._errors import FolderNotFound
from pipelines.sync._rows import folder_row

ROOT = "msgfolderroot"
"""The mailbox's root: with subfolders, every folder of the mailbox (the root itself holds no mail)."""
REFRESH = timedelta(hours=1)
"""How long a recorded folder list stands in for a walk when subfolders are asked for."""


@dataclass(frozen=True, slots=True)
class SyncFolder:
    """A folder a run syncs: its id, display-name path and item count (as last seen)."""

    id: str
    path: str
    total: int | None


def _key(parts: Sequence[str]) -> tuple[str, ...]:
    return tuple(p.casefold() for p in parts)


def _parts(path: str) -> tuple[str, ...] | None:
    try:
        return split_path(path)
    except FolderNotFoundError:
        return None


def from_records(
    rows: Sequence[FolderRow], references: Sequence[str], *, subfolders: bool
) -> list[SyncFolder] | None:
    """Resolve every reference against recorded folders; None when any of them is not there."""
    by_id = {r.folder_id: r for r in rows}
    by_name = {r.well_known_name: r for r in rows if r.well_known_name}
    by_path: dict[tuple[str, ...], list[FolderRow]] = {}
    for row in rows:
        parts = _parts(row.path)
        if parts is not None:
            by_path.setdefault(_key(parts), []).append(row)
    chosen: dict[str, FolderRow] = {}
    for reference in references:
        if subfolders and reference.lower() == ROOT:
            chosen.update((r.folder_id, r) for r in rows if r.folder_id not in chosen)
            continue
        found = _match(reference, by_id, by_name, by_path)
        if found is None:
            return None
        chosen.setdefault(found.folder_id, found)
        if subfolders:
            prefix = _key(_parts(found.path) or ())
            for key, matches in by_path.items():
                if key[: len(prefix)] == prefix:
                    for row in matches:
                        chosen.setdefault(row.folder_id, row)
    return [SyncFolder(r.folder_id, r.path, r.total_count) for r in chosen.values()]


def _match(
    reference: str,
    by_id: dict[str, FolderRow],
    by_name: dict[str, FolderRow],
    by_path: dict[tuple[str, ...], list[FolderRow]],
) -> FolderRow | None:
    lowered = reference.lower()
    if lowered in WELL_KNOWN_NAMES:
        return by_name.get(lowered)
    if reference in by_id:
        return by_id[reference]
    parts = _parts(reference)
    if parts is None:
        return None
    top = by_name.get(parts[0].lower()) if parts[0].lower() in WELL_KNOWN_NAMES else None
    if top is not None:
        parts = (*(_parts(top.path) or (top.display_name,)), *parts[1:])
    matches = by_path.get(_key(parts), [])
    exact = [m for m in matches if _parts(m.path) == parts]
    if len(exact) == 1:
        return exact[0]
    return matches[0] if len(matches) == 1 else None


def stale(refreshed_at: datetime | None, *, now: datetime | None = None) -> bool:
    return refreshed_at is None or (now or datetime.now(UTC)) - refreshed_at > REFRESH


async def walk(mailbox: Mailbox, data_source_id: int | None) -> tuple[FolderTree, list[FolderRow]]:
    """The mailbox's folder tree, and its rows to record."""
    tree = await mailbox.folder_tree()
    return tree, [folder_row(node, data_source_id) for node in tree]


async def resolve(
    mailbox: Mailbox, tree: FolderTree, references: Sequence[str], *, subfolders: bool
) -> list[SyncFolder]:
    """Resolve references against a freshly walked tree (asking Graph for ids and well-known names the walk
    did not label); FolderNotFound with the closest paths when one matches nothing."""
    chosen: dict[str, FolderNode] = {}
    for reference in references:
        if subfolders and reference.lower() == ROOT:
            chosen.update((n.id, n) for n in tree if n.id not in chosen)
            continue
        try:
            node = await mailbox.resolve_folder(reference, tree=tree)
        except FolderNotFoundError as error:
            raise FolderNotFound(
                error.message, reference=error.reference, suggestions=error.suggestions
            ) from None
        chosen.setdefault(node.id, node)
        if subfolders:
            for child in tree.subtree(node.id):
                chosen.setdefault(child.id, child)
    return [SyncFolder(n.id, n.path, n.folder.total_item_count) for n in chosen.values()]
