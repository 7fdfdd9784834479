"""Helpers for the end-to-end suites (test_flightctl_mcp.py, tests/test_e2e_*.py): ground truth from the
simulator's own REST API, the environments and client.yaml files users write, and the server started the
way users start it (in memory as `python main.py` builds it, or `python main.py` serving HTTP).

Servers are configured only as users configure them (environment variables, client.yaml), never by
building settings objects by hand.
"""

from __future__ import annotations

import base64
import contextlib
import os
import ssl
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import yaml
from fastmcp import Client

from config import load_settings
from main import build_server
from services import Services
from simulator.harness import SimulatorServer
from simulator.state import DEFAULT_ORG, PROVIDER_NAME
from tests.http_harness import main_process

OIDC_TOKEN_PATH = "/realms/flightctl/protocol/openid-connect/token"


# --- the simulator and ground truth -------------------------------------------------------------------


def truth(sim: SimulatorServer, ca_file: Path, path: str, *, user: str = "admin", **params: str) -> list[str]:
    """Names the simulator's REST API itself lists (all pages), in its order: what a tool must return."""
    headers = sim.auth_headers(user)
    names: list[str] = []
    query: dict[str, str] = {"limit": "1000", **params}
    with httpx.Client(verify=ssl.create_default_context(cafile=str(ca_file)), timeout=10) as http:
        while True:
            response = http.get(f"{sim.api_url}/{path}", params=query, headers=headers)
            response.raise_for_status()
            body = response.json()
            names += [item["metadata"]["name"] for item in body["items"]]
            if not body["metadata"].get("continue"):
                return names
            query["continue"] = body["metadata"]["continue"]


def requests_to(sim: SimulatorServer, path: str, method: str = "GET") -> list[dict[str, Any]]:
    """The simulator's record of requests to ``path`` (query parsed), oldest first."""
    found = []
    for entry in sim.state.requests():
        if entry["path"] == path and entry["method"] == method:
            found.append({**entry, "params": parse_qs(entry["query"])})
    return found


# --- how users configure the server -------------------------------------------------------------------


def base_env(home: Path, **settings: str) -> dict[str, str]:
    """A clean environment: a scratch HOME (so no real client.yaml is read), the log file inside it."""
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "HOME": str(home),
        "PATH": os.environ.get("PATH", ""),
        "LOG_FILE": str(home / "flightctl-mcp.log"),
        "REQUEST_TIMEOUT": "10",
        "FASTMCP_SHOW_SERVER_BANNER": "false",
        "FASTMCP_CHECK_FOR_UPDATES": "off",
    }
    env.update(settings)
    return env


def env_only(
    sim: SimulatorServer,
    ca_file: Path,
    home: Path,
    *,
    user: str = "admin",
    refresh_token: str | None = None,
    **extra: str,
) -> dict[str, str]:
    """The README's environment-only setup: API URL, bare realm URL, refresh token, CA file."""
    return base_env(
        home,
        API_BASE_URL=sim.base_url,
        OIDC_TOKEN_URL=sim.oidc_issuer,  # a bare realm URL: the server appends /protocol/openid-connect/token
        REFRESH_TOKEN=refresh_token or sim.issue_tokens(user).refresh_token,
        CA_CERT_PATH=str(ca_file),
        **extra,
    )


def current_client_yaml(
    sim: SimulatorServer,
    ca_file: Path,
    *,
    user: str = "admin",
    organization: str = DEFAULT_ORG,
    server: str | None = None,
    expired_access_token: bool = False,
) -> dict[str, Any]:
    """client.yaml as `flightctl login` (v1.x) writes it for an OIDC provider with the openid scope."""
    tokens = sim.issue_tokens(user)
    if expired_access_token:  # a file left from yesterday: its token is dead, its refresh token is not
        sim.expire(tokens.id_token)
    return {
        "authentication": {
            "access-token": tokens.access_token,
            "access-token-expiry": "2099-01-01T00:00:00.000000000Z",
            "auth-provider": {
                "auth-provider": {
                    "apiVersion": "v1beta1",
                    "kind": "AuthProvider",
                    "metadata": {"name": PROVIDER_NAME},
                    "spec": {
                        "providerType": "oidc",
                        "issuer": sim.oidc_issuer,
                        "clientId": "flightctl",
                        "clientSecret": "*****",
                        "enabled": True,
                        "scopes": ["openid", "profile", "email", "offline_access"],
                    },
                },
            },
            "id-token": tokens.id_token,
            "organizations-enabled": True,
            "refresh-token": tokens.refresh_token,
            "token-to-use": "id",
        },
        "organization": organization,
        "service": {
            "server": server or sim.base_url,
            "certificate-authority-data": ca_data(ca_file),
        },
    }


def ca_data(ca_file: Path) -> str:
    """A CA file as client.yaml's certificate-authority-data holds it (base64 of the PEM)."""
    return base64.b64encode(ca_file.read_bytes()).decode()


def write_yaml(path: Path, document: Mapping[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(dict(document)))
    path.chmod(0o600)
    return path


@contextlib.asynccontextmanager
async def in_memory(env: Mapping[str, str]) -> AsyncIterator[Client[Any]]:
    """The server exactly as `python main.py` builds it from ``env``, driven in memory."""
    settings = load_settings({}, env)
    services = Services.from_settings(settings)
    try:
        async with Client(build_server(settings, services)) as client:
            yield client
    finally:
        services.api.close()  # as the process exit would: no idle connection keeps the simulator waiting


@contextlib.contextmanager
def http_main_py(servers: Mapping[str, Mapping[str, str]], workdir: Path) -> Iterator[dict[str, str]]:
    """``python main.py`` once per named environment, each on a socket bound for it (tests/http_harness);
    yields base URLs once /healthz answered; stops them with SIGTERM (as podman stop does)."""
    with contextlib.ExitStack() as stack:
        urls = {}
        for name, env in servers.items():
            _, urls[name] = stack.enter_context(main_process(env, output=workdir / f"{name}.output"))
        yield urls
