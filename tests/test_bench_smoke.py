"""Each benchmark in bench/ runs end to end at tiny sizes (``--quick``), so none of them can rot.

The scripts are run exactly as the README says (``python bench/<name>.py``), in a subprocess; the figures
themselves are not checked here (they depend on the machine), only that a table and the machine line come
out, the script exits 0 and it leaves no process of its own behind. A hang is left to pytest's timeout.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ["concurrency", "scale", "overhead", "startup", "size", "attacks"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    """``python <args>`` in a process group of its own: whatever a benchmark started (simulator, servers)
    must be gone once it exits, and is killed with it if the test is interrupted (e.g. by its timeout)."""
    argv = [sys.executable, *args]
    with subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    ) as process:
        try:
            stdout, stderr = process.communicate()
            left = _group_alive(process.pid)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
    assert not left, f"{args[0]} left a process running:\n{stdout}{stderr}"
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("name", SCRIPTS)
def test_benchmark_runs_in_quick_mode(name: str) -> None:
    result = _run(str(ROOT / "bench" / f"{name}.py"), "--quick")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("machine: "), result.stdout
    assert "|---" in result.stdout, "a table of figures"


def test_simulator_scale_runs_on_a_small_fleet() -> None:
    result = _run(str(ROOT / "bench" / "simulator_scale.py"), "--devices", "200", "--limit", "100")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "200 devices in 2 pages" in result.stdout
