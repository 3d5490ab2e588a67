"""The rooms import each other only as DESIGN's table allows: the wire's two sides (filters, sandbox) and the
store stand alone, and nothing points up the table (api or defs to cli, sync to defs, ...)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = ("filters", "sandbox", "pipelines")

# room -> the rooms it may import (its own modules always; `pipelines.settings` is shared configuration)
ALLOWED = {
    "filters": set(),
    "sandbox": set(),
    "pipelines.store": set(),
    "pipelines.graph": {"filters"},
    "pipelines.sync": {"filters", "pipelines.graph", "pipelines.store", "pipelines.settings"},
    "pipelines.defs": {"pipelines.sync", "pipelines.store", "pipelines.settings"},
    "pipelines.api": {"filters", "pipelines.graph", "pipelines.store", "pipelines.settings"},
    "pipelines.settings": {"pipelines.graph", "pipelines.store"},
}


def _room(module: str) -> str | None:
    """The room a dotted module name belongs to (None: not ours)."""
    for room in sorted(ALLOWED, key=len, reverse=True):
        if module == room or module.startswith(room + "."):
            return room
    if module.split(".")[0] in OURS:
        return module  # ours but in no ruled room (pipelines.cli, pipelines.definitions)
    return None


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "pipelines":  # `from pipelines import sync`
                names |= {f"pipelines.{alias.name}" for alias in node.names}
            else:
                names.add(node.module)
    return names


def _module_of(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


SOURCES = sorted(
    p
    for top in ("filters", "sandbox", "pipelines")
    for p in (ROOT / top).rglob("*.py")
    if _room(_module_of(p))
)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_module_imports_only_what_its_room_may(path: Path) -> None:
    room = _room(_module_of(path))
    if room not in ALLOWED:
        return  # cli and the definitions may import anything
    wrong = _forbidden(path, room)
    assert not wrong, f"{path.relative_to(ROOT)} ({room}) imports {wrong}"


def _forbidden(path: Path, room: str) -> list[str]:
    """What `path`, a module of `room`, imports from rooms the table does not allow it."""
    return sorted(
        name
        for name in _imports(path)
        if (other := _room(name)) is not None and other != room and other not in ALLOWED[room]
    )


def test_the_rule_catches_a_room_pointing_up(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import filters\nfrom pipelines import cli, sync\nfrom pipelines.store import MailStore\n"
    )
    assert _forbidden(probe, "pipelines.defs") == ["filters", "pipelines.cli"]
    assert _forbidden(probe, "pipelines.sync") == ["pipelines.cli"]  # its own room and the store are fine
