"""Files' tags in the mail store: pages merge a sync's tags onto the files they list, rewrites keep them, and
tags filters select by them, in `MailStore.list_files` and in the API's `SharedReader` (view and copy)."""

import pytest

from pipelines.store import (
    AttachmentRow,
    Cursor,
    FileQuery,
    MailStore,
    Page,
    SharedReader,
    TagGroup,
    legacy_tag_filter,
    normalise_tags,
    parse_tag_filter,
)
from tests.store.conftest import email

FP = "fp"


def tags_of(store: MailStore) -> dict[int, dict | None]:
    return {f.file_id: f.tags for f in store.list_files(FileQuery(limit=100, order_by="id")).results}


def matching(store: MailStore, tags: TagGroup) -> list[int]:
    return [f.file_id for f in store.list_files(FileQuery(limit=100, order_by="id", tags=tags)).results]


def sync(store: MailStore, rows: list, tags: dict | None, seen: tuple[str, ...] = ()) -> None:
    page = Page(
        "inbox", FP, upserts=rows, seen=seen, tags=normalise_tags(tags), cursor=Cursor(delta_link="d")
    )
    store.apply_page(page)


@pytest.fixture
def tagged(store: MailStore) -> MailStore:
    """Files 1-2: emails synced with {team: sales, year: 2024}, 1 with attachment 3; 4: one without tags."""
    store.start_round("inbox", FP)
    first = email(1, attachments=(AttachmentRow("a", name="scan.pdf", size=10),))
    sync(store, [first, email(2)], {"team": "sales", "year": 2024})
    sync(store, [email(3)], None)
    return store


def test_a_sync_tags_the_files_it_brings_and_attachments_show_their_emails_tags(tagged: MailStore) -> None:
    expected = {"team": "sales", "year": "2024"}  # values become strings, as in Carbon
    assert tags_of(tagged) == {1: expected, 2: expected, 3: expected, 4: None}


def test_a_later_sync_upserts_its_tags_and_one_without_tags_leaves_them(tagged: MailStore) -> None:
    # 1 changed (rewritten), 2 listed unchanged (seen), 4 untagged so far: all get the new keys merged in.
    sync(
        tagged, [email(1, subject="changed"), email(3)], {"team": ["ops", "it"], "new": True}, ("AAMk-00002",)
    )
    merged = {"team": ["ops", "it"], "year": "2024", "new": "True"}
    assert tags_of(tagged) == {1: merged, 2: merged, 3: merged, 4: {"team": ["ops", "it"], "new": "True"}}
    sync(tagged, [email(1, subject="changed again"), email(2, subject="changed too")], {})
    assert tags_of(tagged) == {1: merged, 2: merged, 3: merged, 4: {"team": ["ops", "it"], "new": "True"}}


def test_deleted_and_removed_files_keep_their_tags_and_are_not_retagged(tagged: MailStore) -> None:
    tagged.delete_files([2], keep_record=True)
    tagged.apply_page(Page("inbox", FP, removals=["AAMk-00003"], cursor=Cursor(delta_link="d")))
    sync(tagged, [], {"late": "x"}, ("AAMk-00002", "AAMk-00003"))
    files = {f.file_id: f.tags for f in tagged.list_files(FileQuery(include_removed=True, limit=9)).results}
    assert files[2] == {"team": "sales", "year": "2024"}
    assert files[4] is None


def test_tags_filters(tagged: MailStore) -> None:
    sync(tagged, [email(5)], {"team": ["ops", "sales"]})

    def v2(value: dict) -> list[int]:
        return matching(tagged, parse_tag_filter(value))

    assert v2({"AND": [{"key": "team", "value": "sales"}]}) == [1, 2, 3, 5]  # a list tag matches an element
    assert v2({"OR": [{"key": "year", "value": [2023, 2024]}]}) == [1, 2, 3]  # a list value: any of them
    assert v2({"AND": [{"key": "team", "value": "sales", "negate": True}]}) == [4]  # untagged ones too
    assert v2({"OR": [{"key": "team", "value": "ops"}, {"AND": [{"key": "year", "value": "2024"}]}]}) == [
        1,
        2,
        3,
        5,
    ]
    assert v2({"AND": [{"key": "team", "value": "sales"}, {"key": "year", "value": "2024"}]}) == [1, 2, 3]
    assert v2({"AND": [{"key": "year", "value": "sales"}]}) == []  # a value under another key
    assert v2({"OR": []}) == []
    assert v2({"AND": []}) == [1, 2, 3, 4, 5]
    assert matching(tagged, legacy_tag_filter({"team": "ops"})) == [5]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"NOT": []}, 'one key, "AND" or "OR"'),
        ({"AND": {"key": "a"}}, "tags_v2.AND: expected a list"),
        ({"AND": [{"value": "x"}]}, "tags_v2.AND[0].key: required"),
        ({"AND": [{"key": "a"}]}, "tags_v2.AND[0].value: required"),
        ({"OR": [{"key": "a", "value": {"b": 1}}]}, "tags_v2.OR[0].value: a tag's value"),
        ({"OR": [{"key": "a", "value": 1, "negate": "yes"}]}, "tags_v2.OR[0].negate"),
        ({"OR": [{"key": "a", "value": 1, "other": 1}]}, "unknown field(s) other"),
        ({"OR": [{"AND": [{"OR": [{"AND": []}]}]}]}, "nests at most 3 levels"),
    ],
)
def test_bad_tags_filters_say_where(value: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        parse_tag_filter(value)


def test_tags_are_normalised_or_refused_by_key() -> None:
    assert normalise_tags({"a": 1.5, "b": [1, "x", False], "c": "y"}) == {
        "a": "1.5",
        "b": ["1", "x", "False"],
        "c": "y",
    }
    assert normalise_tags(None) == {}
    assert normalise_tags({}) == {}
    for bad, where in (({"k": None}, "tag 'k'"), ({"k": {"x": 1}}, "tag 'k'"), ({"k": [[1]]}, "tag 'k'")):
        with pytest.raises(ValueError, match=where):
            normalise_tags(bad)
    with pytest.raises(ValueError, match="non-empty string"):
        normalise_tags({"": "x"})


def test_the_api_reader_filters_and_shows_tags_as_the_store_does(tagged: MailStore) -> None:
    filters = [
        None,
        parse_tag_filter({"AND": [{"key": "team", "value": "sales"}]}),
        parse_tag_filter({"OR": [{"key": "year", "value": "2024", "negate": True}]}),
    ]
    queries = [FileQuery(limit=100, order_by="id", tags=f) for f in filters]
    expected = [tagged.list_files(q) for q in queries]
    assert [len(p.results) for p in expected] == [4, 3, 1]
    reader = SharedReader(idle_s=60, keep_files=1000)
    try:
        for _ in range(3):  # past the pages that load the files into the reader's copy
            for query, page in zip(queries, expected, strict=True):
                assert reader.list_files(tagged.path, query) == page
        (entry,) = reader._attached.values()
        assert entry.files is not None  # the copy answered the last rounds
    finally:
        reader.close()


def test_a_key_or_value_holding_separators_cannot_pose_as_another(store: MailStore) -> None:
    store.start_round("inbox", FP)
    sync(store, [email(1)], {'a","b': "c"})
    sync(store, [email(2)], {"a": 'b","c'})
    assert matching(store, parse_tag_filter({"AND": [{"key": "a", "value": 'b","c'}]})) == [2]
    assert matching(store, parse_tag_filter({"AND": [{"key": 'a","b', "value": "c"}]})) == [1]
