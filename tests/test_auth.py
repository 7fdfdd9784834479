"""auth.py against the simulator over HTTPS: each way a user holds credentials, each way they fail."""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
import yaml

from auth import PassThroughTokenSource, RefreshingTokenSource, StaticTokenSource, TokenSource
from call_credentials import token_source_for_request, token_source_from_settings
from config import Secret, Settings, load_settings
from errors import AuthenticationError
from simulator.harness import SimulatorServer
from tests.http_harness import refused_port
from unverified_jwt import jwt_claims

PROVIDER = "flightctl-sim"
CLIENT = "flightctl"


@dataclass
class Sim:
    server: SimulatorServer
    ca_pem: Path
    wrong_ca_pem: Path

    @property
    def url(self) -> str:
        return self.server.base_url

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_pem))


@pytest.fixture(scope="module")
def sim(simulator_tls_files: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    """A small private HTTPS simulator for this module (tests here revoke tokens and count requests)."""
    wrong_ca = tmp_path_factory.mktemp("auth-tls") / "wrong-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(wrong_ca))
    with SimulatorServer(
        devices=5, lab_devices=1, tls_cert=simulator_tls_files.cert, tls_key=simulator_tls_files.key
    ) as server:
        yield Sim(server, simulator_tls_files.ca, wrong_ca)


def environ(sim: Sim, home: Path, **extra: str) -> dict[str, str]:
    base = {"HOME": str(home), "API_BASE_URL": sim.url, "CA_CERT_PATH": str(sim.ca_pem)}
    return base | {"REQUEST_TIMEOUT": "5"} | extra


def source_for(settings: Settings) -> TokenSource:
    source = token_source_from_settings(settings)
    assert source is not None
    return source


async def list_devices(sim: Sim, token: str) -> int:
    """The status Flight Control (the simulator) answers to a device list with this bearer."""
    async with httpx.AsyncClient(verify=sim.client_context(), timeout=5) as client:
        response = await client.get(
            f"{sim.url}/api/v1/devices", params={"limit": 1}, headers={"Authorization": f"Bearer {token}"}
        )
    return response.status_code


def token_posts(sim: Sim, path: str) -> int:
    return sum(1 for r in sim.server.state.requests() if r["method"] == "POST" and r["path"] == path)


def oidc_settings(sim: Sim, home: Path, refresh_token: str, **extra: str) -> Settings:
    # A bare realm URL, as the README allows: the token path is appended.
    return load_settings(
        {}, environ(sim, home, OIDC_TOKEN_URL=sim.server.oidc_issuer, REFRESH_TOKEN=refresh_token, **extra)
    )


def write_current_client_yaml(sim: Sim, home: Path, refresh_token: str, **authentication: Any) -> None:
    document = {
        "service": {
            "server": sim.url,
            "certificate-authority-data": base64.b64encode(sim.ca_pem.read_bytes()).decode(),
        },
        "authentication": {
            "refresh-token": refresh_token,
            "auth-provider": {
                "auth-provider": {
                    "apiVersion": "v1beta1",
                    "kind": "AuthProvider",
                    "metadata": {"name": PROVIDER},
                    "spec": {"providerType": "oidc", "issuer": sim.server.oidc_issuer, "clientId": CLIENT},
                }
            },
            **authentication,
        },
    }
    path = home / ".config" / "flightctl" / "client.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document))


# --------------------------------------------------------------------------------------------------
# Refresh at the identity provider and through the API proxy
# --------------------------------------------------------------------------------------------------


async def test_refresh_at_the_oidc_token_url_gives_an_accepted_token(sim: Sim, home: Path) -> None:
    tokens = sim.server.issue_tokens(user="viewer")
    settings = oidc_settings(sim, home, tokens.refresh_token)
    assert settings.auth.method == "oidc"
    source = source_for(settings)
    bearer = await source.bearer()
    assert bearer != tokens.access_token  # a new one, obtained by refreshing
    assert await list_devices(sim, bearer) == 200
    assert source.identity == "viewer"


async def test_refresh_through_the_api_proxy_from_client_yaml(sim: Sim, home: Path) -> None:
    tokens = sim.server.issue_tokens(user="operator")
    write_current_client_yaml(sim, home, tokens.refresh_token)
    settings = load_settings({}, {"HOME": str(home)})
    assert settings.auth.method == "proxy"
    proxy_path = f"/api/v1/auth/{PROVIDER}/token"
    before = token_posts(sim, proxy_path)
    source = source_for(settings)
    bearer = await source.bearer()
    assert await list_devices(sim, bearer) == 200
    assert source.identity == "operator"
    posts = [r for r in sim.server.state.requests() if r["path"] == proxy_path]
    assert token_posts(sim, proxy_path) == before + 1
    assert "org_id" not in posts[-1]["query"]


async def test_id_token_is_the_bearer_when_client_yaml_says_so(sim: Sim, home: Path) -> None:
    tokens = sim.server.issue_tokens(user="admin")
    write_current_client_yaml(sim, home, tokens.refresh_token, **{"token-to-use": "id"})
    source = source_for(load_settings({}, {"HOME": str(home)}))
    bearer = await source.bearer()
    assert jwt_claims(bearer)["typ"] == "ID"
    assert await list_devices(sim, bearer) == 200


async def test_rotated_refresh_token_is_kept(sim: Sim, home: Path) -> None:
    tokens = sim.server.issue_tokens(user="admin")
    source = source_for(oidc_settings(sim, home, tokens.refresh_token))
    assert isinstance(source, RefreshingTokenSource)
    first = await source.bearer()
    assert source.refresh_token.reveal() != tokens.refresh_token
    # The identity provider no longer accepts the original refresh token...
    async with httpx.AsyncClient(verify=sim.client_context(), timeout=5) as client:
        reuse = await client.post(
            sim.server.oidc_token_url,
            data={"grant_type": "refresh_token", "refresh_token": tokens.refresh_token, "client_id": CLIENT},
        )
    assert reuse.status_code == 400
    assert reuse.json()["error"] == "invalid_grant"
    # ...yet the source refreshes again, because it kept the rotated one.
    second = await source.refresh_after_rejection(first)
    assert second is not None
    assert second != first
    assert await list_devices(sim, second) == 200


async def test_token_is_refreshed_ahead_of_expiry(
    sim: Sim, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = sim.server.issue_tokens(user="admin", access_ttl=120)
    source = source_for(oidc_settings(sim, home, tokens.refresh_token))
    first = await source.bearer()
    assert await source.bearer() == first  # cached while fresh
    expires_at = jwt_claims(first)["exp"]
    # Move the clock to 40 s before expiry, inside the refresh margin (60 s, at most half the lifetime).
    shift = expires_at - 40 - time.time()
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + shift)
    second = await source.bearer()
    assert second != first
    assert time.time() < expires_at  # the old token had not expired yet...
    assert await list_devices(sim, first) == 200  # ...and the server still took it


async def test_sixteen_concurrent_callers_cause_one_refresh(sim: Sim, home: Path) -> None:
    tokens = sim.server.issue_tokens(user="admin")
    settings = oidc_settings(sim, home, tokens.refresh_token)
    token_path = settings.auth.token_url.removeprefix(sim.url) if settings.auth.token_url else ""
    before = token_posts(sim, token_path)
    source = source_for(settings)
    bearers = await asyncio.gather(*(source.bearer() for _ in range(16)))
    assert len(set(bearers)) == 1
    assert token_posts(sim, token_path) == before + 1


async def test_refresh_after_rejection_replaces_a_revoked_token_once(sim: Sim, home: Path) -> None:
    tokens = sim.server.issue_tokens(user="admin")
    source = source_for(oidc_settings(sim, home, tokens.refresh_token))
    first = await source.bearer()
    sim.server.revoke(first)
    assert await list_devices(sim, first) == 401
    replacements = await asyncio.gather(*(source.refresh_after_rejection(first) for _ in range(4)))
    assert len(set(replacements)) == 1  # four callers saw the 401, one refresh served them all
    fresh = replacements[0]
    assert fresh is not None
    assert fresh != first
    assert await list_devices(sim, fresh) == 200


# --------------------------------------------------------------------------------------------------
# Failures tell the user what to do
# --------------------------------------------------------------------------------------------------


async def test_revoked_refresh_token_asks_for_a_new_login(sim: Sim, home: Path) -> None:
    tokens = sim.server.issue_tokens(user="admin")
    sim.server.revoke(tokens.refresh_token)
    source = source_for(oidc_settings(sim, home, tokens.refresh_token))
    with pytest.raises(AuthenticationError) as caught:
        await source.bearer()
    message = str(caught.value)
    assert "invalid_grant" in message
    assert "flightctl login" in message
    assert tokens.refresh_token not in message


async def test_revoked_refresh_token_through_the_proxy(sim: Sim, home: Path) -> None:
    tokens = sim.server.issue_tokens(user="admin")
    sim.server.revoke(tokens.refresh_token)
    write_current_client_yaml(sim, home, tokens.refresh_token)
    with pytest.raises(AuthenticationError, match="flightctl login"):
        await source_for(load_settings({}, {"HOME": str(home)})).bearer()


async def test_wrong_client_id_names_the_setting(sim: Sim, home: Path) -> None:
    tokens = sim.server.issue_tokens(user="admin")
    source = source_for(oidc_settings(sim, home, tokens.refresh_token, OIDC_CLIENT_ID="not-registered"))
    with pytest.raises(AuthenticationError, match="OIDC_CLIENT_ID"):
        await source.bearer()


async def test_wrong_ca_for_the_token_endpoint_is_refused(sim: Sim, home: Path) -> None:
    tokens = sim.server.issue_tokens(user="admin")
    settings = oidc_settings(sim, home, tokens.refresh_token, CA_CERT_PATH=str(sim.wrong_ca_pem))
    with pytest.raises(AuthenticationError) as caught:
        await source_for(settings).bearer()
    assert "CA_CERT_PATH" in str(caught.value)
    assert "certificate" in str(caught.value).lower()


async def test_unreachable_token_endpoint_is_reported(home: Path, unused_port: int) -> None:
    settings = load_settings(
        {},
        {
            "HOME": str(home),
            "OIDC_TOKEN_URL": f"https://127.0.0.1:{unused_port}/token",
            "REFRESH_TOKEN": "r",
            "REQUEST_TIMEOUT": "2",
        },
    )
    with pytest.raises(AuthenticationError, match="Could not reach the token endpoint") as caught:
        await source_for(settings).bearer()
    assert "ConnectError" in str(caught.value), "a refused connection, said as such (not a timeout)"


@pytest.fixture
def unused_port() -> Iterator[int]:
    with refused_port() as port:
        yield port


# --------------------------------------------------------------------------------------------------
# Static and pass-through tokens, and choosing the source for a request
# --------------------------------------------------------------------------------------------------


async def test_static_access_token_is_used_as_it_is(sim: Sim, home: Path) -> None:
    token = sim.server.issue_access_token("viewer")
    settings = load_settings({}, environ(sim, home, ACCESS_TOKEN=token))
    source = source_for(settings)
    assert isinstance(source, StaticTokenSource)
    assert await source.bearer() == token
    assert source.identity == "viewer"
    assert await source.refresh_after_rejection(token) is None
    assert await list_devices(sim, token) == 200


async def test_expired_static_token_says_how_to_get_a_new_one(sim: Sim, home: Path) -> None:
    token = sim.server.issue_access_token("viewer", ttl=-60)
    source = source_for(load_settings({}, environ(sim, home, ACCESS_TOKEN=token)))
    with pytest.raises(AuthenticationError) as caught:
        await source.bearer()
    assert "expired" in str(caught.value)
    assert "flightctl login" in str(caught.value)


def test_no_credentials_explains_how_to_configure_them(home: Path) -> None:
    settings = load_settings({}, {"HOME": str(home)})
    assert token_source_from_settings(settings) is None
    with pytest.raises(AuthenticationError) as caught:
        token_source_for_request(None)
    for advice in ("REFRESH_TOKEN", "ACCESS_TOKEN", "flightctl login"):
        assert advice in str(caught.value)


async def test_pass_through_caller_uses_their_own_token(sim: Sim) -> None:
    from fastmcp.server.auth import AccessToken
    from mcp.server.auth.middleware.auth_context import auth_context_var
    from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser

    server_own = StaticTokenSource(Secret("the-server-own-token"))
    caller_token = sim.server.issue_access_token("viewer")
    caller = AccessToken(
        token=caller_token, client_id="caller", scopes=[], claims={"flightctl_passthrough": True}
    )
    reset = auth_context_var.set(AuthenticatedUser(caller))
    try:
        chosen = token_source_for_request(server_own)
    finally:
        auth_context_var.reset(reset)
    assert isinstance(chosen, PassThroughTokenSource)
    assert await chosen.bearer() == caller_token
    assert chosen.identity == "viewer"
    assert await chosen.refresh_after_rejection(caller_token) is None
    assert caller_token not in repr(chosen)
    # A caller authenticated some other way (e.g. shared secret) gets the server's own source.
    other = AccessToken(token="shared", client_id="caller", scopes=[], claims={})
    reset = auth_context_var.set(AuthenticatedUser(other))
    try:
        assert token_source_for_request(server_own) is server_own
    finally:
        auth_context_var.reset(reset)


# --------------------------------------------------------------------------------------------------
# No token in the log file
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    names = ("fastmcp", "httpx", "httpcore", "mcp", "uvicorn", "uvicorn.access", "uvicorn.error")
    saved = (list(root.handlers), root.level, {n: logging.getLogger(n).level for n in names})
    yield
    for handler in root.handlers:
        if handler not in saved[0]:
            handler.close()
    root.handlers[:], root.level = saved[0], saved[1]
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.usefixtures("restored_logging")
async def test_no_token_reaches_the_log_file_at_debug(
    sim: Sim, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from logging_setup import configure_logging

    monkeypatch.setenv("FASTMCP_LOG_ENABLED", "true")
    tokens = sim.server.issue_tokens(user="admin")
    settings = oidc_settings(sim, home, tokens.refresh_token, LOG_LEVEL="DEBUG", MCP_LOG_LEVEL="debug")
    configure_logging(settings)
    source = source_for(settings)
    assert isinstance(source, RefreshingTokenSource)
    bearer = await source.bearer()
    rejected_and_replaced = await source.refresh_after_rejection(bearer)
    assert rejected_and_replaced is not None
    log = logging.getLogger("resource_queries")
    log.debug("GET /api/v1/devices headers=%s", {"Authorization": f"Bearer {rejected_and_replaced}"})
    log.debug("token response %s", {"access_token": bearer, "refresh_token": source.refresh_token.reveal()})
    text = settings.log_file.read_text()
    assert "Refreshed the access token" in text  # the run was logged...
    for secret in (tokens.refresh_token, bearer, rejected_and_replaced, source.refresh_token.reveal()):
        assert secret not in text  # ...without a single credential


# --------------------------------------------------------------------------------------------------
# Where rotated tokens are kept
# --------------------------------------------------------------------------------------------------


async def test_rotated_tokens_are_written_back_to_client_yaml(sim: Sim, home: Path) -> None:
    tokens = sim.server.issue_tokens(user="admin")
    write_current_client_yaml(sim, home, tokens.refresh_token)
    path = home / ".config" / "flightctl" / "client.yaml"
    path.chmod(0o640)
    source = source_for(load_settings({}, {"HOME": str(home)}))
    bearer = await source.bearer()
    written = yaml.safe_load(path.read_text())
    assert written["authentication"]["refresh-token"] != tokens.refresh_token
    assert written["authentication"]["access-token"] == bearer
    assert written["service"]["server"] == sim.url
    assert written["authentication"]["auth-provider"]["auth-provider"]["metadata"]["name"] == PROVIDER
    assert path.stat().st_mode & 0o777 == 0o640
    assert not list(path.parent.glob(".client.yaml.*.tmp"))


async def test_read_only_client_yaml_falls_back_to_memory_with_one_log_line(
    sim: Sim, home: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import errno

    import token_store

    def read_only(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    # A read-only mount cannot be made here without privileges root-free CI lacks; its error can.
    monkeypatch.setattr(token_store, "_replace_atomically", read_only)
    tokens = sim.server.issue_tokens(user="admin")
    write_current_client_yaml(sim, home, tokens.refresh_token)
    source = source_for(load_settings({}, {"HOME": str(home)}))
    with caplog.at_level(logging.WARNING, logger="auth"):
        first = await source.bearer()
        sim.server.revoke(first)
        second = await source.refresh_after_rejection(first)
    assert second is not None
    assert await list_devices(sim, second) == 200
    warnings = [r.getMessage() for r in caplog.records if "keeping them in memory only" in r.getMessage()]
    assert len(warnings) == 1
    assert "Read-only file system" in warnings[0]


async def test_environment_session_is_resumed_from_the_state_file(sim: Sim, home: Path) -> None:
    tokens = sim.server.issue_tokens(user="admin")
    settings = oidc_settings(sim, home, tokens.refresh_token)
    await source_for(settings).bearer()
    # A second start with the same (now spent) configured token continues from the state file.
    again = source_for(oidc_settings(sim, home, tokens.refresh_token))
    assert isinstance(again, RefreshingTokenSource)
    sim.server.state.clear_requests()
    bearer = await again.bearer()
    assert await list_devices(sim, bearer) == 200
    state_files = list((home / ".local" / "state" / "flightctl-mcp").glob("session-*.json"))
    assert len(state_files) == 1
    assert tokens.refresh_token not in state_files[0].name
    assert state_files[0].stat().st_mode & 0o777 == 0o600


def test_legacy_client_yaml_gets_its_rotated_tokens_in_its_own_keys(tmp_path: Path) -> None:
    from token_store import ClientYamlStore, StoredTokens

    path = tmp_path / "client.yaml"
    path.write_text(
        "authentication:\n  token: old-access\n  auth-provider:\n    name: OIDC\n    config:\n"
        "      server: https://idp.example/token\n      client-id: flightctl\n      refresh-token: old\n"
        "service:\n  server: https://api.example\n"
    )
    store = ClientYamlStore(path, legacy=True)
    loaded = store.load()
    assert loaded is not None
    assert (loaded.refresh_token, loaded.access_token) == ("old", "old-access")
    store.save(StoredTokens("new", access_token="new-access", expires_at=1_900_000_000.5))
    document = yaml.safe_load(path.read_text())
    config = document["authentication"]["auth-provider"]["config"]
    assert config["refresh-token"] == "new"
    assert config["server"] == "https://idp.example/token"
    assert config["access-token-expiry"].startswith("2030-03-17T")
    assert document["authentication"]["token"] == "new-access"
    assert document["service"] == {"server": "https://api.example"}
    again = ClientYamlStore(path, legacy=True).load()
    assert again is not None
    assert again.expires_at == 1_900_000_000.5
