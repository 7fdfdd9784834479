"""Tokens: RS256 JWTs for access and id tokens, signed with a key the issuer publishes in its JWKS (as
Keycloak and Flight Control's own issuer do), opaque refresh tokens and authorization codes.

The simulator decides validity from its own registry, not from the signature: a token is good while it
is registered, not revoked, and its ``exp`` is after the simulator clock. The signature is there so
resource servers can check tokens locally, exactly as they would against the real issuer.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

__all__ = [
    "AccessToken",
    "AuthorizationCode",
    "RefreshToken",
    "SigningKey",
    "TokenSet",
    "decode_jwt_claims",
    "s256",
]


class SigningKey:
    """The issuer's RSA key: signs tokens (RS256) and is published as a JWK."""

    def __init__(self) -> None:
        self._private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_hex(8)

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._private, algorithm="RS256", headers={"kid": self.kid, "typ": "JWT"})

    def jwk(self) -> dict[str, Any]:
        """The public key as the JWKS entry Keycloak publishes."""
        public: dict[str, Any] = RSAAlgorithm.to_jwk(self._private.public_key(), as_dict=True)
        return {**public, "kid": self.kid, "use": "sig", "alg": "RS256"}


def s256(verifier: str) -> str:
    """The PKCE S256 code challenge of ``verifier`` (RFC 7636)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


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


@dataclass
class AuthorizationCode:
    """What a login at the authorization endpoint granted, until the client redeems it (once)."""

    user: str
    client_id: str
    redirect_uri: str
    code_challenge: str
    expires_at: float


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str
    id_token: str
    expires_in: int
    extra: dict[str, Any] = field(default_factory=dict)
