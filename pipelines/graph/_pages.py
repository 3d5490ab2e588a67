"""Pages of listings and delta rounds: what callers get, and reading one page ahead.

A listing's next page can only be asked for once the current page names it, so a plain loop leaves Graph idle
while we parse and us idle while Graph builds. `read_ahead` peeks the next link from the raw bytes, sends that
request, and only then parses the page; a wrong guess (the parsed page disagrees) is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import orjson

from pipelines.graph._errors import GraphError, TransientError
from pipelines.graph._models import Message, MessagePageBody

Fetch = Callable[[str, dict[str, str] | None, asyncio.Event | None], Awaitable[bytes]]
"""GET one page: (path or link, query for the first request, an event to set once the request is sent)."""


@dataclass(frozen=True)
class MessagePage:
    """One page of a listing, and the link to the next (None on the last page)."""

    messages: list[Message]
    next_link: str | None


@dataclass(frozen=True)
class DeltaPage:
    """One page of a delta round: changed messages, removed ids, and the link that follows this page.

    Store `cursor` in the same transaction as the page: it is the next link inside a round, and the delta link
    (start of the next round) on the round's last page.
    """

    messages: list[Message]
    removed: list[str]
    next_link: str | None
    delta_link: str | None

    @property
    def cursor(self) -> str:
        """Where to resume after this page."""
        link = self.next_link or self.delta_link
        assert link is not None  # a page without either link is rejected when it is read
        return link

    @property
    def last(self) -> bool:
        """Whether this page ends the round (it carries the delta link)."""
        return self.next_link is None


async def read_ahead(
    fetch: Fetch, link: str, params: dict[str, str] | None
) -> AsyncIterator[MessagePageBody]:
    """Each page from `link` on, following next links exactly, with the next page requested before this one
    is parsed. A link that comes back unchanged stops the paging (Graph would loop)."""

    def start(
        url: str, query: dict[str, str] | None, sent: asyncio.Event | None = None
    ) -> asyncio.Task[bytes]:
        return asyncio.ensure_future(fetch(url, query, sent))

    pending: asyncio.Task[bytes] | None = start(link, params)
    try:
        while pending is not None:
            body = await pending
            guess = _peek_next_link(body)
            pending = None
            if guess and guess != link:
                sent = asyncio.Event()
                pending = start(guess, None, sent)
                await _until_sent(pending, sent)
            page = MessagePageBody.model_validate_json(body)
            if page.next_link is not None and page.next_link == link:
                raise TransientError(f"Graph returned the same next link again ({link}); stopping")
            if page.next_link != guess:
                if pending is not None:
                    pending.cancel()
                pending = start(page.next_link, None) if page.next_link else None
            yield page
            link = page.next_link or link
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, GraphError):
                await pending


_NEXT_LINK = b'"@odata.nextLink":'


async def _until_sent(request: asyncio.Task[bytes], sent: asyncio.Event) -> None:
    """Wait until `request` is on the wire (or already answered, as in-process transports do at once)."""
    written = asyncio.ensure_future(sent.wait())
    try:
        await asyncio.wait((request, written), return_when=asyncio.FIRST_COMPLETED)
    finally:
        written.cancel()


def _peek_next_link(body: bytes) -> str | None:
    """The page's top-level next link, read from the raw bytes without parsing the page (a guess that the
    caller checks: JSON escapes every quote inside strings, so the key can only be a real key)."""
    at = body.rfind(_NEXT_LINK)
    if at < 0:
        return None
    start = body.find(b'"', at + len(_NEXT_LINK))
    end = body.find(b'"', start + 1)
    if start < 0 or end < 0:
        return None
    try:
        link = orjson.loads(body[start : end + 1])
    except orjson.JSONDecodeError:
        return None
    return link if isinstance(link, str) else None
