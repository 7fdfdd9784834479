"""The read-only checks of test_live_instance.py hold on the simulator, so they can be trusted on a real
Flight Control, and that file works as the README says: as a script and under pytest.

Part of the end-to-end specification that test_flightctl_mcp.py opens; helpers in tests/e2e_harness.py,
fixtures (``sim``, ``ca_file``, ``http_servers``) in conftest.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fastmcp import Client

from simulator.harness import SimulatorServer
from test_live_instance import CHECKS, Check
from tests.e2e_harness import base_env, env_only, in_memory

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.usefixtures("no_faults_left_behind")


# --- the live checks, on the simulator ----------------------------------------------------------------


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
