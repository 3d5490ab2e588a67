"""Attachment content: streamed from `/$value` with a size cap, or saved to a file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from pipelines.graph._errors import AttachmentTooLarge, TransientError


@dataclass(frozen=True)
class SavedAttachment:
    """An attachment's content written to a file."""

    path: Path
    size: int
    sha256: str
    content_type: str | None


class AttachmentStream:
    """An attachment's content being read from `/$value`, in chunks, never more than `max_bytes`."""

    def __init__(self, response: httpx.Response, *, max_bytes: int | None, what: str) -> None:
        self._response = response
        self._max = max_bytes
        self._what = what
        length = response.headers.get("content-length")
        self.size: int | None = int(length) if length and length.isdigit() else None
        """The size Graph declared (Content-Length), if it did."""
        self.content_type: str | None = response.headers.get("content-type")
        """The content's type: the file's own, `message/rfc822` for an attached mail, `text/calendar` …"""

    async def chunks(self, chunk_size: int = 1 << 16) -> AsyncIterator[bytes]:
        """The content, chunk by chunk; AttachmentTooLarge as soon as it passes the cap."""
        seen = 0
        try:
            async for chunk in self._response.aiter_bytes(chunk_size):
                seen += len(chunk)
                if self._max is not None and seen > self._max:
                    raise AttachmentTooLarge(
                        f"{self._what}: content is over the cap of {self._max} bytes",
                        size=self.size,
                        cap=self._max,
                    )
                yield chunk
        except httpx.TransportError as exc:
            raise TransientError(f"{self._what}: the download broke off ({type(exc).__name__})") from None
