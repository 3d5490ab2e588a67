"""A sync-like writer for the crash test: resumes from the stored cursor and writes pages until the end.

Run as `python -m tests.store.crash_writer STORE_PATH PAGES`; prints `page N` after each committed page.
Page p holds messages p*50 .. p*50+49 and removes the first message of page p-1.
"""

import sys

from pipelines.store import Cursor, MailStore, Page
from tests.store.conftest import email

PAGE_SIZE = 50
FOLDER, FP = "inbox", "fp"


def page(p: int, pages: int) -> Page:
    rows = [email(n) for n in range(p * PAGE_SIZE, (p + 1) * PAGE_SIZE)]
    removals = [f"AAMk-{(p - 1) * PAGE_SIZE:05d}"] if p else []
    cursor = Cursor(next_link=f"page-{p + 1}") if p + 1 < pages else Cursor(delta_link="delta-final")
    return Page(FOLDER, FP, upserts=rows, removals=removals, cursor=cursor)


def main(path: str, pages: int) -> None:
    store = MailStore(path)
    state = store.sync_state(FOLDER, FP)
    if state is None:
        store.start_round(FOLDER, FP)
        start = 0
    elif state.next_link is None:
        return
    else:
        start = int(state.next_link.removeprefix("page-"))
    for p in range(start, pages):
        store.apply_page(page(p, pages))
        print(f"page {p}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
