"""A mailbox and what can be done with it: folders, messages, $batch, delta and attachments.

Every operation goes through the client's Transport (retries, Retry-After, this mailbox's gate; see
`_transport`), so every request asks for immutable ids and keeps the mailbox's manners.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal
from urllib.parse import quote

import orjson

from pipelines.graph._attachments import AttachmentStream, SavedAttachment
from pipelines.graph._errors import (
    AttachmentTooLarge,
    BadRequestError,
    FolderNotFoundError,
    NotFoundError,
    TransientError,
)
from pipelines.graph._folders import (
    TREE_WELL_KNOWN,
    WELL_KNOWN_NAMES,
    FolderNode,
    FolderTree,
    build_tree,
    split_path,
)
from pipelines.graph._models import (
    Attachment,
    AttachmentPageBody,
    Category,
    CategoryPageBody,
    FolderPageBody,
    MailFolder,
    Message,
    MessagePageBody,
)
from pipelines.graph._pages import DeltaPage, MessagePage, read_ahead
from pipelines.graph._transport import (
    RETRY_AFTER_MARGIN_S,
    RETRYABLE_STATUSES,
    Gate,
    PageSize,
    Transport,
    backoff,
    error_for,
    parse_retry_after,
)

BATCH_LIMIT = 20
"""Graph takes at most 20 requests in one $batch."""

BodyType = Literal["html", "text"]

_ATTACHMENT_FIELDS = "id,name,contentType,size,isInline,lastModifiedDateTime"
_FOLDER_PAGE = "250"


class Mailbox:
    """One mailbox: `/me` (delegated) or `/users/{id or UPN}` (app-only, shared mailboxes, any user)."""

    def __init__(self, transport: Transport, path: str, key: str) -> None:
        self._transport = transport
        self.path = path
        """The path prefix of this mailbox's resources, e.g. `/users/adele%40contoso.test`."""
        self._gate: Gate = transport.gate(key)

    def __repr__(self) -> str:
        return f"Mailbox({self.path!r})"

    async def _get(
        self,
        path_or_link: str,
        *,
        params: dict[str, str] | None = None,
        prefer: tuple[str, ...] = (),
        page_size: PageSize | None = None,
        sent: asyncio.Event | None = None,
    ) -> bytes:
        return await self._transport.fetch(
            self._gate, "GET", path_or_link, params=params, prefer=prefer, page_size=page_size, sent=sent
        )

    def _pages(
        self, link: str, params: dict[str, str] | None, prefer: tuple[str, ...], page_size: PageSize | None
    ) -> AsyncIterator[MessagePageBody]:
        def fetch(url: str, query: dict[str, str] | None, sent: asyncio.Event | None) -> Awaitable[bytes]:
            return self._get(url, params=query, prefer=prefer, page_size=page_size, sent=sent)

        return read_ahead(fetch, link, params or None)

    # Folders ---------------------------------------------------------------------------------------------

    async def get_folder(self, id_or_well_known_name: str) -> MailFolder:
        """One folder by id or well-known name (NotFoundError if there is none)."""
        body = await self._get(f"{self.path}/mailFolders/{_segment(id_or_well_known_name)}")
        return MailFolder.model_validate_json(body)

    async def _folder_pages(self, path: str, params: dict[str, str]) -> list[MailFolder]:
        folders: list[MailFolder] = []
        link: str | None = path
        first = True
        while link:
            page = FolderPageBody.model_validate_json(await self._get(link, params=params if first else None))
            folders.extend(page.value)
            link, first = page.next_link, False
        return folders

    async def folder_tree(self, *, include_hidden: bool = False, well_known: bool = True) -> FolderTree:
        """Every mail folder, children walked level by level (search folders left out).

        With `well_known`, the usual well-known folders (inbox, sentitems, …) are labelled in the tree, found
        with one $batch.
        """
        params = {"$top": _FOLDER_PAGE}
        if include_hidden:
            params["includeHiddenFolders"] = "true"
        labels_task = asyncio.create_task(self._well_known_ids()) if well_known else None
        try:
            level = await self._folder_pages(f"{self.path}/mailFolders", params)
            root_id = level[0].parent_folder_id if level else None
            folders = list(level)
            while level:
                parents = [f for f in level if (f.child_folder_count or 0) > 0 and not f.is_search_folder]
                pages = await asyncio.gather(
                    *(
                        self._folder_pages(f"{self.path}/mailFolders/{_segment(f.id)}/childFolders", params)
                        for f in parents
                    )
                )
                level = [f for page in pages for f in page]
                folders.extend(level)
            labels = await labels_task if labels_task else {}
        finally:
            if labels_task and not labels_task.done():
                labels_task.cancel()
        return build_tree(folders, root_id=root_id, well_known=labels)

    async def _well_known_ids(self) -> dict[str, str]:
        # A mailbox may lack some of them (no archive, no scheduled): those stay unlabelled.
        paths = {name: f"{self.path}/mailFolders/{name}?$select=id" for name in TREE_WELL_KNOWN}
        answers = await self._batch(paths)
        return {
            answer["body"]["id"]: name
            for name, answer in answers.items()
            if answer["status"] == 200 and isinstance(answer.get("body"), dict) and "id" in answer["body"]
        }

    async def resolve_folder(self, reference: str, *, tree: FolderTree | None = None) -> FolderNode:
        """Find a folder by well-known name (`sentitems`), id, or display-name path (`Inbox/Receipts/2024`,
        with `\\/` for a slash inside a name; the first name may be a well-known one, which finds it in any
        mailbox language: `inbox/Receipts`).

        FolderNotFoundError, with the closest paths, when nothing matches.
        """
        reference = reference.strip()
        if not reference:
            raise FolderNotFoundError(
                "empty folder reference: give a well-known name, a path or an id", reference=""
            )
        tree = tree or await self.folder_tree()
        if reference.lower() in WELL_KNOWN_NAMES:
            return await self._well_known_node(reference.lower(), tree)
        node = tree.get(reference)
        if node is not None:
            return node
        try:
            parts = split_path(reference)
        except FolderNotFoundError:
            parts = None  # not a path; it may still be an id Graph knows
        if parts is not None:
            node = tree.find(parts)
            if node is None and len(parts) > 1 and parts[0].lower() in WELL_KNOWN_NAMES:
                top = await self._well_known_node(parts[0].lower(), tree)
                node = tree.find((*top.parts, *parts[1:]))
            if node is not None:
                return node
        if _looks_like_id(reference):
            try:
                folder = await self.get_folder(reference)
            except (NotFoundError, BadRequestError):
                folder = None
            if folder is not None:
                return tree.get(folder.id) or FolderNode(
                    folder=folder, parts=(folder.display_name or folder.id,)
                )
        if parts is None:
            split_path(reference)  # raises the error that says what is wrong with the path
        suggestions = tree.suggestions(reference)
        hint = f"; did you mean {', '.join(repr(s) for s in suggestions)}?" if suggestions else ""
        raise FolderNotFoundError(
            f"no folder {reference!r} in {self.path} (by well-known name, display-name path or id){hint}",
            reference=reference,
            suggestions=suggestions,
        )

    async def _well_known_node(self, name: str, tree: FolderTree) -> FolderNode:
        node = tree.well_known(name)
        if node is not None:
            return node
        try:
            folder = await self.get_folder(name)
        except NotFoundError:
            raise FolderNotFoundError(
                f"{self.path} has no {name!r} folder", reference=name, suggestions=tree.suggestions(name)
            ) from None
        found = tree.get(folder.id)
        parts = found.parts if found else (folder.display_name or name,)
        return FolderNode(folder=folder, parts=parts, well_known_name=name)

    async def categories(self) -> list[Category]:
        """The mailbox's category list (Outlook's master categories)."""
        return CategoryPageBody.model_validate_json(
            await self._get(f"{self.path}/outlook/masterCategories")
        ).value

    # Messages --------------------------------------------------------------------------------------------

    async def list_messages(
        self,
        folder_id: str | None = None,
        *,
        select: Sequence[str] | None = None,
        filter: str | None = None,
        orderby: str | None = None,
        top: int | None = None,
        link: str | None = None,
        body_type: BodyType | None = None,
        expand: str | None = None,
    ) -> AsyncIterator[MessagePage]:
        """Pages of messages in a folder (or the whole mailbox), following `@odata.nextLink` exactly.

        Pages are sized with `Prefer: odata.maxpagesize` (settings.page_size), halved when Graph answers 504
        for a page too large; `top` instead fixes `$top` in the query (and so in every next link). Resume
        from a stored `link` instead of giving the query options (Graph keeps them inside the link).
        `expand` is passed as `$expand` (e.g. the attachments' metadata of every listed message).
        """
        prefer = _body_prefer(body_type)
        page_size = None if top else PageSize(self._transport.settings.page_size)
        params = None
        if link is None:
            where = f"/mailFolders/{_segment(folder_id)}" if folder_id else ""
            link = f"{self.path}{where}/messages"
            params = {}
            if top:
                params["$top"] = str(top)
            if select:
                params["$select"] = ",".join(select)
            if filter:
                params["$filter"] = filter
            if orderby:
                params["$orderby"] = orderby
            if expand:
                params["$expand"] = expand
        async for page in self._pages(link, params, prefer, page_size):
            yield MessagePage(messages=page.value, next_link=page.next_link)

    async def get_message(
        self, message_id: str, *, select: Sequence[str] | None = None, body_type: BodyType | None = None
    ) -> Message:
        """One message (NotFoundError if it is gone)."""
        params = {"$select": ",".join(select)} if select else None
        body = await self._get(
            f"{self.path}/messages/{_segment(message_id)}",
            params=params,
            prefer=_body_prefer(body_type),
        )
        return Message.model_validate_json(body)

    async def get_messages(
        self,
        ids: Iterable[str],
        *,
        select: Sequence[str] | None = None,
        expand: str | None = None,
        body_type: BodyType | None = None,
    ) -> dict[str, Message | None]:
        """Many messages by id, through $batch (20 a batch, batches in parallel); None for a message gone.

        `expand` is passed as `$expand`, e.g. `attachments($select=id,name,size,isInline)` to have each
        message's attachment metadata in the same answer."""
        options = [f"$select={','.join(select)}"] if select else []
        if expand:
            options.append(f"$expand={expand}")
        query = f"?{'&'.join(options)}" if options else ""
        wanted = list(dict.fromkeys(ids))
        chunks = [wanted[i : i + BATCH_LIMIT] for i in range(0, len(wanted), BATCH_LIMIT)]
        results: dict[str, Message | None] = {}

        async def one(chunk: list[str]) -> None:
            paths = {mid: f"{self.path}/messages/{_segment(mid)}{query}" for mid in chunk}
            for mid, answer in (await self._batch(paths, prefer=_body_prefer(body_type))).items():
                status = answer["status"]
                if status == 404:
                    results[mid] = None
                elif status >= 300:
                    body = orjson.dumps(answer["body"])
                    raise error_for(
                        status, body, answer["headers"], what=answer["what"], client_request_id=None
                    )
                else:
                    results[mid] = Message.model_validate(answer["body"])

        await asyncio.gather(*(one(chunk) for chunk in chunks))
        return {mid: results[mid] for mid in wanted}

    async def _batch(self, paths: dict[str, str], *, prefer: tuple[str, ...] = ()) -> dict[str, dict]:
        """GET each path in one $batch and return each item's final answer (`status`, `headers`, `body`).

        Graph runs a batch's requests in parallel and counts each against the mailbox's 4 in flight, so the
        items go in as many `dependsOn` lanes as the batch holds slots: never more in flight than allowed.
        Items Graph throttled or failed are sent again after their own Retry-After (or a backoff); items
        that only failed because an earlier one in their lane did (424) are sent again at once.
        """
        if len(paths) > BATCH_LIMIT:
            raise BadRequestError(f"a $batch takes at most {BATCH_LIMIT} requests, got {len(paths)}")
        transport = self._transport
        settings, clock, stats = transport.settings, transport.clock, transport.stats
        header = {"Prefer": ", ".join(('IdType="ImmutableId"', *prefer))}
        pending = dict(paths)
        answers: dict[str, dict] = {}
        failures: dict[str, int] = dict.fromkeys(paths, 0)
        while pending:
            keys = list(pending)
            lanes = min(len(keys), self._gate.size)
            requests = []
            for number, key in enumerate(keys, 1):
                request = {"id": str(number), "method": "GET", "url": pending[key], "headers": header}
                if number > lanes:
                    request["dependsOn"] = [str(number - lanes)]
                requests.append(request)
            body = await transport.fetch(
                self._gate, "POST", "/$batch", json={"requests": requests}, slots=lanes, cost=len(keys)
            )
            responses = orjson.loads(body).get("responses") or []
            by_number = {str(r.get("id")): r for r in responses if isinstance(r, dict)}
            retry: dict[str, str] = {}
            wait = 0.0
            throttled = False
            for number, key in enumerate(keys, 1):
                answer = by_number.get(str(number))
                if answer is None:
                    raise TransientError(f"$batch answered without request {number} ({pending[key]})")
                status = int(answer.get("status") or 0)
                headers = {str(k).lower(): str(v) for k, v in (answer.get("headers") or {}).items()}
                what = f"GET {pending[key]} (in $batch)"
                if status == 424:
                    retry[key] = pending[key]
                elif status in RETRYABLE_STATUSES:
                    failures[key] += 1
                    if failures[key] >= settings.max_attempts:
                        content = orjson.dumps(answer.get("body"))
                        raise error_for(status, content, headers, what=what, client_request_id=None)
                    retry[key] = pending[key]
                    after = _retry_after(headers, transport)
                    if after is None:
                        after = backoff(
                            failures[key], base=settings.backoff_base_s, cap=settings.backoff_cap_s
                        )
                    wait = max(wait, after)
                    throttled = throttled or status == 429
                else:
                    answers[key] = {
                        "status": status,
                        "headers": headers,
                        "body": answer.get("body"),
                        "what": what,
                    }
            if retry:
                stats.retries += len(retry)
                if throttled:
                    stats.throttled += 1
                    self._gate.pause(wait)
                elif wait > 0:
                    stats.waited_s += wait
                    await clock.sleep(wait)
            pending = retry
        return answers

    # Delta -----------------------------------------------------------------------------------------------

    async def delta(
        self,
        folder_id: str | None = None,
        *,
        link: str | None = None,
        select: Sequence[str] | None = None,
        filter: str | None = None,
        page_size: int | None = None,
        body_type: BodyType | None = None,
    ) -> AsyncIterator[DeltaPage]:
        """One delta round of a folder: pages of changes and removals, ending with the page that holds the
        delta link. Start a round from `folder_id` (query options apply to the first request only) or resume
        from a stored next or delta `link`. SyncStateExpired when Graph no longer knows the link.

        Replays are tolerated: an id repeated within a page counts once (its last state).
        """
        size = PageSize(page_size or self._transport.settings.delta_page_size)
        prefer = _body_prefer(body_type)
        params = None
        if link is None:
            if folder_id is None:
                raise BadRequestError("delta needs a folder id or a link to resume from")
            link = f"{self.path}/mailFolders/{_segment(folder_id)}/messages/delta"
            params = {}
            if select:
                params["$select"] = ",".join(select)
            if filter:
                params["$filter"] = filter
        async for page in self._pages(link, params, prefer, size):
            if page.next_link is None and page.delta_link is None:
                raise TransientError(f"a delta page came without a next or delta link (after {link})")
            latest: dict[str, Message] = {}
            for item in page.value:
                latest.pop(item.id, None)
                latest[item.id] = item
            yield DeltaPage(
                messages=[m for m in latest.values() if m.removed is None],
                removed=[m.id for m in latest.values() if m.removed is not None],
                next_link=page.next_link,
                delta_link=page.delta_link if page.next_link is None else None,
            )

    # Attachments -----------------------------------------------------------------------------------------

    async def list_attachments(self, message_id: str) -> list[Attachment]:
        """Every attachment's metadata, without content (inline ones included: check `is_inline`)."""
        link: str | None = f"{self.path}/messages/{_segment(message_id)}/attachments"
        params: dict[str, str] | None = {"$select": _ATTACHMENT_FIELDS}
        attachments: list[Attachment] = []
        while link:
            page = AttachmentPageBody.model_validate_json(await self._get(link, params=params))
            attachments.extend(page.value)
            link, params = page.next_link, None
        return attachments

    @asynccontextmanager
    async def open_attachment(
        self, message_id: str, attachment_id: str, *, max_bytes: int | None = None
    ) -> AsyncIterator[AttachmentStream]:
        """Stream one attachment's content from `/$value`: a file's bytes, MIME for an attached mail, iCal
        for an event. A reference attachment has no content (BadRequestError). AttachmentTooLarge past
        `max_bytes`, before reading anything when Graph declares the size."""
        message, attachment = _segment(message_id), _segment(attachment_id)
        path = f"{self.path}/messages/{message}/attachments/{attachment}/$value"
        what = f"attachment {attachment_id} of message {message_id}"
        async with self._transport.exchange(self._gate, "GET", path) as response:
            stream = AttachmentStream(response, max_bytes=max_bytes, what=what)
            if max_bytes is not None and stream.size is not None and stream.size > max_bytes:
                raise AttachmentTooLarge(
                    f"{what} is {stream.size} bytes, over the cap of {max_bytes}",
                    size=stream.size,
                    cap=max_bytes,
                )
            yield stream

    async def save_attachment(
        self, message_id: str, attachment_id: str, dest: Path, *, max_bytes: int | None = None
    ) -> SavedAttachment:
        """Download one attachment into `dest` (through a partial file, renamed when complete), retrying a
        download that broke off. Memory stays at one chunk whatever the size."""
        partial = dest.with_name(f".{dest.name}.partial")
        settings = self._transport.settings
        attempt = 0
        while True:
            attempt += 1
            digest = hashlib.sha256()
            size = 0
            try:
                async with self.open_attachment(message_id, attachment_id, max_bytes=max_bytes) as stream:
                    with partial.open("wb") as out:
                        async for chunk in stream.chunks():
                            out.write(chunk)
                            digest.update(chunk)
                            size += len(chunk)
                    content_type = stream.content_type
            except TransientError:
                partial.unlink(missing_ok=True)
                if attempt >= settings.max_attempts:
                    raise
                await self._transport.clock.sleep(
                    backoff(attempt, base=settings.backoff_base_s, cap=settings.backoff_cap_s)
                )
                continue
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
            os.replace(partial, dest)
            return SavedAttachment(path=dest, size=size, sha256=digest.hexdigest(), content_type=content_type)


def _segment(graph_id: str) -> str:
    """An id as one path segment: `/` and the like escaped, base64's `=` and `+` left as they are (both are
    legal in a path, and some servers do not unescape the URLs inside a $batch)."""
    return quote(graph_id, safe="=+")


def _looks_like_id(reference: str) -> bool:
    # Graph ids are long base64 strings; display names rarely are. A wrong guess costs one 404.
    return len(reference) >= 16 and " " not in reference


def _body_prefer(body_type: BodyType | None) -> tuple[str, ...]:
    return (f'outlook.body-content-type="{body_type}"',) if body_type else ()


def _retry_after(headers: dict[str, str], transport: Transport) -> float | None:
    value = parse_retry_after(headers.get("retry-after"), now=transport.clock.wall())
    return None if value is None else value + RETRY_AFTER_MARGIN_S
