"""Each benchmark in bench/ runs end to end at tiny sizes (``--quick``), so none of them can rot.

The scripts are run exactly as the README says (``python bench/<name>.py``), in a subprocess; the figures
themselves are not checked here (they depend on the machine), only that a table and the machine line come
out and the script exits 0.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ["concurrency", "scale", "overhead", "startup", "size", "attacks"]


@pytest.mark.parametrize("name", SCRIPTS)
def test_benchmark_runs_in_quick_mode(name: str) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / f"{name}.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("machine: "), result.stdout
    assert "|---" in result.stdout, "a table of figures"


def test_simulator_scale_runs_on_a_small_fleet() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "simulator_scale.py"), "--devices", "200", "--limit", "100"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "200 devices in 2 pages" in result.stdout
