"""What the simulator knows of credentials: the tokens and authorization codes it issued, the grants
that issue them (refresh with rotation, authorization code with PKCE), revocation and expiry, the rate
limit of ``/auth/validate``, and the checks every request passes:

- ``authenticate(authorization_header) -> Principal`` raises ``ApiFailure(400 "failed to get auth
  token" | 401 "failed to validate token")``;
- ``authorize(principal, resource, verb)`` raises ``ApiFailure(403 "Forbidden")``;
- ``resolve_org(principal, org_id) -> str`` applies the real ``org_id`` rules.

Validity comes from these registries and the simulator clock, never from a token's signature.
"""

from __future__ import annotations

import collections
import secrets
import threading
import uuid
from collections.abc import Iterable
from typing import Any

from simulator.accounts import USERS, Principal, User
from simulator.clock import Clock
from simulator.errors import ApiFailure
from simulator.tokens import (
    AccessToken,
    AuthorizationCode,
    RefreshToken,
    SigningKey,
    TokenSet,
    new_refresh_token,
    s256,
)

__all__ = ["CLIENT_ID", "PROVIDER_NAME", "REALM", "Credentials", "OAuthError", "token_response"]

REALM = "flightctl"
CLIENT_ID = "flightctl"
PROVIDER_NAME = "flightctl-sim"


class Credentials:
    """The token, code and rate-limit registries behind the checks; SimulatorState is one."""

    def __init__(
        self,
        clock: Clock,
        *,
        access_token_ttl: float,
        refresh_token_ttl: float,
        refresh_token_rotation: bool,
        login_user: str | None,
        auth_rate_limit: tuple[int, float] | None,
    ) -> None:
        self.clock = clock
        self.access_token_ttl = access_token_ttl
        self.refresh_token_ttl = refresh_token_ttl
        # Keycloak's "Revoke Refresh Token": each refresh token works once (max reuse 0).
        self.refresh_token_rotation = refresh_token_rotation
        #: Where the simulator is served, set once it listens; the issuer's URL is under it.
        self.base_url = ""
        self.signing_key = SigningKey()
        #: The user the authorization endpoint logs in without asking (a pre-authorised test login).
        self.login_user = login_user
        #: Flight Control's rateLimit.authRequests/authWindow on /auth/validate, per client IP; None = off.
        self.auth_rate_limit = auth_rate_limit
        self._auth_hits: dict[str, collections.deque[float]] = {}
        self._codes: dict[str, AuthorizationCode] = {}
        self._lock = threading.RLock()  # these registries and, in SimulatorState, the request log
        self._access: dict[str, AccessToken] = {}
        self._refresh: dict[str, RefreshToken] = {}

    # --------------------------------------------------------------------------------------- tokens

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/realms/{REALM}"

    def _claims(
        self, user: str, scopes: frozenset[str] | None, ttl: float | None, kind: str
    ) -> dict[str, Any]:
        now = int(self.clock.now())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": self.subject(user),
            "preferred_username": user,
            "aud": CLIENT_ID if kind == "id" else "account",
            "azp": CLIENT_ID,
            "iat": now,
            "jti": str(uuid.uuid4()),
            "typ": "ID" if kind == "id" else "Bearer",
            "scope": " ".join(sorted(scopes)) if scopes is not None else "openid profile email",
        }
        if ttl is not None:
            claims["exp"] = now + int(ttl)
        return claims

    def subject(self, user: str) -> str:
        """The stable ``sub`` claim of a user."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"flightctl-sim/{user}"))

    def _user(self, user: str) -> User:
        if user not in USERS:
            raise ValueError(f"unknown user {user!r}; the simulator knows {', '.join(USERS)}")
        return USERS[user]

    def issue_access_token(
        self, user: str = "admin", scopes: Iterable[str] | None = None, ttl: float | None = None
    ) -> str:
        """A fresh access token (JWT) for ``user``; ``ttl`` seconds (default access_token_ttl)."""
        self._user(user)
        scope_set = frozenset(scopes) if scopes is not None else None
        lifetime = self.access_token_ttl if ttl is None else ttl
        token = self.signing_key.sign(self._claims(user, scope_set, lifetime, "access"))
        with self._lock:
            self._access[token] = AccessToken(user, scope_set, self.clock.now() + lifetime)
        return token

    def add_static_token(self, token: str, user: str = "admin", scopes: Iterable[str] | None = None) -> None:
        """Accept ``token`` (any string) as a bearer for ``user`` until revoked; never expires."""
        self._user(user)
        with self._lock:
            self._access[token] = AccessToken(
                user, frozenset(scopes) if scopes is not None else None, None, kind="static"
            )

    def issue_tokens(
        self,
        user: str = "admin",
        scopes: Iterable[str] | None = None,
        access_ttl: float | None = None,
        refresh_token: str | None = None,
        refresh_ttl: float | None = None,
    ) -> TokenSet:
        """Access, id and refresh tokens as a login would give them."""
        self._user(user)
        scope_set = frozenset(scopes) if scopes is not None else None
        lifetime = self.access_token_ttl if access_ttl is None else access_ttl
        access = self.issue_access_token(user, scope_set, lifetime)
        id_token = self.signing_key.sign(self._claims(user, scope_set, lifetime, "id"))
        refresh = refresh_token or new_refresh_token()
        refresh_life = self.refresh_token_ttl if refresh_ttl is None else refresh_ttl
        with self._lock:
            self._access[id_token] = AccessToken(user, scope_set, self.clock.now() + lifetime, kind="id")
            self._refresh[refresh] = RefreshToken(
                user, scope_set, self.clock.now() + refresh_life, access_ttl=access_ttl
            )
        return TokenSet(access, refresh, id_token, int(lifetime))

    def refresh(self, refresh_token: str | None, client_id: str | None) -> TokenSet:
        """The refresh grant. With rotation (the default) a used refresh token is refused from then on,
        as Keycloak does with "Revoke Refresh Token" on; without it, it stays valid. Raises OAuthError."""
        if client_id != CLIENT_ID:
            raise OAuthError(401, "invalid_client", "Invalid client or Invalid client credentials")
        if not refresh_token:
            raise OAuthError(400, "invalid_request", "Missing parameter: refresh_token")
        with self._lock:
            record = self._refresh.get(refresh_token)
            if record is None or record.revoked:
                raise OAuthError(400, "invalid_grant", "Invalid refresh token")
            if record.used:
                raise OAuthError(400, "invalid_grant", "Maximum allowed refresh token reuse exceeded")
            if record.expires_at is not None and record.expires_at <= self.clock.now():
                raise OAuthError(400, "invalid_grant", "Token is not active")
            record.used = self.refresh_token_rotation
        return self.issue_tokens(record.user, record.scopes, record.access_ttl)

    def issue_code(self, user: str, client_id: str, redirect_uri: str, code_challenge: str) -> str:
        """An authorization code for a completed login; it lives 60 s and is redeemed once."""
        self._user(user)
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._codes[code] = AuthorizationCode(
                user, client_id, redirect_uri, code_challenge, self.clock.now() + 60
            )
        return code

    def redeem_code(
        self, code: str | None, client_id: str | None, redirect_uri: str | None, verifier: str | None
    ) -> TokenSet:
        """The authorization_code grant with PKCE (S256), Keycloak's errors. Raises OAuthError."""
        if client_id != CLIENT_ID:
            raise OAuthError(401, "invalid_client", "Invalid client or Invalid client credentials")
        with self._lock:
            grant = self._codes.pop(code or "", None)
        if grant is None or grant.expires_at <= self.clock.now():
            raise OAuthError(400, "invalid_grant", "Code not valid")
        if grant.client_id != client_id:
            raise OAuthError(400, "invalid_grant", "Auth error")
        if redirect_uri != grant.redirect_uri:
            raise OAuthError(400, "invalid_grant", "Incorrect redirect_uri")
        if not verifier:
            raise OAuthError(400, "invalid_grant", "PKCE code verifier not specified")
        if s256(verifier) != grant.code_challenge:
            raise OAuthError(400, "invalid_grant", "PKCE verification failed: Code mismatch")
        return self.issue_tokens(grant.user)

    def auth_check_allowed(self, client: str) -> float | None:
        """Count a /auth/validate call from ``client``; the Retry-After (window) when over the limit."""
        if self.auth_rate_limit is None:
            return None
        limit, window = self.auth_rate_limit
        now = self.clock.now()
        with self._lock:
            hits = self._auth_hits.setdefault(client, collections.deque())
            while hits and hits[0] <= now - window:
                hits.popleft()
            if len(hits) >= limit:
                return window
            hits.append(now)
        return None

    def revoke(self, token: str) -> bool:
        """Revoke an access, id, static or refresh token; True when it was known."""
        with self._lock:
            found = False
            if token in self._access:
                self._access[token].revoked = True
                found = True
            if token in self._refresh:
                self._refresh[token].revoked = True
                found = True
            return found

    def expire(self, token: str) -> bool:
        """Make a token expired now (as if its lifetime had passed)."""
        with self._lock:
            now = self.clock.now() - 1
            if token in self._access:
                self._access[token].expires_at = now
                return True
            if token in self._refresh:
                self._refresh[token].expires_at = now
                return True
            return False

    # ----------------------------------------------------------------------------- the checks

    def authenticate(self, authorization_header: str | None) -> Principal:
        """The principal behind ``Authorization: Bearer <token>``."""
        if not authorization_header or not authorization_header.startswith("Bearer "):
            raise ApiFailure(400, "failed to get auth token")
        token = authorization_header[len("Bearer ") :].strip()
        if not token:
            raise ApiFailure(400, "failed to get auth token")
        with self._lock:
            record = self._access.get(token)
        if record is None or record.revoked:
            raise ApiFailure(401, "failed to validate token")
        if record.expires_at is not None and record.expires_at <= self.clock.now():
            raise ApiFailure(401, "failed to validate token")
        user = USERS[record.user]
        return Principal(user.name, user.orgs, user.permissions, record.scopes, record.kind)

    def authorize(self, principal: Principal, resource: str, verb: str) -> None:
        if not principal.can(resource, verb):
            raise ApiFailure(403, "Forbidden")

    def resolve_org(self, principal: Principal, org_id: str | None) -> str:
        """The organization a request acts on, by the server's rules for the ``org_id`` parameter."""
        if org_id:
            try:
                wanted = str(uuid.UUID(org_id))
            except ValueError as exc:
                raise ApiFailure(400, "invalid organization ID format") from exc
            if wanted not in principal.orgs:
                raise ApiFailure(403, "access denied to organization")
            return wanted
        if not principal.orgs:
            raise ApiFailure(403, "user belongs to no organizations")
        if len(principal.orgs) > 1:
            raise ApiFailure(400, "user belongs to multiple organizations but no organization specified")
        return principal.orgs[0]


class OAuthError(Exception):
    """An OAuth2 token-endpoint error (``{"error": ..., "error_description": ...}``)."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def token_response(tokens: TokenSet) -> dict[str, Any]:
    return {
        "access_token": tokens.access_token,
        "token_type": "Bearer",
        "id_token": tokens.id_token,
        "refresh_token": tokens.refresh_token,
        "expires_in": tokens.expires_in,
    }
