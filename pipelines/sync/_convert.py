"""Bodies to text for a batch of messages, in this process or a small pool of worker processes.

HTML to text (BeautifulSoup on lxml, `text.py`) is the costliest step of a first sync: pure Python that holds
the GIL, so threads do not help. A batch is converted as one task, in a worker process when the run has many
bodies, so fetching, parsing and writing go on meanwhile. uniqueBody is often the very body (a message without
quoted history), and is then converted once.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from pipelines.sync.text import html_to_text, tidy_text

log = logging.getLogger("pipelines.sync")

# (body content type, body, uniqueBody content type, uniqueBody); content types 'html' or 'text'.
BodyParts = tuple[str | None, str | None, str | None, str | None]


def _text(content_type: str | None, content: str | None) -> str | None:
    if content is None:
        return None
    if (content_type or "html").lower() == "text":
        return tidy_text(content)
    return html_to_text(content)


def convert(parts: Sequence[BodyParts]) -> list[tuple[str | None, str | None]]:
    """(text, unique text) of each message's body and uniqueBody."""
    out = []
    for body_type, body, unique_type, unique in parts:
        text = _text(body_type, body)
        if unique is None:
            unique_text = None
        elif unique == body and (unique_type or "").lower() == (body_type or "").lower():
            unique_text = text
        else:
            unique_text = _text(unique_type, unique)
        out.append((text, unique_text))
    return out


POOL_MIN = 32
"""Fewer bodies than this are converted on the spot: a worker would cost more than it saves."""


def default_workers() -> int:
    """One worker per core but one: the run's own process fetches and writes meanwhile."""
    return max(1, min(4, (os.cpu_count() or 1) - 1))


class Converter:
    """Converts batches in worker processes (started on first use) or, with `workers=0`, in this process."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: Executor | None = None

    async def convert(self, parts: Sequence[BodyParts]) -> list[tuple[str | None, str | None]]:
        if not parts:
            return []
        if self.workers == 0 or len(parts) < POOL_MIN:
            return convert(parts)
        if self._pool is None:
            # forkserver: a clean child, not a fork of a process that holds DuckDB and event-loop threads.
            context = multiprocessing.get_context("forkserver")
            self._pool = ProcessPoolExecutor(self.workers, mp_context=context)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, convert, list(parts))
        except BrokenProcessPool:
            # A worker died (killed, out of memory, or a __main__ script without a __name__ guard, which
            # worker processes import): convert here from now on rather than fail the run.
            log.warning("HTML conversion workers stopped; converting in the run's own process")
            self.close()
            self.workers = 0
            return convert(parts)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
