"""Store benchmarks: page commits per second, replays, store bytes per message, reader latency, HTML to text.

Figures for the engine's targets: a page commit must stay small next to fetching the page (the sync may take
at most 1.5x the bare transfer), a replay of unchanged pages must write nothing, and readers (the API) open a
short read-only connection per call.
"""

import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipelines.store import Address, Cursor, EmailRow, FileQuery, MailStore, Page
from pipelines.sync.text import html_to_text

MESSAGES = 20_000
PAGE = 500  # rows per unit of work; 100 is measured too, to show what the fixed open + checkpoint costs
SMALL_PAGE, SMALL_MESSAGES = 100, 5_000
_PARAGRAPH = "<p>Quarterly numbers are in: revenue grew, costs fell, and the team shipped delta sync.</p>"


def _row(n: int) -> EmailRow:
    html = f"<html><body><p>Hello {n},</p>{_PARAGRAPH * 40}<p>-- <br>Ada</p></body></html>"
    return EmailRow(
        message_id=f"AAMkAGI2TG93AAA-{n:08d}-immutable-id-padding-to-realistic-length==",
        folder_id="inbox",
        folder_path="Inbox",
        internet_message_id=f"<{n}.bench@mail.example.com>",
        conversation_id=f"AAQkAGI2-conv-{n // 4}",
        subject=f"Quarterly report {n}",
        from_name="Ada Lovelace",
        from_address="ada@example.com",
        sender_name="Ada Lovelace",
        sender_address="ada@example.com",
        to_recipients=(Address("Bob", "bob@example.com"), Address("Carol", "carol@example.com")),
        received_at=datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=n),
        sent_at=datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=n),
        categories=("Work",),
        importance="normal",
        is_read=n % 3 == 0,
        flag_status="notFlagged",
        has_attachments=False,
        web_link=f"https://outlook.office365.com/owa/?ItemID={n}&exvsurl=1&viewmodel=ReadMessageItem",
        change_key=f"CQAAABYAAAB{n:08d}",
        body_content_type="html",
        body_html=html,
        body_text=f"Hello {n},\n\n" + "Quarterly numbers are in.\n\n" * 40,
        unique_body_text=f"Hello {n},",
        body_preview=f"Hello {n}, Quarterly numbers are in",
    )


def _pages(rows: list[EmailRow], size: int = PAGE) -> list[Page]:
    pages = []
    for start in range(0, len(rows), size):
        last = start + size >= len(rows)
        cursor = Cursor(delta_link="delta") if last else Cursor(next_link=f"next-{start + size}")
        pages.append(Page("inbox", "fp", upserts=rows[start : start + size], cursor=cursor))
    return pages


def _timed(fn, repeat: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def main() -> None:
    rows = [_row(n) for n in range(MESSAGES)]
    pages = _pages(rows)
    with tempfile.TemporaryDirectory() as tmp:
        store = MailStore(Path(tmp) / "bench.duckdb")
        store.start_round("inbox", "fp")
        commits = []
        started = time.perf_counter()
        for page in pages:
            t = time.perf_counter()
            store.apply_page(page)
            commits.append(time.perf_counter() - t)
        total = time.perf_counter() - started
        size = sum(p.stat().st_size for p in Path(tmp).iterdir() if p.is_file())
        print(f"first sync: {MESSAGES} messages in {len(pages)} pages of {PAGE}: {total:.1f} s, "
              f"{MESSAGES / total:,.0f} messages/s")  # fmt: skip
        print(f"  page commit: median {statistics.median(commits) * 1000:.1f} ms, "
              f"p95 {sorted(commits)[int(len(commits) * 0.95)] * 1000:.1f} ms")  # fmt: skip
        print(
            f"  store bytes per message: {size / MESSAGES:,.0f} "
            f"(each HTML body here is {len(rows[0].body_html or '')} B)"
        )
        small = MailStore(Path(tmp) / "small.duckdb")
        small.start_round("inbox", "fp")
        small_commits = [
            t
            for page in _pages(rows[:SMALL_MESSAGES], SMALL_PAGE)
            for t in _timed(lambda p=page: small.apply_page(p), 1)
        ]
        ratio = (sum(small_commits) / SMALL_MESSAGES) / (total / MESSAGES)
        print(f"  with pages of {SMALL_PAGE}: median {statistics.median(small_commits) * 1000:.1f} ms/page, "
              f"{SMALL_PAGE / statistics.median(small_commits):,.0f} messages/s "
              f"({ratio:.1f}x the time per message of pages of {PAGE})")  # fmt: skip

        store.start_round("inbox", "fp", sweep=False)
        replays = [t for page in pages[:20] for t in _timed(lambda page=page: store.apply_page(page), 1)]
        last = store.apply_page(pages[0])
        print(f"replay of unchanged pages: median {statistics.median(replays) * 1000:.1f} ms/page "
              f"({last.unchanged} unchanged, {last.updated} rewritten)")  # fmt: skip

        reader = MailStore(store.path, read_only=True)
        opens = _timed(reader.counts, 30)
        listing = _timed(lambda: reader.list_files(FileQuery(limit=10, order_by="updated_at")), 30)
        filtered = _timed(lambda: reader.list_files(FileQuery(name_contains="report 19", limit=10)), 30)
        print(f"reader: counts {statistics.median(opens) * 1000:.1f} ms, list_files page of 10 "
              f"{statistics.median(listing) * 1000:.1f} ms, with a name filter "
              f"{statistics.median(filtered) * 1000:.1f} ms (median, open + query + close)")  # fmt: skip
        index = _timed(store.rebuild_search_index, 1)[0]
        search = _timed(lambda: reader.search("quarterly report"), 10)
        print(
            f"search index over {MESSAGES}: build {index:.1f} s, "
            f"query {statistics.median(search) * 1000:.1f} ms"
        )

    html = (Path(__file__).parents[1] / "tests" / "sync" / "corpus" / "newsletter.html").read_text()
    converts = _timed(lambda: html_to_text(html), 50)
    big = "<table>" + "<tr><td>2024-03-02</td><td>Coffee <b>beans</b></td><td>€38.00</td></tr>\n" * 70_000
    big_time = _timed(lambda: html_to_text(big), 1)[0]
    median = statistics.median(converts) * 1000
    print(f"html_to_text: newsletter ({len(html) / 1024:.1f} KB) {median:.1f} ms; "
          f"{len(big) / 1e6:.1f} MB table (cut at 2 MB) {big_time:.2f} s")  # fmt: skip
