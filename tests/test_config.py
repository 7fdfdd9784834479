"""config.py: what a user configures is what the server uses, and a mistake stops it with a clear message."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from allowlist import AllowEntry
from config import (
    OPTIONS,
    Secret,
    Settings,
    TLSSettings,
    check_http_exposure,
    command_exposure_warning,
    load_settings,
)
from config_doc import render_configuration_doc
from errors import ConfigurationError

ORG = "6c3f0a5e-8f52-4c4a-9a8d-2f1d2c3b4a59"
REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty home directory, so no real ~/.config/flightctl/client.yaml leaks into a test."""
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def env(home: Path) -> dict[str, str]:
    return {"HOME": str(home)}


def write_client_yaml(home: Path, document: dict[str, Any]) -> Path:
    path = home / ".config" / "flightctl" / "client.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document))
    return path


def current_client_yaml(server: str = "https://api.flightctl.test:3443", **auth: Any) -> dict[str, Any]:
    """The shape `flightctl login` (1.x) writes after a web login with an OIDC provider."""
    authentication: dict[str, Any] = {
        "access-token": "file-access",
        "access-token-expiry": "2026-08-21T11:32:18.123456789+03:00",
        "auth-provider": {
            "auth-provider": {
                "apiVersion": "v1beta1",
                "kind": "AuthProvider",
                "metadata": {"name": "corp-sso"},
                "spec": {"providerType": "oidc", "issuer": "https://sso.test", "clientId": "fc-cli"},
            }
        },
        "id-token": "file-id",
        "refresh-token": "file-refresh",
        "token-to-use": "id",
    }
    authentication.update(auth)
    return {"authentication": authentication, "organization": ORG, "service": {"server": server}}


def legacy_client_yaml() -> dict[str, Any]:
    """The ≤ 0.10 flightctl shape: auth-provider.config with server, client-id, refresh-token."""
    return {
        "service": {"server": "https://api.legacy.test/", "insecureSkipVerify": True},
        "authentication": {
            "auth-provider": {
                "name": "OIDC",
                "config": {
                    "server": "https://sso.legacy.test/realms/flightctl",
                    "client-id": "legacy-client",
                    "refresh-token": "legacy-refresh",
                },
            }
        },
    }


# --------------------------------------------------------------------------------------------------
# Sources and their priority
# --------------------------------------------------------------------------------------------------


def test_defaults_are_the_documented_ones(env: dict[str, str], home: Path) -> None:
    settings = load_settings({}, env)
    assert (settings.transport, settings.host, settings.port, settings.path) == (
        "stdio",
        "127.0.0.1",
        8000,
        "/mcp",
    )
    assert (settings.log_level, settings.mcp_log_level) == ("INFO", "info")
    assert settings.log_file == home / ".local/share/flightctl-mcp/flightctl-mcp.log"
    assert settings.auth.method == "none"
    assert settings.auth.client_id == "flightctl"
    assert settings.request_timeout == 30
    assert settings.response_token_budget == 10000
    assert settings.commands.enabled is False
    assert (settings.commands.default_timeout, settings.commands.max_timeout) == (30, 300)
    assert settings.commands.output_limit_bytes == 65536
    assert settings.http.auth_mode == "server"
    assert settings.http.max_body_bytes == 1024 * 1024
    assert settings.http.rate_limit_per_minute == 600
    assert settings.tls.verify
    assert settings.tls.source == "system CA bundle"
    assert settings.client_config_path is None


def test_environment_alone_configures_oidc_refresh(env: dict[str, str]) -> None:
    env |= {
        "API_BASE_URL": "https://api.flightctl.test/api/v1/",
        "OIDC_TOKEN_URL": "https://sso.test/realms/flightctl",
        "REFRESH_TOKEN": "env-refresh",
        "ORG_ID": ORG.upper(),
    }
    settings = load_settings({}, env)
    assert settings.api_base_url == "https://api.flightctl.test"
    assert settings.organization == ORG
    assert settings.auth.method == "oidc"
    assert settings.auth.token_url == "https://sso.test/realms/flightctl/protocol/openid-connect/token"
    assert settings.auth.refresh_token == Secret("env-refresh")


def test_full_token_url_is_kept_as_given(env: dict[str, str]) -> None:
    env |= {"OIDC_TOKEN_URL": "https://idp.test/oauth/token", "REFRESH_TOKEN": "r"}
    assert load_settings({}, env).auth.token_url == "https://idp.test/oauth/token"


def test_current_client_yaml_refreshes_through_the_api_proxy(env: dict[str, str], home: Path) -> None:
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    document = current_client_yaml()
    document["service"] |= {
        "certificate-authority-data": base64.b64encode(pem.encode()).decode(),
        "tls-server-name": "api.internal",
    }
    path = write_client_yaml(home, document)
    settings = load_settings({}, env)
    assert settings.client_config_path == path
    assert settings.api_base_url == "https://api.flightctl.test:3443"
    assert settings.organization == ORG
    assert settings.tls.ca_data == pem
    assert settings.tls.server_name == "api.internal"
    auth = settings.auth
    assert auth.method == "proxy"
    assert auth.provider_name == "corp-sso"
    assert auth.token_url == "https://api.flightctl.test:3443/api/v1/auth/corp-sso/token"
    assert auth.client_id == "fc-cli"
    assert auth.token_to_use == "id"
    assert (auth.refresh_token, auth.id_token) == (Secret("file-refresh"), Secret("file-id"))
    assert auth.access_token_expiry is not None
    assert auth.access_token_expiry.year == 2026


def test_explicit_oidc_token_url_wins_over_the_proxy(env: dict[str, str], home: Path) -> None:
    write_client_yaml(home, current_client_yaml())
    env["OIDC_TOKEN_URL"] = "https://sso.test/realms/x"
    auth = load_settings({}, env).auth
    assert auth.method == "oidc"
    assert auth.token_url == "https://sso.test/realms/x/protocol/openid-connect/token"
    assert auth.refresh_token == Secret("file-refresh")


def test_legacy_client_yaml_refreshes_at_the_identity_provider(env: dict[str, str], home: Path) -> None:
    write_client_yaml(home, legacy_client_yaml())
    settings = load_settings({}, env)
    assert settings.api_base_url == "https://api.legacy.test"
    assert settings.tls.verify is False
    assert settings.tls.source == "INSECURE_SKIP_VERIFY"
    assert settings.auth.method == "oidc"
    assert settings.auth.token_url == "https://sso.legacy.test/realms/flightctl/protocol/openid-connect/token"
    assert settings.auth.client_id == "legacy-client"
    assert settings.auth.refresh_token == Secret("legacy-refresh")


@pytest.mark.parametrize(
    "authentication",
    [{"token": "legacy-static"}, {"access-token": "legacy-static", "token-to-use": "access"}],
    ids=["legacy-token", "login-with-token"],
)
def test_access_token_alone_is_static(
    env: dict[str, str], home: Path, authentication: dict[str, str]
) -> None:
    write_client_yaml(home, {"service": {"server": "https://api.test"}, "authentication": authentication})
    auth = load_settings({}, env).auth
    assert auth.method == "static"
    assert auth.access_token == Secret("legacy-static")


def test_environment_overrides_file_and_flags_override_environment(env: dict[str, str], home: Path) -> None:
    write_client_yaml(home, current_client_yaml(server="https://from-file.test"))
    env |= {"API_BASE_URL": "https://from-env.test", "MCP_PORT": "9001", "ORG_ID": str(ORG)}
    from_env = load_settings({}, env)
    assert (from_env.api_base_url, from_env.port) == ("https://from-env.test", 9001)
    from_flags = load_settings({"API_BASE_URL": "https://from-flag.test", "MCP_PORT": "9002"}, env)
    assert (from_flags.api_base_url, from_flags.port) == ("https://from-flag.test", 9002)
    # The proxy follows the API URL actually used.
    assert from_flags.auth.token_url == "https://from-flag.test/api/v1/auth/corp-sso/token"


def test_access_token_in_environment_replaces_the_file_session(env: dict[str, str], home: Path) -> None:
    write_client_yaml(home, current_client_yaml())
    env["ACCESS_TOKEN"] = "env-access"
    auth = load_settings({}, env).auth
    assert auth.method == "static"
    assert auth.access_token == Secret("env-access")
    assert auth.refresh_token is None
    assert auth.id_token is None
    assert auth.token_to_use == "access"


def test_client_config_path_and_xdg_config_home(env: dict[str, str], tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    path = xdg / "flightctl" / "client.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump({"service": {"server": "https://xdg.test"}}))
    assert load_settings({}, env | {"XDG_CONFIG_HOME": str(xdg)}).api_base_url == "https://xdg.test"
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({"service": {"server": "https://other.test"}}))
    settings = load_settings({"CLIENT_CONFIG_PATH": str(other)}, env | {"XDG_CONFIG_HOME": str(xdg)})
    assert (settings.api_base_url, settings.client_config_path) == ("https://other.test", other)


def test_the_process_environment_is_not_read(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_PORT", "1234")
    monkeypatch.setenv("MCP_TRANSPORT", "sse")
    settings = load_settings({}, env)
    assert (settings.port, settings.transport) == (8000, "stdio")


def test_lists_and_allowlist_are_split(env: dict[str, str]) -> None:
    env |= {
        "MCP_ALLOWED_HOSTS": "mcp.example.com, 10.0.0.5:8000,",
        "MCP_COMMAND_ALLOWLIST": "journalctl -u flightctl-agent *; df -h ;echo 'two words';uptime $",
        "MCP_ENABLE_COMMANDS": "yes",
        "MCP_SHARED_SECRET": "s3cret-value",
    }
    settings = load_settings({}, env)
    assert settings.http.allowed_hosts == ("mcp.example.com", "10.0.0.5:8000")
    assert settings.commands.allowlist == (
        AllowEntry(("journalctl", "-u", "flightctl-agent"), prefix=True),
        AllowEntry(("df", "-h")),
        AllowEntry(("echo", "two words")),
        AllowEntry(("uptime",)),  # a trailing $ (the older exact mark) changes nothing
    )
    assert settings.commands.enabled is True
    assert settings.http.auth_mode == "shared-secret"


@pytest.mark.parametrize("allowlist", [" ; ", ";", "$", "df -h;$", "*", "df -h;*", "ls *.log", "ls * -l"])
def test_an_allowlist_that_names_no_command_is_refused_not_read_as_allow_all(
    env: dict[str, str], allowlist: str
) -> None:
    env |= {"MCP_COMMAND_ALLOWLIST": allowlist, "MCP_ENABLE_COMMANDS": "true"}
    with pytest.raises(ConfigurationError, match="MCP_COMMAND_ALLOWLIST"):
        load_settings({}, env)


@pytest.mark.parametrize("extra", [{}, {"MCP_COMMAND_CONFIRM": "false"}])
def test_commands_without_an_allowlist_or_confirmation_refuse_to_start(
    env: dict[str, str], extra: dict[str, str]
) -> None:
    env |= {"MCP_ENABLE_COMMANDS": "true", **extra}
    with pytest.raises(ConfigurationError) as caught:
        load_settings({}, env)
    message = str(caught.value)
    assert "MCP_COMMAND_ALLOWLIST" in message
    assert "MCP_COMMAND_CONFIRM=true" in message


@pytest.mark.parametrize(
    "extra",
    [{"MCP_COMMAND_CONFIRM": "true"}, {"MCP_COMMAND_ALLOWLIST": "df -h"}],
    ids=["confirm", "allowlist"],
)
def test_commands_start_with_an_allowlist_or_confirmation(env: dict[str, str], extra: dict[str, str]) -> None:
    env |= {"MCP_ENABLE_COMMANDS": "true", **extra}
    assert load_settings({}, env).commands.enabled


def test_secrets_never_show_in_repr(env: dict[str, str], home: Path) -> None:
    write_client_yaml(home, current_client_yaml())
    env |= {"MCP_SHARED_SECRET": "shared-s3cret"}
    settings = load_settings({}, env)
    shown = repr(settings) + str(settings) + f"{settings.auth.refresh_token}"
    for secret in ("file-refresh", "file-id", "file-access", "shared-s3cret"):
        assert secret not in shown
    assert settings.auth.refresh_token is not None
    assert settings.auth.refresh_token.reveal() == "file-refresh"


# --------------------------------------------------------------------------------------------------
# Mistakes stop the server, naming the setting, the value and what is valid
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"MCP_TRANSPORT": "ftp"}, ["MCP_TRANSPORT", "'ftp'", "stdio, sse, streamable-http"]),
        ({"MCP_PORT": "70000"}, ["MCP_PORT", "'70000'", "1 to 65535"]),
        ({"MCP_PORT": "eighty"}, ["MCP_PORT", "'eighty'", "1 to 65535"]),
        ({"CA_CERT_PATH": "/nonexistent/ca.pem"}, ["CA_CERT_PATH", "/nonexistent/ca.pem", "existing file"]),
        ({"ORG_ID": "acme"}, ["ORG_ID", "'acme'", "UUID"]),
        ({"MCP_AUTH_MODE": "oauth"}, ["MCP_AUTH_MODE", "'oauth'", "passthrough, shared-secret, server"]),
        ({"LOG_LEVEL": "LOUD"}, ["LOG_LEVEL", "'LOUD'", "DEBUG, INFO, WARNING, ERROR, CRITICAL"]),
        ({"INSECURE_SKIP_VERIFY": "maybe"}, ["INSECURE_SKIP_VERIFY", "'maybe'", "true or false"]),
        ({"API_BASE_URL": "api.test"}, ["API_BASE_URL", "'api.test'", "https://"]),
        ({"MCP_PATH": "mcp"}, ["MCP_PATH", "'mcp'", "starting with '/'"]),
        ({"REFRESH_TOKEN": "r"}, ["refresh token", "OIDC_TOKEN_URL", "flightctl login"]),
        ({"MCP_AUTH_MODE": "shared-secret"}, ["MCP_SHARED_SECRET", "passthrough"]),
        ({"MCP_COMMAND_TIMEOUT": "600"}, ["MCP_COMMAND_TIMEOUT", "MCP_COMMAND_MAX_TIMEOUT"]),
        ({"MCP_TLS_CERT": __file__}, ["MCP_TLS_CERT", "MCP_TLS_KEY"]),
        ({"CLIENT_CONFIG_PATH": "/nonexistent/client.yaml"}, ["CLIENT_CONFIG_PATH", "flightctl login"]),
    ],
    ids=lambda value: next(iter(value)) if isinstance(value, dict) else None,
)
def test_bad_values_are_refused_with_a_clear_message(
    env: dict[str, str], variables: dict[str, str], expected: list[str]
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({}, env | variables)
    for fragment in expected:
        assert fragment in str(caught.value)


def test_bad_flag_names_the_flag(env: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError, match="flag --port"):
        load_settings({"MCP_PORT": "0"}, env)


TOKEN = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.c2lnbmF0dXJl-do-not-print"
_LOGGED_IN = (
    "apiVersion: v1alpha1\nkind: Config\nservice:\n  server: https://api.example.com\nauthentication:\n"
)


@pytest.mark.parametrize(
    "text",
    [
        _LOGGED_IN + f'  refresh-token: "{TOKEN}\n  access-token: x\n',  # unclosed quote
        _LOGGED_IN + f"  access-token: {TOKEN}: trailing\n",  # a colon inside the token
        _LOGGED_IN + f"  access-token: [{TOKEN}\n",  # unclosed flow sequence
        _LOGGED_IN + f"\taccess-token: {TOKEN}\n",  # a tab
        _LOGGED_IN + f"  access-token: x\n  access-token-expiry: {TOKEN}\n",
        _LOGGED_IN + f"  token-to-use: {TOKEN}\n",
        _LOGGED_IN + f"  access-token: x\n  auth-provider: {TOKEN}\n",
        _LOGGED_IN + f"  access-token: x\n  auth-provider:\n    insecureSkipVerify: {TOKEN}\n",
    ],
    ids=["unclosed-quote", "colon", "flow", "tab", "expiry", "token-to-use", "provider", "insecure"],
)
def test_client_yaml_errors_never_print_a_token(
    env: dict[str, str],
    home: Path,
    text: str,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = write_client_yaml(home, {})
    path.write_text(text)
    with pytest.raises(ConfigurationError) as caught:
        load_settings({}, env)
    assert "client" in str(caught.value)
    assert TOKEN not in str(caught.value)
    assert "c2VjcmV0" not in str(caught.value)
    import cli

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cli.main([]) == 2
    out, err = capfd.readouterr()
    assert err.startswith("flightctl-mcp: configuration error: ")
    assert "c2VjcmV0" not in out + err


def test_secret_values_are_not_echoed_in_errors(env: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({}, env | {"REFRESH_TOKEN": "super-secret-refresh"})
    assert "super-secret-refresh" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("service: [unclosed", ["Cannot parse", "flightctl login"]),
        ("- just\n- a list\n", ["must be a mapping"]),
        (yaml.safe_dump({"organization": "not-a-uuid"}), ["ORG_ID", "organization", "'not-a-uuid'", "UUID"]),
        (yaml.safe_dump({"service": {"certificate-authority-data": "%%%"}}), ["certificate-authority-data"]),
        (yaml.safe_dump({"service": {"certificate-authority": "/no/such/ca.crt"}}), ["/no/such/ca.crt"]),
        (yaml.safe_dump({"authentication": {"token-to-use": "both"}}), ["token-to-use", "access, id"]),
        (
            yaml.safe_dump({"service": {"insecureSkipVerify": "perhaps"}}),
            ["insecureSkipVerify", "true or false"],
        ),
    ],
    ids=["yaml-syntax", "not-a-mapping", "organization", "ca-data", "ca-file", "token-to-use", "insecure"],
)
def test_bad_client_yaml_is_refused_naming_the_key(
    env: dict[str, str], home: Path, text: str, expected: list[str]
) -> None:
    path = write_client_yaml(home, {})
    path.write_text(text)
    with pytest.raises(ConfigurationError) as caught:
        load_settings({}, env)
    message = str(caught.value)
    for fragment in expected:
        assert fragment in message


@pytest.mark.parametrize(
    ("variables", "refused"),
    [
        ({"MCP_TRANSPORT": "streamable-http", "MCP_HOST": "0.0.0.0"}, True),
        ({"MCP_TRANSPORT": "sse", "MCP_HOST": "192.168.1.10"}, True),
        ({"MCP_TRANSPORT": "streamable-http", "MCP_HOST": "127.0.0.1"}, False),
        ({"MCP_TRANSPORT": "streamable-http", "MCP_HOST": "::1"}, False),
        ({"MCP_TRANSPORT": "streamable-http", "MCP_HOST": "localhost"}, False),
        ({"MCP_TRANSPORT": "stdio", "MCP_HOST": "0.0.0.0"}, False),
        ({"MCP_TRANSPORT": "streamable-http", "MCP_HOST": "0.0.0.0", "MCP_AUTH_MODE": "passthrough"}, False),
        ({"MCP_TRANSPORT": "streamable-http", "MCP_HOST": "0.0.0.0", "MCP_SHARED_SECRET": "k" * 32}, False),
    ],
)
def test_http_exposure_rule(env: dict[str, str], variables: dict[str, str], refused: bool) -> None:
    settings = load_settings({}, env | variables)
    if not refused:
        check_http_exposure(settings)
        return
    with pytest.raises(ConfigurationError) as caught:
        check_http_exposure(settings)
    message = str(caught.value)
    for choice in ("127.0.0.1", "MCP_AUTH_MODE=passthrough", "MCP_SHARED_SECRET"):
        assert choice in message


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10"])
def test_a_short_shared_secret_is_refused_off_loopback(env: dict[str, str], host: str) -> None:
    short = "correct-horse-battery-stap"  # 26 characters
    variables = {"MCP_TRANSPORT": "streamable-http", "MCP_SHARED_SECRET": short}
    check_http_exposure(load_settings({}, env | variables | {"MCP_HOST": "127.0.0.1"}))
    with pytest.raises(ConfigurationError) as caught:
        check_http_exposure(load_settings({}, env | variables | {"MCP_HOST": host}))
    message = str(caught.value)
    assert "32 characters" in message
    assert "openssl rand" in message
    assert short not in message, "the secret is never echoed"


# --------------------------------------------------------------------------------------------------
# TLS, over a real loopback TLS socket
# --------------------------------------------------------------------------------------------------


@dataclass
class TLSServer:
    port: int
    ca_pem: Path
    other_ca_pem: Path


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSServer]:
    """A loopback TLS server whose certificate names only 'api.flightctl.test' and 127.0.0.1."""
    import threading

    directory = tmp_path_factory.mktemp("tls")
    ca, other_ca = trustme.CA(), trustme.CA()
    cert = ca.issue_cert("api.flightctl.test", "127.0.0.1")
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    other_ca.cert_pem.write_to_path(str(directory / "other.pem"))
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    loop = asyncio.new_event_loop()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello")
        await writer.drain()
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()

    server = loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield TLSServer(server.sockets[0].getsockname()[1], directory / "ca.pem", directory / "other.pem")
    finally:
        loop.call_soon_threadsafe(server.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.run_until_complete(server.wait_closed())
        loop.close()


async def handshake(tls: TLSSettings, port: int, host: str = "127.0.0.1") -> bytes:
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=tls.ssl_context(), server_hostname=host), 5
    )
    data = await reader.read(5)
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()
    return data


def _ca_data_yaml(home: Path, ca_pem: Path, **service: Any) -> None:
    data = base64.b64encode(ca_pem.read_bytes()).decode()
    write_client_yaml(
        home, {"service": {"server": "https://127.0.0.1", "certificate-authority-data": data, **service}}
    )


TLSCase = Callable[[TLSServer, Path, dict[str, str]], dict[str, str]]


def _ca_cert_path(server: TLSServer, home: Path, env: dict[str, str]) -> dict[str, str]:
    _ca_data_yaml(home, server.other_ca_pem)  # CA_CERT_PATH wins over a wrong client.yaml CA
    return env | {"CA_CERT_PATH": str(server.ca_pem)}


def _insecure(server: TLSServer, home: Path, env: dict[str, str]) -> dict[str, str]:
    _ca_data_yaml(home, server.other_ca_pem)  # INSECURE_SKIP_VERIFY wins over a client.yaml CA
    return env | {"INSECURE_SKIP_VERIFY": "true"}


def _file_ca_data(server: TLSServer, home: Path, env: dict[str, str]) -> dict[str, str]:
    _ca_data_yaml(home, server.ca_pem)
    return env


def _file_ca_path(server: TLSServer, home: Path, env: dict[str, str]) -> dict[str, str]:
    write_client_yaml(home, {"service": {"server": "https://x", "certificate-authority": str(server.ca_pem)}})
    return env


@pytest.mark.parametrize(
    ("case", "source"),
    [
        (_ca_cert_path, "CA_CERT_PATH"),
        (_insecure, "INSECURE_SKIP_VERIFY"),
        (_file_ca_data, "certificate-authority-data"),
        (_file_ca_path, "service.certificate-authority"),
    ],
    ids=["ca-cert-path", "insecure", "client-yaml-ca-data", "client-yaml-ca-file"],
)
async def test_each_tls_mode_reaches_the_server(
    tls_server: TLSServer, home: Path, env: dict[str, str], case: TLSCase, source: str
) -> None:
    settings = load_settings({}, case(tls_server, home, env))
    assert source in settings.tls.source
    assert await handshake(settings.tls, tls_server.port) == b"hello"


@pytest.mark.parametrize("how", ["env", "client-yaml"])
async def test_a_wrong_ca_is_refused(
    tls_server: TLSServer, home: Path, env: dict[str, str], how: str
) -> None:
    if how == "env":
        env = env | {"CA_CERT_PATH": str(tls_server.other_ca_pem)}
    else:
        _ca_data_yaml(home, tls_server.other_ca_pem)
    settings = load_settings({}, env)
    with pytest.raises(ssl.SSLCertVerificationError):
        await handshake(settings.tls, tls_server.port)


async def test_the_system_bundle_does_not_trust_a_private_ca(
    tls_server: TLSServer, env: dict[str, str]
) -> None:
    settings = load_settings({}, env)
    assert settings.tls.source == "system CA bundle"
    with pytest.raises(ssl.SSLCertVerificationError):
        await handshake(settings.tls, tls_server.port)


async def test_tls_server_name_is_verified_instead_of_the_url_host(
    tls_server: TLSServer, home: Path, env: dict[str, str], tmp_path: Path
) -> None:
    # The certificate names api.flightctl.test and 127.0.0.1, not "localhost".
    _ca_data_yaml(home, tls_server.ca_pem, **{"tls-server-name": "api.flightctl.test"})
    settings = load_settings({}, env)
    assert await handshake(settings.tls, tls_server.port, host="localhost") == b"hello"
    _ca_data_yaml(home, tls_server.ca_pem, **{"tls-server-name": "elsewhere.test"})
    with pytest.raises(ssl.SSLCertVerificationError):
        await handshake(load_settings({}, env).tls, tls_server.port)


def test_ssl_context_is_built_once(tls_server: TLSServer) -> None:
    tls = TLSSettings(ca_file=tls_server.ca_pem, source="test")
    assert tls.ssl_context() is TLSSettings(ca_file=tls_server.ca_pem, source="test").ssl_context()


def test_an_unreadable_ca_is_a_configuration_error(tmp_path: Path, env: dict[str, str]) -> None:
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate")
    settings = load_settings({}, env | {"CA_CERT_PATH": str(bogus)})
    with pytest.raises(ConfigurationError, match="CA_CERT_PATH"):
        settings.tls.ssl_context()


# --------------------------------------------------------------------------------------------------
# The reference documentation
# --------------------------------------------------------------------------------------------------


def test_every_option_has_a_unique_variable_and_flag() -> None:
    assert len({o.env for o in OPTIONS}) == len(OPTIONS)
    assert len({o.flag for o in OPTIONS}) == len(OPTIONS)
    assert all(o.flag.startswith("--") and o.help for o in OPTIONS)


def test_checked_in_configuration_doc_matches_the_options() -> None:
    checked_in = (REPO_ROOT / "docs" / "configuration.md").read_text()
    assert checked_in == render_configuration_doc(), (
        "docs/configuration.md is stale: run `python scripts/gen_docs.py`"
    )
    for option in OPTIONS:
        assert f"`{option.env}`" in checked_in


def test_settings_defaults_match_the_options_table(env: dict[str, str]) -> None:
    """The dataclass defaults (used by other modules' tests) agree with what load_settings gives."""
    loaded, bare = load_settings({}, env), Settings()
    for name in ("transport", "host", "port", "path", "log_level", "mcp_log_level", "request_timeout"):
        assert getattr(loaded, name) == getattr(bare, name), name
    assert loaded.commands == bare.commands
    assert loaded.http == bare.http


@pytest.mark.parametrize(
    ("extra", "warned"),
    [
        ({"MCP_TRANSPORT": "streamable-http"}, True),
        ({"MCP_TRANSPORT": "sse", "MCP_HOST": "localhost"}, True),
        ({"MCP_TRANSPORT": "streamable-http", "MCP_SHARED_SECRET": "x" * 40}, False),
        ({"MCP_TRANSPORT": "streamable-http", "MCP_AUTH_MODE": "passthrough"}, False),
        ({"MCP_TRANSPORT": "stdio"}, False),
        ({"MCP_TRANSPORT": "streamable-http", "MCP_ENABLE_COMMANDS": "false"}, False),
    ],
)
def test_commands_in_server_mode_on_loopback_warn_that_any_local_process_can_run_them(
    env: dict[str, str], extra: dict[str, str], warned: bool
) -> None:
    env |= {"MCP_ENABLE_COMMANDS": "true", "MCP_COMMAND_ALLOWLIST": "df -h", **extra}
    warning = command_exposure_warning(load_settings({}, env))
    assert (warning is not None) == warned
    if warning:
        assert "any process on this machine can connect and run commands" in warning
        assert "MCP_SHARED_SECRET" in warning


@pytest.mark.parametrize("value", ["*", "proxy.example.com", "10.0.0.0/33"])
def test_trusted_proxies_must_be_addresses(env: dict[str, str], value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({}, env | {"MCP_TRUSTED_PROXIES": value})
    assert "MCP_TRUSTED_PROXIES" in str(caught.value)
    assert "10.0.0.0/24" in str(caught.value)


def test_trusted_proxies_accept_addresses_and_networks(env: dict[str, str]) -> None:
    settings = load_settings({}, env | {"MCP_TRUSTED_PROXIES": "10.0.0.5, 192.168.0.0/16,::1"})
    assert settings.http.trusted_proxies == ("10.0.0.5", "192.168.0.0/16", "::1")
