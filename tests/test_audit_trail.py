"""The command audit and the logs, through the real program: ``python main.py`` over stdio and HTTP.

What an operator would notice: at LOG_LEVEL=ERROR every command attempt, allowed or refused, is one line
of the audit file; at DEBUG (server and libraries) neither the log file, the audit nor stderr holds an
answer, a command's output or a token; a caller flooding refusals is summarised, never lost.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client
from fastmcp.client.transports import SSETransport, StdioTransport, StreamableHttpTransport

from audit import AuditTrail
from command_tool import TOOL_NAME
from conftest import TLSFiles
from simulator.harness import SimulatorServer
from simulator.state import DEFAULT_ORG
from tests import hostile
from tests.http_harness import main_process

ROOT = Path(__file__).resolve().parent.parent
SECRET = "shared-secret-for-the-audit-tests-0123456789"
DEBUG = {"LOG_LEVEL": "DEBUG", "MCP_LOG_LEVEL": "debug", "LOG_TO_STDERR": "true"}


@pytest.fixture(scope="module")
def sim(simulator_tls_files: TLSFiles) -> Iterator[SimulatorServer]:
    with hostile.hostile_simulator(simulator_tls_files) as server:
        yield server


def _environ(sim: SimulatorServer, ca: Path, home: Path, token: str, **extra: str) -> dict[str, str]:
    return {
        "HOME": str(home),
        "PATH": os.environ.get("PATH", ""),
        "API_BASE_URL": sim.base_url,
        "CA_CERT_PATH": str(ca),
        "ACCESS_TOKEN": token,
        "ORG_ID": DEFAULT_ORG,
        "LOG_FILE": str(home / "logs" / "server.log"),
        "AUDIT_LOG_FILE": str(home / "logs" / "audit.log"),
        "MCP_ENABLE_COMMANDS": "true",
        "MCP_COMMAND_ALLOWLIST": "hostname;uname -n;true",
        **extra,
    }


def _stdio(environ: dict[str, str], stderr: Path) -> Client[Any]:
    transport = StdioTransport(
        sys.executable, [str(ROOT / "main.py")], env=environ, cwd=str(ROOT), keep_alive=False, log_file=stderr
    )
    return Client(transport, timeout=60)


def _audit_records(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if "run_command_on_device" in line]


ATTEMPTS: list[tuple[dict[str, Any], str]] = [
    ({"device_name": hostile.DEVICE, "command": ["hostname"]}, "completed"),
    ({"device_name": hostile.DEVICE, "command": ["true"]}, "completed"),
    ({"device_name": hostile.DEVICE, "command": ["rm", "-rf", "/"]}, "refused"),
    ({"device_name": hostile.DEVICE, "command": ["df"]}, "refused"),
    ({"device_name": f"{hostile.DEVICE}\n", "command": ["true"]}, "refused"),
    ({"device_name": hostile.DEVICE, "command": 7}, "refused"),
    ({"device_name": "no-such-device", "command": ["true"]}, "failed"),
]


@pytest.mark.timeout(120)
async def test_at_log_level_error_every_attempt_is_one_audit_line(
    sim: SimulatorServer, simulator_tls_files: TLSFiles, tmp_path: Path
) -> None:
    environ = _environ(
        sim, simulator_tls_files.ca, tmp_path, sim.issue_access_token("admin"), LOG_LEVEL="ERROR"
    )
    async with _stdio(environ, tmp_path / "stderr.txt") as client:
        for arguments, _ in ATTEMPTS:
            await client.call_tool(TOOL_NAME, arguments, raise_on_error=False)
    lines = _audit_records(tmp_path / "logs" / "audit.log")
    assert len(lines) == len(ATTEMPTS)
    assert [json.loads(line.split(" outcome=")[1].split(" ")[0]) for line in lines] == [
        outcome for _, outcome in ATTEMPTS
    ]
    assert all(' who="admin" ' in line for line in lines)
    assert " outcome=" not in (tmp_path / "logs" / "server.log").read_text(), "the audit is a stream apart"


def _leaks(texts: dict[str, str], secrets: list[str]) -> list[str]:
    return [
        f"{secret[:24]!r} in {where}" for where, text in texts.items() for secret in secrets if secret in text
    ]


async def _use_every_tool(client: Client[Any]) -> list[str]:
    """Calls that return device text; returns the answers' texts."""
    answers = []
    for name, arguments in (
        ("query_devices", {"name": hostile.DEVICE}),
        ("query_devices", {"limit": 5}),
        ("query_events", {"field_selector": f"involvedObject.name={hostile.DEVICE}"}),
        ("query_fleets", {"name": hostile.FLEET}),
        (TOOL_NAME, {"device_name": hostile.DEVICE, "command": ["hostname"]}),
    ):
        result = await client.call_tool(name, arguments)
        answers.append(str(result.content[0].text))  # type: ignore[union-attr]
    return answers


def _logged(home: Path, stderr: str) -> dict[str, str]:
    logs = {p.name: p.read_text(errors="replace") for p in (home / "logs").iterdir()}
    return {**logs, "stderr": stderr}


@pytest.mark.timeout(180)
async def test_at_debug_over_stdio_no_answer_output_or_token_is_logged(
    sim: SimulatorServer, simulator_tls_files: TLSFiles, tmp_path: Path
) -> None:
    token = sim.issue_access_token("admin")
    environ = _environ(sim, simulator_tls_files.ca, tmp_path, token, **DEBUG)
    async with _stdio(environ, tmp_path / "stderr.txt") as client:
        answers = await _use_every_tool(client)
    assert hostile.HOSTNAME in answers[-1], "the command ran and its output came back"
    assert hostile.MARK in answers[0]
    assert hostile.MARK in answers[2]
    logged = _logged(tmp_path, (tmp_path / "stderr.txt").read_text(errors="replace"))
    assert "DEBUG" in logged["server.log"], "DEBUG is on"
    assert len(_audit_records(tmp_path / "logs" / "audit.log")) == 1
    assert _leaks(logged, [hostile.MARK, hostile.HOSTNAME, token]) == []


@pytest.mark.timeout(180)
@pytest.mark.parametrize("transport", ["streamable-http", "sse"])
async def test_at_debug_over_http_no_answer_output_or_token_is_logged(
    sim: SimulatorServer, simulator_tls_files: TLSFiles, tmp_path: Path, transport: str
) -> None:
    token = sim.issue_access_token("admin")
    environ = _environ(
        sim,
        simulator_tls_files.ca,
        tmp_path,
        token,
        **DEBUG,
        MCP_TRANSPORT=transport,
        MCP_HOST="127.0.0.1",
        MCP_SHARED_SECRET=SECRET,
    )
    stderr_file = tmp_path / "stderr.txt"
    # Output into a file: a pipe could fill up at DEBUG.
    with main_process(environ, output=stderr_file) as (_, url):
        headers = {"Authorization": f"Bearer {SECRET}"}
        client_transport: StreamableHttpTransport | SSETransport = (
            SSETransport(url + "/sse", headers=headers)
            if transport == "sse"
            else StreamableHttpTransport(url + "/mcp", headers=headers)
        )
        async with Client(client_transport, timeout=60) as client:
            answers = await _use_every_tool(client)
    assert hostile.HOSTNAME in answers[-1]
    logged = _logged(tmp_path, stderr_file.read_text(errors="replace"))
    assert "DEBUG" in logged["server.log"]
    assert _leaks(logged, [hostile.MARK, hostile.HOSTNAME, token, SECRET]) == []


# --- refusals are rate-limited per caller, never lost ---------------------------------------------------


class _Lines:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def info(self, message: str, *args: Any, extra: dict[str, Any]) -> None:
        self.records.append(extra["audit"])


def test_a_refusal_flood_is_summarised_with_its_count() -> None:
    now = [0.0]
    lines = _Lines()
    trail = AuditTrail(lines, limit=3, window=60, clock=lambda: now[0])  # type: ignore[arg-type]
    for outcome in ["refused"] * 9 + ["awaiting-confirmation"]:
        trail.attempt({"who": "mallory", "outcome": outcome})
    trail.attempt({"who": "mallory", "outcome": "completed"})
    trail.attempt({"who": "alice", "outcome": "refused"})
    assert [r["outcome"] for r in lines.records] == ["refused"] * 3 + ["completed", "refused"]
    now[0] = 61.0
    trail.attempt({"who": "alice", "outcome": "completed"})
    summary = lines.records[-2]
    assert (summary["outcome"], summary["who"], summary["count"]) == ("refusals-summarised", "mallory", 7)
    assert "7 more refusals by mallory" in summary["reason"]
    assert lines.records[-1]["outcome"] == "completed"
    for _ in range(5):
        trail.attempt({"who": "mallory", "outcome": "refused"})
    trail.flush()
    assert lines.records[-1]["count"] == 2
    written = sum(r["outcome"] in ("refused", "awaiting-confirmation") for r in lines.records)
    summarised = sum(r.get("count", 0) for r in lines.records)
    assert written + summarised == 16, "every refusal is counted"


@pytest.mark.timeout(120)
def test_server_mode_on_loopback_warns_at_start_up_that_any_local_process_can_run_commands(
    sim: SimulatorServer, simulator_tls_files: TLSFiles, tmp_path: Path
) -> None:
    environ = _environ(
        sim,
        simulator_tls_files.ca,
        tmp_path,
        sim.issue_access_token("admin"),
        MCP_TRANSPORT="streamable-http",
        MCP_HOST="127.0.0.1",
        MCP_AUTH_MODE="server",
    )
    stderr_file = tmp_path / "stderr.txt"
    with main_process(environ, output=stderr_file):
        pass
    warning = "any process on this machine can connect and run commands on devices"
    assert warning in stderr_file.read_text()
    assert warning in (tmp_path / "logs" / "server.log").read_text()
