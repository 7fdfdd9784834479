"""Links: the tool and arguments that fetch a related resource, filled for one object or as a template.

A single-object answer carries its links filled in. A list answer carries each link once, as a template
whose ``{dotted.path}`` placeholders name the item field to put in (``{owner.name}`` is the part of
``metadata.owner`` after the ``/``); placeholders the selectors already fix are filled for the caller.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from resource_queries import KINDS_BY_KIND, RelatedLink, ResourceKind

__all__ = ["link", "links_for", "links_template"]

_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


def link(tool: str, **arguments: Any) -> dict[str, Any]:
    """A link: the tool and arguments that fetch the related resource."""
    return {"tool": tool, "arguments": arguments}


def lookup(obj: Mapping[str, Any], path: str) -> str | None:
    """The text at a dotted path of ``obj`` (``owner.kind``/``owner.name`` split ``metadata.owner``)."""
    if path.startswith("owner."):
        owner = lookup(obj, "metadata.owner") or ""
        owner_kind, _, owner_name = owner.partition("/")
        value = owner_kind if path == "owner.kind" else owner_name
        return value or None
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return str(current) if isinstance(current, str | int) and str(current) else None


def _fill(template: str, value_of: Any) -> str | None:
    missing = False

    def sub(match: re.Match[str]) -> str:
        nonlocal missing
        value = value_of(match.group(1))
        missing = missing or value is None
        return str(value or "")

    filled = _PLACEHOLDER.sub(sub, template)
    return None if missing else filled


def _tool_of(spec: RelatedLink, value_of: Any) -> str | None:
    if not spec.tool.startswith("@"):
        return spec.tool
    target = KINDS_BY_KIND.get(_fill(spec.tool[1:], value_of) or "")
    return target.tool if target else None


def links_for(kind: ResourceKind, obj: Mapping[str, Any]) -> dict[str, Any]:
    """Every related-resource link of ``kind`` that can be filled from this one object."""
    out: dict[str, Any] = {}
    owner_kind = lookup(obj, "owner.kind")

    def value_of(path: str) -> str | None:
        return lookup(obj, path)

    for spec in kind.links:
        if spec.when_owner_kind and owner_kind != spec.when_owner_kind:
            continue
        tool = _tool_of(spec, value_of)
        arguments = {name: _fill(template, value_of) for name, template in spec.arguments}
        if tool and all(arguments.values()):
            out[spec.rel] = link(tool, **arguments)
    return out


def links_template(
    kind: ResourceKind, items: Iterable[Mapping[str, Any]], fixed: Mapping[str, str]
) -> dict[str, Any]:
    """The list links once per answer: templates over item fields, with what the selectors fix filled in.

    A link whose tool depends on the item (an event's involved object) is filled when the selector fixes
    it, and otherwise maps each kind present in the items to its tool.
    """
    items = list(items)
    out: dict[str, Any] = {}
    fixed_owner = fixed.get("metadata.owner", "").partition("/")
    owner_kinds = {lookup(item, "owner.kind") for item in items} | {fixed_owner[0]}

    def value_of(path: str) -> str:
        if path.startswith("owner.") and fixed_owner[0]:
            return fixed_owner[0] if path == "owner.kind" else fixed_owner[2]
        return fixed.get(path) or "{" + path + "}"

    for spec in kind.links:
        if not spec.in_lists or (spec.when_owner_kind and spec.when_owner_kind not in owner_kinds):
            continue

        arguments = {name: _fill(template, value_of) for name, template in spec.arguments}
        tool: Any = spec.tool
        if spec.tool.startswith("@"):
            path = spec.tool[2:-1]
            if path in fixed:
                tool = _tool_of(spec, fixed.get)
            else:
                present = {lookup(item, path) for item in items}
                kinds = sorted(k for k in present if k is not None and k in KINDS_BY_KIND)
                tool = {k: KINDS_BY_KIND[k].tool for k in kinds}
                tool = tool[kinds[0]] if len(kinds) == 1 else tool
        if tool:
            out[spec.rel] = (
                link(tool, **arguments)
                if isinstance(tool, str)
                else {"tool": tool} | {"arguments": arguments}
            )
    return out
