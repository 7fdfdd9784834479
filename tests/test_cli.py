"""cli.py: flags mirror the environment, mistakes exit 2 with one clear line, `demo` serves a simulated fleet.

What `check` reports, and how it finds client files and contexts, is in tests/test_cli_check.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import cli
from config import OPTIONS
from config_doc import render_configuration_doc
from tests.http_harness import main_process

REPO_ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.usefixtures("clean_environment")


def test_help_lists_every_flag_with_its_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "1000")  # one line per flag, so "env X" is never wrapped
    with pytest.raises(SystemExit) as exited:
        cli.main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for option in OPTIONS:
        assert option.flag in text, option.flag
        assert f"env {option.env}" in text, option.env
    for command in ("serve", "check", "demo"):
        assert command in text


def test_flags_reach_the_settings_keyed_by_variable() -> None:
    args = cli.build_parser().parse_args(
        ["serve", "--transport", "sse", "--port", "9100", "--enable-commands", "--no-insecure-skip-verify"]
    )
    assert cli.flags_from_args(args) == {
        "MCP_TRANSPORT": "sse",
        "MCP_PORT": "9100",
        "MCP_ENABLE_COMMANDS": "true",
        "INSECURE_SKIP_VERIFY": "false",
    }
    assert args.command == "serve"
    assert cli.build_parser().parse_args([]).command == "serve"


@pytest.mark.parametrize(
    ("argv", "environment", "expected"),
    [
        (["--transport", "carrier-pigeon"], {}, "MCP_TRANSPORT from flag --transport: 'carrier-pigeon'"),
        ([], {"MCP_PORT": "99999"}, "MCP_PORT from environment variable MCP_PORT: '99999'"),
        (["--transport", "streamable-http", "--host", "0.0.0.0"], {}, "MCP_SHARED_SECRET"),
        (["check", "--org-id", "acme"], {}, "ORG_ID from flag --org-id: 'acme'"),
        (["--enable-commands"], {}, "Also set MCP_COMMAND_ALLOWLIST to the commands it may run"),
        (
            [],
            {"MCP_ENABLE_COMMANDS": "true"},
            "or MCP_COMMAND_CONFIRM=true so the user approves each command",
        ),
    ],
    ids=[
        "bad-transport-flag",
        "bad-port-env",
        "exposed-without-auth",
        "check-bad-org",
        "commands-without-allowlist-flag",
        "commands-without-allowlist-env",
    ],
)
def test_configuration_errors_exit_2_with_one_message(
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    environment: dict[str, str],
    expected: str,
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert cli.main(argv) == 2
    out, err = capfd.readouterr()
    combined = out + err
    assert expected in combined
    assert "Traceback" not in combined
    if argv[:1] != ["check"]:
        assert out == ""  # serve never writes to stdout, not even its errors
        assert err.startswith("flightctl-mcp: configuration error: ")
        assert err.count("\n") == 1


def test_config_doc_prints_the_reference(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["config-doc"]) == 0
    assert capsys.readouterr().out == render_configuration_doc()


def test_main_py_help_runs_as_a_program() -> None:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ["HOME"]}
    result = subprocess.run(
        [sys.executable, "main.py", "--help"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "--api-base-url" in result.stdout
    assert "--enable-commands" in result.stdout


# --------------------------------------------------------------------------------------------------
# demo: a simulated fleet to try the server on
# --------------------------------------------------------------------------------------------------


async def test_demo_serves_a_simulated_fleet_over_stdio(tmp_path: Path) -> None:
    from fastmcp import Client
    from fastmcp.client.transports import StdioTransport

    transport = StdioTransport(
        command=sys.executable,
        args=[str(REPO_ROOT / "main.py"), "demo", "--transport", "stdio"],
        env={"HOME": str(tmp_path), "PATH": os.environ.get("PATH", "")},
        cwd=str(REPO_ROOT),
    )
    async with Client(transport, timeout=60) as client:
        tools = {tool.name for tool in await client.list_tools()}
        assert "query_devices" in tools
        result = await client.call_tool("query_devices", {"limit": 3})
    assert not result.is_error
    text = result.content[0].text if result.content else ""
    assert "device" in text.lower()
    log_file = tmp_path / ".local/share/flightctl-mcp/flightctl-mcp.log"
    assert "Starting flightctl-mcp: transport=stdio" in log_file.read_text()


def test_demo_in_pass_through_mode_prints_a_token_callers_can_use(tmp_path: Path) -> None:
    """As in the container image (pass-through on 0.0.0.0): the printed simulator token gets answers.

    The banner is printed only once the server listens, so it is complete as soon as /healthz answers.
    """
    import asyncio

    import httpx
    from fastmcp import Client

    env = {
        "HOME": str(tmp_path),
        "PATH": os.environ.get("PATH", ""),
        "MCP_AUTH_MODE": "passthrough",
        "MCP_HOST": "0.0.0.0",
    }
    output = tmp_path / "output.txt"
    heading = "A simulator token:"
    with main_process(env, "demo", output=output) as (_, base_url):
        lines = output.read_text().splitlines()
        token = next(lines[i + 1] for i, line in enumerate(lines) if line.endswith(heading)).strip()
        url = f"{base_url}/mcp"
        assert f"MCP endpoint (streamable-http): {url}" in lines
        assert httpx.post(url, json={}, timeout=10).status_code == 401, "no token, no answer"

        async def count() -> str:
            async with Client(url, auth=token, timeout=60) as client:
                result = await client.call_tool("count_devices", {})
            return str(result.content[0].text)

        assert '"total":200' in asyncio.run(count())


# --------------------------------------------------------------------------------------------------
# A port already in use
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port some other program listens on."""
    import socket

    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


def test_serve_on_a_busy_port_says_why_and_exits_2(
    busy_port: int, capsys: pytest.CaptureFixture[str], clean_environment: Path
) -> None:
    code = cli.main(
        ["serve", "--transport", "streamable-http", "--port", str(busy_port), "--api-base-url", "http://x"]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert f"port {busy_port} on 127.0.0.1 is already in use" in err
    assert f"MCP_PORT={busy_port + 1}" in err
    assert "make demo" not in err
    log = clean_environment / ".local/share/flightctl-mcp/flightctl-mcp.log"
    assert not log.exists() or "Serving" not in log.read_text()


def test_demo_on_a_busy_port_says_how_to_pick_another_before_any_banner(
    busy_port: int, clean_environment: Path
) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "main.py"), "demo", "--port", str(busy_port)],
        env={"HOME": str(clean_environment), "PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert f"port {busy_port} on 127.0.0.1 is already in use" in result.stderr
    assert f"MCP_PORT={busy_port + 1} make demo" in result.stderr
    assert "MCP endpoint" not in result.stderr
    assert "flightctl-mcp demo:" not in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
