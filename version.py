"""The server's version, kept in one place: ``[project].version`` of pyproject.toml.

An installed copy (wheel, ``pip install``, ``pipx``, ``uvx``, the container image) reads it from the package
metadata that the build copied out of pyproject.toml. A clone run as ``python main.py`` has no metadata for
this package, or may have an older copy installed in the same environment, so when pyproject.toml of this
distribution sits beside this file, that file wins: it is the source the code next to it was released from.
"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

__all__ = ["DISTRIBUTION", "__version__"]

DISTRIBUTION = "flightctl-mcp"


def _version() -> str:
    pyproject = Path(__file__).resolve().parent / "pyproject.toml"
    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        project = {}
    if project.get("name") == DISTRIBUTION and isinstance(project.get("version"), str):
        return str(project["version"])
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "0+unknown"


__version__ = _version()
