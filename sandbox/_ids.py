"""Opaque, Graph-looking ids for messages, folders and attachments, and how a malformed one is told apart.

An id is the url-safe base64 (with ``=`` padding, as Exchange ids have) of a fixed layout: a kind prefix, the
mailbox number, a serial, an extra number (a message's move count for mutable ids, an attachment's index),
a per-tenant salt and a CRC. Decoding checks all of it, so a truncated or edited id is *malformed* (Graph's
400 ``ErrorInvalidIdMalformed``) while a well-formed id that names nothing is *not found* (404).

Mutable message ids include the move count, so they change when a message moves (what Graph does unless
the request says ``Prefer: IdType="ImmutableId"``); immutable ids do not.
"""

from __future__ import annotations

import base64
import binascii
import struct
import zlib
from typing import NamedTuple

MESSAGE = 1
IMMUTABLE_MESSAGE = 2
FOLDER = 3
ATTACHMENT = 4

# Prefixes chosen so ids start the way Exchange's do ("AAMkA..." for mutable ids, "AAkAL..." for immutable).
_PREFIX = {
    MESSAGE: b"\x00\x03\x24\x00",
    IMMUTABLE_MESSAGE: b"\x00\x09\x00\x2e",
    FOLDER: b"\x00\x03\x24\x01",
    ATTACHMENT: b"\x00\x03\x24\x02",
}
_KIND_OF_PREFIX = {v: k for k, v in _PREFIX.items()}
_BODY = struct.Struct(">4sHIIQ")
_LENGTH = _BODY.size + 4


class DecodedId(NamedTuple):
    kind: int
    mailbox: int
    serial: int
    extra: int


class Ids:
    """Encodes and decodes the ids of one sandbox (the salt ties ids to the tenant's seed)."""

    def __init__(self, salt: int) -> None:
        self._salt = salt & 0xFFFF_FFFF_FFFF_FFFF

    def encode(self, kind: int, mailbox: int, serial: int, extra: int = 0) -> str:
        body = _BODY.pack(_PREFIX[kind], mailbox, serial, extra, self._salt)
        raw = body + struct.pack(">I", zlib.crc32(body))
        return base64.urlsafe_b64encode(raw).decode("ascii")

    def decode(self, text: str) -> DecodedId | None:
        """The parts of ``text``, or None when it is not an id this sandbox could have made."""
        if len(text) != 36:
            return None
        try:
            raw = base64.urlsafe_b64decode(text.encode("ascii"))
        except (binascii.Error, UnicodeEncodeError, ValueError):
            return None
        if len(raw) != _LENGTH or struct.pack(">I", zlib.crc32(raw[:-4])) != raw[-4:]:
            return None
        prefix, mailbox, serial, extra, salt = _BODY.unpack(raw[:-4])
        kind = _KIND_OF_PREFIX.get(prefix)
        if kind is None or salt != self._salt:
            return None
        return DecodedId(kind, mailbox, serial, extra)
