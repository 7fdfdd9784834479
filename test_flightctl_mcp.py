"""End-to-end specification of flightctl-mcp: the real server, driven by a real MCP client, against the
Flight Control simulator over HTTPS with a throwaway CA.

Read top to bottom, this is what a user can rely on over every transport:

1. Transports: the same answers in memory, over stdio (``python main.py`` as a subprocess), over sse and
   over streamable-http (``python main.py`` on a free port); each query tool pages through its selection
   in small pages, every object once, selectors resent with every page.
2. Concurrency over streamable-http; stdout carries only protocol frames; no token reaches the log.

The specification goes on topic by topic in tests/test_e2e_live_checks.py (the read-only checks of
test_live_instance.py hold on the simulator), tests/test_e2e_configuration.py (client.yaml, the
environment, TLS) and tests/test_e2e_auth_and_errors.py (token refresh, dead sessions, API errors).

Servers are configured only as users configure them (environment variables, client.yaml), never by
building settings objects by hand (tests/e2e_harness.py). Ground truth comes from the simulator's own REST
API.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastmcp import Client
from fastmcp.client.transports import SSETransport, StdioTransport, StreamableHttpTransport

from simulator.harness import SimulatorServer
from test_live_instance import answer_of, walk
from tests.e2e_harness import (
    base_env,
    current_client_yaml,
    env_only,
    http_main_py,
    in_memory,
    requests_to,
    truth,
    write_yaml,
)
from tests.http_harness import INITIALIZE, MCP_HEADERS

ROOT = Path(__file__).resolve().parent
MAIN = ROOT / "main.py"
START_TIMEOUT = 30.0
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")

ClientFactory = Callable[[], contextlib.AbstractAsyncContextManager[Client[Any]]]

pytestmark = pytest.mark.usefixtures("no_faults_left_behind")


# --- how users start the server -----------------------------------------------------------------------


def text_of(path: Path) -> str:
    return path.read_text(errors="replace")


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


# --- 2. concurrency, stdout, the log file -------------------------------------------------------------


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
