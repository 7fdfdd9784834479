"""What ships as Python: the distribution (sdist and wheel) and what its installed command does, its entry
in the MCP server registry (server.json), the CHANGELOG and the license.

The image, the workflows and the Kubernetes manifests are held to their contracts in
tests/test_container_image.py, tests/test_ci_workflows.py and tests/test_deploy_manifests.py.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

import config
from tests.containerfile import CONTAINERFILE, final_stage
from tests.distribution import Installed, build_and_install, clone_files, pyproject, runtime_modules

ROOT = Path(__file__).resolve().parent.parent


# --- the Python distribution (sdist and wheel) -------------------------------------------------------


@pytest.fixture(scope="session")
def installed() -> Installed:
    """The sdist and wheel built from this tree, and a venv with the wheel installed (once per session)."""
    return build_and_install()


def _clean_env(home: Path) -> dict[str, str]:
    """No PYTHONPATH, no developer settings: only what a fresh shell would have."""
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "LOG_FILE": str(home / "flightctl-mcp.log")}


def test_every_server_module_is_listed_for_the_wheel() -> None:
    listed = sorted(pyproject()["tool"]["setuptools"]["py-modules"])
    present = runtime_modules()
    missing = sorted(set(present) - set(listed))
    assert not missing, (
        f"top-level modules {missing} are not packaged: add them to [tool.setuptools] py-modules in "
        "pyproject.toml (and tests or tools belong under tests/ or scripts/, not at the top level)"
    )
    gone = sorted(set(listed) - set(present))
    assert not gone, f"pyproject.toml lists modules that do not exist: {gone}; remove them from py-modules"


def test_wheel_holds_the_server_modules_and_the_simulator_and_nothing_else(installed: Installed) -> None:
    import zipfile

    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
    dist_info = {name for name in names if name.split("/")[0].endswith(".dist-info")}
    expected = {f"{module}.py" for module in runtime_modules()} | {
        path for path in clone_files() if path.startswith("simulator/") and path.endswith(".py")
    }
    shipped = names - dist_info
    assert shipped - expected == set(), f"the wheel ships files that are not the server: {shipped - expected}"
    assert expected - shipped == set(), f"the wheel lacks: {expected - shipped}; see py-modules in pyproject"
    assert any(name.endswith("/licenses/LICENSE") for name in dist_info), "the license travels in the wheel"
    with zipfile.ZipFile(installed.wheel) as wheel:
        (entry_points,) = (wheel.read(n).decode() for n in dist_info if n.endswith("/entry_points.txt"))
    assert "flightctl-mcp = cli:main" in entry_points


def test_wheel_requires_exactly_the_declared_dependencies(installed: Installed) -> None:
    from importlib.metadata import PathDistribution

    from packaging.requirements import Requirement

    (dist_info,) = installed.venv.glob("lib/python3*/site-packages/flightctl_mcp-*.dist-info")
    distribution = PathDistribution(dist_info)
    project = pyproject()["project"]
    assert distribution.version == project["version"]
    runtime = {str(Requirement(req)) for req in distribution.requires or [] if "extra ==" not in req}
    assert runtime == {str(Requirement(req)) for req in project["dependencies"]}


def test_sdist_builds_the_same_wheel_and_carries_readme_and_license(installed: Installed) -> None:
    import tarfile

    with tarfile.open(installed.sdist) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {"pyproject.toml", "README.md", "LICENSE", "main.py", "cli.py", "simulator/__init__.py"} <= names
    assert not any(name.startswith(("bench/", "deploy/", ".github/")) for name in names), sorted(names)


def _run(program: Path, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """Run an installed program from an unrelated directory with a fresh shell's environment."""
    return subprocess.run(
        [str(program), *args], env=_clean_env(home), cwd=home, capture_output=True, text=True, timeout=60
    )


def test_installed_command_prints_its_version_and_lists_its_commands(
    installed: Installed, tmp_path: Path
) -> None:
    version = _run(installed.command, "--version", home=tmp_path)
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"flightctl-mcp {pyproject()['project']['version']}"
    usage = _run(installed.command, "--help", home=tmp_path)
    assert usage.returncode == 0, usage.stderr
    assert usage.stdout.startswith("usage: flightctl-mcp ")
    for command in ("serve", "check", "demo", "config-doc"):
        assert command in usage.stdout
    reference = _run(installed.command, "config-doc", home=tmp_path)
    assert reference.stdout == (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")


def test_installed_server_runs_from_the_wheel_not_from_this_tree(
    installed: Installed, tmp_path: Path
) -> None:
    probe = "import cli, main, simulator\nfor m in (cli, main, simulator): print(m.__file__)"
    done = _run(installed.python, "-c", probe, home=tmp_path)
    assert done.returncode == 0, done.stderr
    for line in done.stdout.splitlines():
        assert Path(line).is_relative_to(installed.venv), line


async def test_installed_command_answers_query_devices_over_stdio(
    installed: Installed, make_simulator: Any, tmp_path: Path
) -> None:
    """What `uvx flightctl-mcp`/pipx start: the console script, configured by environment variables only."""
    from fastmcp import Client
    from fastmcp.client.transports import StdioTransport

    sim = make_simulator(devices=8, tls=False)
    env = {
        **_clean_env(tmp_path),
        "API_BASE_URL": sim.base_url,
        "OIDC_TOKEN_URL": sim.oidc_token_url,
        "REFRESH_TOKEN": sim.issue_tokens(user="admin").refresh_token,
    }
    transport = StdioTransport(str(installed.command), [], env=env, cwd=str(tmp_path), keep_alive=False)
    async with Client(transport, timeout=60) as client:
        result = await client.call_tool("query_devices", {"limit": 3})
        assert client.server_info is not None
        server_version = client.server_info.version
    answer = json.loads(result.content[0].text)
    assert answer["total"] == 8
    assert len(answer["data"]) == 3
    assert server_version == pyproject()["project"]["version"]


def test_installed_demo_tells_clients_to_start_the_installed_command(
    installed: Installed, tmp_path: Path
) -> None:
    """The demo's Claude Desktop snippet names the command the user ran, not a file inside site-packages."""
    done = subprocess.run(
        [str(installed.command), "demo", "--transport", "stdio"],
        env=_clean_env(tmp_path),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,  # end of input: the stdio session ends at once
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout == "", "stdio mode writes nothing but protocol frames to stdout"
    snippet = done.stderr[done.stderr.index("{") : done.stderr.rindex("}") + 1]
    entry = json.loads(snippet)["mcpServers"]["flightctl-demo"]
    assert entry == {"command": str(installed.command.resolve()), "args": ["demo", "--transport", "stdio"]}


def test_version_comes_from_pyproject_in_a_clone() -> None:
    import version

    assert version.__version__ == pyproject()["project"]["version"]


# --- server.json (the MCP server registry) -----------------------------------------------------------

SERVER_JSON_SCHEMA = re.compile(
    r"^https://static\.modelcontextprotocol\.io/schemas/\d{4}-\d{2}-\d{2}/server\.schema\.json$"
)
SERVER_JSON_KEYS = {
    "$schema", "_meta", "name", "title", "description", "version", "websiteUrl", "repository", "icons",
    "packages", "remotes",
}  # fmt: skip
SERVER_JSON_VARIABLE_KEYS = {"name", "description", "format", "isRequired", "isSecret", "value", "default"}


def _server_json() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((ROOT / "server.json").read_text(encoding="utf-8"))
    return document


def test_server_json_follows_the_registry_schema() -> None:
    """The fields and limits the registry's server.schema.json documents (no network to fetch it here)."""
    server = _server_json()
    assert SERVER_JSON_SCHEMA.match(server["$schema"]), server["$schema"]
    assert set(server) <= SERVER_JSON_KEYS, set(server) - SERVER_JSON_KEYS
    assert re.fullmatch(r"[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+", server["name"])
    assert len(server["name"]) <= 200
    assert 1 <= len(server["description"]) <= 100
    assert 1 <= len(server["title"]) <= 100
    assert server["repository"]["source"] == "github"
    owner = server["repository"]["url"].removeprefix("https://github.com/").split("/")[0]
    assert server["name"].startswith(f"io.github.{owner}/"), "GitHub namespaces are io.github.<owner>/"
    for package in server["packages"]:
        assert package["registryType"] in ("pypi", "oci")
        assert package["transport"]["type"] in ("stdio", "streamable-http", "sse")
        for argument in package.get("runtimeArguments", []) + package.get("packageArguments", []):
            assert argument["type"] in ("named", "positional")
            assert argument["type"] != "named" or argument["name"].startswith("-")
        for variable in package.get("environmentVariables", []):
            assert set(variable) <= SERVER_JSON_VARIABLE_KEYS, set(variable) - SERVER_JSON_VARIABLE_KEYS
            assert variable.get("format", "string") in ("string", "number", "boolean", "filepath")


def test_server_json_describes_this_release_and_its_published_forms() -> None:
    server = _server_json()
    project = pyproject()["project"]
    assert server["version"] == project["version"]
    packages = {package["registryType"]: package for package in server["packages"]}
    assert packages["pypi"]["identifier"] == project["name"]
    assert packages["pypi"]["version"] == project["version"]
    assert packages["oci"]["identifier"] == f"quay.io/flightctl/flightctl-mcp:{project['version']}"
    # Ownership proofs the registry checks: the PyPI description (README) and the image label name it.
    assert f"mcp-name: {server['name']}" in (ROOT / "README.md").read_text(encoding="utf-8")
    labels = " ".join(rest for keyword, rest in final_stage(CONTAINERFILE) if keyword == "LABEL")
    assert f'io.modelcontextprotocol.server.name="{server["name"]}"' in labels
    # Every variable a registry client would ask for is one the server reads, with a valid value.
    known = {option.env for option in config.OPTIONS}
    for package in server["packages"]:
        for variable in package.get("environmentVariables", []):
            assert variable["name"] in known, variable["name"]
    oci_env = {v["name"]: v["value"] for v in packages["oci"]["environmentVariables"] if "value" in v}
    assert oci_env == {"MCP_TRANSPORT": "stdio"}, "a client that starts the image talks over stdin/stdout"
    assert {argument["name"] for argument in packages["oci"]["runtimeArguments"]} >= {"-i"}


async def test_a_registry_client_starting_the_pypi_package_gets_answers(
    installed: Installed, make_simulator: Any, tmp_path: Path
) -> None:
    """What a registry client runs from server.json: `uvx flightctl-mcp` with the variables it lists."""
    from fastmcp import Client
    from fastmcp.client.transports import StdioTransport

    package = next(p for p in _server_json()["packages"] if p["registryType"] == "pypi")
    assert package["runtimeHint"] == "uvx"
    sim = make_simulator(devices=3, tls=False)
    values = {
        "API_BASE_URL": sim.base_url,
        "OIDC_TOKEN_URL": sim.oidc_token_url,
        "REFRESH_TOKEN": sim.issue_tokens(user="admin").refresh_token,
    }
    listed = {variable["name"] for variable in package["environmentVariables"]}
    assert set(values) <= listed
    env = {**_clean_env(tmp_path), **values}
    transport = StdioTransport(str(installed.command), [], env=env, cwd=str(tmp_path), keep_alive=False)
    async with Client(transport, timeout=60) as client:
        result = await client.call_tool("count_devices", {})
    assert json.loads(result.content[0].text)["total"] == 3


# --- CHANGELOG.md ----------------------------------------------------------------------------------


def test_changelog_opens_with_this_release() -> None:
    """Keep a Changelog: Unreleased first, then the version pyproject.toml builds, dated, with a link."""
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    releases = re.findall(r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$", text, re.M)
    assert releases[0] == ("Unreleased", "")
    version, date = releases[1]
    assert version == pyproject()["project"]["version"], "add this release to CHANGELOG.md"
    assert date, f"[{version}] needs its release date"
    for name, _ in releases:
        assert re.search(rf"^\[{re.escape(name)}\]: https://", text, re.M), f"no link for [{name}]"


# --- LICENSE ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("needle", ["Version 2.0, January 2004", "END OF TERMS AND CONDITIONS"])
def test_license_is_the_full_apache_2_text(needle: str) -> None:
    assert needle in (ROOT / "LICENSE").read_text(encoding="utf-8")
