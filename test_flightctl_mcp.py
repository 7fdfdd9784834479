"""End-to-end specification of flightctl-mcp: the real server, driven by a real MCP client, against the
Flight Control simulator over HTTPS with a throwaway CA.

Read top to bottom, this is what a user can rely on:

1. Transports: the same answers in memory, over stdio (``python main.py`` as a subprocess), over sse and
   over streamable-http (``python main.py`` on a free port); each query tool pages through its selection
   in small pages, every object once, selectors resent with every page.
2. The read-only checks of test_live_instance.py hold on the simulator (so they can be trusted on a real
   Flight Control), and that file works as a script and under pytest.
3. Configuration: each client.yaml format and the environment alone, the environment overriding the file.
4. TLS: CA_CERT_PATH, INSECURE_SKIP_VERIFY, the client.yaml CA, in that order; a wrong CA is refused.
5. Authentication: refresh at the OIDC URL and through the API proxy, rotation, expiry during a walk,
   a revoked or expired session telling the user to run `flightctl login`.
6. Errors: 400/401/403/404/429/503 become tool errors that say what happened; 429/503 are retried first.
7. Concurrency over streamable-http; stdout carries only protocol frames; no token reaches the log.

Servers are configured only as users configure them (environment variables, client.yaml), never by
building settings objects by hand. Ground truth comes from the simulator's own REST API.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import trustme
import yaml
from fastmcp import Client
from fastmcp.client.transports import SSETransport, StdioTransport, StreamableHttpTransport

from config import load_settings
from conftest import TLSFiles
from main import build_server
from services import Services
from simulator.harness import SimulatorServer
from simulator.state import DEFAULT_ORG, LAB_ORG, PROVIDER_NAME
from test_live_instance import (
    CHECKS,
    Check,
    answer_of,
    check_bad_selector_explains_grammar,
    check_unknown_device_is_not_found,
    error_of,
    walk,
)
from tests.http_harness import INITIALIZE, MCP_HEADERS, main_process, refused_port

ROOT = Path(__file__).resolve().parent
MAIN = ROOT / "main.py"
START_TIMEOUT = 30.0
OIDC_TOKEN_PATH = "/realms/flightctl/protocol/openid-connect/token"
PROXY_TOKEN_PATH = f"/api/v1/auth/{PROVIDER_NAME}/token"
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")

ClientFactory = Callable[[], contextlib.AbstractAsyncContextManager[Client[Any]]]


# --- the simulator and ground truth -------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim(simulator_tls_files: TLSFiles) -> Iterator[SimulatorServer]:
    """This module's HTTPS simulator (30 devices); tests that add faults have them cleared afterwards."""
    with SimulatorServer(
        devices=30, tls_cert=simulator_tls_files.cert, tls_key=simulator_tls_files.key
    ) as server:
        yield server


@pytest.fixture(autouse=True)
def _no_faults_left_behind(sim: SimulatorServer) -> Iterator[None]:
    yield
    sim.faults.clear()


@pytest.fixture(scope="module")
def ca_file(simulator_tls_files: TLSFiles) -> Path:
    return simulator_tls_files.ca


@pytest.fixture(scope="module")
def wrong_ca_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA that did not sign the simulator's certificate."""
    path = tmp_path_factory.mktemp("wrong-ca") / "wrong-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


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


def refresh_token_is_spent(sim: SimulatorServer, ca_file: Path, refresh_token: str) -> str:
    """What the identity provider says now when ``refresh_token`` is used (once spent: invalid_grant)."""
    response = httpx.post(
        sim.oidc_token_url,
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": "flightctl"},
        verify=ssl.create_default_context(cafile=str(ca_file)),
    )
    return f"{response.status_code} {response.json().get('error')}"


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


def legacy_client_yaml(sim: SimulatorServer, ca_file: Path, *, user: str = "admin") -> dict[str, Any]:
    """A pre-1.0 flightctl client.yaml: auth-provider.config with server/client-id/refresh-token."""
    return {
        "service": {"server": sim.base_url, "certificate-authority": str(ca_file)},
        "authentication": {
            "auth-provider": {
                "name": "oidc",
                "config": {
                    "server": sim.oidc_issuer,
                    "client-id": "flightctl",
                    "refresh-token": sim.issue_tokens(user).refresh_token,
                },
            }
        },
    }


def ca_data(ca_file: Path) -> str:
    """A CA file as client.yaml's certificate-authority-data holds it (base64 of the PEM)."""
    return base64.b64encode(ca_file.read_bytes()).decode()


def text_of(path: Path) -> str:
    return path.read_text(errors="replace")


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


def stdio_transport(env: Mapping[str, str], stderr_file: Path) -> StdioTransport:
    """``python main.py`` over stdio; the child gets exactly ``env`` (fastmcp passes only a few vars)."""
    return StdioTransport(
        command=sys.executable,
        args=[str(MAIN)],
        env=dict(env),
        cwd=str(ROOT),
        keep_alive=False,
        log_file=stderr_file,
    )


@contextlib.contextmanager
def http_main_py(servers: Mapping[str, Mapping[str, str]], workdir: Path) -> Iterator[dict[str, str]]:
    """``python main.py`` once per named environment, each on a socket bound for it (tests/http_harness);
    yields base URLs once /healthz answered; stops them with SIGTERM (as podman stop does)."""
    with contextlib.ExitStack() as stack:
        urls = {}
        for name, env in servers.items():
            _, urls[name] = stack.enter_context(main_process(env, output=workdir / f"{name}.output"))
        yield urls


@pytest.fixture(scope="module")
def http_servers(
    sim: SimulatorServer, ca_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """`python main.py` serving sse and streamable-http (the module's shared subprocesses)."""
    work = tmp_path_factory.mktemp("http-servers")
    environments = {
        transport: env_only(sim, ca_file, work / transport, MCP_TRANSPORT=transport, MCP_HOST="127.0.0.1")
        for transport in ("sse", "streamable-http")
    }
    with http_main_py(environments, work) as urls:
        yield urls


TRANSPORTS = ("memory", "stdio", "sse", "streamable-http", "streamable-http-legacy")


@pytest.fixture(params=TRANSPORTS)
def connect(
    request: pytest.FixtureRequest, sim: SimulatorServer, ca_file: Path, tmp_path: Path
) -> ClientFactory:
    """A way to open an MCP client on the server over one transport, as admin in the default org."""
    transport: str = request.param
    if transport == "memory":
        env = env_only(sim, ca_file, tmp_path / "home")
        return lambda: in_memory(env)
    if transport == "stdio":
        # the Claude Desktop setup: `flightctl login` wrote client.yaml, the server runs over stdio
        config = write_yaml(tmp_path / "flightctl" / "client.yaml", current_client_yaml(sim, ca_file))
        env = base_env(tmp_path / "home", CLIENT_CONFIG_PATH=str(config))
        return lambda: Client(stdio_transport(env, tmp_path / "stderr.log"), timeout=30)
    urls: dict[str, str] = request.getfixturevalue("http_servers")
    if transport == "sse":
        return lambda: Client(SSETransport(urls["sse"] + "/sse"), timeout=30)
    url = urls["streamable-http"] + "/mcp"
    mode = "legacy" if transport.endswith("legacy") else "auto"
    return lambda: Client(StreamableHttpTransport(url), timeout=30, mode=mode)


# --- 1. every query tool over every transport ---------------------------------------------------------

# tool -> (API path, tool arguments, the same selection in the API's own parameter names)
SELECTIONS: dict[str, tuple[str, dict[str, Any], dict[str, str]]] = {
    "query_devices": (
        "devices",
        {"label_selector": "env=prod", "field_selector": "metadata.owner", "limit": 4},
        {"labelSelector": "env=prod", "fieldSelector": "metadata.owner"},
    ),
    "query_fleets": (
        "fleets",
        {
            "label_selector": "region,workload!=camera",
            "field_selector": "metadata.creationTimestamp>=2000-01-01T00:00:00Z",
            "limit": 1,
        },
        {
            "labelSelector": "region,workload!=camera",
            "fieldSelector": "metadata.creationTimestamp>=2000-01-01T00:00:00Z",
        },
    ),
    "query_events": (
        "events",
        {"field_selector": "involvedObject.kind=Device", "order": "asc", "limit": 20},
        {"fieldSelector": "involvedObject.kind=Device", "order": "asc"},
    ),
    "query_enrollment_requests": (
        "enrollmentrequests",
        {"label_selector": "!decommissioned", "field_selector": "status.approval.approved=true", "limit": 10},
        {"labelSelector": "!decommissioned", "fieldSelector": "status.approval.approved=true"},
    ),
    "query_repositories": (
        "repositories",
        {"field_selector": "spec.type in (git,oci)", "limit": 2},
        {"fieldSelector": "spec.type in (git,oci)"},
    ),
    "query_resource_syncs": (
        "resourcesyncs",
        {"field_selector": "spec.repository!=edge-config", "limit": 1},
        {"fieldSelector": "spec.repository!=edge-config"},
    ),
}


async def test_each_query_tool_pages_through_its_selection_over_each_transport(
    connect: ClientFactory, sim: SimulatorServer, ca_file: Path
) -> None:
    async with connect() as client:
        tools = {tool.name: tool for tool in await client.list_tools()}
        assert set(SELECTIONS) <= set(tools)
        for tool, (path, arguments, api_params) in SELECTIONS.items():
            expected = truth(sim, ca_file, path, **api_params)
            limit = arguments["limit"]
            assert len(expected) > limit, f"{tool}: the selection must span several pages"
            assert len(expected) < len(truth(sim, ca_file, path)), f"{tool}: the selectors must narrow"
            sim.state.clear_requests()

            names, answers = await walk(client, tool, arguments)

            assert names == expected, f"{tool} walked {names}, the API lists {expected}"
            assert answers[0]["total"] == len(expected)
            assert all(a["returned"] <= limit for a in answers)
            assert len(answers) == -(-len(expected) // limit)  # ceil: full pages, then the rest
            pages = requests_to(sim, f"/api/v1/{path}")
            assert len(pages) >= 2, f"{tool}: one API page cannot hold {len(expected)} at limit {limit}"
            for number, page in enumerate(pages):
                for key, value in api_params.items():
                    assert page["params"].get(key) == [value], f"{tool} page {number} lost {key}: {page}"
                assert int(page["params"]["limit"][0]) <= 1000
                assert ("continue" in page["params"]) == (number > 0), f"{tool} page {number}: {page}"


# --- 2. the live checks, on the simulator -------------------------------------------------------------


@pytest.mark.parametrize("transport", ["memory", "streamable-http"])
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
async def test_live_checks_hold_on_the_simulator(
    check: Check,
    transport: str,
    request: pytest.FixtureRequest,
    sim: SimulatorServer,
    ca_file: Path,
    tmp_path: Path,
) -> None:
    if transport == "memory":
        async with in_memory(env_only(sim, ca_file, tmp_path)) as client:
            detail = await check(client)
    else:
        url = request.getfixturevalue("http_servers")["streamable-http"] + "/mcp"
        async with Client(url, timeout=30) as client:
            detail = await check(client)
    assert detail


def test_live_instance_script_prints_a_report(sim: SimulatorServer, ca_file: Path, tmp_path: Path) -> None:
    """`python test_live_instance.py` (as the README promises) runs every check and says what passed."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "test_live_instance.py")],
        cwd=ROOT,
        env=env_only(sim, ca_file, tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert sum(line.startswith("  ok ") for line in lines) == len(CHECKS), result.stdout
    assert lines[-1] == "result: all checks passed"


def run_live_tests_under_pytest(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """test_live_instance.py under pytest in a child process with exactly ``env``."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "test_live_instance.py", "-q", "-rs", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("live", ["1", None], ids=["configured", "not-configured"])
def test_live_instance_under_pytest_runs_when_asked_and_skips_with_a_reason(
    live: str | None, sim: SimulatorServer, ca_file: Path, tmp_path: Path
) -> None:
    env = env_only(sim, ca_file, tmp_path) if live else base_env(tmp_path)
    if live:
        env["FLIGHTCTL_MCP_LIVE"] = live
    result = run_live_tests_under_pytest(env)
    assert result.returncode == 0, result.stdout + result.stderr
    if live:
        assert f"{len(CHECKS)} passed" in result.stdout, result.stdout
    else:
        skipped = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
        assert skipped, result.stdout
        assert all("FLIGHTCTL_MCP_LIVE=1" in line for line in skipped), skipped
        assert f"{len(CHECKS)} skipped" in result.stdout, result.stdout


def test_live_instance_with_flag_but_no_configuration_skips_with_a_reason(tmp_path: Path) -> None:
    """FLIGHTCTL_MCP_LIVE=1 in a HOME without client.yaml and without API_BASE_URL: nothing to check
    against, so every live test skips saying so, and the script exits 2 with one line of reason."""
    env = base_env(tmp_path / "home", FLIGHTCTL_MCP_LIVE="1")
    result = run_live_tests_under_pytest(env)
    assert result.returncode == 0, result.stdout + result.stderr
    skipped = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    assert skipped, result.stdout
    assert all("no Flight Control configured" in line for line in skipped), skipped
    assert f"{len(CHECKS)} skipped" in result.stdout, result.stdout
    assert "passed" not in result.stdout, result.stdout

    script = subprocess.run(
        [sys.executable, str(ROOT / "test_live_instance.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert script.returncode == 2, script.stdout + script.stderr
    lines = script.stdout.splitlines()
    assert len(lines) == 1, script.stdout
    assert "no Flight Control configured" in lines[0], lines
    assert "flightctl login" in lines[0], lines
    assert "API_BASE_URL" in lines[0], lines


# --- 3. configuration ---------------------------------------------------------------------------------

CONFIG_SOURCES = ("environment only", "current client.yaml", "legacy client.yaml")


@pytest.mark.parametrize("source", CONFIG_SOURCES)
async def test_configuration_from_each_source(
    source: str, sim: SimulatorServer, ca_file: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    expected_org = DEFAULT_ORG
    if source == "environment only":
        env = env_only(sim, ca_file, home)
        token_path = OIDC_TOKEN_PATH
    elif source == "current client.yaml":
        # at the default location, for a user of two organizations who chose the lab one; the token in
        # the file has expired, so the server must refresh it through Flight Control's token proxy
        expected_org = LAB_ORG
        write_yaml(
            home / ".config" / "flightctl" / "client.yaml",
            current_client_yaml(sim, ca_file, user="multi", organization=LAB_ORG, expired_access_token=True),
        )
        env = base_env(home)
        token_path = PROXY_TOKEN_PATH
    else:
        config = write_yaml(tmp_path / "legacy.yaml", legacy_client_yaml(sim, ca_file))
        env = base_env(home, CLIENT_CONFIG_PATH=str(config))
        token_path = OIDC_TOKEN_PATH
    user = "multi" if expected_org == LAB_ORG else "admin"
    sim.state.clear_requests()

    async with in_memory(env) as client:
        names, _ = await walk(client, "query_devices", {"limit": 20})
    refreshes = [r for r in sim.state.requests() if r["method"] == "POST" and "token" in r["path"]]
    listed = requests_to(sim, "/api/v1/devices")

    assert names == truth(sim, ca_file, "devices", user=user, org_id=expected_org)
    assert refreshes, "the server never refreshed its token"
    assert {r["path"] for r in refreshes} == {token_path}
    assert all(r["status"] == 200 for r in refreshes), refreshes
    assert listed
    assert all(r["params"].get("org_id", [DEFAULT_ORG]) == [expected_org] for r in listed), listed
    assert all(r["headers"].get("flightctl-api-version") == "v1beta1" for r in listed), listed


async def test_environment_overrides_client_yaml(sim: SimulatorServer, ca_file: Path, tmp_path: Path) -> None:
    """client.yaml names a server that is gone and the lab organization; the environment fixes the
    server and picks the default organization, while the file still supplies the session and the CA."""
    home = tmp_path / "home"
    with refused_port() as port:
        dead = f"https://127.0.0.1:{port}"
        write_yaml(
            home / ".config" / "flightctl" / "client.yaml",
            current_client_yaml(sim, ca_file, user="multi", organization=LAB_ORG, server=dead),
        )
        async with in_memory(base_env(home)) as client:
            message = await error_of(client, "query_devices", {"limit": 5})
    assert dead in message, message

    async with in_memory(base_env(home, API_BASE_URL=sim.base_url, ORG_ID=DEFAULT_ORG)) as client:
        names, _ = await walk(client, "query_devices", {"limit": 50})
    assert names == truth(sim, ca_file, "devices", user="multi", org_id=DEFAULT_ORG)
    assert not set(names) & set(truth(sim, ca_file, "devices", user="multi", org_id=LAB_ORG))


# --- 4. TLS -------------------------------------------------------------------------------------------

# (id, environment TLS settings, client.yaml service TLS keys, refused?) with "{ca}" / "{wrong}" for files
TLS_CASES: list[tuple[str, dict[str, str], dict[str, str] | None, bool]] = [
    ("CA_CERT_PATH", {"CA_CERT_PATH": "{ca}"}, None, False),
    ("INSECURE_SKIP_VERIFY", {"INSECURE_SKIP_VERIFY": "true"}, None, False),
    ("client.yaml certificate-authority-data", {}, {"certificate-authority-data": "{ca-data}"}, False),
    ("client.yaml certificate-authority", {}, {"certificate-authority": "{ca}"}, False),
    ("client.yaml insecureSkipVerify", {}, {"insecureSkipVerify": "true"}, False),
    (
        "CA_CERT_PATH wins over client.yaml",
        {"CA_CERT_PATH": "{wrong}"},
        {"certificate-authority": "{ca}"},
        True,
    ),
    (
        "INSECURE_SKIP_VERIFY wins over client.yaml",
        {"INSECURE_SKIP_VERIFY": "true"},
        {"certificate-authority": "{wrong}"},
        False,
    ),
    (
        "CA_CERT_PATH wins over INSECURE_SKIP_VERIFY",
        {"CA_CERT_PATH": "{wrong}", "INSECURE_SKIP_VERIFY": "true"},
        None,
        True,
    ),
    ("wrong CA", {"CA_CERT_PATH": "{wrong}"}, None, True),
    ("system bundle", {}, None, True),
]


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
@pytest.mark.parametrize(
    ("env_tls", "yaml_tls", "refused"), [c[1:] for c in TLS_CASES], ids=[c[0] for c in TLS_CASES]
)
async def test_each_tls_mode(
    env_tls: dict[str, str],
    yaml_tls: dict[str, str] | None,
    refused: bool,
    sim: SimulatorServer,
    ca_file: Path,
    wrong_ca_file: Path,
    tmp_path: Path,
) -> None:
    values = {
        "{ca}": str(ca_file),
        "{wrong}": str(wrong_ca_file),
        "{ca-data}": ca_data(ca_file),
    }
    env = base_env(tmp_path / "home", ACCESS_TOKEN=sim.issue_access_token("admin", ttl=600))
    env.update({key: values.get(value, value) for key, value in env_tls.items()})
    if yaml_tls is None:
        env["API_BASE_URL"] = sim.base_url
    else:
        service: dict[str, Any] = {"server": sim.base_url}
        service.update({k: True if v == "true" else values.get(v, v) for k, v in yaml_tls.items()})
        env["CLIENT_CONFIG_PATH"] = str(write_yaml(tmp_path / "client.yaml", {"service": service}))

    async with in_memory(env) as client:
        if refused:
            message = await error_of(client, "query_fleets", {"limit": 5})
            assert "TLS" in message, message
            assert "CERTIFICATE_VERIFY_FAILED" in message.upper().replace(" ", "_"), message
            assert "CA_CERT_PATH" in message, message
        else:
            answer = await answer_of(client, "query_fleets", {"limit": 5})
            assert [i["metadata"]["name"] for i in answer["data"]] == truth(sim, ca_file, "fleets")


# --- 5. authentication --------------------------------------------------------------------------------


async def test_short_lived_tokens_are_refreshed_and_rotated_during_a_walk(
    sim: SimulatorServer, ca_file: Path, tmp_path: Path
) -> None:
    """Access tokens live 2 s, the walk takes longer: tokens expire mid-pagination, each refresh spends
    the refresh token (the simulator rotates it), and the walk still returns every device once."""
    tokens = sim.state.issue_tokens("admin", access_ttl=2)
    env = env_only(sim, ca_file, tmp_path, refresh_token=tokens.refresh_token)
    latency = 0.15  # 15 pages and two refreshes take at least 2.4 s: longer than one token lives
    sim.faults.set_latency(latency * 1000)
    sim.state.clear_requests()

    async with in_memory(env) as client:
        names, answers = await walk(client, "query_devices", {"limit": 2})
    refreshes = requests_to(sim, OIDC_TOKEN_PATH, "POST")
    pages = requests_to(sim, "/api/v1/devices")

    assert names == truth(sim, ca_file, "devices")
    assert len(answers) == 15
    # the first token was issued at most latency + 2 s after its refresh request arrived
    first_expiry = refreshes[0]["time"] + latency + 2
    assert pages[-1]["time"] > first_expiry, "the walk must outlive the first token to mean anything"
    assert len(refreshes) >= 2, f"{len(refreshes)} refresh(es) for a walk that outlived its token"
    assert all(r["status"] == 200 for r in refreshes), "a refresh was refused: a spent token was reused"
    assert refresh_token_is_spent(sim, ca_file, tokens.refresh_token) == "400 invalid_grant"


@pytest.mark.parametrize("session", ["revoked refresh token", "revoked access token", "expired session"])
async def test_a_dead_session_says_to_run_flightctl_login(
    session: str, make_simulator: Callable[..., SimulatorServer], ca_file: Path, tmp_path: Path
) -> None:
    private = make_simulator(devices=5)
    if session == "revoked access token":
        token = private.issue_access_token("admin", ttl=600)
        private.revoke(token)
        env = base_env(tmp_path, API_BASE_URL=private.base_url, CA_CERT_PATH=str(ca_file), ACCESS_TOKEN=token)
    else:
        tokens = private.issue_tokens("admin")
        env = env_only(private, ca_file, tmp_path, refresh_token=tokens.refresh_token)
        if session == "revoked refresh token":
            private.revoke(tokens.refresh_token)

    async with in_memory(env) as client:
        if session == "expired session":
            assert (await answer_of(client, "query_devices", {"limit": 2}))["returned"] == 2
            private.state.clock.advance(private.state.refresh_token_ttl + 60)  # a long weekend
        message = await error_of(client, "query_devices", {"limit": 2})

    assert "flightctl login" in message, message
    if session == "revoked access token":
        assert "401" in message, message
    else:
        assert "invalid_grant" in message, message


# --- 6. errors ----------------------------------------------------------------------------------------


async def test_api_errors_become_tool_errors_that_say_what_to_do(
    sim: SimulatorServer, ca_file: Path, tmp_path: Path
) -> None:
    async with in_memory(env_only(sim, ca_file, tmp_path / "admin")) as client:
        await check_bad_selector_explains_grammar(client)  # 400 with the server's grammar
        await check_unknown_device_is_not_found(client)  # 404 naming the tool that lists names
        message = await error_of(client, "query_events", {"field_selector": "type>3"})
        assert "400" in message, message
        assert 'operator "gt" is unsupported' in message, message

    async with in_memory(env_only(sim, ca_file, tmp_path / "viewer", user="viewer")) as client:
        assert (await answer_of(client, "query_devices", {"limit": 1}))["returned"] == 1
        message = await error_of(client, "query_events", {"limit": 1})  # viewers may not read events
    assert "403" in message, message
    assert "Forbidden" in message, message
    assert "administrator" in message, message


async def test_429_and_503_are_retried_then_given_up_with_a_clear_error(
    sim: SimulatorServer, ca_file: Path, tmp_path: Path
) -> None:
    async with in_memory(env_only(sim, ca_file, tmp_path)) as client:
        await answer_of(client, "query_devices", {"limit": 1})  # sign in before timing anything

        # one 429 (Retry-After: 1) and one 503: retried behind the scenes, the user sees answers
        sim.faults.rate_limit(1, retry_after=1, path_prefix="/api/v1/devices")
        sim.faults.unavailable(1, path_prefix="/api/v1/fleets")
        started = time.monotonic()
        devices, fleets = await asyncio.gather(
            answer_of(client, "query_devices", {"limit": 3}),
            answer_of(client, "query_fleets", {"limit": 3}),
        )
        assert devices["returned"] == 3
        assert fleets["returned"] == 3
        assert time.monotonic() - started >= 1.0, "Retry-After: 1 was not honoured"
        assert [r["status"] for r in requests_to(sim, "/api/v1/devices")][-2:] == [429, 200]
        assert [r["status"] for r in requests_to(sim, "/api/v1/fleets")][-2:] == [503, 200]

        # a 429 and a 503 that do not stop: given up within the cap, and the user is told
        sim.state.clear_requests()
        sim.faults.rate_limit(100, retry_after=1, path_prefix="/api/v1/devices")
        sim.faults.unavailable(100, retry_after=1, path_prefix="/api/v1/fleets")
        limited, unavailable = await asyncio.gather(
            error_of(client, "query_devices", {"limit": 3}), error_of(client, "query_fleets", {"limit": 3})
        )

    assert "429" in limited, limited
    assert "retried" in limited, limited
    assert "rate limit" in limited.lower(), limited
    assert "503" in unavailable, unavailable
    assert "unavailable" in unavailable.lower(), unavailable
    assert "retried" in unavailable, unavailable
    # Retried, but a bounded number of times (the API client's four attempts), then given up.
    assert 1 < len(requests_to(sim, "/api/v1/devices")) <= 4
    assert 1 < len(requests_to(sim, "/api/v1/fleets")) <= 4


# --- 7. concurrency, stdout, the log file -------------------------------------------------------------


async def test_custom_mcp_path_is_served(sim: SimulatorServer, ca_file: Path, tmp_path: Path) -> None:
    """MCP_PATH=/custom: streamable-http answers there, and the default /mcp is not served."""
    env = env_only(
        sim,
        ca_file,
        tmp_path / "home",
        MCP_TRANSPORT="streamable-http",
        MCP_HOST="127.0.0.1",
        MCP_PATH="/custom",
    )
    with http_main_py({"custom": env}, tmp_path) as urls:
        base = urls["custom"]
        async with Client(StreamableHttpTransport(base + "/custom"), timeout=30) as client:
            answer = await answer_of(client, "query_devices", {"limit": 3})
        async with httpx.AsyncClient(timeout=10) as http:
            default = await http.post(base + "/mcp", json=INITIALIZE, headers=MCP_HEADERS)
    assert [i["metadata"]["name"] for i in answer["data"]] == truth(sim, ca_file, "devices")[:3]
    assert default.status_code == 404, (default.status_code, default.text[:300])


async def test_sixteen_concurrent_calls_over_streamable_http_run_together(
    http_servers: dict[str, str], sim: SimulatorServer, ca_file: Path
) -> None:
    latency = 0.5
    names = truth(sim, ca_file, "devices")[:16]
    async with Client(http_servers["streamable-http"] + "/mcp", timeout=30) as client:
        await answer_of(client, "query_devices", {"limit": 1})  # the server has signed in
        sim.faults.set_latency(latency * 1000)
        try:
            answers = await asyncio.gather(
                *(answer_of(client, "query_devices", {"field_selector": f"metadata.name={n}"}) for n in names)
            )
            together = sim.faults.most_waiting
        finally:
            sim.faults.set_latency(0)
    assert [[i["metadata"]["name"] for i in a["data"]] for a in answers] == [[n] for n in names]
    # One after another, Flight Control would never see more than one of them waiting at a time.
    assert together >= len(names) // 2, f"at most {together} of {len(names)} calls ran together"


async def _read_frame(stdout: asyncio.StreamReader, lines: list[bytes], wanted_id: int) -> dict[str, Any]:
    """Read stdout lines until the response ``wanted_id`` arrives; keep every line for inspection."""
    while True:
        line = await asyncio.wait_for(stdout.readline(), timeout=30)
        assert line, f"stdout closed before response {wanted_id}"
        lines.append(line)
        frame = json.loads(line)
        if frame.get("id") == wanted_id:
            return dict(frame)


async def test_stdio_stdout_carries_only_protocol_frames_and_the_log_holds_no_token(
    sim: SimulatorServer, ca_file: Path, tmp_path: Path
) -> None:
    tokens = sim.issue_tokens("admin")
    env = env_only(
        sim, ca_file, tmp_path, refresh_token=tokens.refresh_token, LOG_LEVEL="DEBUG", MCP_LOG_LEVEL="debug"
    )
    requests: list[dict[str, Any]] = [
        INITIALIZE,
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "query_devices", "arguments": {"limit": 3}},
        },
        {
            "jsonrpc": "2.0",
            "id": 4,
            "method": "tools/call",
            "params": {"name": "query_devices", "arguments": {"name": "nope"}},
        },
    ]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(MAIN),
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    assert process.stderr is not None
    lines: list[bytes] = []
    try:
        responses = {}
        for message in requests:
            process.stdin.write(json.dumps(message).encode() + b"\n")
            await process.stdin.drain()
            if "id" in message:
                responses[message["id"]] = await _read_frame(process.stdout, lines, int(message["id"]))
        process.stdin.close()
        rest, stderr = await asyncio.wait_for(process.communicate(), timeout=20)
        lines += rest.splitlines(keepends=True)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert process.returncode == 0, stderr.decode(errors="replace")
    for line in lines:
        frame = json.loads(line)  # a stray print would fail here
        assert frame["jsonrpc"] == "2.0", line
    assert responses[1]["result"]["serverInfo"]["name"] == "flightctl-mcp"
    assert "query_devices" in {t["name"] for t in responses[2]["result"]["tools"]}
    answer = json.loads(responses[3]["result"]["content"][0]["text"])
    assert answer["returned"] == 3
    assert responses[4]["result"]["isError"] is True
    assert "404" in responses[4]["result"]["content"][0]["text"]

    log = text_of(Path(env["LOG_FILE"]))
    assert "query_devices" in log, "the log should record the run (else 'no token in it' proves nothing)"
    assert "Refreshed the access token" in log, log[-2000:]
    for secret in (tokens.refresh_token, tokens.access_token, tokens.id_token):
        assert secret not in log
    assert not JWT.findall(log), JWT.findall(log)[:3]
    assert not JWT.findall(stderr.decode(errors="replace"))
