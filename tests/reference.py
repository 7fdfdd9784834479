"""Where the Flight Control reference material (OpenAPI spec, examples) sits, seen from any checkout."""

from __future__ import annotations

from pathlib import Path

__all__ = ["reference_file"]


def reference_file(*parts: str) -> Path:
    """``shared/reference/<parts>`` in the nearest parent directory that has it (a worktree's too)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent.joinpath("shared", "reference", *parts)
        if candidate.exists():
            return candidate
    return here.parents[2].joinpath("shared", "reference", *parts)
