"""Microsoft's own Python Graph SDK (msgraph-sdk) reads the sandbox: folders, paging, delta, attachments.

An independent client, generated from Graph's metadata, shows the sandbox speaks Graph rather than only
what Mailroom's client happens to send.
"""

import asyncio
import email
import email.policy
import warnings
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from sandbox import AdminClient, SandboxInfo, ssl_context
from tests.sandbox.conftest import ADELE

# The SDK's generated modules warn about their own deprecated classes as they are defined: not ours to fix.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from kiota_abstractions.authentication import (
        AccessTokenProvider,
        AllowedHostsValidator,
        BaseBearerTokenAuthenticationProvider,
    )
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph.generated.models.file_attachment import FileAttachment
    from msgraph.generated.models.item_attachment import ItemAttachment
    from msgraph.generated.users.item.messages.messages_request_builder import MessagesRequestBuilder
    from msgraph_core import GraphClientFactory

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:kiota_abstractions.*"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:msgraph.*"),
]


class StaticToken(AccessTokenProvider):
    def __init__(self, token: str, host: str) -> None:
        self.token = token
        self.validator = AllowedHostsValidator([host])

    async def get_authorization_token(self, uri: str, additional_authentication_context: Any = None) -> str:
        return self.token

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return self.validator


def by_subject(subject: str) -> RequestConfiguration[Any]:
    query = MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(filter=f"subject eq '{subject}'")
    return RequestConfiguration(query_parameters=query)


def sdk_client(info: SandboxInfo, token: str) -> GraphServiceClient:
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(verify=ssl_context(info.ca_cert), trust_env=False)
    )
    host = urlsplit(info.graph_url).hostname or ""
    adapter = GraphRequestAdapter(
        BaseBearerTokenAuthenticationProvider(StaticToken(token, host)), client=http
    )
    adapter.base_url = info.graph_url
    return GraphServiceClient(request_adapter=adapter)


async def walk(info: SandboxInfo, admin: AdminClient) -> None:
    client = sdk_client(info, admin.mint_token())
    user = client.users.by_user_id(ADELE)

    folders = await user.mail_folders.get()
    assert folders is not None
    assert folders.value is not None
    inbox = next(f for f in folders.value if f.display_name == "Inbox")
    children = await user.mail_folders.by_mail_folder_id(inbox.id or "").child_folders.get()
    assert children is not None
    assert children.value is not None
    assert {c.display_name for c in children.value} >= {"Receipts", "Q1/Q2 Reports"}

    messages = user.mail_folders.by_mail_folder_id("inbox").messages
    page = await messages.get()
    seen: list[str] = []
    while page is not None:
        assert page.value is not None
        seen += [m.id or "" for m in page.value]
        if not page.odata_next_link:
            break
        page = await messages.with_url(page.odata_next_link).get()
    assert len(seen) == len(set(seen)) == inbox.total_item_count

    delta = messages.delta
    round_page = await delta.get()
    first_round: list[str] = []
    while round_page is not None:
        assert round_page.value is not None
        first_round += [m.id or "" for m in round_page.value]
        if round_page.odata_delta_link:
            break
        round_page = await delta.with_url(round_page.odata_next_link or "").get()
    assert round_page is not None
    assert set(first_round) == set(seen)
    admin.delete_message(ADELE, first_round[0])
    changes = await delta.with_url(round_page.odata_delta_link or "").get()
    assert changes is not None
    assert changes.value is not None
    assert [(m.id, m.additional_data.get("@removed")) for m in changes.value] == [
        (first_round[0], {"reason": "deleted"})
    ]

    found = await user.messages.get(request_configuration=by_subject("Mail and calendar files"))
    assert found is not None
    assert found.value is not None
    message = found.value[0]
    assert message.has_attachments is True
    attachments = await user.messages.by_message_id(message.id or "").attachments.get()
    assert attachments is not None
    assert attachments.value is not None
    files = [a for a in attachments.value if isinstance(a, FileAttachment)]
    assert [f.name for f in files] == ["Forwarded message.eml", "Old thread.msg", "Kickoff.ics"]
    assert files[2].content_bytes is not None
    assert files[2].content_bytes.startswith(b"BEGIN:VCALENDAR")
    mime = await user.messages.by_message_id(message.id or "").content.get()
    assert mime is not None
    assert email.message_from_bytes(mime, policy=email.policy.default)["Subject"] == "Mail and calendar files"

    forwarded = await user.messages.get(request_configuration=by_subject("FW: items attached"))
    assert forwarded is not None
    assert forwarded.value is not None
    items = await user.messages.by_message_id(forwarded.value[0].id or "").attachments.get()
    assert items is not None
    assert items.value is not None
    assert all(isinstance(a, ItemAttachment) for a in items.value)


@pytest.mark.slow
def test_msgraph_sdk_reads_the_sandbox(fresh_sandbox: SandboxInfo, sandbox_admin: AdminClient) -> None:
    asyncio.run(walk(fresh_sandbox, sandbox_admin))
