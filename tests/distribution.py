"""Build the distribution once per test session and install its wheel into a throwaway environment.

The build runs from a copy of the files a clone has (git-tracked, plus new files not ignored), so it never
writes build/ or *.egg-info into the working tree and cannot pick up stray local files. ``python -m build``
makes the sdist and then the wheel from that sdist, so both are proven. The wheel is installed with
``--no-deps`` into a new venv that sees this environment's locked dependencies through a .pth file: no
network, and ``pip check`` still proves the wheel's declared requirements are met by the lock.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: Top-level Python files that are development tools, never part of the server.
NOT_SHIPPED = ("conftest.py",)


@dataclass(frozen=True)
class Installed:
    """One built sdist and wheel, and a venv with the wheel installed."""

    sdist: Path
    wheel: Path
    venv: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def command(self) -> Path:
        """The console script users run: ``flightctl-mcp``."""
        return self.venv / "bin" / "flightctl-mcp"


def pyproject() -> dict[str, Any]:
    """pyproject.toml: the name, version, dependencies and modules the distribution is built from."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def clone_files() -> list[str]:
    """Paths a clone of the repository has: tracked files and new, not ignored ones (sorted)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return sorted({path for path in listed.split("\0") if path and (ROOT / path).is_file()})


def runtime_modules() -> list[str]:
    """Every top-level module of the server: top-level *.py files except tests and pytest's conftest."""
    return sorted(
        path.removesuffix(".py")
        for path in clone_files()
        if "/" not in path
        and path.endswith(".py")
        and not path.startswith("test_")
        and path not in NOT_SHIPPED
    )


def _run(argv: list[str], cwd: Path) -> None:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"{' '.join(argv)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"


@functools.cache
def build_and_install() -> Installed:
    """Build once per session (cached); the temporary directory goes when the interpreter exits."""
    work = Path(tempfile.mkdtemp(prefix="flightctl-mcp-dist-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    source = work / "source"
    for path in clone_files():
        target = source / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / path, target)
    dist = work / "dist"
    _run([sys.executable, "-m", "build", "--outdir", str(dist), str(source)], cwd=work)
    (sdist,) = dist.glob("*.tar.gz")
    (wheel,) = dist.glob("*.whl")
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=work)
    purelib = Path(
        subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()
    )
    # The locked dependencies of this environment, after the venv's own site-packages.
    (purelib / "_locked_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
    _run([*pip, "install", "--quiet", "--no-deps", "--no-index", str(wheel)], cwd=work)
    _run([*pip, "check"], cwd=work)
    return Installed(sdist=sdist, wheel=wheel, venv=venv)
