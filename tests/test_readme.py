"""The README is a promise: its first commands, its configuration tables and every client configuration
it shows must work. Each tagged configuration is started here against the simulator and must answer a
tool call, so the documentation cannot drift from the code.

Container configurations (`podman run ...`) are run as the image runs them: `python main.py` with the
image's `ENV` defaults from the Containerfile, the `-e` variables and the mounted directory placed where
the image's user finds it. The image itself is built and exercised by scripts/container-smoke.sh.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastmcp import Client
from fastmcp.client.transports import StdioTransport

from conftest import TLSFiles
from scripts.sync_readme import synced
from simulator.__main__ import client_config, write_client_config
from simulator.harness import SimulatorServer

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
IMAGE = "quay.io/flightctl/flightctl-mcp:latest"


def readme_block(tag: str) -> str:
    """The fenced code block that follows `<!-- readme-config: tag -->`."""
    match = re.search(rf"<!-- readme-config: {tag} -->\s*```\w+\n(.*?)```", README, re.S)
    assert match, f"README.md has no block tagged {tag}"
    return match.group(1)


def image_env() -> dict[str, str]:
    """The ENV defaults the Containerfile gives the server (PATH and HOME are the test's own)."""
    text = (ROOT / "Containerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for pair in shlex.split(line[4:]):
                key, _, value = pair.partition("=")
                env[key] = value
    return {k: v for k, v in env.items() if k not in {"PATH", "HOME"}}


def base_env(home: Path) -> dict[str, str]:
    """A clean environment: a private HOME (so no developer's client.yaml leaks in) and a log file."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LOG_FILE": str(home / "flightctl-mcp.log"),
        "FASTMCP_CHECK_FOR_UPDATES": "off",
    }


def install_client_yaml(home: Path, sim: SimulatorServer, tls: TLSFiles | None) -> None:
    """Put a `flightctl login` client.yaml for the simulator's admin where the server looks by default."""
    config = client_config(
        sim.state,
        user="admin",
        access_token=None,
        refresh=sim.issue_tokens(user="admin"),
        ca_file=str(tls.ca) if tls else None,
    )
    write_client_config(home / ".config" / "flightctl" / "client.yaml", config)


async def call_count_devices(transport: StdioTransport) -> dict[str, Any]:
    async with Client(transport, timeout=60) as client:
        result = await client.call_tool("count_devices", {})
    answer: dict[str, Any] = json.loads(result.content[0].text)
    return answer


def podman_as_image_process(
    server: dict[str, Any], home: Path, env: dict[str, str]
) -> tuple[list[str], dict[str, str]]:
    """Translate a README `podman run` entry into the process the image would start, and its env."""
    assert server["command"] == "podman"
    args: list[str] = list(server["args"])
    assert args[:2] == ["run", "-i"], "a stdio client must run the container with -i"
    assert "-p" not in args, "a stdio container publishes no port"
    child = {**env, **image_env()}
    i = 2
    while i < len(args):
        arg = args[i]
        if arg == "-e":
            name, eq, value = args[i + 1].partition("=")
            child[name] = value if eq else server.get("env", {})[name]
            i += 2
        elif arg == "-v":
            source, target = args[i + 1].split(":")[:2]
            assert target == "/home/mcp/.config/flightctl", "the image's user reads ~/.config/flightctl"
            assert Path(source).is_absolute(), "Claude Desktop does not expand ~ or $HOME"
            i += 2
        elif arg == IMAGE:
            command = args[i + 1 :] or ["serve"]
            return [sys.executable, str(ROOT / "main.py"), *command], child
        else:
            i += 1
    raise AssertionError(f"no {IMAGE} in {args}")


def test_readme_opens_with_the_demo_and_test_commands() -> None:
    first_block = README.split("```", 2)[1]
    assert "make demo" in first_block
    assert "make test" in first_block
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^demo:", makefile, re.M)
    assert re.search(r"^test:", makefile, re.M)
    assert "main.py demo" in makefile
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8"), (
        "CI must run the README's test command"
    )


def test_readme_configuration_tables_match_the_code() -> None:
    assert synced(README) == README, "README.md is stale: run .venv/bin/python scripts/sync_readme.py"


async def test_claude_desktop_from_a_clone_answers(
    make_simulator: Any, simulator_tls_files: TLSFiles, tmp_path: Path
) -> None:
    server = json.loads(readme_block("claude-desktop-clone"))["mcpServers"]["flightctl"]
    assert server["args"][0].endswith("/main.py")
    assert server["command"].endswith("/python")
    sim = make_simulator(devices=12)
    install_client_yaml(tmp_path, sim, simulator_tls_files)
    env = {**base_env(tmp_path), **server["env"]}
    transport = StdioTransport(
        sys.executable, [str(ROOT / "main.py")], env=env, cwd=str(tmp_path), keep_alive=False
    )
    assert (await call_count_devices(transport))["total"] == 12


async def test_podman_with_mounted_login_config_answers(
    make_simulator: Any, simulator_tls_files: TLSFiles, tmp_path: Path
) -> None:
    server = json.loads(readme_block("podman-mounted-config"))["mcpServers"]["flightctl"]
    sim = make_simulator(devices=7)
    install_client_yaml(tmp_path, sim, simulator_tls_files)
    command, env = podman_as_image_process(server, tmp_path, base_env(tmp_path))
    assert env["MCP_TRANSPORT"] == "stdio"
    transport = StdioTransport(command[0], command[1:], env=env, cwd=str(tmp_path), keep_alive=False)
    assert (await call_count_devices(transport))["total"] == 7


async def test_podman_with_environment_only_answers(make_simulator: Any, tmp_path: Path) -> None:
    server = json.loads(readme_block("podman-env-only"))["mcpServers"]["flightctl"]
    sim = make_simulator(devices=5, tls=False)
    server["env"].update(
        API_BASE_URL=sim.base_url,
        OIDC_TOKEN_URL=sim.oidc_token_url,
        REFRESH_TOKEN=sim.issue_tokens(user="admin").refresh_token,
    )
    command, env = podman_as_image_process(server, tmp_path, base_env(tmp_path))
    transport = StdioTransport(command[0], command[1:], env=env, cwd=str(tmp_path), keep_alive=False)
    assert (await call_count_devices(transport))["total"] == 5


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def image_like_http_server(make_simulator: Any, tmp_path: Path) -> Iterator[tuple[int, str]]:
    """`python main.py` with the image's defaults (streamable-http, passthrough) bound to loopback."""
    sim = make_simulator(devices=9, tls=False)
    port = _free_port()
    env = {**base_env(tmp_path), **image_env(), "MCP_HOST": "127.0.0.1", "MCP_PORT": str(port)}
    env["API_BASE_URL"] = sim.base_url
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py")],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else "exited"
            assert time.monotonic() < deadline, "the server did not become healthy in 30 s"
            time.sleep(0.2)
        yield port, sim.issue_access_token("admin")
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_fastmcp_client_snippet_answers(image_like_http_server: tuple[int, str], tmp_path: Path) -> None:
    port, token = image_like_http_server
    snippet = readme_block("fastmcp-streamable-http")
    assert "http://127.0.0.1:8000/mcp" in snippet
    assert "<your Flight Control access token>" in snippet
    script = snippet.replace("http://127.0.0.1:8000/mcp", f"http://127.0.0.1:{port}/mcp").replace(
        "<your Flight Control access token>", token
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "Available tools:" in done.stdout
    assert "query_devices" in done.stdout
    assert json.loads(done.stdout.splitlines()[-1])["total"] == 9


def test_simulator_alone_instructions_work(tmp_path: Path) -> None:
    """The Development section's two lines: start the simulator with a client.yaml, `check` against it."""
    start_line, check_line = readme_block("simulator-alone").strip().splitlines()
    client_yaml = str(tmp_path / "client.yaml")
    start = shlex.split(start_line.removesuffix("&").replace("/tmp/client.yaml", client_yaml))
    assert start[:3] == [".venv/bin/python", "-m", "simulator"]
    simulator = subprocess.Popen(
        [sys.executable, *start[1:]], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert simulator.stdout is not None
        assert simulator.stdout.readline().startswith("http://127.0.0.1:"), "it prints its URL when ready"
        assignment, *command = shlex.split(check_line.replace("/tmp/client.yaml", client_yaml))
        name, _, value = assignment.partition("=")
        assert command[:2] == [".venv/bin/python", "main.py"]
        done = subprocess.run(
            [sys.executable, *command[1:]],
            cwd=ROOT,
            env={**base_env(tmp_path), name: value},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        simulator.terminate()
        simulator.wait(timeout=15)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "result: all good" in done.stdout
    assert "1000 device(s) visible" in done.stdout
