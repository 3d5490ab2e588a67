"""The Microsoft Graph mail client: token providers (msal), a polite transport, folders, messages, delta,
attachments and $batch, with pydantic models of Graph's JSON. Everything callers may use is named here.

    settings = GraphSettings(client_id=..., client_secret=..., tenant=...)
    async with GraphClient(settings, ClientCredentialsProvider(settings)) as graph:
        mailbox = graph.user("adele@contoso.test")
        folder = await mailbox.resolve_folder("Inbox/Receipts")
        async for page in mailbox.delta(folder.id):
            ...
"""

from pipelines.graph._attachments import AttachmentStream, SavedAttachment
from pipelines.graph._auth import (
    APP_ONLY_SCOPES,
    AuthCodeSignIn,
    ClientCredentialsProvider,
    DelegatedTokenProvider,
    DeviceCode,
    DeviceCodeSignIn,
    SignedIn,
    StaticTokenProvider,
    TokenProvider,
)
from pipelines.graph._cache import KEY_VARIABLE, EncryptedTokenCache
from pipelines.graph._client import GraphClient
from pipelines.graph._errors import (
    AttachmentTooLarge,
    AuthError,
    BadRequestError,
    FolderNotFoundError,
    GraphError,
    NotFoundError,
    SyncStateExpired,
    ThrottledError,
    TokenCacheError,
    TransientError,
)
from pipelines.graph._folders import WELL_KNOWN_NAMES, FolderNode, FolderTree, join_path, split_path
from pipelines.graph._mailbox import BATCH_LIMIT, Mailbox
from pipelines.graph._models import (
    Attachment,
    Category,
    FollowupFlag,
    ItemBody,
    MailFolder,
    Message,
    Recipient,
)
from pipelines.graph._pages import DeltaPage, MessagePage
from pipelines.graph._settings import GraphSettings
from pipelines.graph._transport import Stats

__all__ = [
    "APP_ONLY_SCOPES",
    "BATCH_LIMIT",
    "KEY_VARIABLE",
    "WELL_KNOWN_NAMES",
    "Attachment",
    "AttachmentStream",
    "AttachmentTooLarge",
    "AuthCodeSignIn",
    "AuthError",
    "BadRequestError",
    "Category",
    "ClientCredentialsProvider",
    "DelegatedTokenProvider",
    "DeltaPage",
    "DeviceCode",
    "DeviceCodeSignIn",
    "EncryptedTokenCache",
    "FolderNode",
    "FolderNotFoundError",
    "FolderTree",
    "FollowupFlag",
    "GraphClient",
    "GraphError",
    "GraphSettings",
    "ItemBody",
    "MailFolder",
    "Mailbox",
    "Message",
    "MessagePage",
    "NotFoundError",
    "Recipient",
    "SavedAttachment",
    "SignedIn",
    "StaticTokenProvider",
    "Stats",
    "SyncStateExpired",
    "ThrottledError",
    "TokenCacheError",
    "TokenProvider",
    "TransientError",
    "join_path",
    "split_path",
]
