"""Reading a JWT's claims without verifying it: only to learn when it expires and whom it names.

Nothing here decides whether a token is genuine: Flight Control checks every token it is sent, and
caller_auth verifies signatures where a caller's token must be trusted before that.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

__all__ = ["identity_of", "jwt_claims", "jwt_expiry"]


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, read without verifying it (only to learn exp and the user); {} if not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def identity_of(token: str) -> str | None:
    """Who the token names (preferred_username, else sub), for audit lines; None when it names nobody."""
    claims = jwt_claims(token)
    for claim in ("preferred_username", "sub"):
        value = claims.get(claim)
        if isinstance(value, str) and value:
            return value
    return None


def jwt_expiry(token: str) -> float | None:
    """When the token expires (its exp, epoch seconds), so a source refreshes ahead of it; None if unknown."""
    exp = jwt_claims(token).get("exp")
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None
