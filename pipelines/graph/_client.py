"""The Graph client: one connection (one token provider) over one `httpx.AsyncClient`, handing out mailboxes.

async with GraphClient(settings, ClientCredentialsProvider(settings)) as graph:
    mailbox = graph.user("adele@contoso.test")          # or graph.me() with a delegated provider
    inbox = await mailbox.resolve_folder("Inbox/Receipts/2024")
    async for page in mailbox.delta(inbox.id, select=("subject", "from")):
        ...  # page.messages, page.removed, then store page.cursor with them
"""

from __future__ import annotations

import ssl
from types import TracebackType
from urllib.parse import quote

import httpx

from pipelines.graph._auth import TokenProvider
from pipelines.graph._errors import BadRequestError
from pipelines.graph._mailbox import Mailbox
from pipelines.graph._settings import GraphSettings
from pipelines.graph._transport import Clock, Stats, Transport


class GraphClient:
    """An async Microsoft Graph mail client for one connection (one token provider), over `httpx`.

    Pass `transport=` to run against an in-process app (`httpx.ASGITransport`) or a scripted one
    (`httpx.MockTransport`); by default it speaks HTTPS, trusting `settings.ca_bundle` when set.
    """

    def __init__(
        self,
        settings: GraphSettings,
        auth: TokenProvider,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        verify: object = True
        if settings.ca_bundle is not None and transport is None:
            verify = ssl.create_default_context(cafile=str(settings.ca_bundle))
        http = httpx.AsyncClient(
            transport=transport,
            verify=verify,  # type: ignore[arg-type]
            timeout=httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s),
            follow_redirects=True,  # httpx drops Authorization on a redirect to another origin
            headers={"Accept": "application/json", "User-Agent": "mailroom (pipelines.graph)"},
        )
        self._transport = Transport(settings, auth, http, clock=clock)

    def __repr__(self) -> str:
        return f"GraphClient({self.settings.graph_root!r}, auth={self._transport.auth!r})"

    async def __aenter__(self) -> GraphClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections."""
        await self._transport.http.aclose()

    @property
    def stats(self) -> Stats:
        """Counts of requests, retries, throttling and time waited since the client was made."""
        return self._transport.stats

    def me(self) -> Mailbox:
        """The signed-in person's mailbox (delegated tokens only; app-only tokens have no /me)."""
        return Mailbox(self._transport, "/me", key="me")

    def user(self, id_or_upn: str) -> Mailbox:
        """Any mailbox by user id or UPN (app-only access, or delegated access to a shared mailbox)."""
        if not id_or_upn.strip() or "/" in id_or_upn:
            raise BadRequestError(f"not a user id or UPN: {id_or_upn!r}")
        return Mailbox(self._transport, f"/users/{quote(id_or_upn, safe='@')}", key=id_or_upn.lower())
