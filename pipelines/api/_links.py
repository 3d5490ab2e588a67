"""Links that expire, for `/raw_file`, `/parsed_file` and `include_raw_file`: Mailroom's presigned URLs.

A link is `<base>/files/<kind>.<customer>.<file>.<expires>.<signature>`: an HMAC-SHA256 over the rest, keyed
from MAILROOM_SECRET_KEY, so the server keeps no state and nobody can forge, widen or extend one.
"""

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Literal

LinkKind = Literal["raw", "parsed"]
_KINDS = ("raw", "parsed")


@dataclass(frozen=True, slots=True)
class Link:
    kind: LinkKind
    customer_pk: int
    file_id: int
    expires: int


class LinkSigner:
    def __init__(self, secret: str, base_url: str) -> None:
        # A key of its own, derived from the secret key, so a link signature reveals nothing usable elsewhere.
        self._key = hmac.new(secret.encode(), b"mailroom api file links v1", hashlib.sha256).digest()
        self._base = base_url.rstrip("/")

    def _sign(self, message: str) -> str:
        digest = hmac.new(self._key, message.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def url(self, kind: LinkKind, customer_pk: int, file_id: int, ttl_s: int) -> str:
        message = f"{kind}.{customer_pk}.{file_id}.{int(time.time()) + ttl_s}"
        return f"{self._base}/files/{message}.{self._sign(message)}"

    def open(self, token: str) -> Link | None:
        """The link's contents if it is genuine and unexpired, else None."""
        message, _, signature = token.rpartition(".")
        parts = message.split(".")
        if len(parts) != 4 or parts[0] not in _KINDS or not all(p.isdigit() for p in parts[1:]):
            return None
        if not hmac.compare_digest(signature, self._sign(message)):
            return None
        link = Link(parts[0], int(parts[1]), int(parts[2]), int(parts[3]))  # type: ignore[arg-type]
        return link if link.expires >= time.time() else None
