"""The options of the HTTP transports (callers and hardening) and the HTTPSettings they resolve to.

Rows of the one options table (config.OPTIONS holds them in order), kept with the rules that combine
them: a shared secret for shared-secret mode, TLS certificate and key together, several workers only
for streamable-http.
"""

from __future__ import annotations

from typing import Any

from config_values import (
    Option,
    Values,
    choice_of,
    float_between,
    int_between,
    parse_csv,
    parse_existing_file,
    parse_networks,
    parse_secret,
    parse_url,
)
from errors import ConfigurationError
from settings import AUTH_MODES, HTTPSettings

__all__ = ["G_HTTP", "HTTP_OPTIONS", "http_settings"]

G_HTTP = "HTTP transports: callers and hardening"

MCP_AUTH_MODE = Option(
    "MCP_AUTH_MODE", "--auth-mode", None, choice_of(AUTH_MODES, str.lower),
    "Who HTTP callers act as: passthrough (their own Flight Control token), shared-secret (the server's "
    "credentials, behind MCP_SHARED_SECRET) or server (the server's credentials, no caller check).", G_HTTP,
    default_doc="shared-secret when MCP_SHARED_SECRET is set, else server",
)  # fmt: skip
MCP_SHARED_SECRET = Option(
    "MCP_SHARED_SECRET", "--shared-secret", None, parse_secret,
    "Bearer token HTTP callers must send in shared-secret mode.", G_HTTP, secret=True,
)  # fmt: skip
MCP_CURSOR_KEY = Option(
    "MCP_CURSOR_KEY", "--cursor-key", None, parse_secret,
    "Key that signs list cursors; give every replica of one deployment the same one (e.g. `openssl rand "
    "-hex 32`) so any replica continues any cursor. Unset: derived from MCP_SHARED_SECRET, else random per "
    "process.", G_HTTP, secret=True,
)  # fmt: skip
MCP_ALLOWED_HOSTS = Option(
    "MCP_ALLOWED_HOSTS", "--allowed-hosts", None, parse_csv,
    "Comma-separated Host header values accepted (DNS-rebinding guard); empty: derived from MCP_HOST.",
    G_HTTP,
)  # fmt: skip
MCP_ALLOWED_ORIGINS = Option(
    "MCP_ALLOWED_ORIGINS", "--allowed-origins", None, parse_csv,
    "Comma-separated browser Origin values accepted besides same-origin and loopback ones; others get 403.",
    G_HTTP,
)  # fmt: skip
MCP_MAX_BODY_BYTES = Option(
    "MCP_MAX_BODY_BYTES", "--max-body-bytes", "1048576", int_between(1024, 1024**3),
    "Largest request body accepted, in bytes.", G_HTTP,
)  # fmt: skip
MCP_RATE_LIMIT = Option(
    "MCP_RATE_LIMIT", "--rate-limit", "600", int_between(1, 1_000_000),
    "Requests per caller per minute.", G_HTTP,
)  # fmt: skip
MCP_TLS_CERT = Option(
    "MCP_TLS_CERT", "--tls-cert", None, parse_existing_file,
    "PEM certificate (chain) to serve the HTTP transports over HTTPS; needs MCP_TLS_KEY.", G_HTTP,
)  # fmt: skip
MCP_TLS_KEY = Option(
    "MCP_TLS_KEY", "--tls-key", None, parse_existing_file,
    "PEM private key matching MCP_TLS_CERT.", G_HTTP,
)  # fmt: skip
MCP_PUBLIC_URL = Option(
    "MCP_PUBLIC_URL", "--public-url", None, parse_url,
    "The URL clients use to reach this server (scheme, host, port), when a proxy in front changes it; "
    "named in the OAuth metadata. Default: the URL each request was sent to.", G_HTTP,
)  # fmt: skip
MCP_TRUSTED_PROXIES = Option(
    "MCP_TRUSTED_PROXIES", "--trusted-proxies", None, parse_networks,
    "Comma-separated addresses or networks of reverse proxies whose X-Forwarded-For and X-Forwarded-Proto "
    "are believed, so rate limits and token-check budgets count each client, not the proxy. Empty: "
    "those headers are ignored.", G_HTTP,
)  # fmt: skip
MCP_TOKEN_CHECKS_PER_HOUR = Option(
    "MCP_TOKEN_CHECKS_PER_HOUR", "--token-checks-per-hour", "12", int_between(1, 100_000),
    "Pass-through: new tokens per client address per hour that may be checked at Flight Control's "
    "/auth/validate (tokens its identity provider signed are checked locally, without this budget), shared "
    "by the MCP_WORKERS processes. Keep it below Flight Control's own limit (rateLimit.authRequests, 20 per "
    "hour).", G_HTTP,
)  # fmt: skip
MCP_TOKEN_CHECK_PAUSE = Option(
    "MCP_TOKEN_CHECK_PAUSE", "--token-check-pause", "60", float_between(1, 3600),
    "Pass-through: longest pause, in seconds, of new token checks after Flight Control answers 429; "
    "callers already accepted keep working, and /readyz says not ready meanwhile.", G_HTTP,
)  # fmt: skip
MCP_HEADER_TIMEOUT = Option(
    "MCP_HEADER_TIMEOUT", "--header-timeout", "10", float_between(0.5, 300),
    "Seconds a connection has to send a request's headers before it is closed (slow or silent clients).",
    G_HTTP,
)  # fmt: skip
MCP_IDLE_TIMEOUT = Option(
    "MCP_IDLE_TIMEOUT", "--idle-timeout", "5", int_between(1, 3600),
    "Seconds an idle keep-alive connection stays open between requests.", G_HTTP,
)  # fmt: skip
MCP_MAX_CONNECTIONS = Option(
    "MCP_MAX_CONNECTIONS", "--max-connections", "256", int_between(8, 1_000_000),
    "Open connections at most (lowered to fit the open-file limit); beyond it the oldest connection still "
    "waiting for a request is closed, and only health probes are answered when all are busy.", G_HTTP,
)  # fmt: skip
MCP_MAX_SESSIONS_PER_CALLER = Option(
    "MCP_MAX_SESSIONS_PER_CALLER", "--max-sessions-per-caller", "16", int_between(1, 100_000),
    "Open stateful MCP sessions one authenticated caller may hold; more get 429.", G_HTTP,
)  # fmt: skip
MCP_SESSION_IDLE_TIMEOUT = Option(
    "MCP_SESSION_IDLE_TIMEOUT", "--session-idle-timeout", "600", float_between(10, 86_400),
    "Seconds a stateful MCP session may stay unused before the server ends it.", G_HTTP,
)  # fmt: skip

HTTP_OPTIONS: tuple[Option[Any], ...] = (
    MCP_AUTH_MODE,
    MCP_SHARED_SECRET,
    MCP_CURSOR_KEY,
    MCP_ALLOWED_HOSTS,
    MCP_ALLOWED_ORIGINS,
    MCP_MAX_BODY_BYTES,
    MCP_RATE_LIMIT,
    MCP_TLS_CERT,
    MCP_TLS_KEY,
    MCP_PUBLIC_URL,
    MCP_TRUSTED_PROXIES,
    MCP_TOKEN_CHECKS_PER_HOUR,
    MCP_TOKEN_CHECK_PAUSE,
    MCP_HEADER_TIMEOUT,
    MCP_IDLE_TIMEOUT,
    MCP_MAX_CONNECTIONS,
    MCP_MAX_SESSIONS_PER_CALLER,
    MCP_SESSION_IDLE_TIMEOUT,
)


def http_settings(values: Values, *, transport: str, stateless: bool, workers: int) -> HTTPSettings:
    """HTTPSettings from the HTTP options (``transport``, ``stateless``, ``workers`` are MCP options)."""
    secret = values.get_or_none(MCP_SHARED_SECRET)
    mode = values.get_or_none(MCP_AUTH_MODE) or ("shared-secret" if secret else "server")
    if mode == "shared-secret" and not secret:
        raise ConfigurationError(
            "MCP_AUTH_MODE is 'shared-secret' but MCP_SHARED_SECRET is not set; set it to a long random "
            "string (for example `openssl rand -hex 32`) or choose MCP_AUTH_MODE=passthrough or server."
        )
    cert, key = values.get_or_none(MCP_TLS_CERT), values.get_or_none(MCP_TLS_KEY)
    if (cert is None) != (key is None):
        raise ConfigurationError(
            "MCP_TLS_CERT and MCP_TLS_KEY go together: set both to serve HTTPS, or neither to serve HTTP."
        )
    if workers > 1 and transport != "streamable-http":
        raise ConfigurationError(
            f"MCP_WORKERS={workers} needs MCP_TRANSPORT=streamable-http: stdio has one client on one pipe "
            "and SSE keeps each session inside one process. Set MCP_TRANSPORT=streamable-http, or "
            "MCP_WORKERS=1."
        )
    return HTTPSettings(
        auth_mode=mode,
        shared_secret=secret,
        cursor_key=values.get_or_none(MCP_CURSOR_KEY),
        allowed_hosts=values.get_or_none(MCP_ALLOWED_HOSTS) or (),
        allowed_origins=values.get_or_none(MCP_ALLOWED_ORIGINS) or (),
        max_body_bytes=values.get(MCP_MAX_BODY_BYTES),
        rate_limit_per_minute=values.get(MCP_RATE_LIMIT),
        stateless=stateless or workers > 1,  # any process may get any request
        workers=workers,
        tls_cert=cert,
        tls_key=key,
        public_url=values.get_or_none(MCP_PUBLIC_URL),
        trusted_proxies=values.get_or_none(MCP_TRUSTED_PROXIES) or (),
        token_checks_per_hour=values.get(MCP_TOKEN_CHECKS_PER_HOUR),
        validation_pause=values.get(MCP_TOKEN_CHECK_PAUSE),
        header_timeout=values.get(MCP_HEADER_TIMEOUT),
        idle_timeout=values.get(MCP_IDLE_TIMEOUT),
        max_connections=values.get(MCP_MAX_CONNECTIONS),
        sessions_per_caller=values.get(MCP_MAX_SESSIONS_PER_CALLER),
        session_idle_timeout=values.get(MCP_SESSION_IDLE_TIMEOUT),
    )
