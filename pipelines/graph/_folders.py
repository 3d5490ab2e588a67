"""Folder paths and trees: display-name paths with `\\/` escapes, the walked tree, close-match suggestions.

Pure: the mailbox fetches the folders, this module arranges and searches them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from pipelines.graph._errors import FolderNotFoundError
from pipelines.graph._models import MailFolder

WELL_KNOWN_NAMES = frozenset(
    {
        "archive",
        "clutter",
        "conflicts",
        "conversationhistory",
        "deleteditems",
        "drafts",
        "inbox",
        "junkemail",
        "localfailures",
        "msgfolderroot",
        "outbox",
        "recoverableitemsdeletions",
        "scheduled",
        "searchfolders",
        "sentitems",
        "serverfailures",
        "syncissues",
    }
)
"""Graph's well-known folder names: they work in any locale, case-insensitively, wherever an id goes."""

# The well-known folders a mail tree usually shows; asked for by name to label the walked tree.
TREE_WELL_KNOWN = (
    "inbox",
    "drafts",
    "sentitems",
    "deleteditems",
    "junkemail",
    "archive",
    "outbox",
    "scheduled",
)


def split_path(path: str) -> tuple[str, ...]:
    """`Inbox/Receipts\\/Bills` → ('Inbox', 'Receipts/Bills'). A backslash escapes the next character."""
    parts: list[str] = []
    current: list[str] = []
    chars = iter(path)
    for char in chars:
        if char == "\\":
            escaped = next(chars, None)
            if escaped is None:
                raise FolderNotFoundError(
                    f"folder path {path!r} ends with a lone backslash (write \\/ for a slash inside a name, "
                    "\\\\ for a backslash)",
                    reference=path,
                )
            current.append(escaped)
        elif char == "/":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    if any(not part.strip() for part in parts):
        raise FolderNotFoundError(
            f"folder path {path!r} has an empty name (a leading, trailing or doubled '/')", reference=path
        )
    return tuple(parts)


def join_path(parts: Iterable[str]) -> str:
    """The inverse of `split_path`: names joined with `/`, with `\\` and `/` inside names escaped."""
    return "/".join(part.replace("\\", "\\\\").replace("/", "\\/") for part in parts)


@dataclass(frozen=True)
class FolderNode:
    """A folder in its place: the display-name `path` from the top of the mailbox, and its well-known name."""

    folder: MailFolder
    parts: tuple[str, ...]
    well_known_name: str | None = None

    @property
    def id(self) -> str:
        return self.folder.id

    @property
    def path(self) -> str:
        """The escaped display-name path, e.g. `Inbox/Receipts/2024`."""
        return join_path(self.parts)

    @property
    def depth(self) -> int:
        return len(self.parts) - 1


class FolderTree:
    """Every mail folder of a mailbox (search folders left out), in walk order: parents before children."""

    def __init__(self, nodes: Iterable[FolderNode]) -> None:
        self._nodes = sorted(nodes, key=lambda n: tuple(p.casefold() for p in n.parts))
        self._by_id = {n.id: n for n in self._nodes}
        self._by_parts: dict[tuple[str, ...], FolderNode] = {n.parts: n for n in self._nodes}

    def __iter__(self) -> Iterator[FolderNode]:
        return iter(self._nodes)

    def __len__(self) -> int:
        return len(self._nodes)

    def get(self, folder_id: str) -> FolderNode | None:
        """The folder with this id, if the tree holds it."""
        return self._by_id.get(folder_id)

    def well_known(self, name: str) -> FolderNode | None:
        """The folder labelled with this well-known name during the walk, if any."""
        name = name.lower()
        return next((n for n in self._nodes if n.well_known_name == name), None)

    def find(self, parts: tuple[str, ...]) -> FolderNode | None:
        """The folder at this display-name path: exact, else the only case-insensitive match, else None."""
        exact = self._by_parts.get(parts)
        if exact is not None:
            return exact
        folded = tuple(p.casefold() for p in parts)
        matches = [n for n in self._nodes if tuple(p.casefold() for p in n.parts) == folded]
        return matches[0] if len(matches) == 1 else None

    def subtree(self, folder_id: str) -> list[FolderNode]:
        """The folder and every folder below it, parents first."""
        top = self._by_id.get(folder_id)
        if top is None:
            return []
        depth = len(top.parts)
        return [n for n in self._nodes if n.parts[:depth] == top.parts]

    def suggestions(self, reference: str, *, limit: int = 5) -> tuple[str, ...]:
        """Paths that look like `reference` (by whole path and by last name), closest first."""
        wanted = reference.casefold()
        candidates: dict[str, str] = {}
        for node in self._nodes:
            candidates.setdefault(node.path.casefold(), node.path)
            candidates.setdefault(node.parts[-1].casefold(), node.path)
        for name in WELL_KNOWN_NAMES:
            candidates.setdefault(name, name)
        close = difflib.get_close_matches(wanted, list(candidates), n=limit * 2, cutoff=0.6)
        # Substring matches help where difflib does not: `receipts` for `Inbox/Receipts/2024`.
        close += [key for key in candidates if wanted and wanted in key and key not in close]
        seen: dict[str, None] = {}
        for key in close:
            seen.setdefault(candidates[key], None)
        return tuple(seen)[:limit]


def build_tree(
    folders: Iterable[MailFolder], *, root_id: str | None, well_known: dict[str, str] | None = None
) -> FolderTree:
    """Arrange fetched folders into a tree. Top-level folders have `root_id` (or an unknown id) as parent.

    Search folders, and folders whose parent is missing from the listing (below a search folder), are left
    out.
    `well_known` maps folder ids to their well-known names.
    """
    by_id = {f.id: f for f in folders if not f.is_search_folder}
    labels = well_known or {}
    nodes: list[FolderNode] = []
    placed: dict[str, tuple[str, ...]] = {}

    def place(folder: MailFolder, trail: frozenset[str]) -> tuple[str, ...] | None:
        if folder.id in placed:
            return placed[folder.id]
        parent_id = folder.parent_folder_id
        name = folder.display_name or folder.id
        if parent_id is None or parent_id == root_id or (root_id is None and parent_id not in by_id):
            parts: tuple[str, ...] | None = (name,)
        elif parent_id in by_id and parent_id not in trail:
            above = place(by_id[parent_id], trail | {folder.id})
            parts = None if above is None else (*above, name)
        else:
            parts = None
        if parts is not None:
            placed[folder.id] = parts
            nodes.append(FolderNode(folder=folder, parts=parts, well_known_name=labels.get(folder.id)))
        return parts

    for folder in by_id.values():
        place(folder, frozenset())
    return FolderTree(nodes)
