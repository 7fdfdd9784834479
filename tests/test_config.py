"""config.py: what a user configures is what the server uses, from which source, in which order.

Mistakes that stop the server are in tests/test_config_errors.py, TLS in tests/test_config_tls.py.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from allowlist import AllowEntry
from config import (
    OPTIONS,
    Secret,
    Settings,
    command_exposure_warning,
    load_settings,
)
from config_doc import render_configuration_doc
from conftest import write_client_yaml
from errors import ConfigurationError

ORG = "6c3f0a5e-8f52-4c4a-9a8d-2f1d2c3b4a59"
REPO_ROOT = Path(__file__).resolve().parent.parent


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
