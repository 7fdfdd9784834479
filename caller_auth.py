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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import httpx
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

from auth import jwt_claims
from errors import APIConnectionError, ConfigurationError, user_error
from http_limits import HEALTH_PATHS, TokenBuckets, json_error, retry_after, token_key

if TYPE_CHECKING:
    from config import Secret, Settings

__all__ = [
    "PASSTHROUGH_CLAIM",
    "FlightControlProbe",
    "IdentityProvider",
    "LoginConfig",
    "PassThroughVerifier",
    "SharedSecretVerifier",
    "default_provider",
    "passthrough_access_token",
    "verifier_for",
]

logger = logging.getLogger(__name__)

PASSTHROUGH_CLAIM = "flightctl_passthrough"
_VALIDATE_PATH = "/api/v1/auth/validate"
_AUTH_CONFIG_PATH = "/api/v1/auth/config"
_RETRY_AFTER_UNAVAILABLE = "5"
_REFUSED_TOKENS_PER_MINUTE = 30
_JWT_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"})
#: The address a request came from, for the per-source budget of remote token checks.
_SOURCE: contextvars.ContextVar[str] = contextvars.ContextVar("caller_source", default="unknown")


# --- talking to Flight Control ---------------------------------------------------------------------


class FlightControlProbe:
    """Flight Control's public auth endpoints and its identity provider's discovery documents.

    A client per call keeps it free of event-loop ownership; the SSL contexts (shared, honouring
    tls-server-name) are the expensive part, and answers are cached by the callers.
    """

    def __init__(self, settings: Settings) -> None:
        if not settings.api_base_url:
            raise ConfigurationError(
                "No Flight Control API URL is configured, so HTTP callers cannot be authenticated. "
                "Set the API URL (environment or client.yaml) before serving over HTTP."
            )
        self._base = settings.api_base_url.rstrip("/")
        self.url = self._base + _VALIDATE_PATH
        self._verify = settings.tls.ssl_context()
        self._issuer_verify = settings.auth.tls.ssl_context()
        self._timeout = settings.request_timeout

    async def status_for(self, token: str) -> tuple[int, float | None]:
        """The HTTP status Flight Control gives this bearer token at /auth/validate, and its Retry-After."""
        response = await self._get(self.url, {"Authorization": f"Bearer {token}"}, self._verify)
        return response.status_code, _seconds(response.headers.get("retry-after"))

    async def auth_config(self) -> dict[str, Any]:
        """Flight Control's public /auth/config (raises APIConnectionError when it does not answer)."""
        return await self._json(self._base + _AUTH_CONFIG_PATH, self._verify)

    async def issuer_document(self, url: str) -> dict[str, Any]:
        """A discovery document or JWKS of the identity provider."""
        same_host = httpx.URL(url).host == httpx.URL(self._base).host
        return await self._json(url, self._verify if same_host else self._issuer_verify)

    async def _json(self, url: str, verify: Any) -> dict[str, Any]:
        response = await self._get(url, {}, verify)
        try:
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning("%s answered HTTP %s without the expected JSON", url, response.status_code)
            raise APIConnectionError(
                f"Flight Control's login configuration could not be read (HTTP {response.status_code})."
            ) from exc
        if not isinstance(body, dict):
            raise APIConnectionError("Flight Control's login configuration is not a JSON object.")
        return body

    async def _get(self, url: str, headers: dict[str, str], verify: Any) -> httpx.Response:
        try:
            # trust_env=False: no proxy from the environment, exactly like every other call to Flight Control
            async with httpx.AsyncClient(verify=verify, timeout=self._timeout, trust_env=False) as client:
                return await client.get(url, headers=headers)
        except httpx.HTTPError as exc:
            # The URL goes to the log only: this text can reach unauthenticated callers.
            logger.warning("%s did not answer: %s: %s", url, type(exc).__name__, exc)
            raise APIConnectionError(
                f"Flight Control did not answer ({type(exc).__name__}). Check the API URL, the network path "
                "and the TLS settings; the server log names the URL."
            ) from exc


def _seconds(value: str | None) -> float | None:
    """A Retry-After in seconds (finite, capped at an hour), or None."""
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return min(seconds, 3600.0) if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None


@dataclass(frozen=True)
class LoginConfig:
    """Flight Control's default login provider: the authorization server MCP clients log in at."""

    issuer: str | None
    client_id: str | None
    scopes: tuple[str, ...]
    provider_type: str


class IdentityProvider:
    """What Flight Control's /auth/config names (cached), and the issuer's signing keys (JWKS).

    Every fetch is bounded: one at a time, results kept for ``ttl``, failures for ``retry`` seconds,
    and an unknown key id refreshes the JWKS at most once per ``refresh_interval``, so tokens with
    made-up key ids cannot turn this server into a JWKS hammer.
    """

    def __init__(
        self,
        probe: FlightControlProbe,
        *,
        ttl: float = 300.0,
        retry: float = 30.0,
        refresh_interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._probe = probe
        self._ttl = ttl
        self._retry = retry
        self._refresh_interval = refresh_interval
        self._clock = clock
        self._lock = asyncio.Lock()
        self._config: tuple[float, LoginConfig | None] | None = None
        self._jwks_uri: str | None = None
        self._keys: dict[str, jwt.PyJWK] = {}
        self._keys_fetched = -math.inf

    async def login(self) -> LoginConfig | None:
        """The default provider, or None when Flight Control cannot tell right now."""
        async with self._lock:
            if self._config is None or self._config[0] <= self._clock():
                self._config = await self._fetch_config()
            return self._config[1]

    async def _fetch_config(self) -> tuple[float, LoginConfig | None]:
        try:
            body = await self._probe.auth_config()
        except APIConnectionError:
            return self._clock() + self._retry, None
        login = default_provider(body)
        if login is not None and login.issuer and login.provider_type == "oidc":
            try:
                discovery = await self._probe.issuer_document(
                    login.issuer.rstrip("/") + "/.well-known/openid-configuration"
                )
            except APIConnectionError:
                discovery = {}
            jwks_uri = discovery.get("jwks_uri")
            usable = isinstance(jwks_uri, str) and discovery.get("issuer") == login.issuer
            if usable and jwks_uri != self._jwks_uri:
                self._jwks_uri, self._keys, self._keys_fetched = jwks_uri, {}, -math.inf
        return self._clock() + self._ttl, login

    async def key(self, kid: str) -> jwt.PyJWK | None:
        """The issuer's public key ``kid``; None when it is not published (or cannot be read now)."""
        if kid in self._keys:
            return self._keys[kid]
        async with self._lock:
            if (
                kid not in self._keys
                and self._jwks_uri
                and self._clock() - self._keys_fetched >= self._refresh_interval
            ):
                self._keys_fetched = self._clock()
                self._keys = await self._fetch_keys(self._jwks_uri)
        return self._keys.get(kid)

    async def _fetch_keys(self, uri: str) -> dict[str, jwt.PyJWK]:
        try:
            body = await self._probe.issuer_document(uri)
        except APIConnectionError:
            return self._keys
        keys: dict[str, jwt.PyJWK] = {}
        published = body.get("keys")
        for entry in published[:50] if isinstance(published, list) else []:
            if (
                not isinstance(entry, dict)
                or not isinstance(entry.get("kid"), str)
                or entry.get("use", "sig") != "sig"
            ):
                continue
            try:
                keys[entry["kid"]] = jwt.PyJWK(entry)
            except (jwt.PyJWTError, ValueError, TypeError, KeyError):
                continue  # a key this library cannot use: tokens signed with it go to Flight Control
        return keys


def default_provider(body: dict[str, Any]) -> LoginConfig | None:
    """The provider `flightctl login` would pick: defaultProvider, else the first."""
    listed = body.get("providers")
    providers = [p for p in listed if isinstance(p, dict)] if isinstance(listed, list) else []
    if not providers:
        return None
    default = body.get("defaultProvider")
    chosen = next((p for p in providers if _field(p, "metadata").get("name") == default), providers[0])
    spec = _field(chosen, "spec")
    scopes = spec.get("scopes")
    return LoginConfig(
        issuer=spec.get("issuer") if isinstance(spec.get("issuer"), str) else None,
        client_id=spec.get("clientId") if isinstance(spec.get("clientId"), str) else None,
        scopes=tuple(s for s in scopes if isinstance(s, str)) if isinstance(scopes, list) else (),
        provider_type=str(spec.get("providerType", "")),
    )


# --- caller identities -----------------------------------------------------------------------------


def _field(document: dict[str, Any], name: str) -> dict[str, Any]:
    """A nested object of an answer, or {} when it is missing or not an object."""
    value = document.get(name)
    return value if isinstance(value, dict) else {}


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
