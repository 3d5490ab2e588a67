"""The Markdown the UI shows: previews, counts and folder lines, built by pure functions."""

from datetime import UTC, datetime

from pipelines.defs._report import bullet_list, cell, folder_line, outcomes, preview
from pipelines.store import EmailSummary
from pipelines.sync import FolderOutcome


def test_a_preview_is_a_table_that_survives_hostile_subjects() -> None:
    rows = [
        EmailSummary(
            7, datetime(2024, 5, 1, 9, 30, tzinfo=UTC), "a | b\nnext line", "ada@example.com", "Inbox"
        ),
        EmailSummary(8, None, None, None, None),
    ]
    lines = preview(rows).splitlines()
    assert lines[0] == "| received (UTC) | from | subject | folder | file id |"
    assert lines[2] == "| 2024-05-01 09:30 | ada@example.com | a \\| b next line | Inbox | 7 |"
    assert lines[3] == "|  |  | _(no subject)_ |  | 8 |"
    assert preview([]) == "_No emails stored yet._"


def test_cells_are_one_line_and_bounded() -> None:
    assert cell("x" * 500).endswith("…")
    assert len(cell("x" * 500)) == 80
    assert cell(None) == ""
    assert cell("back\\slash") == "back\\\\slash"


def test_outcomes_in_the_order_a_message_meets_them() -> None:
    table = outcomes({"inserted": 3, "seen": 10, "matched": 4, "deleted": 0}, {"not_matched": 6})
    assert table.splitlines()[0] == "| seen | matched | inserted | deleted |"
    assert table.splitlines()[2] == "| 10 | 4 | 3 | 0 |"
    assert table.endswith("skipped: not_matched 6")
    assert "skipped" not in outcomes({"seen": 1}, {})


def test_folder_lines_and_lists() -> None:
    one = FolderOutcome(folder_id="f", path="Inbox/Receipts", round="incremental", pages=1)
    many = FolderOutcome(folder_id="g", path="Archive", round="first", restarted=True, pages=3)
    assert folder_line(one) == "Inbox/Receipts: incremental round, 1 page"
    assert folder_line(many) == "Archive: first round, 3 pages, restarted after Graph forgot its link"
    assert bullet_list(["a", "b"]) == "- a\n- b"
    assert bullet_list([]) == "_none_"
