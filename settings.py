"""The resolved settings objects: what the server runs with, built once by config.load_settings.

Frozen dataclasses, passed down explicitly; nothing reads the environment after start-up. config.py
holds the table of options and the resolution that fills these in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from allowlist import AllowEntry
from client_yaml import TokenToUse
from config_values import Secret
from tls import TLSSettings
from toolset_names import DEFAULT_TOOLSETS

__all__ = [
    "AUTH_MODES",
    "HTTP_TRANSPORTS",
    "TRANSPORTS",
    "AuthMethod",
    "AuthMode",
    "AuthSettings",
    "CommandSettings",
    "HTTPSettings",
    "Settings",
    "Transport",
]

Transport = Literal["stdio", "sse", "streamable-http"]
AuthMethod = Literal["oidc", "proxy", "static", "none"]
AuthMode = Literal["passthrough", "shared-secret", "server"]

TRANSPORTS: tuple[Transport, ...] = ("stdio", "sse", "streamable-http")
AUTH_MODES: tuple[AuthMode, ...] = ("passthrough", "shared-secret", "server")
HTTP_TRANSPORTS: frozenset[str] = frozenset({"sse", "streamable-http"})


@dataclass(frozen=True)
class AuthSettings:
    """Where the server's own access token comes from (``method``) and what it needs to get one."""

    method: AuthMethod = "none"
    token_url: str | None = None
    client_id: str = "flightctl"
    refresh_token: Secret | None = None
    access_token: Secret | None = None
    id_token: Secret | None = None
    token_to_use: TokenToUse = "access"
    access_token_expiry: datetime | None = None
    provider_name: str | None = None
    tls: TLSSettings = field(default_factory=TLSSettings)
    # Where rotated tokens go: the client.yaml the refresh token came from, else a state file in state_dir.
    token_file: Path | None = None
    token_file_legacy: bool = False
    state_dir: Path | None = None


@dataclass(frozen=True)
class CommandSettings:
    """The opt-in ``run_command_on_device`` tool: off unless enabled, then bounded by these limits."""

    enabled: bool = False
    allowlist: tuple[AllowEntry, ...] = ()
    default_timeout: float = 30.0
    max_timeout: float = 300.0
    output_limit_bytes: int = 65536
    confirm: bool = False
    confirm_timeout: float = 30.0


@dataclass(frozen=True)
class HTTPSettings:
    """Caller authentication and hardening for the sse and streamable-http transports."""

    auth_mode: AuthMode = "server"
    shared_secret: Secret | None = None
    cursor_key: Secret | None = None
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    max_body_bytes: int = 1024 * 1024
    rate_limit_per_minute: int = 600
    stateless: bool = False
    workers: int = 1
    tls_cert: Path | None = None
    tls_key: Path | None = None
    public_url: str | None = None
    trusted_proxies: tuple[str, ...] = ()
    token_checks_per_hour: int = 12
    validation_pause: float = 60.0
    header_timeout: float = 10.0
    idle_timeout: int = 5
    max_connections: int = 256
    sessions_per_caller: int = 16
    session_idle_timeout: float = 600.0


@dataclass(frozen=True)
class Settings:
    """Everything the server needs, resolved and validated once; pass it down, never re-read the env."""

    api_base_url: str | None = None
    api_base_url_source: str = "API_BASE_URL"  # where the URL was set, for errors that blame it
    organization: str | None = None
    client_config_path: Path | None = None
    client_context: str = "default"
    request_timeout: float = 30.0
    tls: TLSSettings = field(default_factory=TLSSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    transport: Transport = "stdio"
    host: str = "127.0.0.1"
    port: int = 8000
    listen_fd: int | None = None
    path: str = "/mcp"
    log_level: str = "INFO"
    mcp_log_level: str = "info"
    log_file: Path = field(default_factory=lambda: Path("~/.local/share/flightctl-mcp/flightctl-mcp.log"))
    audit_log_file: Path | None = None  # None: flightctl-mcp-audit.log next to log_file
    log_to_stderr: bool = False
    response_token_budget: int = 10000
    toolsets: tuple[str, ...] = DEFAULT_TOOLSETS
    read_only: bool = False
    commands: CommandSettings = field(default_factory=CommandSettings)
    http: HTTPSettings = field(default_factory=HTTPSettings)
