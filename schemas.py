"""The input schema an assistant sees for an operation: pydantic's, without what only costs tokens.

Shared by every tool adapter (main.OperationTool and command_tool.CommandTool), so it depends on no
project module at run time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from operations import Operation

__all__ = ["tool_schema"]


#: Enforced by the params model, not advertised: a refusal names the rule, and tools/list stays small.
_CHECKED_NOT_SHOWN = frozenset({"pattern", "minLength", "maxLength", "maxItems", "additionalProperties"})


def _lean(schema: Any) -> Any:
    """Drop pydantic's titles and the checks the model makes anyway, collapse Optional[X] to X: tools/list
    stays small."""
    if isinstance(schema, list):
        return [_lean(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {
        k: _lean(v)
        for k, v in schema.items()
        if k not in _CHECKED_NOT_SHOWN and (k != "title" or not isinstance(v, str))
    }
    variants = out.get("anyOf")
    if isinstance(variants, list) and {"type": "null"} in variants and out.get("default", ...) is None:
        rest = [v for v in variants if v != {"type": "null"}]
        if len(rest) == 1:
            del out["anyOf"], out["default"]
            out = {**rest[0], **out}
    return out


def tool_schema(operation: Operation) -> dict[str, Any]:
    """The input schema the assistant sees for one operation."""
    schema: dict[str, Any] = _lean(operation.params.model_json_schema())
    return schema
