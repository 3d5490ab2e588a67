"""apply_page against a model: any run of pages, moves, removals and replays leaves what the model says."""

from pathlib import Path
from tempfile import TemporaryDirectory

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.store import Cursor, FileQuery, MailStore, Page
from tests.store.conftest import email

FOLDERS = ("inbox", "archive")
IDS = st.lists(st.integers(0, 11), min_size=1, max_size=6, unique=True)
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("upsert"), st.sampled_from(FOLDERS), IDS, st.integers(0, 2)),
        st.tuples(st.just("remove"), st.sampled_from(FOLDERS), IDS, st.just(0)),
        st.tuples(st.just("replay"), st.just(""), st.just([]), st.just(0)),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPERATIONS)
def test_the_store_matches_a_model_of_the_mailbox(operations: list[tuple[str, str, list[int], int]]) -> None:
    with TemporaryDirectory() as tmp:
        store = MailStore(Path(tmp) / "model.duckdb")
        for folder in FOLDERS:
            store.start_round(folder, "fp", sweep=False)
        model: dict[str, tuple[str, str]] = {}  # message id -> (folder, subject) of live messages
        ever: dict[str, int] = {}  # message id -> the file id it got first
        last: Page | None = None
        for kind, folder, numbers, version in operations:
            if kind == "replay":
                if last is None:
                    continue
                page = last
            elif kind == "upsert":
                rows = [email(n, folder=folder, subject=f"v{version}") for n in numbers]
                page = Page(folder, "fp", upserts=rows, cursor=Cursor(next_link="n"))
            else:
                page = Page(
                    folder, "fp", removals=[f"AAMk-{n:05d}" for n in numbers], cursor=Cursor(next_link="n")
                )
            store.apply_page(page)
            last = page
            for row in page.upserts:
                model[row.message_id] = (row.folder_id, row.subject or "")
            for message_id in page.removals:
                if model.get(message_id, ("",))[0] == page.folder_id:
                    del model[message_id]
            files = store.list_files(FileQuery(limit=100)).results
            for f in files:
                assert ever.setdefault(f.message_id, f.file_id) == f.file_id, "a file id never changes"
            stored = {f.message_id: (f.folder_id, f.name) for f in files}
            assert stored == model
        assert store.integrity().ok
        assert sorted(ever.values()) == list(range(1, len(ever) + 1)), "file ids are dense and never reused"
