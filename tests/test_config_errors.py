"""config.py: a mistake stops the server with a clear message naming the setting, the value and what is
valid, and never echoing a secret; an HTTP server reachable from the network without authentication is
refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from config import check_http_exposure, load_settings
from conftest import write_client_yaml
from errors import ConfigurationError

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
