"""Query parameters as Flight Control reads them, with its error texts: integers, booleans and enums,
paging (``limit``, ``continue``), the list metadata that answers them, and a request's selectors
compiled into one predicate.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request

from simulator.errors import ApiFailure
from simulator.kinds import KINDS
from simulator.resources import MAX_LIMIT, KindSpec, decode_continue, encode_continue
from simulator.selectors import Predicate, compile_field_selector, compile_label_selector

__all__ = [
    "api_error",
    "bool_param",
    "combine",
    "enum_param",
    "int_param",
    "list_meta",
    "list_params",
    "parent_filter",
    "query_value",
    "request_selectors",
]


def api_error(name: str, detail: str) -> ApiFailure:
    """The 400 upstream's OpenAPI validator answers for a bad query parameter."""
    return ApiFailure(400, f'API Error: parameter "{name}" in query has an error: {detail}')


def query_value(request: Request, name: str) -> str | None:
    """A parameter's value; an empty one counts as absent, as upstream's validator treats it."""
    value = request.query_params.get(name)
    return value if value not in (None, "") else None


def int_param(request: Request, name: str, *, minimum: int = 0, maximum: int = MAX_LIMIT) -> int | None:
    """An integer parameter (an int32, then within minimum..maximum), or None when absent."""
    raw = query_value(request, name)
    if raw is None:
        return None
    if not re.fullmatch(r"[+-]?\d+", raw):
        raise api_error(name, f"value {raw}: an invalid integer: invalid syntax")
    value = int(raw)
    if value > 2**31 - 1 or value < -(2**31):
        raise api_error(name, f"value {raw}: an invalid integer: value out of range")
    if value > maximum:
        raise api_error(name, f"number must be at most {maximum}")
    if value < minimum:
        raise api_error(name, f"number must be at least {minimum}")
    return value


def bool_param(request: Request, name: str) -> bool:
    """A boolean parameter as Go's strconv.ParseBool reads it; absent is false."""
    raw = query_value(request, name)
    if raw is None:
        return False
    if raw in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if raw in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise api_error(name, f"value {raw}: an invalid boolean: invalid syntax")


def enum_param(
    request: Request, name: str, allowed: tuple[str, ...], *, required: bool = False
) -> str | None:
    """A parameter that must be one of ``allowed``, or None when absent and not required."""
    raw = query_value(request, name)
    if raw is None:
        if required:
            raise api_error(name, "value is required but missing")
        return None
    if raw not in allowed:
        listing = ",".join(json.dumps(a) for a in allowed)
        raise api_error(name, f"value is not one of the allowed values [{listing}]")
    return raw


def list_meta(next_names: list[str] | None, remaining: int | None) -> dict[str, Any]:
    """A list's metadata: the continue token and remaining count while items remain, else empty."""
    if next_names is None or remaining is None:
        return {}
    return {"continue": encode_continue(next_names, remaining), "remainingItemCount": remaining}


def combine(*predicates: Predicate | None) -> Predicate | None:
    """One predicate that holds where all the given ones do; None when none is given."""
    active = [p for p in predicates if p is not None]
    if not active:
        return None
    if len(active) == 1:
        return active[0]
    return lambda record: all(p(record) for p in active)


def list_params(request: Request) -> tuple[int, list[str] | None, int | None]:
    """A list request's page: its limit, and the continue token's names and remaining count."""
    limit = int_param(request, "limit") or MAX_LIMIT
    token = request.query_params.get("continue")
    if token is None:
        return limit, None, None
    names, count = decode_continue(token)
    return limit, names, count


def request_selectors(request: Request, plural: str, *, labels: bool = True) -> Predicate | None:
    """A request's labelSelector and fieldSelector over a kind, compiled into one predicate."""
    spec = KINDS[plural]
    field_pred = compile_field_selector(request.query_params.get("fieldSelector"), spec.fields)
    label_pred = (
        compile_label_selector(request.query_params.get("labelSelector"), lambda r: r.labels)
        if labels
        else None
    )
    return combine(label_pred, field_pred)


def parent_filter(request: Request, spec: KindSpec) -> Predicate | None:
    """A nested kind lists only its parent's objects (upstream adds ``metadata.owner=<parent>``)."""
    if spec.parent is None:
        return None
    parent = request.path_params[spec.parent]
    owner = spec.fields["metadata.owner"].getter
    return lambda record: bool(owner(record) == parent)
