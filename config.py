"""Settings of flightctl-mcp, built once at start-up from defaults < client.yaml < environment < flags.

``OPTIONS`` is the single table of every setting (environment variable, flag, default, parser, help,
group): the command line, ``docs/configuration.md`` (config_doc.py) and ``load_settings`` all read it,
so a setting is declared exactly once. A bad value raises ``ConfigurationError`` naming where it came
from, the value and what would be valid; nothing falls back silently. Nothing here reads ``os.environ``
at import time. The settings objects live in settings.py, parsers and layered values in config_values.py,
client.yaml reading in client_yaml.py, TLS in tls.py, start-up exposure rules in exposure.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from allowlist import parse_allowlist
from client_yaml import (
    ClientFile,
    client_config_file_name,
    default_client_config_dir,
    default_client_config_path,
    load_client_file,
    missing_context_message,
)
from config_values import (
    LAYER_ENV,
    LAYER_FILE,
    LOG_LEVELS,
    Option,
    Secret,
    Values,
    choice_of,
    default_audit_log_file,
    default_log_file,
    default_state_dir,
    float_between,
    int_between,
    parse_api_url,
    parse_bool,
    parse_context,
    parse_existing_file,
    parse_org_uuid,
    parse_path,
    parse_secret,
    parse_text,
    parse_token_url,
    parse_url_path,
)
from errors import ConfigurationError
from exposure import check_http_exposure, command_exposure_warning, is_loopback_host
from http_options import HTTP_OPTIONS, http_settings
from settings import (
    HTTP_TRANSPORTS,
    TRANSPORTS,
    AuthSettings,
    CommandSettings,
    HTTPSettings,
    Settings,
)
from tls import TLSSettings, api_tls, auth_tls
from toolset_names import DEFAULT_TOOLSETS, TOOLSETS, parse_toolsets

__all__ = [
    "HTTP_TRANSPORTS",
    "OPTIONS",
    "AuthSettings",
    "CommandSettings",
    "HTTPSettings",
    "Option",
    "Secret",
    "Settings",
    "TLSSettings",
    "check_http_exposure",
    "command_exposure_warning",
    "default_audit_log_file",
    "default_client_config_path",
    "default_log_file",
    "is_loopback_host",
    "load_settings",
]

# --------------------------------------------------------------------------------------------------
# The table of options
# --------------------------------------------------------------------------------------------------


G_API = "Flight Control API"
G_AUTH = "Authentication"
G_TLS = "TLS to Flight Control"
G_LOG = "Logging"
G_MCP = "MCP transport"
G_CMD = "Device commands (opt-in)"


def _bool_option(env: str, flag: str, default: str, help_text: str, group: str) -> Option[bool]:
    return Option(env, flag, default, parse_bool, help_text, group, is_bool=True)


API_BASE_URL = Option(
    "API_BASE_URL", "--api-base-url", None, parse_api_url,
    "Flight Control API URL, the part before /api/v1 (client.yaml: service.server).", G_API,
)  # fmt: skip
ORG_ID = Option(
    "ORG_ID", "--org-id", None, parse_org_uuid,
    "Organization UUID sent as org_id (client.yaml: organization); pass-through callers pick their own.",
    G_API,
)  # fmt: skip
CLIENT_CONFIG_PATH = Option(
    "CLIENT_CONFIG_PATH", "--client-config", None, parse_path,
    "client.yaml written by `flightctl login`; only an explicitly named file must exist.",
    G_API, default_doc="client.yaml of FLIGHTCTL_CONTEXT in FLIGHTCTL_CONFIG_DIR",
)  # fmt: skip
FLIGHTCTL_CONTEXT = Option(
    "FLIGHTCTL_CONTEXT", "--context", None, parse_context,
    "Read client_<NAME>.yaml instead of client.yaml, as `flightctl --context NAME` does.",
    G_API, default_doc="default (client.yaml)",
)  # fmt: skip
FLIGHTCTL_CONFIG_DIR = Option(
    "FLIGHTCTL_CONFIG_DIR", "--config-dir", None, parse_path,
    "Directory holding flightctl's client.yaml and client_<context>.yaml files.",
    G_API, default_doc="$XDG_CONFIG_HOME/flightctl, else ~/.config/flightctl",
)  # fmt: skip
REQUEST_TIMEOUT = Option(
    "REQUEST_TIMEOUT", "--request-timeout", "30", float_between(0.1, 600),
    "Seconds to wait for each call to Flight Control or the identity provider.", G_API,
)  # fmt: skip
MCP_RESPONSE_TOKEN_BUDGET = Option(
    "MCP_RESPONSE_TOKEN_BUDGET", "--response-token-budget", "10000", int_between(500, 1_000_000),
    "Approximate size limit of one tool answer, in tokens; longer answers are cut with a cursor.", G_API,
)  # fmt: skip
OIDC_TOKEN_URL = Option(
    "OIDC_TOKEN_URL", "--oidc-token-url", None, parse_token_url,
    "Identity provider token endpoint; a bare realm URL gets /protocol/openid-connect/token appended.",
    G_AUTH,
)  # fmt: skip
OIDC_CLIENT_ID = Option(
    "OIDC_CLIENT_ID", "--oidc-client-id", "flightctl", parse_text,
    "OAuth2 client id used when refreshing tokens.", G_AUTH,
)  # fmt: skip
REFRESH_TOKEN = Option(
    "REFRESH_TOKEN", "--refresh-token", None, parse_secret,
    "OAuth2 refresh token; exchanged for access tokens (prefer the environment over the flag).", G_AUTH,
    secret=True,
)  # fmt: skip
ACCESS_TOKEN = Option(
    "ACCESS_TOKEN", "--access-token", None, parse_secret,
    "Static bearer token, as `flightctl login --token`; never refreshed.", G_AUTH, secret=True,
)  # fmt: skip
CA_CERT_PATH = Option(
    "CA_CERT_PATH", "--ca-cert-path", None, parse_existing_file,
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
    "LOG_LEVEL", "--log-level", "INFO", choice_of(LOG_LEVELS, str.upper),
    "Level of this server's own log lines.", G_LOG,
)  # fmt: skip
MCP_LOG_LEVEL = Option(
    "MCP_LOG_LEVEL", "--mcp-log-level", "info", choice_of(tuple(v.lower() for v in LOG_LEVELS), str.lower),
    "Level of fastmcp's and uvicorn's log lines (never below info: their debug lines carry payloads).",
    G_LOG,
)  # fmt: skip
LOG_FILE = Option(
    "LOG_FILE", "--log-file", None, parse_path,
    "Rotating log file (10 MB x 5 backups, mode 0600).", G_LOG,
    default_doc="~/.local/share/flightctl-mcp/flightctl-mcp.log (or under $XDG_DATA_HOME)",
)  # fmt: skip
LOG_TO_STDERR = _bool_option(
    "LOG_TO_STDERR",
    "--log-to-stderr",
    "false",
    "Also write log lines (and the command audit) to stderr (containers); stdout is never used.",
    G_LOG,
)
AUDIT_LOG_FILE = Option(
    "AUDIT_LOG_FILE", "--audit-log-file", None, parse_path,
    "Rotating file of the device-command audit (10 MB x 20 backups, mode 0600), apart from the log and "
    "written at any LOG_LEVEL.", G_LOG,
    default_doc="flightctl-mcp-audit.log next to LOG_FILE",
)  # fmt: skip
MCP_TRANSPORT = Option(
    "MCP_TRANSPORT", "--transport", "stdio", choice_of(TRANSPORTS, str.lower),
    "How MCP clients connect: stdio, sse (/sse) or streamable-http (MCP_PATH).", G_MCP,
)  # fmt: skip
MCP_HOST = Option(
    "MCP_HOST", "--host", "127.0.0.1", parse_text,
    "Address the HTTP transports bind to.", G_MCP,
)  # fmt: skip
MCP_PORT = Option(
    "MCP_PORT", "--port", "8000", int_between(1, 65535),
    "Port the HTTP transports listen on.", G_MCP,
)  # fmt: skip
MCP_LISTEN_FD = Option(
    "MCP_LISTEN_FD", "--listen-fd", None, int_between(3, 65535),
    "Serve on this inherited, already listening socket (a file descriptor number) instead of binding "
    "MCP_HOST:MCP_PORT, for socket activation and supervisors that bind for the server.", G_MCP,
)  # fmt: skip
MCP_PATH = Option(
    "MCP_PATH", "--path", "/mcp", parse_url_path,
    "URL path of the streamable-http endpoint.", G_MCP,
)  # fmt: skip
MCP_STATELESS = _bool_option(
    "MCP_STATELESS",
    "--stateless",
    "false",
    "Serve streamable-http without sessions (for several replicas behind a load balancer).",
    G_MCP,
)
MCP_WORKERS = Option(
    "MCP_WORKERS", "--workers", "1", int_between(1, 64),
    "Server processes answering on one port (streamable-http only; more than one runs stateless). Up to "
    "the cores this machine gives the server; beyond one machine, add replicas.", G_MCP,
)  # fmt: skip
MCP_TOOLSETS = Option(
    "MCP_TOOLSETS", "--toolsets", ",".join(DEFAULT_TOOLSETS), parse_toolsets,
    "Tool groups to offer, comma-separated: " + ", ".join(TOOLSETS) + " (or all).", G_MCP,
)  # fmt: skip
MCP_READ_ONLY = _bool_option(
    "MCP_READ_ONLY",
    "--read-only",
    "false",
    "Offer only tools annotated read-only (never run_command_on_device).",
    G_MCP,
)
MCP_ENABLE_COMMANDS = _bool_option(
    "MCP_ENABLE_COMMANDS",
    "--enable-commands",
    "false",
    "Offer the run_command_on_device tool.",
    G_CMD,
)
MCP_COMMAND_ALLOWLIST = Option(
    "MCP_COMMAND_ALLOWLIST", "--command-allowlist", None, parse_allowlist,
    "Allowed commands separated by ';', each split like a shell and matched exactly; a lone * as the last "
    "word allows any further arguments: \"df -h;journalctl -u flightctl-agent *\". Enabling commands needs "
    "this or MCP_COMMAND_CONFIRM.", G_CMD,
)  # fmt: skip
MCP_COMMAND_TIMEOUT = Option(
    "MCP_COMMAND_TIMEOUT", "--command-timeout", "30", float_between(1, 3600),
    "Default seconds a device command may run.", G_CMD,
)  # fmt: skip
MCP_COMMAND_MAX_TIMEOUT = Option(
    "MCP_COMMAND_MAX_TIMEOUT", "--command-max-timeout", "300", float_between(1, 3600),
    "Largest timeout a caller may ask for.", G_CMD,
)  # fmt: skip
MCP_COMMAND_OUTPUT_LIMIT = Option(
    "MCP_COMMAND_OUTPUT_LIMIT", "--command-output-limit", "65536", int_between(1024, 64 * 1024 * 1024),
    "Bytes kept per output stream (stdout, stderr) of a device command.", G_CMD,
)  # fmt: skip
MCP_COMMAND_CONFIRM = _bool_option(
    "MCP_COMMAND_CONFIRM",
    "--command-confirm",
    "false",
    "Ask the user (MCP elicitation) before each device command runs.",
    G_CMD,
)
MCP_COMMAND_CONFIRM_TIMEOUT = Option(
    "MCP_COMMAND_CONFIRM_TIMEOUT", "--command-confirm-timeout", "30", float_between(1, 600),
    "Seconds the user has to answer a confirmation; no answer in time counts as refused.", G_CMD,
)  # fmt: skip

OPTIONS: tuple[Option[Any], ...] = (
    API_BASE_URL, ORG_ID, CLIENT_CONFIG_PATH, FLIGHTCTL_CONTEXT, FLIGHTCTL_CONFIG_DIR, REQUEST_TIMEOUT,
    MCP_RESPONSE_TOKEN_BUDGET,
    OIDC_TOKEN_URL, OIDC_CLIENT_ID, REFRESH_TOKEN, ACCESS_TOKEN,
    CA_CERT_PATH, INSECURE_SKIP_VERIFY,
    LOG_LEVEL, MCP_LOG_LEVEL, LOG_FILE, LOG_TO_STDERR, AUDIT_LOG_FILE,
    MCP_TRANSPORT, MCP_HOST, MCP_PORT, MCP_LISTEN_FD, MCP_PATH, MCP_STATELESS, MCP_WORKERS,
    *HTTP_OPTIONS, MCP_TOOLSETS, MCP_READ_ONLY,
    MCP_ENABLE_COMMANDS, MCP_COMMAND_ALLOWLIST, MCP_COMMAND_TIMEOUT, MCP_COMMAND_MAX_TIMEOUT,
    MCP_COMMAND_OUTPUT_LIMIT, MCP_COMMAND_CONFIRM, MCP_COMMAND_CONFIRM_TIMEOUT,
)  # fmt: skip

# --------------------------------------------------------------------------------------------------
# Resolution
# --------------------------------------------------------------------------------------------------


def load_settings(flags: Mapping[str, str], environ: Mapping[str, str]) -> Settings:
    """Build the one Settings object. ``flags`` is keyed by environment-variable name."""
    values = Values(OPTIONS, flags, environ)
    client_file = _client_file(values, environ)
    log_file = values.get_or_none(LOG_FILE) or default_log_file(environ)
    ca_cert_path = values.get_or_none(CA_CERT_PATH)
    tls = api_tls(ca_cert_path, ca_cert_path is None and values.get(INSECURE_SKIP_VERIFY), client_file)
    api_base_url = values.get_or_none(API_BASE_URL)
    return Settings(
        api_base_url=api_base_url,
        api_base_url_source=values.where(API_BASE_URL) or "API_BASE_URL",
        organization=values.get_or_none(ORG_ID),
        client_config_path=client_file.path if client_file else None,
        client_context=values.get_or_none(FLIGHTCTL_CONTEXT) or "default",
        request_timeout=values.get(REQUEST_TIMEOUT),
        tls=tls,
        auth=_auth_settings(values, client_file, tls, api_base_url, default_state_dir(environ)),
        transport=values.get(MCP_TRANSPORT),
        host=values.get(MCP_HOST),
        port=values.get(MCP_PORT),
        listen_fd=values.get_or_none(MCP_LISTEN_FD),
        path=values.get(MCP_PATH),
        log_level=values.get(LOG_LEVEL),
        mcp_log_level=values.get(MCP_LOG_LEVEL),
        log_file=log_file,
        audit_log_file=values.get_or_none(AUDIT_LOG_FILE) or default_audit_log_file(log_file),
        log_to_stderr=values.get(LOG_TO_STDERR),
        response_token_budget=values.get(MCP_RESPONSE_TOKEN_BUDGET),
        toolsets=values.get(MCP_TOOLSETS),
        read_only=values.get(MCP_READ_ONLY),
        commands=_command_settings(values),
        http=http_settings(
            values,
            transport=values.get(MCP_TRANSPORT),
            stateless=values.get(MCP_STATELESS),
            workers=values.get(MCP_WORKERS),
        ),
    )


def _client_file(values: Values, environ: Mapping[str, str]) -> ClientFile | None:
    """CLIENT_CONFIG_PATH, else the context's file in the config directory, as `flightctl` finds it."""
    explicit = values.get_or_none(CLIENT_CONFIG_PATH)
    context = values.get_or_none(FLIGHTCTL_CONTEXT)
    directory = values.get_or_none(FLIGHTCTL_CONFIG_DIR)
    if explicit is not None and (context is not None or directory is not None):
        raise ConfigurationError(
            "CLIENT_CONFIG_PATH names a file, and FLIGHTCTL_CONTEXT or FLIGHTCTL_CONFIG_DIR picks another "
            "way; set only one of them."
        )
    if explicit is not None:
        if not explicit.exists():
            raise ConfigurationError(
                f"CLIENT_CONFIG_PATH is {str(explicit)!r} but no file is there. "
                "Run `flightctl login` to create it, fix the path, or unset CLIENT_CONFIG_PATH."
            )
        path = explicit
    else:
        folder = directory or default_client_config_dir(environ)
        path = folder / client_config_file_name(context)
        if not path.exists():
            if context is None and directory is None:
                return None  # nobody asked for a file: settings may come from the environment alone
            raise ConfigurationError(missing_context_message(path, context))
    client_file = load_client_file(path)
    for value in client_file.values:
        values.add_file_value(value.env, value.text, value.key, path)
    return client_file


def _auth_settings(
    values: Values,
    client_file: ClientFile | None,
    api: TLSSettings,
    api_base_url: str | None,
    state_dir: Path,
) -> AuthSettings:
    """Pick the credential layer (the highest one giving any token), then the refresh endpoint."""
    if client_file is not None:
        path = client_file.path
        values.add_file_value(REFRESH_TOKEN.env, client_file.refresh_token, "refresh-token", path)
        values.add_file_value(ACCESS_TOKEN.env, client_file.access_token, "access-token", path)
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
        tls=api,
        token_file=client_file.path if from_file and client_file else None,
        token_file_legacy=bool(from_file and client_file and client_file.legacy),
        state_dir=None if from_file else state_dir,
    )
    token_url = values.get_or_none(OIDC_TOKEN_URL)
    if refresh is None:
        return replace(base, method="static" if access or base.id_token else "none")
    provider = client_file.provider_name if client_file else None
    if token_url is not None and (values.layer(OIDC_TOKEN_URL) >= LAYER_ENV or provider is None):
        explicit_tls = max(values.layer(CA_CERT_PATH), values.layer(INSECURE_SKIP_VERIFY)) >= LAYER_ENV
        return replace(base, method="oidc", token_url=token_url, tls=auth_tls(explicit_tls, client_file, api))
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


def _command_settings(values: Values) -> CommandSettings:
    default_timeout = values.get(MCP_COMMAND_TIMEOUT)
    max_timeout = values.get(MCP_COMMAND_MAX_TIMEOUT)
    if default_timeout > max_timeout:
        raise ConfigurationError(
            f"MCP_COMMAND_TIMEOUT ({default_timeout:g}) is larger than MCP_COMMAND_MAX_TIMEOUT "
            f"({max_timeout:g}); lower the first or raise the second."
        )
    settings = CommandSettings(
        enabled=values.get(MCP_ENABLE_COMMANDS),
        allowlist=values.get_or_none(MCP_COMMAND_ALLOWLIST) or (),
        default_timeout=default_timeout,
        max_timeout=max_timeout,
        output_limit_bytes=values.get(MCP_COMMAND_OUTPUT_LIMIT),
        confirm=values.get(MCP_COMMAND_CONFIRM),
        confirm_timeout=values.get(MCP_COMMAND_CONFIRM_TIMEOUT),
    )
    if settings.enabled and not settings.allowlist and not settings.confirm:
        raise ConfigurationError(
            "MCP_ENABLE_COMMANDS=true would let the assistant run any command on any device without "
            "asking anyone. Also set MCP_COMMAND_ALLOWLIST to the commands it may run (for example "
            "MCP_COMMAND_ALLOWLIST='df -h;journalctl -u flightctl-agent *'), or MCP_COMMAND_CONFIRM=true so "
            "the user approves each command, or both."
        )
    return settings
