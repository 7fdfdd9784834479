"""The HTTP transports (sse, streamable-http): who may call, how much, and how the listener runs.

Stdio trusts its parent process; a port trusts nobody. Every request passes these layers, outermost
first:

    RateLimitMiddleware     per caller (bearer hash, else client IP), 429 + Retry-After
    BodyLimitMiddleware     Content-Length and streamed size (413), slow bodies (408)
    Host/Origin guard       fastmcp's DNS-rebinding guard: 421 / 403 on loopback binds and allow-lists
    bearer authentication   pass-through (Flight Control validates the caller's own token) or a
                            shared secret; 401 + WWW-Authenticate when missing or refused
    routes                  the MCP endpoint and the REST API (auth required), /healthz and /readyz (open)

``auth_mode`` "server" has no caller authentication at all; ``config.check_http_exposure`` allows it on
loopback binds only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import httpx
import uvicorn
from fastmcp.server.auth import AccessToken, TokenVerificationError, TokenVerifier
from fastmcp.server.auth.middleware import RequireAuthMiddleware
from fastmcp.server.http import create_sse_app, create_streamable_http_app
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend
from pydantic import Field
from starlette.authentication import AuthCredentials, BaseUser
from starlette.authentication import AuthenticationError as NotAuthenticated
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import config
import rest_api
from auth import jwt_claims
from errors import APIConnectionError, AuthenticationError, ConfigurationError, FlightControlError

if TYPE_CHECKING:
    from fastmcp import FastMCP

    from config import Secret, Settings
    from services import Services

__all__ = [
    "HEALTH_PATHS",
    "PASSTHROUGH_CLAIM",
    "BodyLimitMiddleware",
    "FlightControlProbe",
    "GracefulServer",
    "PassThroughVerifier",
    "RateLimitMiddleware",
    "SharedSecretVerifier",
    "TokenBuckets",
    "build_http_app",
    "health_routes",
    "mcp_path",
    "passthrough_access_token",
    "serve_http",
    "uvicorn_config",
    "verifier_for",
]

logger = logging.getLogger(__name__)

PASSTHROUGH_CLAIM = "flightctl_passthrough"
HEALTH_PATHS = frozenset({"/healthz", "/readyz"})
_VALIDATE_PATH = "/api/v1/auth/validate"
_SSE_PATH = "/sse"
_SSE_MESSAGE_PATH = "/messages/"
_BODY_READ_TIMEOUT = 30.0
_KEEP_ALIVE_TIMEOUT = 5
_GRACEFUL_SHUTDOWN_TIMEOUT = 10
_MAX_HEADER_BYTES = 16 * 1024
_RETRY_AFTER_UNAVAILABLE = "5"
_THROTTLE_DEFAULT_SECONDS = 60.0  # when Flight Control answers 429 to a token check without Retry-After
_REFUSED_TOKENS_PER_MINUTE = 30
_READINESS_TTL = 5.0
_AUTH_CONFIG_PATH = "/api/v1/auth/config"


def _token_key(token: str) -> str:
    """A stable, non-reversible name for a token (cache and rate-limit keys; never the token itself)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _json_error(message: str, status_code: int, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status_code, headers=headers)


# --- per-key budgets -------------------------------------------------------------------------------


class TokenBuckets:
    """One token bucket per key: ``per_minute`` events, refilled continuously.

    Memory stays bounded in O(1) per event: keys are kept least recently used first and the oldest is
    dropped beyond ``max_keys`` (a dropped bucket would mostly have refilled anyway).
    """

    def __init__(
        self, per_minute: int, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 50_000
    ) -> None:
        self.per_minute = per_minute
        self._capacity = float(per_minute)
        self._refill_per_second = per_minute / 60.0
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def wait(self, key: str) -> float:
        """Seconds until ``key`` may act again; 0 when it may act now (nothing is taken)."""
        tokens = self._tokens(key, self._clock())
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self._refill_per_second

    def take(self, key: str) -> float:
        """Take one token; 0 when granted, else the seconds until one is available."""
        now = self._clock()
        tokens = self._tokens(key, now)
        granted = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if granted else tokens, now)
        self._buckets.move_to_end(key)
        if len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return 0.0 if granted else (1.0 - tokens) / self._refill_per_second

    def _tokens(self, key: str, now: float) -> float:
        tokens, stamp = self._buckets.get(key, (self._capacity, now))
        return min(self._capacity, tokens + (now - stamp) * self._refill_per_second)


def _retry_after(wait: float) -> str:
    return str(max(1, math.ceil(wait)))


# --- Flight Control probe -------------------------------------------------------------------------


class FlightControlProbe:
    """Asks Flight Control whether a bearer token is valid (``GET /api/v1/auth/validate``) and whether it
    answers at all (``GET /api/v1/auth/config``, public).

    A client per call keeps it free of event-loop ownership; the SSL context (shared, and honouring
    tls-server-name) is the expensive part, and answers are cached by the callers.
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
        self._timeout = settings.request_timeout

    async def status_for(self, token: str) -> tuple[int, float | None]:
        """The HTTP status Flight Control gives this bearer token at /auth/validate, and its Retry-After."""
        response = await self._get(self.url, {"Authorization": f"Bearer {token}"})
        return response.status_code, _seconds(response.headers.get("retry-after"))

    async def reachable(self) -> None:
        """Raise APIConnectionError unless Flight Control answers its public /auth/config."""
        await self._get(self._base + _AUTH_CONFIG_PATH, {})

    async def _get(self, url: str, headers: dict[str, str]) -> httpx.Response:
        try:
            # trust_env=False: no proxy from the environment, exactly like every other call to Flight Control
            async with httpx.AsyncClient(
                verify=self._verify, timeout=self._timeout, trust_env=False
            ) as client:
                return await client.get(url, headers=headers)
        except httpx.HTTPError as exc:
            # The URL goes to the log only: this text can reach unauthenticated callers.
            logger.warning("Flight Control at %s did not answer: %s: %s", url, type(exc).__name__, exc)
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


# --- caller authentication ------------------------------------------------------------------------


class _CallerToken(AccessToken):
    """fastmcp's AccessToken with the token kept out of repr (and so out of log lines)."""

    token: str = Field(repr=False)


def passthrough_access_token(token: str) -> AccessToken:
    """What fastmcp hands to tools for a pass-through caller; auth.py keys on PASSTHROUGH_CLAIM."""
    payload = jwt_claims(token)
    claims: dict[str, Any] = {PASSTHROUGH_CLAIM: True}
    for name in ("sub", "preferred_username"):
        if isinstance(payload.get(name), str):
            claims[name] = payload[name]
    if isinstance(payload.get("iss"), str):
        claims["iss"] = payload["iss"]
    exp = payload.get("exp")
    # The MCP SDK ties a session to (client_id, iss, sub): make that unique per identity, and per token
    # when the token says nothing about who it is (opaque tokens).
    subject = claims.get("sub") or "token:" + _token_key(token)[:32]
    return _CallerToken(
        token=token,
        client_id=claims.get("preferred_username") or subject,
        subject=subject,
        scopes=[],
        expires_at=int(exp) if isinstance(exp, int | float) else None,
        claims=claims,
    )


class _Throttled(TokenVerificationError):
    """Flight Control refused to check more tokens for now (429 on /auth/validate)."""

    def __init__(self, wait: float) -> None:
        super().__init__("Flight Control is rate-limiting token checks")
        self.wait = wait


class _Unavailable(NotAuthenticated):
    """The token could not be checked (Flight Control down or throttling); ``wait`` when it said so."""

    def __init__(self, message: str, wait: float | None) -> None:
        super().__init__(message)
        self.wait = wait


class _TooManyFailures(NotAuthenticated):
    def __init__(self, wait: float) -> None:
        super().__init__("too many refused bearer tokens")
        self.wait = wait


class _GuardedBackend(BearerAuthBackend):
    """BearerAuthBackend with two guards.

    "Could not verify" (Flight Control down) becomes a 503, not a 500 or a false 401. And each client
    IP has a budget of refused tokens: spraying guesses (at a shared secret, or at Flight Control's own
    /auth/validate, which Flight Control rate-limits per client, that is per this server) gets 429
    without another check.
    """

    def __init__(self, verifier: _Verifier, failures_per_minute: int) -> None:
        super().__init__(verifier)
        self._verifier = verifier
        self._failures = TokenBuckets(failures_per_minute)

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        authorization = conn.headers.get("authorization", "")
        if conn.url.path in HEALTH_PATHS or not authorization.lower().startswith("bearer "):
            return None
        client = "ip:" + (conn.client.host if conn.client else "unknown")
        wait = self._failures.wait(client)
        if wait > 0 and not self._verifier.known_good(authorization[7:]):
            raise _TooManyFailures(wait)
        try:
            result: tuple[AuthCredentials, BaseUser] | None = await super().authenticate(conn)
        except TokenVerificationError as exc:
            raise _Unavailable(str(exc), exc.wait if isinstance(exc, _Throttled) else None) from exc
        if result is None:
            self._failures.take(client)
        return result


def _auth_failure(conn: HTTPConnection, exc: Exception) -> Response:
    if isinstance(exc, _TooManyFailures):
        retry_after = _retry_after(exc.wait)
        message = f"Too many refused bearer tokens from this address; retry after {retry_after} seconds."
        return _json_error(message, 429, {"Retry-After": retry_after})
    wait = exc.wait if isinstance(exc, _Unavailable) else None
    retry_after = _retry_after(wait) if wait else _RETRY_AFTER_UNAVAILABLE
    return _json_error(f"Could not verify the bearer token: {exc}", 503, {"Retry-After": retry_after})


class _Verifier(TokenVerifier):
    """Shared middleware wiring for this module's verifiers."""

    refused_per_minute = _REFUSED_TOKENS_PER_MINUTE

    def known_good(self, token: str) -> bool:
        """True when the token is known valid without asking anyone (lets it past a spraying block)."""
        return False

    def get_middleware(self) -> list[Middleware]:
        return [
            Middleware(
                AuthenticationMiddleware,
                backend=_GuardedBackend(self, self.refused_per_minute),
                on_error=_auth_failure,
            ),
            Middleware(AuthContextMiddleware),
        ]


class PassThroughVerifier(_Verifier):
    """A bearer is valid when Flight Control says so; the caller is then served with that token.

    Answers are cached briefly by token hash: Flight Control rate-limits /auth/validate (20/hour per
    client IP when enabled), and one MCP session sends many requests with the same token.
    """

    def __init__(
        self,
        probe: FlightControlProbe,
        *,
        ttl: float = 60.0,
        negative_ttl: float = 5.0,
        max_entries: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._probe = probe
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._max_entries = max_entries
        self._clock = clock
        self._cache: OrderedDict[str, tuple[float, AccessToken | None]] = OrderedDict()
        self._pending: dict[str, asyncio.Future[AccessToken | None]] = {}
        self._throttled_until = 0.0

    def known_good(self, token: str) -> bool:
        cached = self._cache.get(_token_key(token))
        return cached is not None and cached[1] is not None and cached[0] > self._clock()

    async def verify_token(self, token: str) -> AccessToken | None:
        key = _token_key(token)
        cached = self._cache.get(key)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        # One question per token at a time: a client that opens with 16 parallel calls asks once.
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._ask_and_remember(key, token))
            self._pending[key] = pending
            pending.add_done_callback(lambda _: self._pending.pop(key, None))
        return await asyncio.shield(pending)

    async def _ask_and_remember(self, key: str, token: str) -> AccessToken | None:
        result = await self._ask(token)
        self._remember(key, result, self._clock() + (self._ttl if result else self._negative_ttl))
        return result

    async def _ask(self, token: str) -> AccessToken | None:
        exp = jwt_claims(token).get("exp")
        if isinstance(exp, int | float) and exp < time.time():
            return None  # an expired JWT is refused without spending Flight Control's validate budget
        if self._clock() < self._throttled_until:
            raise _Throttled(self._throttled_until - self._clock())
        try:
            status, retry_after = await self._probe.status_for(token)
        except APIConnectionError as exc:
            raise TokenVerificationError(str(exc)) from exc
        if status == 200:
            return passthrough_access_token(token)
        if status in (400, 401, 403):
            return None
        if status == 429:
            # Flight Control rate-limits /auth/validate: stop asking until it says we may again.
            wait = retry_after if retry_after is not None else _THROTTLE_DEFAULT_SECONDS
            self._throttled_until = self._clock() + wait
            raise _Throttled(wait)
        raise TokenVerificationError(
            f"Flight Control answered HTTP {status} to the token check; try again shortly."
        )

    def _remember(self, key: str, result: AccessToken | None, until: float) -> None:
        self._cache[key] = (until, result)
        self._cache.move_to_end(key)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)


class SharedSecretVerifier(_Verifier):
    """Callers present the operator's shared secret and are served with the server's credentials."""

    def __init__(self, secret: Secret) -> None:
        super().__init__()
        self._secret = secret.reveal().encode()

    def known_good(self, token: str) -> bool:
        return hmac.compare_digest(token.encode(), self._secret)

    async def verify_token(self, token: str) -> AccessToken | None:
        if not self.known_good(token):
            return None
        return _CallerToken(
            token="shared-secret",  # the secret itself never travels further
            client_id="shared-secret",
            scopes=[],
            claims={"sub": "shared-secret"},
        )


def verifier_for(settings: Settings, probe: FlightControlProbe) -> TokenVerifier | None:
    """The caller authentication for ``settings.http`` (None: callers are not authenticated).

    A shared secret, once set, is always required unless callers bring their own tokens: an operator
    who set one never means "and also let anyone in".
    """
    http = settings.http
    if http.auth_mode == "passthrough":
        return PassThroughVerifier(probe)
    if http.shared_secret:
        return SharedSecretVerifier(http.shared_secret)
    if http.auth_mode == "shared-secret":
        raise ConfigurationError(
            "The HTTP auth mode is 'shared-secret' but no shared secret is set. Set MCP_SHARED_SECRET, or "
            "choose MCP_AUTH_MODE=passthrough so each caller presents its own Flight Control token."
        )
    return None


# --- hardening middleware -------------------------------------------------------------------------


async def _send(response: Response, scope: Scope, receive: Receive, send: Send) -> None:
    await response(scope, receive, send)


class RateLimitMiddleware:
    """``per_minute`` requests per caller; 429 with Retry-After beyond that.

    A caller is the hash of its Authorization header, else its IP address. Health probes are exempt.
    """

    def __init__(self, app: ASGIApp, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self._buckets = TokenBuckets(per_minute, clock=clock)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in HEALTH_PATHS:
            await self.app(scope, receive, send)
            return
        wait = self._buckets.take(_caller_key(scope))
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        retry_after = _retry_after(wait)
        response = _json_error(
            f"Rate limit exceeded: {self._buckets.per_minute} requests per minute per caller. "
            f"Retry after {retry_after} seconds.",
            429,
            {"Retry-After": retry_after},
        )
        await _send(response, scope, receive, send)


def _caller_key(scope: Scope) -> str:
    """The caller's bearer token (however the scheme is spelled), else its IP address."""
    scheme, _, token = Headers(scope=scope).get("authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return "token:" + _token_key(token.strip())
    client = scope.get("client")
    return "ip:" + (client[0] if client else "unknown")


class _BodyRejected(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


class BodyLimitMiddleware:
    """Refuse bodies above ``max_bytes`` (413) and bodies that trickle in too slowly (408).

    Requests with a body are read in full before the app sees them (MCP and REST bodies are small);
    requests without one pass straight through, so long-lived SSE streams keep their receive channel.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, *, read_timeout: float = _BODY_READ_TIMEOUT) -> None:
        self.app = app
        self._max_bytes = max_bytes
        self._read_timeout = read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _has_body(scope):
            await self.app(scope, receive, send)
            return
        try:
            self._check_declared(scope)
            body = await self._read(receive)
        except _BodyRejected as rejected:
            await _send(rejected.response, scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    def _too_large(self) -> _BodyRejected:
        return _BodyRejected(
            _json_error(f"Request body too large: the limit is {self._max_bytes} bytes.", 413)
        )

    def _check_declared(self, scope: Scope) -> None:
        declared = Headers(scope=scope).get("content-length")
        if declared is None:
            return
        if not declared.isdigit():
            raise _BodyRejected(_json_error("Content-Length must be a non-negative integer.", 400))
        if int(declared) > self._max_bytes:
            raise self._too_large()

    async def _read(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self._read_timeout):
                while True:
                    message = await receive()
                    if message["type"] != "http.request":
                        raise _BodyRejected(_json_error("The client went away.", 400))
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self._max_bytes:
                        raise self._too_large()
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            raise _BodyRejected(
                _json_error(f"The request body did not arrive within {self._read_timeout:g} s.", 408)
            ) from None


def _has_body(scope: Scope) -> bool:
    headers = Headers(scope=scope)
    return "content-length" in headers or "transfer-encoding" in headers


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive channel that yields the buffered body once, then defers to the real one."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replayed


# --- health ---------------------------------------------------------------------------------------


class _Readiness:
    """Whether this server can do its job right now, in a sentence without secrets.

    Asked at most every few seconds whatever the probe rate, and never through /auth/validate, which
    Flight Control rate-limits hard (20/hour per client when limits are on): pass-through callers need
    that budget.
    """

    def __init__(self, settings: Settings, services: Services, probe: FlightControlProbe) -> None:
        self._passthrough = settings.http.auth_mode == "passthrough"
        self._services = services
        self._probe = probe
        self._lock = asyncio.Lock()
        self._checked: tuple[float, str | None] | None = None

    async def problem(self) -> str | None:
        async with self._lock:
            now = time.monotonic()
            if self._checked is None or now - self._checked[0] > _READINESS_TTL:
                self._checked = (now, await self._check())
            return self._checked[1]

    async def _check(self) -> str | None:
        try:
            if self._passthrough:
                await self._probe.reachable()  # callers bring their own tokens
            else:
                await self._check_own_credentials()
        except FlightControlError as exc:
            refused = isinstance(exc, AuthenticationError) or getattr(exc, "status_code", None) in (401, 403)
            return f"Flight Control refused the configured credentials: {exc}" if refused else str(exc)
        return None

    async def _check_own_credentials(self) -> None:
        if self._services.tokens is None:
            raise AuthenticationError("no credentials are configured (client.yaml or environment).")
        await self._services.api.get_path(
            "VersionApi", "get_version_without_preload_content", self._services.tokens
        )


def health_routes(readiness: _Readiness) -> list[BaseRoute]:
    """/healthz (the process answers) and /readyz (Flight Control answers); both without auth."""

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        problem = await readiness.problem()
        if problem is None:
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "unavailable", "reason": problem}, status_code=503)

    return [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]


# --- the app and the listener ---------------------------------------------------------------------


_MISSING_TOKEN = (
    "This endpoint needs a bearer token: send 'Authorization: Bearer <token>' with your own Flight Control "
    "token (pass-through) or the operator's shared secret."
)
_REFUSED_TOKEN = (
    "The bearer token was refused (invalid, expired or not a Flight Control token): log in again "
    "(`flightctl login`) and send the new token."
)


class _RestAuthMiddleware(RequireAuthMiddleware):
    """The MCP endpoint's auth for REST routes, answering in the REST API's error shape."""

    async def _send_missing_auth(self, send: Send) -> None:
        await self._send_json_401(send, _MISSING_TOKEN, "Bearer")

    async def _send_auth_error(self, send: Send, status_code: int, error: str, description: str) -> None:
        message = _REFUSED_TOKEN if error == "invalid_token" else description
        await self._send_json_401(send, message, f'Bearer error="{error}"', status_code)

    async def _send_json_401(self, send: Send, message: str, challenge: str, status_code: int = 401) -> None:
        body = json.dumps({"error": message}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status_code,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", challenge.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _protector(verifier: TokenVerifier | None) -> Callable[[ASGIApp], ASGIApp]:
    """Wrap a REST route so it needs the same bearer as the MCP endpoint (no-op without caller auth)."""
    if verifier is None:
        return lambda app: app
    return lambda app: _RestAuthMiddleware(app, verifier.required_scopes)


def mcp_path(settings: Settings) -> str:
    """Where MCP clients connect: /sse for sse, MCP_PATH for streamable-http."""
    return _SSE_PATH if settings.transport == "sse" else settings.path


def build_http_app(settings: Settings, mcp: FastMCP[Any], services: Services) -> ASGIApp:
    """The complete ASGI app for ``settings.transport`` (sse or streamable-http), every layer included."""
    config.check_http_exposure(settings)
    probe = FlightControlProbe(settings)
    verifier = verifier_for(settings, probe)
    routes = [
        *health_routes(_Readiness(settings, services, probe)),
        *rest_api.rest_routes(services, _protector(verifier)),
    ]
    http = settings.http
    guard: dict[str, Any] = {
        "host_origin_protection": "auto",
        "allowed_hosts": list(http.allowed_hosts) or None,
        "allowed_origins": list(http.allowed_origins) or None,
    }
    app: ASGIApp
    if settings.transport == "sse":
        app = create_sse_app(
            mcp, message_path=_SSE_MESSAGE_PATH, sse_path=_SSE_PATH, auth=verifier, routes=routes, **guard
        )
    else:
        app = create_streamable_http_app(
            mcp,
            streamable_http_path=settings.path,
            auth=verifier,
            stateless_http=http.stateless,
            routes=routes,
            **guard,
        )
    app = BodyLimitMiddleware(app, http.max_body_bytes)
    return RateLimitMiddleware(app, http.rate_limit_per_minute)


def uvicorn_config(settings: Settings, app: ASGIApp) -> uvicorn.Config:
    """Listener settings: bind, optional TLS, timeouts; logging is left to logging_setup."""
    http = settings.http
    if (http.tls_cert is None) != (http.tls_key is None):
        raise ConfigurationError(
            "TLS for the HTTP listener needs both a certificate and a key path; only one is set."
        )
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_keep_alive=_KEEP_ALIVE_TIMEOUT,
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_TIMEOUT,
        h11_max_incomplete_event_size=_MAX_HEADER_BYTES,
        ssl_certfile=str(http.tls_cert) if http.tls_cert else None,
        ssl_keyfile=str(http.tls_key) if http.tls_key else None,
    )


class GracefulServer(uvicorn.Server):
    """uvicorn, minus re-raising SIGTERM/SIGINT after a graceful shutdown.

    uvicorn re-raises the captured signal once it has shut down, which kills the process with 143
    before the caller's own teardown (log flush, audit close) runs. The shutdown was graceful, so the
    process may simply return; the exit code is then the caller's to choose.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            if self._captured_signals:
                logger.info("Signal received: the HTTP listener has shut down cleanly.")
            self._captured_signals.clear()


_Server = GracefulServer  # the name bench/_serve_http.py imports


async def serve_http(settings: Settings, mcp: FastMCP[Any], services: Services) -> None:
    """Serve ``mcp`` on ``settings.host:port`` until SIGTERM or SIGINT, then return after a clean shutdown."""
    app = build_http_app(settings, mcp, services)
    server = GracefulServer(uvicorn_config(settings, app))
    scheme = "https" if settings.http.tls_cert else "http"
    logger.info(
        "Serving %s on %s://%s:%s%s (caller auth: %s, stateless: %s)",
        settings.transport,
        scheme,
        settings.host,
        settings.port,
        mcp_path(settings),
        settings.http.auth_mode,
        settings.http.stateless,
    )
    await server.serve()
