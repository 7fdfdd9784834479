"""Rotating refresh tokens across restarts, processes and the `flightctl` CLI, over real sockets.

The simulator rotates like Keycloak with "Revoke Refresh Token": each refresh token works once, a reused
one gets invalid_grant "Maximum allowed refresh token reuse exceeded". Access tokens live 2 s (1 s for the
concurrent test), so the servers under test refresh all the time. Every server is a real ``main.py``
subprocess spoken to over stdio by a real MCP client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import stat
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastmcp import Client
from fastmcp.client.transports import StdioTransport

from simulator.__main__ import client_config, write_client_config
from simulator.harness import SimulatorServer

ROOT = Path(__file__).resolve().parent.parent
RESTARTS = 3


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(devices=5, lab_devices=1, access_token_ttl=2) as server:
        yield server


def client_yaml(home: Path) -> Path:
    return home / ".config" / "flightctl" / "client.yaml"


def login(sim: SimulatorServer, home: Path) -> Path:
    """What `flightctl login` leaves behind: a client.yaml with a fresh session."""
    path = client_yaml(home)
    tokens = sim.issue_tokens("admin")
    config = client_config(sim.state, user="admin", access_token=None, refresh=tokens, ca_file=None)
    config["extra-key-from-a-newer-cli"] = {"kept": True}
    write_client_config(path, config)
    return path


def base_environ(home: Path, **extra: str) -> dict[str, str]:
    return {
        "HOME": str(home),
        "PATH": os.environ.get("PATH", ""),
        "REQUEST_TIMEOUT": "5",
        "FASTMCP_SHOW_SERVER_BANNER": "false",
        "FASTMCP_CHECK_FOR_UPDATES": "off",
        **extra,
    }


@contextlib.asynccontextmanager
async def server(environ: dict[str, str]) -> AsyncIterator[Client[Any]]:
    """``python main.py`` over stdio; stopped (stdin closed, process ended) when the block ends."""
    transport = StdioTransport(
        command=sys.executable, args=[str(ROOT / "main.py")], env=environ, cwd=str(ROOT)
    )
    async with Client(transport, timeout=60) as client:
        yield client


async def answers(client: Client[Any]) -> bool:
    result = await client.call_tool("query_devices", {"limit": 1}, raise_on_error=False)
    return not result.is_error


def token_posts(sim: SimulatorServer) -> list[dict[str, Any]]:
    return [r for r in sim.state.requests() if r["method"] == "POST" and r["path"].endswith("/token")]


def direct_refresh(sim: SimulatorServer, refresh_token: str) -> httpx.Response:
    """A refresh grant as the CLI sends it, straight to the simulator."""
    return httpx.post(
        sim.token_proxy_url,
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": "flightctl"},
    )


def stored(path: Path) -> dict[str, Any]:
    authentication: dict[str, Any] = yaml.safe_load(path.read_text())["authentication"]
    return authentication


async def test_restarts_with_client_yaml_keep_the_session_alive_for_the_cli_too(
    sim: SimulatorServer, tmp_path: Path
) -> None:
    path = login(sim, tmp_path)
    mode = stat.S_IMODE(path.stat().st_mode)
    refreshes = []
    for _ in range(RESTARTS):
        before = len(token_posts(sim))
        async with server(base_environ(tmp_path)) as client:
            assert await answers(client)
            sim.expire(stored(path)["access-token"])  # whatever the clock says, the next call refreshes
            assert await answers(client)
        refreshes.append(len(token_posts(sim)) - before)
    assert all(count >= 1 for count in refreshes), refreshes
    assert all(r["status"] == 200 for r in token_posts(sim))  # never a reused (dead) refresh token
    # The session in client.yaml is the live one: the CLI can refresh with it.
    assert direct_refresh(sim, stored(path)["refresh-token"]).status_code == 200
    document = yaml.safe_load(path.read_text())
    assert document["extra-key-from-a-newer-cli"] == {"kept": True}
    assert document["service"]["server"] == sim.base_url
    assert stat.S_IMODE(path.stat().st_mode) == mode


async def test_a_token_the_cli_rotated_meanwhile_is_used(sim: SimulatorServer, tmp_path: Path) -> None:
    path = login(sim, tmp_path)
    async with server(base_environ(tmp_path)) as client:
        assert await answers(client)
        # The CLI refreshes on its own and rewrites client.yaml; the server's refresh token is now dead.
        cli = direct_refresh(sim, stored(path)["refresh-token"]).json()
        document = yaml.safe_load(path.read_text())
        document["authentication"].update(
            {"refresh-token": cli["refresh_token"], "access-token": cli["access_token"]}
        )
        path.write_text(yaml.safe_dump(document))
        sim.expire(cli["access_token"])
        sim.expire(stored(path)["access-token"])
        assert await answers(client)
    assert {r["status"] for r in token_posts(sim)} == {200}  # the CLI's token was used, not the dead one
    assert direct_refresh(sim, stored(path)["refresh-token"]).status_code == 200


async def test_restarts_with_a_refresh_token_from_the_environment(
    sim: SimulatorServer, tmp_path: Path
) -> None:
    configured = sim.issue_tokens("admin").refresh_token
    environ = base_environ(
        tmp_path,
        API_BASE_URL=sim.base_url,
        OIDC_TOKEN_URL=sim.oidc_token_url,
        REFRESH_TOKEN=configured,
        XDG_STATE_HOME=str(tmp_path / "state"),
    )
    for _ in range(RESTARTS):
        async with server(environ) as client:
            assert await answers(client)
    assert all(r["status"] == 200 for r in token_posts(sim))
    assert len(token_posts(sim)) >= RESTARTS  # 2 s tokens: every start refreshed
    files = list((tmp_path / "state" / "flightctl-mcp").glob("session-*.json"))
    assert len(files) == 1
    assert configured not in files[0].name
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    live = json.loads(files[0].read_text())["refresh_token"]
    assert direct_refresh(sim, live).status_code == 200


async def test_two_servers_sharing_client_yaml_never_spend_the_same_refresh_token(tmp_path: Path) -> None:
    """Two processes, 1 s tokens, calls in both until they have refreshed 20 times between them."""
    with SimulatorServer(devices=5, lab_devices=1, access_token_ttl=1) as sim:
        login(sim, tmp_path)
        async with server(base_environ(tmp_path)) as first, server(base_environ(tmp_path)) as second:
            rounds = 0
            while len(token_posts(sim)) < 20 and rounds < 2000:
                results = await asyncio.gather(answers(first), answers(second))
                assert all(results), f"round {rounds}: {results}"
                rounds += 1
        statuses = [r["status"] for r in token_posts(sim)]
        assert len(statuses) >= 20
        assert set(statuses) == {200}, statuses
        assert direct_refresh(sim, stored(client_yaml(tmp_path))["refresh-token"]).status_code == 200
