"""How much one caller or one connection may take from the HTTP listener.

- ``TokenBuckets``: per-key budgets with O(1) bounded memory (rate limits, token-check budgets).
- ``RateLimitMiddleware``: requests per caller per minute (429 + Retry-After).
- ``BodyLimitMiddleware``: body size (413) and slow bodies (408).
- ``GuardedH11Protocol``: uvicorn's HTTP/1.1 protocol with a deadline for request headers (slow or
  silent connections are closed) and a cap on open connections that evicts the oldest connection
  still waiting for a request before it refuses anyone, and still lets health probes through.
- ``SessionCap``: stateful MCP sessions per principal, so one caller cannot fill the session table.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, authorization_context
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = [
    "HEALTH_PATHS",
    "BodyLimitMiddleware",
    "GuardedH11Protocol",
    "RateLimitMiddleware",
    "SessionCap",
    "TokenBuckets",
    "guarded_protocol",
    "json_error",
    "retry_after",
    "token_key",
]

logger = logging.getLogger(__name__)

HEALTH_PATHS = frozenset({"/healthz", "/readyz"})
_BODY_READ_TIMEOUT = 30.0
#: Connections beyond the cap that may still be accepted for a health probe (then refused outright).
_HEALTH_HEADROOM = 32


def token_key(token: str) -> str:
    """A stable, non-reversible name for a token (cache and rate-limit keys; never the token itself)."""
    return hashlib.sha256(token.encode()).hexdigest()


def json_error(message: str, status_code: int, headers: dict[str, str] | None = None) -> JSONResponse:
    """The HTTP layer's one error body, ``{"error": message}`` (REST, caller auth and limits alike)."""
    return JSONResponse({"error": message}, status_code=status_code, headers=headers)


def retry_after(wait: float) -> str:
    """A Retry-After header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(wait)))


# --- per-key budgets -------------------------------------------------------------------------------


class TokenBuckets:
    """One token bucket per key: ``per_window`` events per ``window`` seconds, refilled continuously.

    Memory stays bounded in O(1) per event: keys are kept least recently used first and the oldest is
    dropped beyond ``max_keys`` (a dropped bucket would mostly have refilled anyway).
    """

    def __init__(
        self,
        per_window: int,
        *,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 50_000,
    ) -> None:
        self.per_window = per_window
        self._capacity = float(per_window)
        self._refill_per_second = per_window / window
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


# --- requests per caller ---------------------------------------------------------------------------


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
        seconds = retry_after(wait)
        response = json_error(
            f"Rate limit exceeded: {self._buckets.per_window} requests per minute per caller. "
            f"Retry after {seconds} seconds.",
            429,
            {"Retry-After": seconds},
        )
        await response(scope, receive, send)


def _caller_key(scope: Scope) -> str:
    """The caller's bearer token (however the scheme is spelled), else its IP address."""
    scheme, _, token = Headers(scope=scope).get("authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return "token:" + token_key(token.strip())
    client = scope.get("client")
    return "ip:" + (client[0] if client else "unknown")


# --- request bodies --------------------------------------------------------------------------------


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
            await rejected.response(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    def _too_large(self) -> _BodyRejected:
        return _BodyRejected(
            json_error(f"Request body too large: the limit is {self._max_bytes} bytes.", 413)
        )

    def _check_declared(self, scope: Scope) -> None:
        declared = Headers(scope=scope).get("content-length")
        if declared is None:
            return
        if not declared.isdigit():
            raise _BodyRejected(json_error("Content-Length must be a non-negative integer.", 400))
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
                        raise _BodyRejected(json_error("The client went away.", 400))
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self._max_bytes:
                        raise self._too_large()
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            raise _BodyRejected(
                json_error(f"The request body did not arrive within {self._read_timeout:g} s.", 408)
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


# --- connections -----------------------------------------------------------------------------------


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with two guards uvicorn lacks.

    - A connection must deliver a request's headers within ``header_timeout`` seconds of opening (or
      of the first byte after the previous response); a silent or trickling client is closed.
    - Beyond ``max_connections`` open connections, the oldest one still waiting for a request is closed
      to make room. When every connection is busy with a request, a newcomer is still read, but only a
      health probe gets an answer (``/healthz`` keeps answering, so probes do not restart a busy pod);
      beyond a small headroom, newcomers are closed at once.

    Configure a subclass with :func:`guarded_protocol`.
    """

    header_timeout: float = 10.0
    max_connections: int = 256

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._opened = time.monotonic()
        self._header_timer: asyncio.TimerHandle | None = None
        self._arm_header_timer()
        if len(self.connections) > self.max_connections and not self._make_room():
            if len(self.connections) > self.max_connections + _HEALTH_HEADROOM:
                self._close()
                return
            logger.warning("Connection limit (%d) reached: serving health probes only", self.max_connections)
            self.app = _health_only(self.app)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._waiting():
            self._cancel_header_timer()
        elif self._header_timer is None and not self.transport.is_closing():
            self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _waiting(self) -> bool:
        """True while no request is in progress (before the first, or between two)."""
        return self.cycle is None or self.cycle.response_complete

    def _arm_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_late)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_late(self) -> None:
        self._header_timer = None
        if self._waiting():
            self._close()

    def _make_room(self) -> bool:
        """Close the oldest other connection that is waiting for a request; False when there is none."""
        idle = [
            c
            for c in self.connections
            if c is not self and isinstance(c, GuardedH11Protocol) and c._waiting()
        ]
        if not idle:
            return False
        min(idle, key=lambda c: c._opened)._close()
        return True

    def _close(self) -> None:
        self._cancel_header_timer()
        self.connections.discard(self)
        if not self.transport.is_closing():
            self.transport.close()


def guarded_protocol(header_timeout: float, max_connections: int) -> type[GuardedH11Protocol]:
    """A GuardedH11Protocol class with these limits (uvicorn instantiates the class per connection)."""
    return type(
        "ConfiguredGuardedH11Protocol",
        (GuardedH11Protocol,),
        {"header_timeout": header_timeout, "max_connections": max_connections},
    )


def _health_only(app: ASGIApp) -> ASGIApp:
    async def limited(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in HEALTH_PATHS:
            await app(scope, receive, send)
            return
        response = json_error(
            "The server is at its connection limit; retry shortly.",
            503,
            {"Retry-After": "1", "Connection": "close"},
        )
        await response(scope, receive, send)

    return limited


# --- sessions --------------------------------------------------------------------------------------


class SessionCap:
    """At most ``per_principal`` open stateful MCP sessions per authenticated caller.

    Wraps the streamable-http endpoint; it counts the session manager's own record of who opened each
    session, so sessions that ended (DELETE, idle timeout) stop counting at once. Requests under the
    sessionless protocol and requests inside an existing session are never refused.
    """

    def __init__(self, app: ASGIApp, manager: Callable[[], Any], per_principal: int) -> None:
        self.app = app
        self._manager = manager
        self._per_principal = per_principal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        user = scope.get("user")
        if scope["type"] == "http" and isinstance(user, AuthenticatedUser) and self._opens_session(scope):
            owners: dict[str, Any] = getattr(self._manager(), "_session_owners", {})
            owner = authorization_context(user)
            if sum(1 for o in owners.values() if o == owner) >= self._per_principal:
                await self._refuse(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _opens_session(self, scope: Scope) -> bool:
        manager = self._manager()
        if manager is None or getattr(manager, "stateless", True) or scope["method"] != "POST":
            return False
        headers = Headers(scope=scope)
        version = headers.get("mcp-protocol-version")
        return "mcp-session-id" not in headers and (version is None or version in HANDSHAKE_PROTOCOL_VERSIONS)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = (
            f"You already have {self._per_principal} open MCP sessions on this server, the most one caller "
            "may hold. Close sessions you no longer use (or let them idle out), then connect again."
        )
        body = {"jsonrpc": "2.0", "id": None, "error": {"code": -32000, "message": message}}
        response = Response(
            json.dumps(body), 429, headers={"Retry-After": "60"}, media_type="application/json"
        )
        await response(scope, receive, send)
