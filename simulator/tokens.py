"""Tokens: HS256 JWTs for access and id tokens (so clients can read ``exp``), opaque refresh tokens.

The simulator decides validity from its own registry, not from the signature: a token is good while it
is registered, not revoked, and its ``exp`` is after the simulator clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

__all__ = ["AccessToken", "RefreshToken", "TokenSet", "decode_jwt_claims", "make_jwt"]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(claims: dict[str, Any], secret: bytes) -> str:
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "flightctl-sim"}).encode())
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = _b64url(hmac.new(secret, signing_input, hashlib.sha256).digest())
    return f"{header}.{payload}.{signature}"


def decode_jwt_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified (tests and clients read ``exp`` this way)."""
    payload = token.split(".")[1]
    payload += "=" * (-len(payload) % 4)
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload))
    return claims


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass
class AccessToken:
    user: str
    scopes: frozenset[str] | None
    expires_at: float | None  # simulator-clock seconds; None = never
    kind: str = "access"  # "access", "id" or "static"
    revoked: bool = False


@dataclass
class RefreshToken:
    user: str
    scopes: frozenset[str] | None
    expires_at: float | None
    used: bool = False
    revoked: bool = False
    access_ttl: float | None = None


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str
    id_token: str
    expires_in: int
    extra: dict[str, Any] = field(default_factory=dict)
