"""Settings of flightctl-mcp, built once at start-up from defaults < client.yaml < environment < flags.

``OPTIONS`` is the single table of every setting (environment variable, flag, default, parser, help,
group): the command line, ``docs/configuration.md`` and ``load_settings`` all read it, so a setting is
declared exactly once. A bad value raises ``ConfigurationError`` naming where it came from, the value and
what would be valid; nothing falls back silently. Nothing here reads ``os.environ`` at import time.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import ipaddress
import re
import shlex
import ssl
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

import yaml

from errors import ConfigurationError

__all__ = [
    "OPTIONS",
    "AuthSettings",
    "CommandSettings",
    "HTTPSettings",
    "Option",
    "Secret",
    "Settings",
    "TLSSettings",
    "check_http_exposure",
    "load_settings",
    "render_configuration_doc",
]

T = TypeVar("T")

Transport = Literal["stdio", "sse", "streamable-http"]
AuthMethod = Literal["oidc", "proxy", "static", "none"]
AuthMode = Literal["passthrough", "shared-secret", "server"]
TokenToUse = Literal["access", "id"]

TRANSPORTS: tuple[Transport, ...] = ("stdio", "sse", "streamable-http")
AUTH_MODES: tuple[AuthMode, ...] = ("passthrough", "shared-secret", "server")
HTTP_TRANSPORTS: frozenset[str] = frozenset({"sse", "streamable-http"})
REALM_TOKEN_SUFFIX = "/protocol/openid-connect/token"


class Secret:
    """A credential that never shows itself in a repr, an f-string or a log line; ``reveal()`` gives it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The real value: call this only where the secret is sent, never where it is shown."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __str__(self) -> str:
        return "**********"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(("Secret", self._value))


# --------------------------------------------------------------------------------------------------
# Settings objects
# --------------------------------------------------------------------------------------------------


class _ServerNameContext(ssl.SSLContext):
    """An SSLContext that verifies (and sends SNI for) ``tls-server-name`` instead of the URL's host.

    httpx and urllib3 both pass the URL host as ``server_hostname``; overriding it here honours
    client.yaml's ``tls-server-name`` for every library that takes an SSLContext.
    """

    server_name_override: str = ""

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        kwargs["server_hostname"] = self.server_name_override
        return super().wrap_socket(*args, **kwargs)

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        kwargs["server_hostname"] = self.server_name_override
        return super().wrap_bio(*args, **kwargs)


@dataclass(frozen=True)
class TLSSettings:
    """How to verify one server's certificate; ``source`` says which setting decided it."""

    verify: bool = True
    ca_file: Path | None = None
    ca_data: str | None = field(default=None, repr=False)
    server_name: str | None = None
    source: str = "system CA bundle"

    def ssl_context(self) -> ssl.SSLContext:
        """The SSLContext for this server, built once and shared (contexts are thread-safe)."""
        return _build_ssl_context(self)


@functools.lru_cache(maxsize=32)
def _build_ssl_context(tls: TLSSettings) -> ssl.SSLContext:
    ctx: ssl.SSLContext
    if tls.server_name:
        ctx = _ServerNameContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.server_name_override = tls.server_name
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if not tls.verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    try:
        if tls.ca_file is not None:
            ctx.load_verify_locations(cafile=str(tls.ca_file))
        elif tls.ca_data is not None:
            ctx.load_verify_locations(cadata=tls.ca_data)
        else:
            ctx.load_default_certs()
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigurationError(
            f"The CA certificate from {tls.source} could not be loaded ({exc}). "
            "Point it at a PEM file holding the CA that signed the server's certificate."
        ) from exc
    return ctx


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


@dataclass(frozen=True)
class CommandSettings:
    """The opt-in ``run_command_on_device`` tool: off unless enabled, then bounded by these limits."""

    enabled: bool = False
    allowed_prefixes: tuple[tuple[str, ...], ...] = ()
    default_timeout: float = 30.0
    max_timeout: float = 300.0
    output_limit_bytes: int = 65536
    confirm: bool = False


@dataclass(frozen=True)
class HTTPSettings:
    """Caller authentication and hardening for the sse and streamable-http transports."""

    auth_mode: AuthMode = "server"
    shared_secret: Secret | None = None
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    max_body_bytes: int = 1024 * 1024
    rate_limit_per_minute: int = 600
    stateless: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None


@dataclass(frozen=True)
class Settings:
    """Everything the server needs, resolved and validated once; pass it down, never re-read the env."""

    api_base_url: str | None = None
    organization: str | None = None
    client_config_path: Path | None = None
    request_timeout: float = 30.0
    tls: TLSSettings = field(default_factory=TLSSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    transport: Transport = "stdio"
    host: str = "127.0.0.1"
    port: int = 8000
    path: str = "/mcp"
    log_level: str = "INFO"
    mcp_log_level: str = "info"
    log_file: Path = field(default_factory=lambda: Path("~/.local/share/flightctl-mcp/flightctl-mcp.log"))
    log_to_stderr: bool = False
    response_token_budget: int = 10000
    commands: CommandSettings = field(default_factory=CommandSettings)
    http: HTTPSettings = field(default_factory=HTTPSettings)


# --------------------------------------------------------------------------------------------------
# Parsers: raw text -> typed value, or ValueError saying what is valid
# --------------------------------------------------------------------------------------------------


def _text(raw: str) -> str:
    return raw.strip()


def _secret(raw: str) -> Secret:
    return Secret(raw.strip())


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError("valid values are true or false (also 1/0, yes/no, on/off)")


def _url(raw: str) -> str:
    value = raw.strip().rstrip("/")
    if not re.match(r"^https?://[^/\s]+", value):
        raise ValueError("valid values are absolute http:// or https:// URLs")
    return value


def _api_url(raw: str) -> str:
    """The API base URL is the part before /api/v1; a pasted /api/v1 suffix is dropped."""
    value = _url(raw)
    return value[: -len("/api/v1")] if value.endswith("/api/v1") else value


def _token_url(raw: str) -> str:
    """A bare Keycloak realm URL (…/realms/<name>) gets /protocol/openid-connect/token appended."""
    value = _url(raw)
    if re.search(r"/realms/[^/]+$", value):
        return value + REALM_TOKEN_SUFFIX
    return value


_Number = TypeVar("_Number", int, float)


def _between(
    cast: Callable[[str], _Number], low: _Number, high: _Number, what: str
) -> Callable[[str], _Number]:
    """A parser for a number within bounds; the message says which numbers are valid."""
    shown = "{:g}" if cast is float else "{}"
    rule = f"valid values are {what} from {shown.format(low)} to {shown.format(high)}"

    def parse(raw: str) -> _Number:
        try:
            value = cast(raw.strip())
        except ValueError:
            raise ValueError(rule) from None
        if not low <= value <= high:
            raise ValueError(rule)
        return value

    return parse


def _int_between(low: int, high: int) -> Callable[[str], int]:
    return _between(int, low, high, "whole numbers")


def _float_between(low: float, high: float) -> Callable[[str], float]:
    return _between(float, low, high, "numbers of seconds")


def _choice(choices: tuple[str, ...], normalize: Callable[[str], str]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = normalize(raw.strip())
        if value not in choices:
            raise ValueError("valid values are " + ", ".join(choices))
        return value

    return parse


def _path(raw: str) -> Path:
    return Path(raw.strip()).expanduser()


def _existing_file(raw: str) -> Path:
    value = _path(raw)
    if not value.is_file():
        raise ValueError("no such regular file; give the path of an existing file")
    return value


def _uuid(raw: str) -> str:
    try:
        return str(uuid.UUID(raw.strip()))
    except ValueError:
        raise ValueError(
            "valid values are organization UUIDs like 00000000-0000-0000-0000-000000000000 "
            "(`flightctl get organizations` lists yours)"
        ) from None


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _url_path(raw: str) -> str:
    value = raw.strip()
    if not value.startswith("/") or any(c.isspace() for c in value):
        raise ValueError("valid values are URL paths starting with '/', such as /mcp")
    return value


#: Last word of an allow-list entry that makes it an exact command rather than a prefix.
EXACT_COMMAND_MARK = "$"


def _allowlist(raw: str) -> tuple[tuple[str, ...], ...]:
    """'journalctl -u flightctl-agent;df -h $' -> (('journalctl', '-u', 'flightctl-agent'),
    ('df', '-h', '$')).

    A list that is set but names no command is an error, never "allow everything".
    """
    prefixes: list[tuple[str, ...]] = []
    for part in raw.split(";"):
        if not part.strip():
            continue
        try:
            words = tuple(shlex.split(part))
        except ValueError as exc:
            raise ValueError(f"each ';'-separated prefix must be shell-quoted correctly ({exc})") from None
        if words in ((), (EXACT_COMMAND_MARK,)):
            raise ValueError(f"the entry {part.strip()!r} names no command")
        prefixes.append(words)
    if not prefixes:
        raise ValueError("it names no command; leave it unset to allow any command, or list the allowed ones")
    return tuple(prefixes)


_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


# --------------------------------------------------------------------------------------------------
# The table of options
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Option(Generic[T]):
    """One setting: its environment variable, its flag, its default (as text), parser, help and group."""

    env: str
    flag: str
    default: str | None
    parse: Callable[[str], T]
    help: str
    group: str
    default_doc: str | None = None
    is_bool: bool = False
    secret: bool = False

    @property
    def shown_default(self) -> str:
        """The default as the documentation and ``--help`` show it."""
        if self.default_doc is not None:
            return self.default_doc
        return "(unset)" if self.default is None else self.default


G_API = "Flight Control API"
G_AUTH = "Authentication"
G_TLS = "TLS to Flight Control"
G_LOG = "Logging"
G_MCP = "MCP transport"
G_HTTP = "HTTP transports: callers and hardening"
G_CMD = "Device commands (opt-in)"


def _bool_option(env: str, flag: str, default: str, help_text: str, group: str) -> Option[bool]:
    return Option(env, flag, default, _bool, help_text, group, is_bool=True)


API_BASE_URL = Option(
    "API_BASE_URL", "--api-base-url", None, _api_url,
    "Flight Control API URL, the part before /api/v1 (client.yaml: service.server).", G_API,
)  # fmt: skip
ORG_ID = Option(
    "ORG_ID", "--org-id", None, _uuid,
    "Organization UUID sent as org_id (client.yaml: organization); pass-through callers pick their own.",
    G_API,
)  # fmt: skip
CLIENT_CONFIG_PATH = Option(
    "CLIENT_CONFIG_PATH", "--client-config", None, _path,
    "client.yaml written by `flightctl login`; only an explicitly named file must exist.",
    G_API, default_doc="$XDG_CONFIG_HOME/flightctl/client.yaml, else ~/.config/flightctl/client.yaml",
)  # fmt: skip
REQUEST_TIMEOUT = Option(
    "REQUEST_TIMEOUT", "--request-timeout", "30", _float_between(0.1, 600),
    "Seconds to wait for each call to Flight Control or the identity provider.", G_API,
)  # fmt: skip
MCP_RESPONSE_TOKEN_BUDGET = Option(
    "MCP_RESPONSE_TOKEN_BUDGET", "--response-token-budget", "10000", _int_between(500, 1_000_000),
    "Approximate size limit of one tool answer, in tokens; longer answers are cut with a cursor.", G_API,
)  # fmt: skip
OIDC_TOKEN_URL = Option(
    "OIDC_TOKEN_URL", "--oidc-token-url", None, _token_url,
    "Identity provider token endpoint; a bare realm URL gets /protocol/openid-connect/token appended.",
    G_AUTH,
)  # fmt: skip
OIDC_CLIENT_ID = Option(
    "OIDC_CLIENT_ID", "--oidc-client-id", "flightctl", _text,
    "OAuth2 client id used when refreshing tokens.", G_AUTH,
)  # fmt: skip
REFRESH_TOKEN = Option(
    "REFRESH_TOKEN", "--refresh-token", None, _secret,
    "OAuth2 refresh token; exchanged for access tokens (prefer the environment over the flag).", G_AUTH,
    secret=True,
)  # fmt: skip
ACCESS_TOKEN = Option(
    "ACCESS_TOKEN", "--access-token", None, _secret,
    "Static bearer token, as `flightctl login --token`; never refreshed.", G_AUTH, secret=True,
)  # fmt: skip
CA_CERT_PATH = Option(
    "CA_CERT_PATH", "--ca-cert-path", None, _existing_file,
    "PEM CA bundle for Flight Control and the identity provider; wins over every other TLS setting.", G_TLS,
)  # fmt: skip
INSECURE_SKIP_VERIFY = _bool_option(
    "INSECURE_SKIP_VERIFY",
    "--insecure-skip-verify",
    "false",
    "Do not verify server certificates (development only; client.yaml: service.insecureSkipVerify).",
    G_TLS,
)
LOG_LEVEL = Option(
    "LOG_LEVEL", "--log-level", "INFO", _choice(_LOG_LEVELS, str.upper),
    "Level of this server's own log lines.", G_LOG,
)  # fmt: skip
MCP_LOG_LEVEL = Option(
    "MCP_LOG_LEVEL", "--mcp-log-level", "info", _choice(tuple(v.lower() for v in _LOG_LEVELS), str.lower),
    "Level of fastmcp's and uvicorn's log lines.", G_LOG,
)  # fmt: skip
LOG_FILE = Option(
    "LOG_FILE", "--log-file", None, _path,
    "Rotating log file (10 MB x 5 backups, mode 0600).", G_LOG,
    default_doc="~/.local/share/flightctl-mcp/flightctl-mcp.log (or under $XDG_DATA_HOME)",
)  # fmt: skip
LOG_TO_STDERR = _bool_option(
    "LOG_TO_STDERR",
    "--log-to-stderr",
    "false",
    "Also write log lines to stderr (containers); stdout is never used.",
    G_LOG,
)
MCP_TRANSPORT = Option(
    "MCP_TRANSPORT", "--transport", "stdio", _choice(TRANSPORTS, str.lower),
    "How MCP clients connect: stdio, sse (/sse) or streamable-http (MCP_PATH).", G_MCP,
)  # fmt: skip
MCP_HOST = Option(
    "MCP_HOST", "--host", "127.0.0.1", _text,
    "Address the HTTP transports bind to.", G_MCP,
)  # fmt: skip
MCP_PORT = Option(
    "MCP_PORT", "--port", "8000", _int_between(1, 65535),
    "Port the HTTP transports listen on.", G_MCP,
)  # fmt: skip
MCP_PATH = Option(
    "MCP_PATH", "--path", "/mcp", _url_path,
    "URL path of the streamable-http endpoint.", G_MCP,
)  # fmt: skip
MCP_STATELESS = _bool_option(
    "MCP_STATELESS",
    "--stateless",
    "false",
    "Serve streamable-http without sessions (for several replicas behind a load balancer).",
    G_MCP,
)
MCP_AUTH_MODE = Option(
    "MCP_AUTH_MODE", "--auth-mode", None, _choice(AUTH_MODES, str.lower),
    "Who HTTP callers act as: passthrough (their own Flight Control token), shared-secret (the server's "
    "credentials, behind MCP_SHARED_SECRET) or server (the server's credentials, no caller check).", G_HTTP,
    default_doc="shared-secret when MCP_SHARED_SECRET is set, else server",
)  # fmt: skip
MCP_SHARED_SECRET = Option(
    "MCP_SHARED_SECRET", "--shared-secret", None, _secret,
    "Bearer token HTTP callers must send in shared-secret mode.", G_HTTP, secret=True,
)  # fmt: skip
MCP_ALLOWED_HOSTS = Option(
    "MCP_ALLOWED_HOSTS", "--allowed-hosts", None, _csv,
    "Comma-separated Host header values accepted (DNS-rebinding guard); empty: derived from MCP_HOST.",
    G_HTTP,
)  # fmt: skip
MCP_ALLOWED_ORIGINS = Option(
    "MCP_ALLOWED_ORIGINS", "--allowed-origins", None, _csv,
    "Comma-separated browser Origin values accepted besides same-origin and loopback ones; others get 403.",
    G_HTTP,
)  # fmt: skip
MCP_MAX_BODY_BYTES = Option(
    "MCP_MAX_BODY_BYTES", "--max-body-bytes", "1048576", _int_between(1024, 1024**3),
    "Largest request body accepted, in bytes.", G_HTTP,
)  # fmt: skip
MCP_RATE_LIMIT = Option(
    "MCP_RATE_LIMIT", "--rate-limit", "600", _int_between(1, 1_000_000),
    "Requests per caller per minute.", G_HTTP,
)  # fmt: skip
MCP_TLS_CERT = Option(
    "MCP_TLS_CERT", "--tls-cert", None, _existing_file,
    "PEM certificate (chain) to serve the HTTP transports over HTTPS; needs MCP_TLS_KEY.", G_HTTP,
)  # fmt: skip
MCP_TLS_KEY = Option(
    "MCP_TLS_KEY", "--tls-key", None, _existing_file,
    "PEM private key matching MCP_TLS_CERT.", G_HTTP,
)  # fmt: skip
MCP_ENABLE_COMMANDS = _bool_option(
    "MCP_ENABLE_COMMANDS",
    "--enable-commands",
    "false",
    "Offer the run_command_on_device tool.",
    G_CMD,
)
MCP_COMMAND_ALLOWLIST = Option(
    "MCP_COMMAND_ALLOWLIST", "--command-allowlist", None, _allowlist,
    "Allowed command prefixes separated by ';', each split like a shell; an entry ending in a lone $ must "
    "match exactly: \"journalctl -u flightctl-agent;df -h $\". Unset: any command.", G_CMD,
)  # fmt: skip
MCP_COMMAND_TIMEOUT = Option(
    "MCP_COMMAND_TIMEOUT", "--command-timeout", "30", _float_between(1, 3600),
    "Default seconds a device command may run.", G_CMD,
)  # fmt: skip
MCP_COMMAND_MAX_TIMEOUT = Option(
    "MCP_COMMAND_MAX_TIMEOUT", "--command-max-timeout", "300", _float_between(1, 3600),
    "Largest timeout a caller may ask for.", G_CMD,
)  # fmt: skip
MCP_COMMAND_OUTPUT_LIMIT = Option(
    "MCP_COMMAND_OUTPUT_LIMIT", "--command-output-limit", "65536", _int_between(1024, 64 * 1024 * 1024),
    "Bytes kept per output stream (stdout, stderr) of a device command.", G_CMD,
)  # fmt: skip
MCP_COMMAND_CONFIRM = _bool_option(
    "MCP_COMMAND_CONFIRM",
    "--command-confirm",
    "false",
    "Ask the user (MCP elicitation) before each device command runs.",
    G_CMD,
)

OPTIONS: tuple[Option[Any], ...] = (
    API_BASE_URL, ORG_ID, CLIENT_CONFIG_PATH, REQUEST_TIMEOUT, MCP_RESPONSE_TOKEN_BUDGET,
    OIDC_TOKEN_URL, OIDC_CLIENT_ID, REFRESH_TOKEN, ACCESS_TOKEN,
    CA_CERT_PATH, INSECURE_SKIP_VERIFY,
    LOG_LEVEL, MCP_LOG_LEVEL, LOG_FILE, LOG_TO_STDERR,
    MCP_TRANSPORT, MCP_HOST, MCP_PORT, MCP_PATH, MCP_STATELESS,
    MCP_AUTH_MODE, MCP_SHARED_SECRET, MCP_ALLOWED_HOSTS, MCP_ALLOWED_ORIGINS, MCP_MAX_BODY_BYTES,
    MCP_RATE_LIMIT, MCP_TLS_CERT, MCP_TLS_KEY,
    MCP_ENABLE_COMMANDS, MCP_COMMAND_ALLOWLIST, MCP_COMMAND_TIMEOUT, MCP_COMMAND_MAX_TIMEOUT,
    MCP_COMMAND_OUTPUT_LIMIT, MCP_COMMAND_CONFIRM,
)  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Layered raw values
# --------------------------------------------------------------------------------------------------

# Layers, lowest priority first; a value remembers the layer it came from so errors can name it.
LAYER_DEFAULT, LAYER_FILE, LAYER_ENV, LAYER_FLAG = 0, 1, 2, 3


@dataclass(frozen=True)
class _Raw:
    text: str
    layer: int
    where: str  # "environment variable X", "flag --x", "client.yaml key a.b"


class _Values:
    """Raw values of every option from every layer; ``get`` parses the winner and names it on error."""

    def __init__(self, flags: Mapping[str, str], environ: Mapping[str, str]) -> None:
        self._raw: dict[str, _Raw] = {}
        by_env = {opt.env: opt for opt in OPTIONS}
        for name, text in flags.items():
            if name not in by_env:
                raise ConfigurationError(f"Unknown setting {name!r}; valid ones are listed by --help.")
            if text.strip():
                self._raw[name] = _Raw(text, LAYER_FLAG, f"flag {by_env[name].flag}")
        for opt in OPTIONS:
            text = environ.get(opt.env, "")
            if opt.env not in self._raw and text.strip():
                self._raw[opt.env] = _Raw(text, LAYER_ENV, f"environment variable {opt.env}")

    def add_file_value(self, opt: Option[Any], text: str | None, key: str, path: Path) -> None:
        """client.yaml supplies a value only where neither the environment nor a flag did."""
        if text is not None and str(text).strip() and opt.env not in self._raw:
            self._raw[opt.env] = _Raw(str(text), LAYER_FILE, f"key {key} of {path}")

    def layer(self, opt: Option[Any]) -> int:
        raw = self._raw.get(opt.env)
        return raw.layer if raw else LAYER_DEFAULT

    def is_set(self, opt: Option[Any]) -> bool:
        return opt.env in self._raw

    def get(self, opt: Option[T]) -> T:
        raw = self._raw.get(opt.env)
        if raw is None:
            if opt.default is None:
                raise LookupError(opt.env)  # callers use get_or_none for options without default
            return opt.parse(opt.default)
        try:
            return opt.parse(raw.text)
        except ValueError as exc:
            shown = "(hidden)" if opt.secret else repr(raw.text)
            raise ConfigurationError(f"Invalid {opt.env} from {raw.where}: {shown}; {exc}.") from None

    def get_or_none(self, opt: Option[T]) -> T | None:
        if opt.env not in self._raw and opt.default is None:
            return None
        return self.get(opt)


# --------------------------------------------------------------------------------------------------
# client.yaml (both formats)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ClientFile:
    """What client.yaml says beyond plain option values: CA, SNI, token set and provider."""

    path: Path
    ca_file: Path | None = None
    ca_data: str | None = None
    ca_key: str = ""
    server_name: str | None = None
    access_token: str | None = None
    id_token: str | None = None
    refresh_token: str | None = None
    token_to_use: TokenToUse = "access"
    access_token_expiry: datetime | None = None
    provider_name: str | None = None
    auth_ca_file: Path | None = None
    auth_insecure: bool | None = None
    legacy: bool = False


def default_client_config_path(environ: Mapping[str, str]) -> Path:
    """Where `flightctl login` writes client.yaml: os.UserConfigDir()/flightctl/client.yaml."""
    base = environ.get("XDG_CONFIG_HOME") or str(_home(environ) / ".config")
    return Path(base) / "flightctl" / "client.yaml"


def default_log_file(environ: Mapping[str, str]) -> Path:
    """~/.local/share/flightctl-mcp/flightctl-mcp.log, honouring XDG_DATA_HOME."""
    base = environ.get("XDG_DATA_HOME") or str(_home(environ) / ".local" / "share")
    return Path(base) / "flightctl-mcp" / "flightctl-mcp.log"


def _home(environ: Mapping[str, str]) -> Path:
    home = environ.get("HOME")
    return Path(home) if home else Path.home()


def _mapping(value: object, key: str, path: Path) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f"{path}: key {key} must be a mapping, found {type(value).__name__}. "
            "Run `flightctl login` again to rewrite the file, or point CLIENT_CONFIG_PATH elsewhere."
        )
    return value


def _str_or_none(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def _yaml_bool(value: object, key: str, path: Path) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    try:
        return _bool(str(value))
    except ValueError:
        raise ConfigurationError(f"{path}: key {key} is {value!r}; valid values are true or false.") from None


def _read_client_yaml(path: Path) -> Mapping[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(
            f"Cannot read client configuration {path} ({exc.strerror}). "
            "Fix its permissions, run `flightctl login`, or set CLIENT_CONFIG_PATH to another file."
        ) from exc
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigurationError(
            f"Cannot parse client configuration {path}: {exc}. "
            "Run `flightctl login` again to rewrite it, or set CLIENT_CONFIG_PATH to another file."
        ) from exc
    return _mapping(document, "(top level)", path)


def _decode_ca_data(value: str, key: str, path: Path) -> str:
    try:
        pem = base64.b64decode(value, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ConfigurationError(
            f"{path}: key {key} is not base64-encoded PEM; valid values are base64 of a PEM CA certificate."
        ) from None
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise ConfigurationError(f"{path}: key {key} does not hold a PEM certificate once base64-decoded.")
    return pem


def _parse_expiry(value: object, key: str, path: Path) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise ConfigurationError(
            f"{path}: key {key} is {value!r}; valid values are RFC 3339 times like 2026-08-21T11:32:18Z."
        ) from None


def _relative_file(value: str | None, path: Path) -> Path | None:
    if value is None:
        return None
    file = Path(value).expanduser()
    return file if file.is_absolute() else path.parent / file


def _load_client_file(path: Path, values: _Values) -> _ClientFile:
    """Read client.yaml in either format; feed plain options into ``values``, return the rest."""
    doc = _read_client_yaml(path)
    service = _mapping(doc.get("service"), "service", path)
    authentication = _mapping(doc.get("authentication"), "authentication", path)
    provider_cfg = _mapping(authentication.get("auth-provider"), "authentication.auth-provider", path)

    values.add_file_value(API_BASE_URL, _str_or_none(service.get("server")), "service.server", path)
    values.add_file_value(ORG_ID, _str_or_none(doc.get("organization")), "organization", path)
    insecure = _yaml_bool(service.get("insecureSkipVerify"), "service.insecureSkipVerify", path)
    if insecure is not None:
        values.add_file_value(INSECURE_SKIP_VERIFY, str(insecure), "service.insecureSkipVerify", path)

    ca_file = _str_or_none(service.get("certificate-authority"))
    ca_data = _str_or_none(service.get("certificate-authority-data"))
    if ca_file and ca_data:
        raise ConfigurationError(
            f"{path}: service.certificate-authority and service.certificate-authority-data are both set; "
            "keep one of them."
        )
    common: dict[str, Any] = {
        "path": path,
        "ca_file": _relative_file(ca_file, path),
        "ca_data": _decode_ca_data(ca_data, "service.certificate-authority-data", path) if ca_data else None,
        "ca_key": "service.certificate-authority" if ca_file else "service.certificate-authority-data",
        "server_name": _str_or_none(service.get("tls-server-name")),
    }
    if "config" in provider_cfg or "token" in authentication:
        return _legacy_client_file(common, authentication, provider_cfg, values)
    return _current_client_file(common, authentication, provider_cfg, values)


def _legacy_client_file(
    common: dict[str, Any],
    authentication: Mapping[str, Any],
    provider_cfg: Mapping[str, Any],
    values: _Values,
) -> _ClientFile:
    """flightctl ≤ 0.10: auth-provider.config {server, client-id, refresh-token}, authentication.token."""
    path: Path = common["path"]
    config = _mapping(provider_cfg.get("config"), "authentication.auth-provider.config", path)
    prefix = "authentication.auth-provider.config."
    values.add_file_value(OIDC_TOKEN_URL, _str_or_none(config.get("server")), prefix + "server", path)
    values.add_file_value(OIDC_CLIENT_ID, _str_or_none(config.get("client-id")), prefix + "client-id", path)
    return _ClientFile(
        **common,
        access_token=_str_or_none(authentication.get("token")),
        refresh_token=_str_or_none(config.get("refresh-token")),
        access_token_expiry=_parse_expiry(
            config.get("access-token-expiry"), prefix + "access-token-expiry", path
        ),
        auth_ca_file=_relative_file(_str_or_none(config.get("certificate-authority")), path),
        legacy=True,
    )


def _current_client_file(
    common: dict[str, Any],
    authentication: Mapping[str, Any],
    provider_cfg: Mapping[str, Any],
    values: _Values,
) -> _ClientFile:
    """flightctl 1.x: tokens in authentication, the AuthProvider object under auth-provider.auth-provider."""
    path: Path = common["path"]
    key = "authentication.auth-provider.auth-provider"
    provider = _mapping(provider_cfg.get("auth-provider"), key, path)
    metadata = _mapping(provider.get("metadata"), key + ".metadata", path)
    spec = _mapping(provider.get("spec"), key + ".spec", path)
    values.add_file_value(OIDC_CLIENT_ID, _str_or_none(spec.get("clientId")), key + ".spec.clientId", path)
    token_to_use = _str_or_none(authentication.get("token-to-use")) or "access"
    if token_to_use not in ("access", "id"):
        raise ConfigurationError(
            f"{path}: key authentication.token-to-use is {token_to_use!r}; valid values are access, id."
        )
    return _ClientFile(
        **common,
        access_token=_str_or_none(authentication.get("access-token")),
        id_token=_str_or_none(authentication.get("id-token")),
        refresh_token=_str_or_none(authentication.get("refresh-token")),
        token_to_use="id" if token_to_use == "id" else "access",
        access_token_expiry=_parse_expiry(
            authentication.get("access-token-expiry"), "authentication.access-token-expiry", path
        ),
        provider_name=_str_or_none(metadata.get("name")),
        auth_ca_file=_relative_file(_str_or_none(provider_cfg.get("ca-file")), path),
        auth_insecure=_yaml_bool(
            provider_cfg.get("insecureSkipVerify"), "authentication.auth-provider.insecureSkipVerify", path
        ),
    )


# --------------------------------------------------------------------------------------------------
# Resolution
# --------------------------------------------------------------------------------------------------


def load_settings(flags: Mapping[str, str], environ: Mapping[str, str]) -> Settings:
    """Build the one Settings object. ``flags`` is keyed by environment-variable name."""
    values = _Values(flags, environ)
    client_file = _client_file(values, environ)
    tls = _api_tls(values, client_file)
    api_base_url = values.get_or_none(API_BASE_URL)
    return Settings(
        api_base_url=api_base_url,
        organization=values.get_or_none(ORG_ID),
        client_config_path=client_file.path if client_file else None,
        request_timeout=values.get(REQUEST_TIMEOUT),
        tls=tls,
        auth=_auth_settings(values, client_file, tls, api_base_url),
        transport=_transport(values.get(MCP_TRANSPORT)),
        host=values.get(MCP_HOST),
        port=values.get(MCP_PORT),
        path=values.get(MCP_PATH),
        log_level=values.get(LOG_LEVEL),
        mcp_log_level=values.get(MCP_LOG_LEVEL),
        log_file=values.get_or_none(LOG_FILE) or default_log_file(environ),
        log_to_stderr=values.get(LOG_TO_STDERR),
        response_token_budget=values.get(MCP_RESPONSE_TOKEN_BUDGET),
        commands=_command_settings(values),
        http=_http_settings(values),
    )


def _transport(value: str) -> Transport:
    for transport in TRANSPORTS:
        if transport == value:
            return transport
    raise AssertionError(value)  # the parser only lets TRANSPORTS through


def _client_file(values: _Values, environ: Mapping[str, str]) -> _ClientFile | None:
    explicit = values.get_or_none(CLIENT_CONFIG_PATH)
    path = explicit or default_client_config_path(environ)
    if not path.exists():
        if explicit is not None:
            raise ConfigurationError(
                f"CLIENT_CONFIG_PATH is {str(path)!r} but no file is there. "
                "Run `flightctl login` to create it, fix the path, or unset CLIENT_CONFIG_PATH."
            )
        return None
    return _load_client_file(path, values)


def _api_tls(values: _Values, client_file: _ClientFile | None) -> TLSSettings:
    """CA_CERT_PATH, then INSECURE_SKIP_VERIFY, then the client.yaml CA, then the system bundle."""
    server_name = client_file.server_name if client_file else None
    ca_path = values.get_or_none(CA_CERT_PATH)
    if ca_path is not None:
        return TLSSettings(ca_file=ca_path, server_name=server_name, source=f"CA_CERT_PATH ({ca_path})")
    if values.get(INSECURE_SKIP_VERIFY):
        return TLSSettings(verify=False, server_name=server_name, source="INSECURE_SKIP_VERIFY")
    if client_file and client_file.ca_file:
        if not client_file.ca_file.is_file():
            raise ConfigurationError(
                f"{client_file.path}: service.certificate-authority names {str(client_file.ca_file)!r}, "
                "which does not exist. Fix the path, set CA_CERT_PATH, or run `flightctl login` again."
            )
        return TLSSettings(
            ca_file=client_file.ca_file,
            server_name=server_name,
            source=f"{client_file.ca_key} of client.yaml",
        )
    if client_file and client_file.ca_data:
        return TLSSettings(
            ca_data=client_file.ca_data,
            server_name=server_name,
            source=f"{client_file.ca_key} of client.yaml",
        )
    return TLSSettings(server_name=server_name)


def _auth_tls(values: _Values, client_file: _ClientFile | None, api_tls: TLSSettings) -> TLSSettings:
    """TLS towards the identity provider: env/flag TLS, else the provider's own CA, else the API's."""
    explicit = values.layer(CA_CERT_PATH) >= LAYER_ENV or values.layer(INSECURE_SKIP_VERIFY) >= LAYER_ENV
    if explicit or client_file is None:
        return api_tls
    if client_file.auth_insecure:
        return TLSSettings(
            verify=False, source="authentication.auth-provider.insecureSkipVerify of client.yaml"
        )
    if client_file.auth_ca_file is not None:
        if not client_file.auth_ca_file.is_file():
            raise ConfigurationError(
                f"{client_file.path}: the identity provider CA file {str(client_file.auth_ca_file)!r} "
                "does not exist. Fix the path, set CA_CERT_PATH, or run `flightctl login` again."
            )
        return TLSSettings(ca_file=client_file.auth_ca_file, source="identity provider CA of client.yaml")
    return api_tls


def _auth_settings(
    values: _Values, client_file: _ClientFile | None, api_tls: TLSSettings, api_base_url: str | None
) -> AuthSettings:
    """Pick the credential layer (the highest one giving any token), then the refresh endpoint."""
    if client_file is not None:
        values.add_file_value(REFRESH_TOKEN, client_file.refresh_token, "refresh-token", client_file.path)
        values.add_file_value(ACCESS_TOKEN, client_file.access_token, "access-token", client_file.path)
    layer = max(values.layer(REFRESH_TOKEN), values.layer(ACCESS_TOKEN))
    refresh = values.get_or_none(REFRESH_TOKEN) if values.layer(REFRESH_TOKEN) == layer else None
    access = values.get_or_none(ACCESS_TOKEN) if values.layer(ACCESS_TOKEN) == layer else None
    from_file = layer == LAYER_FILE and client_file is not None
    base = AuthSettings(
        client_id=values.get(OIDC_CLIENT_ID),
        refresh_token=refresh,
        access_token=access,
        id_token=Secret(client_file.id_token) if from_file and client_file and client_file.id_token else None,
        token_to_use=client_file.token_to_use if from_file and client_file else "access",
        access_token_expiry=client_file.access_token_expiry if from_file and client_file else None,
        tls=api_tls,
    )
    token_url = values.get_or_none(OIDC_TOKEN_URL)
    if refresh is None:
        return replace(base, method="static" if access or base.id_token else "none")
    provider = client_file.provider_name if client_file else None
    if token_url is not None and (values.layer(OIDC_TOKEN_URL) >= LAYER_ENV or provider is None):
        return replace(base, method="oidc", token_url=token_url, tls=_auth_tls(values, client_file, api_tls))
    if provider is not None:
        if api_base_url is None:
            raise ConfigurationError(
                "client.yaml names the auth provider "
                f"{provider!r} but no API URL; set API_BASE_URL or service.server."
            )
        url = f"{api_base_url}/api/v1/auth/{provider}/token"
        return replace(base, method="proxy", token_url=url, provider_name=provider)
    raise ConfigurationError(
        "A refresh token is configured but nowhere to exchange it: set OIDC_TOKEN_URL to the identity "
        "provider's token endpoint, or run `flightctl login` so client.yaml names the auth provider."
    )


def _command_settings(values: _Values) -> CommandSettings:
    default_timeout = values.get(MCP_COMMAND_TIMEOUT)
    max_timeout = values.get(MCP_COMMAND_MAX_TIMEOUT)
    if default_timeout > max_timeout:
        raise ConfigurationError(
            f"MCP_COMMAND_TIMEOUT ({default_timeout:g}) is larger than MCP_COMMAND_MAX_TIMEOUT "
            f"({max_timeout:g}); lower the first or raise the second."
        )
    return CommandSettings(
        enabled=values.get(MCP_ENABLE_COMMANDS),
        allowed_prefixes=values.get_or_none(MCP_COMMAND_ALLOWLIST) or (),
        default_timeout=default_timeout,
        max_timeout=max_timeout,
        output_limit_bytes=values.get(MCP_COMMAND_OUTPUT_LIMIT),
        confirm=values.get(MCP_COMMAND_CONFIRM),
    )


def _http_settings(values: _Values) -> HTTPSettings:
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
    return HTTPSettings(
        auth_mode=_auth_mode(mode),
        shared_secret=secret,
        allowed_hosts=values.get_or_none(MCP_ALLOWED_HOSTS) or (),
        allowed_origins=values.get_or_none(MCP_ALLOWED_ORIGINS) or (),
        max_body_bytes=values.get(MCP_MAX_BODY_BYTES),
        rate_limit_per_minute=values.get(MCP_RATE_LIMIT),
        stateless=values.get(MCP_STATELESS),
        tls_cert=cert,
        tls_key=key,
    )


def _auth_mode(value: str) -> AuthMode:
    for mode in AUTH_MODES:
        if mode == value:
            return mode
    raise AssertionError(value)  # the parser only lets AUTH_MODES through


# --------------------------------------------------------------------------------------------------
# Start-up rules and documentation
# --------------------------------------------------------------------------------------------------


def is_loopback_host(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1: addresses no other machine can reach."""
    if host.strip().lower() in {"localhost", "localhost."}:
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def check_http_exposure(settings: Settings) -> None:
    """Refuse to serve the server's own credentials, unauthenticated, to the network."""
    if settings.transport not in HTTP_TRANSPORTS or is_loopback_host(settings.host):
        return
    if settings.http.auth_mode != "server" or settings.http.shared_secret:
        return
    raise ConfigurationError(
        f"MCP_TRANSPORT={settings.transport} on MCP_HOST={settings.host} would let anyone who can reach "
        "this port use the server's own Flight Control credentials. Choose one: bind to 127.0.0.1 "
        "(MCP_HOST=127.0.0.1); or MCP_AUTH_MODE=passthrough, so each caller sends its own Flight Control "
        "token; or set MCP_SHARED_SECRET, so callers must send it as their bearer token."
    )


def render_configuration_doc() -> str:
    """docs/configuration.md, generated from OPTIONS so the reference cannot drift from the code."""
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated from config.OPTIONS by `python main.py config-doc`; do not edit by hand. -->",
        "",
        "Every setting can come from four places. Lowest priority first: the built-in default,",
        "`client.yaml` (written by `flightctl login`; both its current and its legacy format are read),",
        "the environment, and the command-line flag. An invalid value stops the server at start-up",
        "with a message naming the setting, the value and what is valid.",
        "",
        "TLS towards Flight Control is decided in this order: `CA_CERT_PATH`, then",
        "`INSECURE_SKIP_VERIFY`, then the CA in client.yaml (`certificate-authority` or",
        "`certificate-authority-data`), then the system CA bundle. client.yaml's `tls-server-name` is",
        "honoured.",
        "",
        "Credentials: a refresh token with `OIDC_TOKEN_URL` is exchanged at the identity provider; a",
        "refresh token from a current client.yaml is exchanged through Flight Control's",
        "`/api/v1/auth/<provider>/token` proxy (unless `OIDC_TOKEN_URL` is set); an access token alone is",
        "used as it is. Rotated refresh tokens are kept in memory; client.yaml is never rewritten.",
    ]
    groups: dict[str, list[Option[Any]]] = {}
    for opt in OPTIONS:
        groups.setdefault(opt.group, []).append(opt)
    for group, options in groups.items():
        lines += ["", f"## {group}", "", "| Variable | Flag | Default | Meaning |", "|---|---|---|---|"]
        for opt in options:
            flag = f"`{opt.flag}` / `--no-{opt.flag[2:]}`" if opt.is_bool else f"`{opt.flag}`"
            lines.append(f"| `{opt.env}` | {flag} | {_md(opt.shown_default)} | {_md(opt.help)} |")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|")
