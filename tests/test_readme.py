"""The README is a promise: its first commands, its configuration tables and every client configuration
it shows must work. Each tagged configuration is started here against the simulator and must answer a
tool call through a real MCP client, so the documentation cannot drift from the code.

Where the client program itself cannot run here, the test starts exactly the command and environment
the client would start:
- `uvx flightctl-mcp` (Claude Desktop, Claude Code, VS Code, Cursor, Goose): uvx fetches the
  flightctl-mcp distribution and runs its `flightctl-mcp` console script with the configured arguments and
  environment. Here that script comes from the wheel built from this tree (tests/distribution.py) and
  installed into a fresh venv, so the test runs the same entry point uvx would, without a package index.
- `podman run ... quay.io/flightctl/flightctl-mcp` runs the image's ENTRYPOINT (the same console script)
  with the Containerfile's `ENV` defaults, the `-e` variables and the secret or port the arguments name.
  The image itself is built and exercised by scripts/container-smoke.sh.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastmcp import Client
from fastmcp.client.transports import StdioTransport

import config
from conftest import TLSFiles
from scripts.sync_readme import synced
from simulator.__main__ import client_config, write_client_config
from simulator.harness import SimulatorServer
from tests.distribution import Installed, build_and_install
from tests.http_harness import serving_process

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
IMAGE = "quay.io/flightctl/flightctl-mcp:latest"
PACKAGE = "flightctl-mcp"


def readme_block(tag: str) -> str:
    """The fenced code block that follows `<!-- readme-config: tag -->`."""
    match = re.search(rf"<!-- readme-config: {tag} -->\s*```\w+\n(.*?)```", README, re.S)
    assert match, f"README.md has no block tagged {tag}"
    return match.group(1)


def _containerfile_instructions(keyword: str) -> list[str]:
    text = (ROOT / "Containerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    return [line[len(keyword) + 1 :] for line in text.splitlines() if line.startswith(keyword + " ")]


def _image_env_all() -> dict[str, str]:
    env: dict[str, str] = {}
    for line in _containerfile_instructions("ENV"):
        for pair in shlex.split(line):
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def image_env() -> dict[str, str]:
    """The ENV defaults the Containerfile gives the server (PATH and HOME are the test's own)."""
    return {k: v for k, v in _image_env_all().items() if k not in {"PATH", "HOME"}}


def image_home() -> str:
    """HOME of the image's user, where it looks for client.yaml."""
    return _image_env_all()["HOME"]


@pytest.fixture(scope="session")
def installed() -> Installed:
    """The wheel built from this tree, installed in a fresh venv: what uvx, pipx and the image run."""
    return build_and_install()


def base_env(home: Path) -> dict[str, str]:
    """A clean environment: a private HOME (so no developer's client.yaml leaks in) and a log file."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LOG_FILE": str(home / "flightctl-mcp.log"),
        "FASTMCP_CHECK_FOR_UPDATES": "off",
    }


def write_login_client_yaml(path: Path, sim: SimulatorServer, tls: TLSFiles | None) -> None:
    """A `flightctl login` client.yaml for the simulator's admin at ``path``."""
    config_ = client_config(
        sim.state,
        user="admin",
        access_token=None,
        refresh=sim.issue_tokens(user="admin"),
        ca_file=str(tls.ca) if tls else None,
    )
    write_client_config(path, config_)


def install_client_yaml(home: Path, sim: SimulatorServer, tls: TLSFiles | None) -> None:
    """Put a `flightctl login` client.yaml where the server looks by default for this HOME."""
    write_login_client_yaml(config.default_client_config_path({"HOME": str(home)}), sim, tls)


def simulator_env(sim: SimulatorServer) -> dict[str, str]:
    """Values for the README's example variables, pointing at the simulator (plain HTTP)."""
    return {
        "API_BASE_URL": sim.base_url,
        "OIDC_TOKEN_URL": sim.oidc_token_url,
        "REFRESH_TOKEN": sim.issue_tokens(user="admin").refresh_token,
    }


async def call_count_devices(transport: StdioTransport) -> dict[str, Any]:
    async with Client(transport, timeout=60) as client:
        result = await client.call_tool("count_devices", {})
    answer: dict[str, Any] = json.loads(result.content[0].text)
    return answer


def uvx_process(installed: Installed, command: str, args: list[str]) -> list[str]:
    """What `uvx flightctl-mcp ARGS` starts: the distribution's console script with ARGS."""
    assert command == "uvx", command
    assert args[0] == PACKAGE, f"uvx must name the {PACKAGE} distribution, not {args[0]!r}"
    return [str(installed.command), *args[1:]]


async def answers_over_stdio(argv: list[str], env: dict[str, str], home: Path) -> int:
    """Start ``argv`` as the client would and return count_devices' total."""
    transport = StdioTransport(argv[0], argv[1:], env=env, cwd=str(home), keep_alive=False)
    total: int = (await call_count_devices(transport))["total"]
    return total


def podman_as_image_process(
    server: dict[str, Any], installed: Installed, home: Path, env: dict[str, str]
) -> tuple[list[str], dict[str, str]]:
    """Translate a README `podman run` entry into the process the image would start, and its env.

    The image's HOME is mapped to ``home``: a secret mounted at the image's default client.yaml path is
    where the server in the image looks for it.
    """
    assert server["command"] == "podman"
    args: list[str] = list(server["args"])
    assert args[:2] == ["run", "-i"], "a stdio client must run the container with -i"
    assert "-p" not in args, "a stdio container publishes no port"
    assert not any(arg.startswith("--userns=keep-id") for arg in args), "keep-id fails with rootful podman"
    child = {**env, **image_env()}
    i = 2
    while i < len(args):
        arg = args[i]
        if arg == "-e":
            name, eq, value = args[i + 1].partition("=")
            child[name] = value if eq else server.get("env", {})[name]
            i += 2
        elif arg == "--secret":
            name, *options = args[i + 1].split(",")
            spec = dict(option.split("=", 1) for option in options)
            assert spec["type"] == "mount"
            assert spec["target"] == str(config.default_client_config_path({"HOME": image_home()})), (
                "the secret must land where the image's user reads client.yaml"
            )
            assert spec["uid"] == "1001", "the image runs as uid 1001"
            assert name == podman_secret_name(), "the secret the README creates"
            i += 2
        elif arg == IMAGE:
            (entrypoint,) = (json.loads(e) for e in _containerfile_instructions("ENTRYPOINT"))
            (default_command,) = (json.loads(c) for c in _containerfile_instructions("CMD"))
            assert entrypoint == [PACKAGE], "the image runs the installed console script"
            return [str(installed.command), *(args[i + 1 :] or default_command)], child
        else:
            i += 1
    raise AssertionError(f"no {IMAGE} in {args}")


def podman_secret_name() -> str:
    """The secret the README's `podman secret create` line makes from the user's client.yaml."""
    removal, creation = (part.strip() for part in readme_block("podman-secret").strip().split(";"))
    assert shlex.split(removal)[:3] == ["podman", "secret", "rm"]
    argv = shlex.split(creation)
    assert argv[:3] == ["podman", "secret", "create"]
    name, source = argv[3:]
    assert source == "~/.config/flightctl/client.yaml", "the file `flightctl login` writes"
    assert shlex.split(removal)[3] == name
    return name


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
    assert synced(README) == README, "README.md is stale: run .venv/bin/python scripts/gen_docs.py"


async def test_claude_desktop_with_uvx_answers(
    installed: Installed, make_simulator: Any, simulator_tls_files: TLSFiles, tmp_path: Path
) -> None:
    server = json.loads(readme_block("claude-desktop-uvx"))["mcpServers"]["flightctl"]
    sim = make_simulator(devices=4)
    install_client_yaml(tmp_path, sim, simulator_tls_files)
    argv = uvx_process(installed, server["command"], server["args"])
    env = {**base_env(tmp_path), **server.get("env", {})}
    assert await answers_over_stdio(argv, env, tmp_path) == 4


async def test_claude_desktop_from_a_clone_answers(
    make_simulator: Any, simulator_tls_files: TLSFiles, tmp_path: Path
) -> None:
    server = json.loads(readme_block("claude-desktop-clone"))["mcpServers"]["flightctl"]
    assert server["args"][0].endswith("/main.py")
    assert server["command"].endswith("/.venv/bin/python")
    assert "make .venv/.runtime-installed" in README, "the section says how the clone's .venv is made"
    sim = make_simulator(devices=12)
    install_client_yaml(tmp_path, sim, simulator_tls_files)
    env = {**base_env(tmp_path), **server["env"]}
    assert await answers_over_stdio([sys.executable, str(ROOT / "main.py")], env, tmp_path) == 12


async def test_claude_code_command_line_answers(
    installed: Installed, make_simulator: Any, simulator_tls_files: TLSFiles, tmp_path: Path
) -> None:
    argv = shlex.split(readme_block("claude-code-cli").strip())
    assert argv[:3] == ["claude", "mcp", "add"]
    options, server_argv = argv[3 : argv.index("--")], argv[argv.index("--") + 1 :]
    env: dict[str, str] = {}
    positional = []
    i = 0
    while i < len(options):
        if options[i] in ("-s", "--scope"):
            assert options[i + 1] in ("local", "user", "project")
            i += 2
        elif options[i] in ("-e", "--env"):
            name, _, value = options[i + 1].partition("=")
            env[name] = value
            i += 2
        else:
            positional.append(options[i])
            i += 1
    assert positional == ["flightctl"], "claude mcp add [options] <name> -- <command> [args...]"
    sim = make_simulator(devices=3)
    install_client_yaml(tmp_path, sim, simulator_tls_files)
    process = uvx_process(installed, server_argv[0], server_argv[1:])
    assert await answers_over_stdio(process, {**base_env(tmp_path), **env}, tmp_path) == 3


async def test_claude_code_project_json_answers(
    installed: Installed, make_simulator: Any, simulator_tls_files: TLSFiles, tmp_path: Path
) -> None:
    server = json.loads(readme_block("claude-code-json"))["mcpServers"]["flightctl"]
    assert server["type"] == "stdio"
    sim = make_simulator(devices=6)
    named = Path(server["env"]["CLIENT_CONFIG_PATH"])
    assert named == Path("/home/alice/.config/flightctl/client.yaml")
    here = tmp_path / "alice" / named.relative_to("/home/alice")
    write_login_client_yaml(here, sim, simulator_tls_files)
    env = {**base_env(tmp_path), **server["env"], "CLIENT_CONFIG_PATH": str(here)}
    argv = uvx_process(installed, server["command"], server["args"])
    assert await answers_over_stdio(argv, env, tmp_path) == 6


async def test_vscode_workspace_configuration_answers(
    installed: Installed, make_simulator: Any, simulator_tls_files: TLSFiles, tmp_path: Path
) -> None:
    document = json.loads(readme_block("vscode"))
    assert "mcpServers" not in document, "VS Code reads `servers`"
    server = document["servers"]["flightctl"]
    assert server["type"] == "stdio"
    sim = make_simulator(devices=5)
    install_client_yaml(tmp_path, sim, simulator_tls_files)
    argv = uvx_process(installed, server["command"], server["args"])
    assert await answers_over_stdio(argv, {**base_env(tmp_path), **server.get("env", {})}, tmp_path) == 5


async def test_cursor_configuration_with_variables_only_answers(
    installed: Installed, make_simulator: Any, tmp_path: Path
) -> None:
    server = json.loads(readme_block("cursor"))["mcpServers"]["flightctl"]
    sim = make_simulator(devices=9, tls=False)
    assert set(server["env"]) == {"API_BASE_URL", "OIDC_TOKEN_URL", "REFRESH_TOKEN"}
    env = {**base_env(tmp_path), **server["env"], **simulator_env(sim)}
    argv = uvx_process(installed, server["command"], server["args"])
    assert await answers_over_stdio(argv, env, tmp_path) == 9


async def test_goose_extension_answers(
    installed: Installed, make_simulator: Any, simulator_tls_files: TLSFiles, tmp_path: Path
) -> None:
    extension = yaml.safe_load(readme_block("goose"))["extensions"]["flightctl"]
    assert extension["type"] == "stdio"
    assert extension["enabled"] is True
    assert extension["name"] == "flightctl"
    sim = make_simulator(devices=2)
    install_client_yaml(tmp_path, sim, simulator_tls_files)
    argv = uvx_process(installed, extension["cmd"], [str(arg) for arg in extension["args"]])
    env = {**base_env(tmp_path), **(extension.get("envs") or {})}
    assert await answers_over_stdio(argv, env, tmp_path) == 2


async def test_podman_with_the_login_configuration_as_a_secret_answers(
    installed: Installed, make_simulator: Any, simulator_tls_files: TLSFiles, tmp_path: Path
) -> None:
    server = json.loads(readme_block("podman-mounted-config"))["mcpServers"]["flightctl"]
    sim = make_simulator(devices=7)
    install_client_yaml(tmp_path, sim, simulator_tls_files)
    command, env = podman_as_image_process(server, installed, tmp_path, base_env(tmp_path))
    assert env["MCP_TRANSPORT"] == "stdio"
    assert await answers_over_stdio(command, env, tmp_path) == 7


async def test_podman_with_environment_only_answers(
    installed: Installed, make_simulator: Any, tmp_path: Path
) -> None:
    server = json.loads(readme_block("podman-env-only"))["mcpServers"]["flightctl"]
    sim = make_simulator(devices=5, tls=False)
    server["env"].update(simulator_env(sim))
    command, env = podman_as_image_process(server, installed, tmp_path, base_env(tmp_path))
    assert await answers_over_stdio(command, env, tmp_path) == 5


@pytest.fixture
def image_like_http_server(
    installed: Installed, make_simulator: Any, tmp_path: Path
) -> Iterator[tuple[int, str]]:
    """The README's `podman run -d -p 127.0.0.1:8000:8000 ...` as the image runs it, on a free port."""
    argv = shlex.split(readme_block("podman-http").strip())
    assert argv[:3] == ["podman", "run", "-d"]
    assert argv[-1] == IMAGE
    publish = argv[argv.index("-p") + 1]
    assert publish.startswith("127.0.0.1:"), "publish on loopback unless other machines must reach it"
    assert publish.rsplit(":", 1)[1] == image_env()["MCP_PORT"]
    sim = make_simulator(devices=9, tls=False)
    env = {**base_env(tmp_path), **image_env()}
    for i, arg in enumerate(argv):
        if arg == "-e":
            name, _, value = argv[i + 1].partition("=")
            env[name] = value
    assert env["API_BASE_URL"].startswith("https://")
    # Inside the container the server binds 0.0.0.0:8000; here it serves on a socket the test bound.
    env.update(API_BASE_URL=sim.base_url, MCP_HOST="127.0.0.1")
    command = [str(installed.command)]
    with serving_process(command, env, output=tmp_path / "server-output.txt", cwd=tmp_path) as (_, url):
        yield int(url.rsplit(":", 1)[1]), sim.issue_access_token("admin")


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
    with subprocess.Popen(
        [sys.executable, *start[1:]], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as simulator:  # leaving the block closes its stdout and reaps it
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
    assert done.returncode == 0, done.stdout + done.stderr
    assert "result: all good" in done.stdout
    assert "1000 device(s) visible" in done.stdout
