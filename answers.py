"""Answers an assistant can use: compact views, links, a response budget and cursors.

A list answer holds as many items as fit in ``settings.response_token_budget`` (approximated as bytes/4)
and ``limit``; when more remain it says how many and gives the exact call that continues (``next``), whose
opaque cursor records where the next item sits (the API ``continue`` token of the page being read, the
offset inside that page, the page size, the index of the page's first item) and a hash of the query, so
every item is visited exactly once and a cursor reused with another query is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from errors import InvalidRequest
from resource_queries import KINDS_BY_KIND, MAX_PAGE_SIZE, ResourceKind

if TYPE_CHECKING:
    from auth import TokenSource
    from services import Services

__all__ = [
    "InvalidRequest",
    "ListQuery",
    "dumps",
    "fits",
    "link",
    "links_for",
    "list_answer",
    "project",
    "render",
    "single_answer",
]

_ENVELOPE_RESERVE = 1200  # bytes kept free for returned/total/next/note around the items
_CURSOR_VERSION = 1


# orjson, ~10x faster than the json module on the hot path; default=str as before for anything else.
_ORJSON = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def dumps(value: Any) -> str:
    """Compact JSON, the one wire form of every answer."""
    try:
        return orjson.dumps(value, default=str, option=_ORJSON).decode()
    except TypeError:  # what orjson refuses (integers over 64 bits, lone surrogates): the json module
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def _size(value: Any) -> int:
    """Bytes of ``value`` as sent (compact UTF-8 JSON)."""
    try:
        return len(orjson.dumps(value, default=str, option=_ORJSON))
    except TypeError:
        return len(dumps(value).encode("utf-8", "surrogatepass"))


def fits(value: Any, budget_tokens: int) -> bool:
    """True when ``value`` as compact JSON is within the token budget (bytes/4)."""
    return _size(value) <= budget_tokens * 4


# --- projection ---------------------------------------------------------------------------------------


def project(obj: Mapping[str, Any], paths: Sequence[str]) -> dict[str, Any]:
    """Keep only ``paths`` (dotted; through a list, applied to each element) of ``obj``."""
    out: dict[str, Any] = {}
    for path in paths:
        _copy_path(out, obj, path.split("."))
    return out


def _copy_path(dst: dict[str, Any], src: Any, parts: list[str]) -> None:
    key, rest = parts[0], parts[1:]
    if not isinstance(src, dict) or key not in src:  # dict, not Mapping: this runs per field per item
        return
    value = src[key]
    if not rest:
        dst[key] = value
        return
    created = key not in dst
    if isinstance(value, list):
        target = dst.setdefault(key, [{} if isinstance(v, dict) else v for v in value])
        for d, s in zip(target, value, strict=False):
            if isinstance(d, dict):
                _copy_path(d, s, rest)
    elif isinstance(value, dict):
        target = dst.setdefault(key, {})
        if isinstance(target, dict):
            _copy_path(target, value, rest)
    else:
        return
    if created and not _has_content(dst[key]):
        del dst[key]


def _has_content(value: Any) -> bool:
    if isinstance(value, dict):
        return bool(value)
    if isinstance(value, list):
        return any(_has_content(v) if isinstance(v, dict | list) else True for v in value)
    return True


def render(
    kind: ResourceKind,
    obj: Mapping[str, Any],
    *,
    fields: Sequence[str] | None = None,
    full: bool = False,
    in_list: bool = False,
) -> dict[str, Any]:
    """The item as the assistant sees it: compact view, chosen ``fields`` or the whole object, plus links."""
    if full:
        item = dict(obj)
    else:
        paths = ("metadata.name", *fields) if fields else kind.view
        item = project(obj, paths)
    links = links_for(kind, obj, in_list=in_list)
    if links:
        item["links"] = links
    return item


# --- links --------------------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


def link(tool: str, **arguments: Any) -> dict[str, Any]:
    """A link: the tool and arguments that fetch the related resource."""
    return {"tool": tool, "arguments": arguments}


def _lookup(obj: Mapping[str, Any], path: str) -> str | None:
    if path.startswith("owner."):
        owner = _lookup(obj, "metadata.owner") or ""
        owner_kind, _, owner_name = owner.partition("/")
        value = owner_kind if path == "owner.kind" else owner_name
        return value or None
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return str(current) if isinstance(current, str | int) and str(current) else None


def _fill(template: str, obj: Mapping[str, Any]) -> str | None:
    missing = False

    def sub(match: re.Match[str]) -> str:
        nonlocal missing
        value = _lookup(obj, match.group(1))
        missing = missing or value is None
        return value or ""

    filled = _PLACEHOLDER.sub(sub, template)
    return None if missing else filled


def links_for(kind: ResourceKind, obj: Mapping[str, Any], *, in_list: bool = False) -> dict[str, Any]:
    """Every related-resource link of ``kind`` that can be filled from this object (fewer in lists)."""
    out: dict[str, Any] = {}
    owner_kind = _lookup(obj, "owner.kind")
    for spec in kind.links:
        if (spec.when_owner_kind and owner_kind != spec.when_owner_kind) or (in_list and not spec.in_lists):
            continue
        tool: str | None = spec.tool
        if spec.tool.startswith("@"):
            target = KINDS_BY_KIND.get(_fill(spec.tool[1:], obj) or "")
            tool = target.tool if target else None
        arguments = {name: _fill(template, obj) for name, template in spec.arguments}
        if tool and all(arguments.values()):
            out[spec.rel] = link(tool, **arguments)
    return out


# --- cursors ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Position:
    """Where an item sits: the page that holds it (continue token, None = first), offset, page base index."""

    token: str | None
    offset: int
    base: int
    page_size: int
    item_bytes: int = 0  # average rendered size so far: sizes the next page to what will fit


def _query_hash(kind: ResourceKind, selectors: Mapping[str, Any]) -> str:
    material = dumps({"tool": kind.tool, **{k: v for k, v in sorted(selectors.items()) if v is not None}})
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def _encode_cursor(position: _Position, query_hash: str) -> str:
    raw = dumps(
        {
            "v": _CURSOR_VERSION,
            "q": query_hash,
            "t": position.token,
            "o": position.offset,
            "b": position.base,
            "p": position.page_size,
            "s": position.item_bytes,
        }
    )
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, query_hash: str, tool: str) -> _Position:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if data["v"] != _CURSOR_VERSION:
            raise ValueError("version")
        position = _Position(data["t"], int(data["o"]), int(data["b"]), int(data["p"]), int(data.get("s", 0)))
        if not (isinstance(position.token, str | None) and 0 <= position.page_size <= MAX_PAGE_SIZE):
            raise ValueError("token or page size")
        if min(position.offset, position.base, position.item_bytes) < 0:
            raise ValueError("negative position")
        recorded = str(data["q"])
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidRequest(
            f"The cursor passed to {tool} is not one this server issued (it is opaque: copy it unchanged "
            f"from the 'next' of the previous answer). Call {tool} without a cursor to start again."
        ) from exc
    if recorded != query_hash:
        raise InvalidRequest(
            f"This cursor belongs to a different query: {tool} must be called with the same label_selector, "
            "field_selector and order as the answer that returned it (copy 'next.arguments' unchanged). "
            "Call without a cursor to start a new query."
        )
    return position


# --- list and single answers --------------------------------------------------------------------------


@dataclass(frozen=True)
class ListQuery:
    """A list request as the operations hand it over; ``arguments`` are echoed in the continuation."""

    limit: int
    label_selector: str | None = None
    field_selector: str | None = None
    order: str | None = None
    fields: tuple[str, ...] | None = None
    full: bool = False
    cursor: str | None = None
    arguments: Mapping[str, Any] | None = None

    @property
    def selectors(self) -> dict[str, Any]:
        return {
            "label_selector": self.label_selector,
            "field_selector": self.field_selector,
            "order": self.order,
        }


@dataclass
class _Collected:
    items: list[dict[str, Any]]
    positions: list[_Position]
    after: _Position | None
    total: int | None
    stopped_by_budget: bool = False
    total_read: bool = False
    sizes: list[int] = field(default_factory=list)  # encoded bytes of each item, plus its comma


async def list_answer(
    services: Services, tokens: TokenSource | None, kind: ResourceKind, query: ListQuery
) -> dict[str, Any]:
    """Page until ``limit`` items or the response budget; say what remains and how to get it."""
    _check_view_options(query.fields, query.full, kind.tool)
    budget = services.settings.response_token_budget * 4
    qhash = _query_hash(kind, query.selectors)
    start = (
        _decode_cursor(query.cursor, qhash, kind.tool)
        if query.cursor
        else _Position(None, 0, 0, min(query.limit, MAX_PAGE_SIZE))
    )
    collected = await _collect(services, tokens, kind, query, start, budget - _ENVELOPE_RESERVE)
    answer = _list_envelope(kind, query, collected, qhash)
    while _answer_size(answer, collected) > budget and len(collected.items) > 1:
        collected.items.pop()
        collected.sizes.pop()
        collected.after = collected.positions.pop()
        collected.stopped_by_budget = True
        answer = _list_envelope(kind, query, collected, qhash)
    return answer


def _answer_size(answer: dict[str, Any], collected: _Collected) -> int:
    """Bytes of the answer as sent: the envelope plus the item sizes measured once while collecting."""
    envelope = _size({**answer, "items": []})
    return envelope + sum(collected.sizes)


_GUESSED_ITEM_BYTES = 400  # a compact device; corrected by measurement after the first page
_MIN_ROOM_FRACTION = 4  # fetch another page only while at least 1/4 of the budget is still free


def _page_size(position: _Position, wanted: int, room: int, item_bytes: int) -> int:
    """Ask the API for about what will fit, not for ``limit`` items the budget would cut anyway.

    A page resumed from a cursor is read again with the size it was first read with, so its items keep
    their offsets and the answer moves on to the next continue token instead of growing this page.
    """
    if position.offset and position.page_size > position.offset:
        return position.page_size
    # 10% slack: items vary in size, and a page that ends before the budget is never read twice.
    fit = max(1, (room * 9 // 10) // max(item_bytes, 1))
    return max(1, min(position.offset + min(wanted, fit), MAX_PAGE_SIZE))


async def _collect(
    services: Services,
    tokens: TokenSource | None,
    kind: ResourceKind,
    query: ListQuery,
    position: _Position,
    budget: int,
) -> _Collected:
    out = _Collected([], [], None, None)
    used = 0
    item_bytes = position.item_bytes or _GUESSED_ITEM_BYTES * (10 if query.full else 1)
    while True:
        page_size = _page_size(position, query.limit - len(out.items), budget - used, item_bytes)
        position = _Position(position.token, position.offset, position.base, page_size, item_bytes)
        page = await services.api.list_page(
            kind,
            tokens,
            limit=page_size,
            continue_token=position.token,
            label_selector=query.label_selector,
            field_selector=query.field_selector,
            order=query.order,
        )
        if not out.total_read:
            out.total_read = True
            if not page.continue_token:
                out.total = position.base + len(page.items)
            elif page.remaining is not None:
                out.total = position.base + len(page.items) + page.remaining
        for index in range(position.offset, len(page.items)):
            here = _Position(position.token, index, position.base, page_size, item_bytes)
            if len(out.items) == query.limit:
                out.after = here
                return out
            item = render(kind, page.items[index], fields=query.fields, full=query.full, in_list=True)
            size = _size(item) + 1
            if size > budget:
                item = _oversized(kind, page.items[index], size, services.settings.response_token_budget)
                size = _size(item) + 1
            if used + size > budget and out.items:
                out.after, out.stopped_by_budget = here, True
                return out
            out.items.append(item)
            out.positions.append(here)
            out.sizes.append(size)
            used += size
            item_bytes = used // len(out.items)
        if not page.continue_token:
            return out
        position = _Position(page.continue_token, 0, position.base + len(page.items), 0, item_bytes)
        if len(out.items) == query.limit:
            out.after = position
            return out
        if out.items and budget - used < budget // _MIN_ROOM_FRACTION:
            # Another request for the last few items would cost a round trip per call: stop at the page
            # boundary, so the next call starts on a fresh page instead of re-reading this one.
            out.after, out.stopped_by_budget = position, True
            return out


def _oversized(kind: ResourceKind, obj: Mapping[str, Any], size: int, budget_tokens: int) -> dict[str, Any]:
    """Stand-in for one object larger than the whole budget: never dropped silently."""
    name = _lookup(obj, "metadata.name") or "?"
    return {
        "metadata": {"name": name},
        "omitted": f"This {kind.singular} is about {size // 4} tokens, over the response budget of "
        f"{budget_tokens}. Ask for parts of it: {kind.tool}(name='{name}', fields=[...]).",
    }


def _list_envelope(kind: ResourceKind, query: ListQuery, collected: _Collected, qhash: str) -> dict[str, Any]:
    returned = len(collected.items)
    answer: dict[str, Any] = {"kind": kind.kind, "returned": returned, "total": collected.total}
    if collected.after is not None:
        first = collected.positions[0] if collected.positions else collected.after
        seen_before = first.base + first.offset
        arguments = {k: v for k, v in (query.arguments or {}).items() if v is not None and k != "cursor"}
        arguments["cursor"] = _encode_cursor(collected.after, qhash)
        reason = "the response budget" if collected.stopped_by_budget else "limit"
        of_total = "" if collected.total is None else f" of {collected.total}"
        if collected.total is not None:
            answer["more"] = max(collected.total - seen_before - returned, 1)
        answer["next"] = link(kind.tool, **arguments)
        answer["note"] = (
            f"Returned {returned}{of_total} (stopped at {reason}). To continue, call {kind.tool} with "
            "next.arguments unchanged; or narrow the selectors"
            + (", or use count_devices for counts." if kind.name == "devices" else ".")
        )
    answer["items"] = collected.items
    return answer


def _check_view_options(fields: Sequence[str] | None, full: bool, tool: str) -> None:
    if fields and full:
        raise InvalidRequest(
            f"{tool}: pass either fields (the dotted paths you want) or full=true (the whole object), "
            "not both."
        )


def single_answer(
    services: Services,
    kind: ResourceKind,
    obj: Mapping[str, Any],
    *,
    fields: Sequence[str] | None = None,
    full: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One object: its view (or fields/full), extras such as lastSeen, its links; within the budget."""
    _check_view_options(fields, full, kind.tool)
    budget_tokens = services.settings.response_token_budget
    item = render(kind, obj, fields=fields, full=full)
    item.update(extra or {})
    answer = {"kind": kind.kind, "item": item}
    if fits(answer, budget_tokens):
        return answer
    return {
        "kind": kind.kind,
        "item": _oversized(kind, obj, _size(answer), budget_tokens) | {"links": item.get("links")},
    }
