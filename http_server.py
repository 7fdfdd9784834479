"""The HTTP transports (sse, streamable-http): the app, its health answers, and the listener.

Stdio trusts its parent process; a port trusts nobody. The layers, outermost first:

    listener (GuardedH11Protocol)  header-read deadline, idle keep-alive, connection cap (http_limits)
    RateLimitMiddleware            per caller (bearer hash, else client IP), 429 + Retry-After
    ChallengeMiddleware            401s carry the OAuth discovery challenge and advice (oauth_metadata)
    BodyLimitMiddleware            Content-Length and streamed size (413), slow bodies (408)
    Host/Origin guard              fastmcp's DNS-rebinding guard: 421 / 403 on loopback binds and allow-lists
    bearer authentication          pass-through or shared secret (caller_auth)
    routes                         the MCP endpoint (per-caller session cap) and the REST API (auth
                                   required); /healthz, /readyz and the RFC 9728 metadata (open)

``auth_mode`` "server" has no caller authentication at all; ``config.check_http_exposure`` allows it on
loopback binds only.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import uvicorn
from fastmcp.server.auth import TokenVerifier
from fastmcp.server.auth.middleware import RequireAuthMiddleware
from fastmcp.server.http import create_sse_app, create_streamable_http_app
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

import config
import rest_api
from caller_auth import PASSTHROUGH_CLAIM, PassThroughVerifier, passthrough_access_token, verifier_for
from errors import AuthenticationError, ConfigurationError, FlightControlError
from http_limits import (
    HEALTH_PATHS,
    BodyLimitMiddleware,
    RateLimitMiddleware,
    SessionCap,
    guarded_protocol,
)
from identity_provider import FlightControlProbe
from oauth_metadata import ChallengeMiddleware, metadata_routes

if TYPE_CHECKING:
    from fastmcp import FastMCP

    from config import Settings
    from services import Services

__all__ = [
    "HEALTH_PATHS",
    "PASSTHROUGH_CLAIM",
    "GracefulServer",
    "build_http_app",
    "health_routes",
    "mcp_path",
    "passthrough_access_token",
    "serve_http",
    "uvicorn_config",
]

logger = logging.getLogger(__name__)

_SSE_PATH = "/sse"
_SSE_MESSAGE_PATH = "/messages/"
_GRACEFUL_SHUTDOWN_TIMEOUT = 10
_MAX_HEADER_BYTES = 16 * 1024
_READINESS_TTL = 5.0
#: File descriptors kept free of connections (log files, outbound calls to Flight Control).
_SPARE_FILES = 64


# --- health ---------------------------------------------------------------------------------------


class _Readiness:
    """Whether this server can do its job right now.

    Asked at most every few seconds whatever the probe rate, and never through /auth/validate, which
    Flight Control rate-limits hard (20/hour per client when limits are on): pass-through callers need
    that budget. The reason goes to the log (once per change), never to the unauthenticated prober.
    """

    def __init__(
        self,
        settings: Settings,
        services: Services,
        probe: FlightControlProbe,
        verifier: TokenVerifier | None,
    ) -> None:
        self._passthrough = settings.http.auth_mode == "passthrough"
        self._services = services
        self._probe = probe
        self._verifier = verifier if isinstance(verifier, PassThroughVerifier) else None
        self._lock = asyncio.Lock()
        self._checked: tuple[float, str | None] | None = None
        self._reported: str | None = None

    async def ready(self) -> bool:
        problem = await self.problem()
        if problem != self._reported:
            if problem is None:
                logger.info("Ready again")
            else:
                logger.warning("Not ready: %s", problem)
            self._reported = problem
        return problem is None

    async def problem(self) -> str | None:
        if self._verifier is not None and self._verifier.throttled_for() > 0:
            return "Flight Control is rate-limiting token checks; new callers cannot be verified for now."
        async with self._lock:
            now = time.monotonic()
            if self._checked is None or now - self._checked[0] > _READINESS_TTL:
                self._checked = (now, await self._check())
            return self._checked[1]

    async def _check(self) -> str | None:
        try:
            if self._passthrough:
                await self._probe.auth_config()  # callers bring their own tokens
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
    """/healthz (the process answers) and /readyz (it can serve callers); both without auth, and both
    say nothing beyond that."""

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        if await readiness.ready():
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "not ready"}, status_code=503)

    return [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]


# --- the app --------------------------------------------------------------------------------------


def _protector(verifier: TokenVerifier | None) -> Callable[[ASGIApp], ASGIApp]:
    """Wrap a REST route so it needs the same bearer as the MCP endpoint (no-op without caller auth)."""
    if verifier is None:
        return lambda app: app
    return lambda app: RequireAuthMiddleware(app, verifier.required_scopes)


def mcp_path(settings: Settings) -> str:
    """Where MCP clients connect: /sse for sse, MCP_PATH for streamable-http."""
    return _SSE_PATH if settings.transport == "sse" else settings.path


def _cap_sessions(app: Any, path: str, per_principal: int) -> None:
    """Put SessionCap in front of the streamable-http endpoint (the route fastmcp built)."""
    for route in app.routes:
        if isinstance(route, Route) and route.path == path:
            endpoint = route.app
            inner = getattr(endpoint, "app", endpoint)  # behind RequireAuthMiddleware when auth is on
            route.app = SessionCap(
                endpoint, functools.partial(getattr, inner, "session_manager", None), per_principal
            )
            return
    raise RuntimeError(f"no MCP route at {path}")  # fastmcp changed how it builds the app


def build_http_app(settings: Settings, mcp: FastMCP[Any], services: Services) -> ASGIApp:
    """The complete ASGI app for ``settings.transport`` (sse or streamable-http), every layer included."""
    config.check_http_exposure(settings)
    http = settings.http
    probe = FlightControlProbe(settings)
    verifier = verifier_for(settings, probe)
    identity = verifier.identity if isinstance(verifier, PassThroughVerifier) else None
    path = mcp_path(settings)
    routes = [
        *health_routes(_Readiness(settings, services, probe, verifier)),
        *(metadata_routes(identity, path, http.public_url) if identity is not None else []),
        *rest_api.rest_routes(services, _protector(verifier)),
    ]
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
            session_idle_timeout=http.session_idle_timeout,
            **guard,
        )
        _cap_sessions(app, settings.path, http.sessions_per_caller)
    app = BodyLimitMiddleware(app, http.max_body_bytes)
    if verifier is not None:
        app = ChallengeMiddleware(app, identity, path, http.public_url)
    return RateLimitMiddleware(app, http.rate_limit_per_minute)


# --- the listener ---------------------------------------------------------------------------------


def _connection_cap(configured: int) -> int:
    """The configured cap, lowered to fit the process's open-file limit (probes need a descriptor too)."""
    try:
        import resource  # POSIX only
    except ImportError:
        return configured
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft - _SPARE_FILES >= configured:
        return configured
    fitted = max(8, soft - _SPARE_FILES)
    logger.warning(
        "MCP_MAX_CONNECTIONS=%d does not fit the open-file limit (%d); using %d", configured, soft, fitted
    )
    return fitted


def uvicorn_config(settings: Settings, app: ASGIApp) -> uvicorn.Config:
    """Listener settings: bind, optional TLS, timeouts and the connection cap; logging is left to
    logging_setup."""
    http = settings.http
    if (http.tls_cert is None) != (http.tls_key is None):
        raise ConfigurationError(
            "TLS for the HTTP listener needs both a certificate and a key path; only one is set."
        )
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=guarded_protocol(http.header_timeout, _connection_cap(http.max_connections)),
        log_config=None,
        access_log=False,
        server_header=False,
        # Client address and scheme from X-Forwarded-* only when the peer is a proxy the operator named.
        proxy_headers=bool(http.trusted_proxies),
        forwarded_allow_ips=list(http.trusted_proxies) or None,
        timeout_keep_alive=http.idle_timeout,
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

    #: Called once with the listening port when the server accepts connections (demo banner, tests).
    on_ready: Callable[[int], None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.on_ready is not None:
            self.on_ready(self.servers[0].sockets[0].getsockname()[1])

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            if self._captured_signals:
                logger.info("Signal received: the HTTP listener has shut down cleanly.")
            self._captured_signals.clear()


_Server = GracefulServer  # the name bench/_serve_http.py imports


async def serve_http(
    settings: Settings,
    mcp: FastMCP[Any],
    services: Services,
    *,
    on_ready: Callable[[int], None] | None = None,
) -> None:
    """Serve ``mcp`` on ``settings.host:port`` (or the inherited ``listen_fd``) until SIGTERM or SIGINT,
    then return after a clean shutdown; ``on_ready(port)`` runs once the listener accepts connections."""
    app = build_http_app(settings, mcp, services)
    server = GracefulServer(uvicorn_config(settings, app))
    scheme = "https" if settings.http.tls_cert else "http"

    def ready(port: int) -> None:
        logger.info(
            "Serving %s on %s://%s:%s%s (caller auth: %s, stateless: %s)",
            settings.transport,
            scheme,
            settings.host,
            port,
            mcp_path(settings),
            settings.http.auth_mode,
            settings.http.stateless,
        )
        if on_ready is not None:
            on_ready(port)

    server.on_ready = ready
    inherited = None if settings.listen_fd is None else [socket.socket(fileno=settings.listen_fd)]
    await server.serve(sockets=inherited)
