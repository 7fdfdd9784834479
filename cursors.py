"""Signed, compact list cursors: where the next item sits, bound to the query, caller and organization.

A cursor is ``base64url(payload + mac)``. The payload packs the position (the API ``continue`` token of
the page being read, the offset inside that page, the page size, the index of the page's first item, the
average item size so far) in varints, plus short tags of the caller and of the query so a refusal can say
which one differs. The MAC is HMAC-SHA256 (truncated to 96 bits) over the payload, the full caller binding
and the full query, under a key that is configured (``MCP_CURSOR_KEY``, shared by stateless replicas),
derived from the shared secret, or made per process. Flight Control's own continue token
(``base64(json{"Version":1,"Names":[...],"Count":n})``) is stored as its names and count and rebuilt
byte for byte, so a cursor over 52-character device names stays near 130 bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from errors import InvalidRequest
from resource_queries import MAX_PAGE_SIZE

if TYPE_CHECKING:
    from config import Settings

__all__ = ["Binding", "CursorCodec", "Position", "binding_for", "codec_for"]

_VERSION = 2
_MAC_BYTES = 12
_TAG_BYTES = 4
_TOKEN_NONE, _TOKEN_TEXT, _TOKEN_FLIGHTCTL = 0, 1, 2
_PROCESS_KEY = secrets.token_bytes(32)  # used when no key is configured: cursors then die with the process


@dataclass(frozen=True)
class Position:
    """Where an item sits: the page that holds it (continue token, None = first), offset, page base index."""

    token: str | None
    offset: int
    base: int
    page_size: int
    item_bytes: int = 0  # average rendered size so far: sizes the next page to what will fit


@dataclass(frozen=True)
class Binding:
    """What a cursor is bound to: who asks, in which organization, and the query (tool, selectors, parent)."""

    caller: str
    organization: str
    query: str

    def _digest(self, what: str) -> bytes:
        return hashlib.sha256(what.encode()).digest()

    @property
    def caller_tag(self) -> bytes:
        return self._digest(f"{self.caller}\0{self.organization}")[:_TAG_BYTES]

    @property
    def query_tag(self) -> bytes:
        return self._digest(self.query)[:_TAG_BYTES]


def query_material(tool: str, selectors: Mapping[str, Any]) -> str:
    """The query a cursor belongs to: the tool and every selector that changes which items exist.

    Nested kinds add their parent (``{"parent": "Fleet/east"}``) to ``selectors`` so a cursor of one
    fleet's template versions cannot continue another fleet's.
    """
    parts = {k: v for k, v in sorted(selectors.items()) if v is not None}
    return json.dumps({"tool": tool, **parts}, separators=(",", ":"), sort_keys=True)


def binding_for(tokens: object, settings: Settings, tool: str, selectors: Mapping[str, Any]) -> Binding:
    """The binding of a call: the HTTP caller (or the server's own identity) and the organization it reads."""
    from auth import organization_for

    return Binding(
        caller=_caller_of(),
        organization=organization_for(tokens, settings.organization) or "",
        query=query_material(tool, selectors),
    )


def _caller_of() -> str:
    """Who is asking: the authenticated HTTP caller, else the server itself (stdio, CLI, no caller auth).

    Without an authenticated caller every call reads with the server's own credentials, so they are one
    principal (a refreshing token source learns its user only after its first token, so it is not used).
    """
    from fastmcp.server.dependencies import get_access_token

    access = get_access_token()
    if access is None:
        return "server"
    subject = access.claims.get("sub") or access.client_id or ""
    # A caller whose token names no subject is known by its token alone.
    return f"caller:{subject or hashlib.sha256(access.token.encode()).hexdigest()[:32]}"


class CursorCodec:
    """Encodes and checks cursors under one key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def encode(self, position: Position, binding: Binding) -> str:
        payload = bytearray([_VERSION])
        payload += binding.caller_tag + binding.query_tag
        for number in (position.offset, position.base, position.page_size, position.item_bytes):
            payload += _varint(number)
        payload += _pack_token(position.token)
        mac = self._mac(bytes(payload), binding)
        return base64.urlsafe_b64encode(bytes(payload) + mac).decode().rstrip("=")

    def decode(self, cursor: str, binding: Binding, tool: str) -> Position:
        """The position a cursor records, or InvalidRequest naming why it is refused."""
        not_ours = InvalidRequest(
            f"The cursor passed to {tool} was not issued by this server (it is signed: copy it unchanged "
            f"from next.arguments of the previous answer; replicas of one deployment must share "
            f"MCP_CURSOR_KEY). Call {tool} without a cursor to start again."
        )
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError):
            raise not_ours from None
        if len(raw) < 1 + 2 * _TAG_BYTES + _MAC_BYTES or raw[0] != _VERSION:
            raise not_ours
        payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if not hmac.compare_digest(mac, self._mac(payload, binding)):
            if payload[1 : 1 + _TAG_BYTES] != binding.caller_tag:
                raise InvalidRequest(
                    f"This cursor was issued to another caller or for another organization; {tool} only "
                    "continues cursors from your own earlier answers. Call it without a cursor to start."
                )
            if payload[1 + _TAG_BYTES : 1 + 2 * _TAG_BYTES] != binding.query_tag:
                raise InvalidRequest(
                    f"This cursor belongs to a different query: {tool} must be called with the same "
                    "selectors as the answer that returned it (copy next.arguments unchanged). Call "
                    "without a cursor to start a new query."
                )
            raise not_ours
        try:
            return _unpack_position(payload[1 + 2 * _TAG_BYTES :])
        except (IndexError, ValueError, UnicodeDecodeError):  # signed by us, so only a bug lands here
            raise not_ours from None

    def _mac(self, payload: bytes, binding: Binding) -> bytes:
        material = b"\0".join(
            (payload, binding.caller.encode(), binding.organization.encode(), binding.query.encode())
        )
        return hmac.new(self._key, material, hashlib.sha256).digest()[:_MAC_BYTES]


def codec_for(settings: Settings) -> CursorCodec:
    """The codec of this process: MCP_CURSOR_KEY, else derived from the shared secret, else per process."""
    http = settings.http
    configured = http.cursor_key
    if configured:
        return CursorCodec(
            hashlib.sha256(b"flightctl-mcp cursor key\0" + configured.reveal().encode()).digest()
        )
    if http.shared_secret:
        secret = http.shared_secret.reveal().encode()
        return CursorCodec(hmac.new(secret, b"flightctl-mcp cursor key", hashlib.sha256).digest())
    return CursorCodec(_PROCESS_KEY)


# --- packing --------------------------------------------------------------------------------------------


def _varint(number: int) -> bytes:
    if number < 0:
        raise ValueError("negative")
    out = bytearray()
    while True:
        byte, number = number & 0x7F, number >> 7
        out.append(byte | (0x80 if number else 0))
        if not number:
            return bytes(out)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data, self._at = data, 0

    def varint(self) -> int:
        shift = value = 0
        while True:
            byte = self._data[self._at]
            self._at += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
            if shift > 63:
                raise ValueError("varint too long")

    def text(self) -> str:
        length = self.varint()
        chunk = self._data[self._at : self._at + length]
        if len(chunk) != length:
            raise ValueError("short text")
        self._at += length
        return chunk.decode()

    def done(self) -> bool:
        return self._at == len(self._data)


def _text(value: str) -> bytes:
    data = value.encode()
    return _varint(len(data)) + data


def _pack_token(token: str | None) -> bytes:
    if token is None:
        return bytes([_TOKEN_NONE])
    names_count = _flightctl_token(token)
    if names_count is None:
        return bytes([_TOKEN_TEXT]) + _text(token)
    names, count = names_count
    return bytes([_TOKEN_FLIGHTCTL]) + _varint(count) + _varint(len(names)) + b"".join(map(_text, names))


def _flightctl_token(token: str) -> tuple[list[str], int] | None:
    """Names and count of a Flight Control continue token that rebuilds to exactly the same text."""
    try:
        data = json.loads(base64.b64decode(token, validate=True))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(data, dict) or list(data) != ["Version", "Names", "Count"] or data["Version"] != 1:
        return None
    names, count = data["Names"], data["Count"]
    if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        return None
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        return None
    return (names, count) if _rebuild(names, count) == token else None


def _rebuild(names: list[str], count: int) -> str:
    payload = json.dumps({"Version": 1, "Names": names, "Count": count}, separators=(",", ":"))
    return base64.b64encode(payload.encode()).decode()


def _unpack_position(data: bytes) -> Position:
    reader = _Reader(data)
    offset, base, page_size, item_bytes = (reader.varint() for _ in range(4))
    kind = reader.varint()
    token: str | None
    if kind == _TOKEN_NONE:
        token = None
    elif kind == _TOKEN_TEXT:
        token = reader.text()
    elif kind == _TOKEN_FLIGHTCTL:
        count = reader.varint()
        token = _rebuild([reader.text() for _ in range(reader.varint())], count)
    else:
        raise ValueError("token kind")
    if not reader.done() or page_size > MAX_PAGE_SIZE:
        raise ValueError("trailing bytes or page size")
    return Position(token, offset, base, page_size, item_bytes)
