"""Folder paths (with `\\/` escapes), trees built from listings, and close-match suggestions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.graph import FolderNotFoundError, MailFolder, join_path, split_path
from pipelines.graph._folders import build_tree


def folder(fid: str, name: str, parent: str, **extra: object) -> MailFolder:
    return MailFolder.model_validate({"id": fid, "displayName": name, "parentFolderId": parent, **extra})


TREE = build_tree(
    [
        folder("inbox", "Inbox", "root", childFolderCount=2),
        folder("receipts", "Receipts", "inbox", childFolderCount=1),
        folder("2024", "2024", "receipts"),
        folder("ab", "A/B testing", "inbox"),
        folder("sent", "Sent Items", "root"),
        folder("posteingang", "Überweisungen", "root"),
        folder("search", "Weekly digests", "root", **{"@odata.type": "#microsoft.graph.mailSearchFolder"}),
        folder("under-search", "Orphan", "search"),
    ],
    root_id="root",
    well_known={"inbox": "inbox", "sent": "sentitems"},
)


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        ("Inbox", ("Inbox",)),
        ("Inbox/Receipts/2024", ("Inbox", "Receipts", "2024")),
        ("Inbox/A\\/B testing", ("Inbox", "A/B testing")),
        ("C:\\\\temp", ("C:\\temp",)),
        ("Überweisungen", ("Überweisungen",)),
    ],
)
def test_split_path(path, parts) -> None:
    assert split_path(path) == parts
    assert split_path(join_path(parts)) == parts


@pytest.mark.parametrize("bad", ["", "/Inbox", "Inbox/", "Inbox//x", "Inbox\\", " / "])
def test_bad_paths_say_what_is_wrong(bad) -> None:
    with pytest.raises(FolderNotFoundError, match=r"empty name|lone backslash") as caught:
        split_path(bad)
    assert caught.value.reference == bad


@given(st.lists(st.text(min_size=1).filter(lambda s: s.strip()), min_size=1, max_size=5))
def test_join_then_split_round_trips(parts) -> None:
    assert split_path(join_path(parts)) == tuple(parts)


def test_the_tree_places_children_under_parents_and_leaves_search_folders_out() -> None:
    assert [n.path for n in TREE] == [
        "Inbox",
        "Inbox/A\\/B testing",
        "Inbox/Receipts",
        "Inbox/Receipts/2024",
        "Sent Items",
        "Überweisungen",
    ]
    assert TREE.get("2024").parts == ("Inbox", "Receipts", "2024")
    assert TREE.get("2024").depth == 2
    assert TREE.get("search") is None
    assert TREE.get("under-search") is None
    assert TREE.well_known("SentItems").id == "sent"


def test_find_is_exact_first_then_case_insensitive() -> None:
    assert TREE.find(("Inbox", "Receipts")).id == "receipts"
    assert TREE.find(("inbox", "receipts", "2024")).id == "2024"
    assert TREE.find(("Inbox", "A/B testing")).id == "ab"
    assert TREE.find(("Inbox", "Nothing")) is None


def test_subtree() -> None:
    assert [n.id for n in TREE.subtree("receipts")] == ["receipts", "2024"]
    assert [n.id for n in TREE.subtree("inbox")] == ["inbox", "ab", "receipts", "2024"]
    assert TREE.subtree("missing") == []


def test_suggestions_find_near_misses_and_parts() -> None:
    assert TREE.suggestions("Inbox/Reciepts")[0] == "Inbox/Receipts"
    assert "Inbox/Receipts/2024" in TREE.suggestions("2024")
    assert "Sent Items" in TREE.suggestions("sent itmes")
    assert TREE.suggestions("zzzzqqq") == ()


def test_a_tree_without_a_known_root_uses_folders_whose_parent_is_unlisted() -> None:
    tree = build_tree([folder("a", "A", "r"), folder("b", "B", "a")], root_id=None)
    assert [n.path for n in tree] == ["A", "A/B"]


def test_a_parent_cycle_does_not_hang() -> None:
    tree = build_tree(
        [folder("a", "A", "b"), folder("b", "B", "a"), folder("c", "C", "root")], root_id="root"
    )
    assert [n.path for n in tree] == ["C"]
