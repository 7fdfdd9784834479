"""Who an HTTP caller is: pass-through Flight Control tokens or the operator's shared secret.

Pass-through validation is built so one caller cannot spend it for the others:

1. A JWT signed by Flight Control's identity provider (issuer and keys from ``/api/v1/auth/config``
   and the issuer's JWKS) is checked locally: no request to Flight Control, no budget spent, and a
   forged or expired one is refused on the spot.
2. Any other token is asked about at Flight Control's ``/api/v1/auth/validate``, which Flight Control
   rate-limits hard (20 per hour per client address when limits are on, and this server is one
   client). Each source address gets its own budget of such checks, below that limit; a 429 from
   Flight Control pauses new checks for a short, bounded time (and ``/readyz`` says not ready), while
   callers whose tokens were already accepted keep working.

Flight Control still checks the token on every call the caller makes: local validation only decides
whether a request is worth serving.
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import jwt
from fastmcp.server.auth import AccessToken, TokenVerificationError, TokenVerifier
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend
from pydantic import Field
from starlette.authentication import AuthCredentials, BaseUser
from starlette.authentication import AuthenticationError as NotAuthenticated
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection
from starlette.responses import Response

from errors import APIConnectionError, ConfigurationError, user_error
from http_limits import HEALTH_PATHS, TokenBuckets, json_error, retry_after, token_key
from identity_provider import FlightControlProbe, IdentityProvider
from unverified_jwt import jwt_claims

if TYPE_CHECKING:
    from config import Secret, Settings

__all__ = [
    "PASSTHROUGH_CLAIM",
    "PassThroughVerifier",
    "SharedSecretVerifier",
    "passthrough_access_token",
    "verifier_for",
]

logger = logging.getLogger(__name__)

PASSTHROUGH_CLAIM = "flightctl_passthrough"
_RETRY_AFTER_UNAVAILABLE = "5"
_REFUSED_TOKENS_PER_MINUTE = 30
_JWT_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"})
#: The address a request came from, for the per-source budget of remote token checks.
_SOURCE: contextvars.ContextVar[str] = contextvars.ContextVar("caller_source", default="unknown")


# --- caller identities -----------------------------------------------------------------------------


class _CallerToken(AccessToken):
    """fastmcp's AccessToken with the token kept out of repr (and so out of log lines)."""

    token: str = Field(repr=False)


def passthrough_access_token(token: str, payload: dict[str, Any] | None = None) -> AccessToken:
    """What fastmcp hands to tools for a pass-through caller; auth.py keys on PASSTHROUGH_CLAIM."""
    payload = jwt_claims(token) if payload is None else payload
    claims: dict[str, Any] = {PASSTHROUGH_CLAIM: True}
    for name in ("sub", "preferred_username", "iss"):
        if isinstance(payload.get(name), str):
            claims[name] = payload[name]
    exp = payload.get("exp")
    # The MCP SDK ties a session to (client_id, iss, sub): make that unique per identity, and per token
    # when the token says nothing about who it is (opaque tokens).
    subject = claims.get("sub") or "token:" + token_key(token)[:32]
    return _CallerToken(
        token=token,
        client_id=claims.get("preferred_username") or subject,
        subject=subject,
        scopes=[],
        expires_at=int(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None,
        claims=claims,
    )


# --- the authentication layer ----------------------------------------------------------------------


class _Refused(TokenVerificationError):
    """The token was not checked: ``status`` says why (429: over a budget, 503: Flight Control)."""

    def __init__(self, message: str, status: int, wait: float | None) -> None:
        super().__init__(message)
        self.status = status
        self.wait = wait


class _NotChecked(NotAuthenticated):
    def __init__(self, refused: _Refused) -> None:
        super().__init__(str(refused))
        self.refused = refused


class _GuardedBackend(BearerAuthBackend):
    """BearerAuthBackend that passes the source address on, and answers "could not check" with a
    429/503 of its own instead of a 500 or a false 401."""

    def __init__(self, verifier: _Verifier) -> None:
        super().__init__(verifier)
        self._verifier = verifier

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        if conn.url.path in HEALTH_PATHS or conn.url.path.startswith("/.well-known/"):
            return None
        source = conn.client.host if conn.client else "unknown"
        reset = _SOURCE.set(source)
        try:
            result: tuple[AuthCredentials, BaseUser] | None = await super().authenticate(conn)
        except _Refused as exc:
            raise _NotChecked(exc) from exc
        except TokenVerificationError as exc:
            raise _NotChecked(_Refused(str(exc), 503, None)) from exc
        finally:
            _SOURCE.reset(reset)
        return result


def _auth_failure(conn: HTTPConnection, exc: Exception) -> Response:
    refused = exc.refused if isinstance(exc, _NotChecked) else _Refused(str(exc), 503, None)
    seconds = retry_after(refused.wait) if refused.wait else _RETRY_AFTER_UNAVAILABLE
    return json_error(str(refused), refused.status, {"Retry-After": seconds})


class _Verifier(TokenVerifier):
    """Shared middleware wiring for this module's verifiers."""

    def get_middleware(self) -> list[Middleware]:
        return [
            Middleware(AuthenticationMiddleware, backend=_GuardedBackend(self), on_error=_auth_failure),
            Middleware(AuthContextMiddleware),
        ]


class _Answers:
    """Accepted and refused tokens by hash, in separate bounded LRU maps: a flood of refused tokens
    cannot push accepted callers out (and make them spend a check again)."""

    def __init__(self, max_entries: int, clock: Callable[[], float]) -> None:
        self._max = max_entries
        self._clock = clock
        self._accepted: OrderedDict[str, tuple[float, AccessToken]] = OrderedDict()
        self._refused: OrderedDict[str, float] = OrderedDict()

    def get(self, key: str) -> AccessToken | bool | None:
        """The accepted token, None when recently refused, False when unknown."""
        now = self._clock()
        accepted = self._accepted.get(key)
        if accepted is not None and accepted[0] > now:
            return accepted[1]
        refused = self._refused.get(key)
        if refused is not None and refused > now:
            return None
        return False

    def accept(self, key: str, token: AccessToken, until: float) -> None:
        self._put(self._accepted, key, (until, token))

    def refuse(self, key: str, until: float) -> None:
        self._put(self._refused, key, until)

    def _put(self, table: OrderedDict[str, Any], key: str, value: Any) -> None:
        table[key] = value
        table.move_to_end(key)
        while len(table) > self._max:
            table.popitem(last=False)


#: A token accepted for so many seconds, or refused (False).
_Verdict = tuple[AccessToken, float] | Literal[False]
_THROTTLED = (
    "Flight Control is rate-limiting token checks, so new tokens cannot be verified right now; retry "
    "shortly (callers already signed in are not affected)."
)


class PassThroughVerifier(_Verifier):
    """A bearer is valid when Flight Control's issuer signed it, or failing that when Flight Control's
    /auth/validate says so; the caller is then served with that token."""

    def __init__(
        self,
        probe: FlightControlProbe,
        identity: IdentityProvider,
        *,
        checks_per_hour: int = 12,
        throttle_cap: float = 60.0,
        opaque_ttl: float = 3600.0,
        refused_ttl: float = 60.0,
        max_entries: int = 8192,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._probe = probe
        self.identity = identity
        self._clock = clock
        self._answers = _Answers(max_entries, clock)
        self._budget = TokenBuckets(checks_per_hour, window=3600.0, clock=clock)
        self._throttle_cap = throttle_cap
        self._opaque_ttl = opaque_ttl
        self._refused_ttl = refused_ttl
        self._pending: dict[str, asyncio.Future[AccessToken | None]] = {}
        self._throttled_until = -math.inf

    @property
    def checks_per_hour(self) -> int:
        """The per-address budget of checks at Flight Control."""
        return self._budget.per_window

    def throttled_for(self) -> float:
        """Seconds new tokens still cannot be checked because Flight Control throttled us (0: none)."""
        return max(0.0, self._throttled_until - self._clock())

    async def verify_token(self, token: str) -> AccessToken | None:
        key = token_key(token)
        known = self._answers.get(key)
        if known is not False:
            return known if isinstance(known, AccessToken) else None
        # One check per token at a time: a client that opens with 16 parallel calls asks once.
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._check(key, token, _SOURCE.get()))
            self._pending[key] = pending
            pending.add_done_callback(lambda _: self._pending.pop(key, None))
        return await asyncio.shield(pending)

    async def _check(self, key: str, token: str, source: str) -> AccessToken | None:
        verdict = await self._local(token)
        if verdict is None:
            verdict = await self._remote(token, source)
        if verdict is False:
            self._answers.refuse(key, self._clock() + self._refused_ttl)
            return None
        accepted, lifetime = verdict
        self._answers.accept(key, accepted, self._clock() + lifetime)
        return accepted

    async def _local(self, token: str) -> _Verdict | None:
        """(token, cache lifetime) when the issuer signed it, False when it is forged or expired,
        None when it cannot be checked here."""
        claims = jwt_claims(token)
        exp = claims.get("exp")
        if isinstance(exp, int | float) and exp < time.time():
            return False  # expired: refused without spending a check (Flight Control would refuse it)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return None
        login = await self.identity.login()
        kid, alg = header.get("kid"), header.get("alg")
        if login is None or not login.issuer or claims.get("iss") != login.issuer:
            return None
        if not isinstance(kid, str) or alg not in _JWT_ALGORITHMS:
            return None
        key = await self.identity.key(kid)
        if key is None:
            return None
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=[str(alg)],
                issuer=login.issuer,
                leeway=30,
                options={"verify_aud": False, "require": ["exp", "iss"]},
            )
        except jwt.PyJWTError as exc:
            logger.info(
                "A bearer token signed for %s failed local validation: %s", login.issuer, type(exc).__name__
            )
            return False
        lifetime = min(float(payload["exp"]) - time.time(), 3600.0)
        return passthrough_access_token(token, payload), max(lifetime, 1.0)

    async def _remote(self, token: str, source: str) -> _Verdict:
        throttled = self.throttled_for()
        if throttled > 0:
            raise _Refused(_THROTTLED, 503, throttled)
        wait = self._budget.take("ip:" + source)
        if wait > 0:
            raise _Refused(
                f"Too many new bearer tokens from this address needed checking by Flight Control "
                f"({self._budget.per_window} per hour); retry later, or use a token signed by Flight "
                "Control's identity provider (an OAuth login), which is checked without that budget.",
                429,
                wait,
            )
        try:
            status, server_wait = await self._probe.status_for(token)
        except APIConnectionError as exc:
            raise _Refused(user_error(exc, "rest").message, 503, None) from exc
        if status == 200:
            exp = jwt_claims(token).get("exp")
            lifetime = float(exp) - time.time() if isinstance(exp, int | float) else self._opaque_ttl
            return passthrough_access_token(token), max(1.0, min(lifetime, self._opaque_ttl))
        if status in (400, 401, 403):
            return False
        if status == 429:
            # Pause new checks for a short, bounded time whatever Retry-After says (often an hour).
            pause = min(server_wait if server_wait is not None else self._throttle_cap, self._throttle_cap)
            self._throttled_until = self._clock() + pause
            logger.warning("Flight Control rate-limited a token check: new tokens wait %.0f s", pause)
            raise _Refused(_THROTTLED, 503, pause)
        raise _Refused(
            f"Flight Control answered HTTP {status} to the token check; try again shortly.", 503, None
        )


class SharedSecretVerifier(_Verifier):
    """Callers present the operator's shared secret and are served with the server's credentials.

    Each source address has a budget of refused attempts; beyond it, guesses get 429 unchecked.
    """

    def __init__(self, secret: Secret, *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._secret = secret.reveal().encode()
        self._failures = TokenBuckets(_REFUSED_TOKENS_PER_MINUTE, clock=clock)

    async def verify_token(self, token: str) -> AccessToken | None:
        if hmac.compare_digest(token.encode(), self._secret):
            return _CallerToken(
                token="shared-secret",  # the secret itself never travels further
                client_id="shared-secret",
                scopes=[],
                claims={"sub": "shared-secret"},
            )
        source = "ip:" + _SOURCE.get()
        wait = self._failures.wait(source)
        if wait > 0:
            raise _Refused(
                f"Too many refused bearer tokens from this address; retry after {retry_after(wait)} seconds.",
                429,
                wait,
            )
        self._failures.take(source)
        return None


def verifier_for(settings: Settings, probe: FlightControlProbe) -> TokenVerifier | None:
    """The caller authentication for ``settings.http`` (None: callers are not authenticated).

    A shared secret, once set, is always required unless callers bring their own tokens: an operator
    who set one never means "and also let anyone in".
    """
    http = settings.http
    if http.auth_mode == "passthrough":
        return PassThroughVerifier(
            probe,
            IdentityProvider(probe),
            # Flight Control counts this server's address once, however many worker processes share it.
            checks_per_hour=max(1, http.token_checks_per_hour // http.workers),
            throttle_cap=http.validation_pause,
        )
    if http.shared_secret:
        return SharedSecretVerifier(http.shared_secret)
    if http.auth_mode == "shared-secret":
        raise ConfigurationError(
            "The HTTP auth mode is 'shared-secret' but no shared secret is set. Set MCP_SHARED_SECRET, or "
            "choose MCP_AUTH_MODE=passthrough so each caller presents its own Flight Control token."
        )
    return None
