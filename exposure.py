"""Start-up rules about who can reach the server: refuse what would hand the server's credentials to the
network, and warn when device commands are open to any local process."""

from __future__ import annotations

import ipaddress

from errors import ConfigurationError
from settings import HTTP_TRANSPORTS, Settings

__all__ = ["MIN_SHARED_SECRET", "check_http_exposure", "command_exposure_warning", "is_loopback_host"]


def is_loopback_host(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1: addresses no other machine can reach."""
    if host.strip().lower() in {"localhost", "localhost."}:
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


#: Shortest shared secret accepted on a non-loopback bind (32 characters: `openssl rand -hex 16` or more).
MIN_SHARED_SECRET = 32


def command_exposure_warning(settings: Settings) -> str | None:
    """The start-up warning when device commands are open to any local process (server mode, loopback)."""
    if not settings.commands.enabled or settings.transport not in HTTP_TRANSPORTS:
        return None
    if settings.http.auth_mode != "server" or settings.http.shared_secret:
        return None
    return (
        f"run_command_on_device is enabled on {settings.transport} at {settings.host}:{settings.port} with "
        "MCP_AUTH_MODE=server and no MCP_SHARED_SECRET: any process on this machine can connect and run "
        "commands on devices with the server's credentials. Set MCP_SHARED_SECRET (callers send it as "
        "their bearer token), or use MCP_AUTH_MODE=passthrough, or the stdio transport."
    )


def check_http_exposure(settings: Settings) -> None:
    """Refuse to serve the server's own credentials to the network unauthenticated, or behind a guessable
    shared secret."""
    if settings.transport not in HTTP_TRANSPORTS or is_loopback_host(settings.host):
        return
    secret = settings.http.shared_secret
    if (
        secret is not None
        and settings.http.auth_mode != "passthrough"
        and len(secret.reveal()) < MIN_SHARED_SECRET
    ):
        raise ConfigurationError(
            f"MCP_SHARED_SECRET is shorter than {MIN_SHARED_SECRET} characters, too easy to guess for "
            f"MCP_HOST={settings.host}. Set a long random one (for example `openssl rand -hex 32`), or "
            "bind to 127.0.0.1."
        )
    if settings.http.auth_mode != "server" or secret:
        return
    raise ConfigurationError(
        f"MCP_TRANSPORT={settings.transport} on MCP_HOST={settings.host} would let anyone who can reach "
        "this port use the server's own Flight Control credentials. Choose one: bind to 127.0.0.1 "
        "(MCP_HOST=127.0.0.1); or MCP_AUTH_MODE=passthrough, so each caller sends its own Flight Control "
        "token; or set MCP_SHARED_SECRET, so callers must send it as their bearer token."
    )
