"""What of an object an answer shows: projection to dotted paths, and leaving out what the query fixed.

``project`` keeps chosen dotted paths (through lists, per element). ``fixed_by`` reads the equalities a
selector pins (``involvedObject.name=store-12``, ``site=lab``) and ``drop_fixed`` removes those values
from an item when they are exactly what the selector says: the caller already knows them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "PathTree",
    "compiled_paths",
    "drop_fixed",
    "fixed_by",
    "has_path",
    "project",
    "requirements",
    "unescape",
]


def project(obj: Mapping[str, Any], paths: Sequence[str]) -> dict[str, Any]:
    """Keep only ``paths`` (dotted; through a list, applied to each element) of ``obj``."""
    if not isinstance(obj, dict):  # dict, not Mapping: this runs per item of every list answer
        return {}
    return _apply(compiled_paths(tuple(paths)), obj)


PathTree = dict[str, "PathTree | None"]  # a path segment -> what to keep under it (None: the whole value)


@functools.lru_cache(maxsize=512)
def compiled_paths(paths: tuple[str, ...]) -> PathTree:
    """The paths as one tree, built once per view: an item is walked once, not once per path. Keys keep
    the order of the first path naming them; a path that keeps a whole value wins over deeper ones."""
    tree: PathTree = {}
    for path in paths:
        node: PathTree | None = tree
        *parents, last = path.split(".")
        for part in parents:
            if node is None:  # a shorter path keeps this whole value already
                break
            node = node.setdefault(part, {})
        if node is not None:
            node[last] = None
    return tree


def _apply(tree: PathTree, src: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, below in tree.items():
        if key not in src:
            continue
        value = src[key]
        if below is None:
            out[key] = value
        elif isinstance(value, dict):
            inner = _apply(below, value)
            if inner:
                out[key] = inner
        elif isinstance(value, list):
            elements = [_apply(below, v) if isinstance(v, dict) else v for v in value]
            if _has_content(elements):
                out[key] = elements
    return out


def _has_content(value: Any) -> bool:
    if isinstance(value, dict):
        return bool(value)
    if isinstance(value, list):
        return any(_has_content(v) if isinstance(v, dict | list) else True for v in value)
    return True


def has_path(obj: Any, parts: Sequence[str]) -> bool:
    """True when the dotted path (through lists) reaches a value in ``obj``."""
    if not parts:
        return True
    if isinstance(obj, list):
        return any(has_path(element, parts) for element in obj)
    return isinstance(obj, dict) and parts[0] in obj and has_path(obj[parts[0]], parts[1:])


# --- what a selector fixes ----------------------------------------------------------------------------

_SPLIT = re.compile(r"(?<!\\),(?![^()]*\))")  # commas between requirements, not inside (a,b)
_EQUALITY = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*==?\s*((?:[^\s\\(),!=<>]|\\.)*)\s*$")


def requirements(selector: str | None) -> list[str]:
    """The comma-separated requirements of a selector (commas inside ``(a,b)`` or escaped stay)."""
    return _SPLIT.split(selector) if selector else []


def unescape(value: str) -> str:
    """A selector value as the API reads it: a backslash makes the next character literal."""
    return re.sub(r"\\(.)", r"\1", value)


def fixed_by(selector: str | None) -> dict[str, str]:
    """``key -> value`` for every plain equality requirement (``key=value`` or ``key==value``)."""
    fixed: dict[str, str] = {}
    for requirement in requirements(selector):
        match = _EQUALITY.match(requirement)
        if match and match.group(2):
            fixed[match.group(1)] = unescape(match.group(2))
    return fixed


def drop_fixed(item: dict[str, Any], fields: Mapping[str, str], labels: Mapping[str, str]) -> None:
    """Remove values the selectors pinned (field paths and label keys) where the item has exactly them.

    Nested values may be shared with the API object, so each dict on the way is copied, never edited.
    """
    for path, value in fields.items():
        _drop_path(item, path.split("."), value)
    metadata = item.get("metadata")
    if not isinstance(metadata, dict):
        return
    item_labels = metadata.get("labels")
    if isinstance(item_labels, dict) and any(item_labels.get(k) == v for k, v in labels.items()):
        metadata["labels"] = {k: v for k, v in item_labels.items() if labels.get(k) != v}


def _drop_path(obj: dict[str, Any], parts: list[str], value: str) -> None:
    key = parts[0]
    if key not in obj:
        return
    if len(parts) == 1:
        current = obj[key]
        text = str(current).lower() if isinstance(current, bool) else str(current)
        if isinstance(current, str | int) and text == value:
            del obj[key]
        return
    child = obj[key]
    if not isinstance(child, dict):
        return
    child = dict(child)
    _drop_path(child, parts[1:], value)
    if child:
        obj[key] = child
    else:
        del obj[key]
