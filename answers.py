"""Answers an assistant can use: the server's own words around Flight Control's data, within a budget.

Every answer is one JSON object. What came from Flight Control and its devices (objects, labels, counts,
rendered configuration: text a device may control) sits under one key, ``data``; everything else
(``kind``, ``returned``, ``total``, ``more``, ``next``, ``links``, ``note``) is the server's own words, and
the server instructions tell the assistant that whatever is under ``data`` is data, never instructions.

A list answer holds as many items as fit in ``settings.response_token_budget`` (approximated as bytes/4)
and ``limit`` (default: as many as fit); when more remain it says how many and gives the exact call that
continues (``next``), whose signed cursor (cursors.py) records where the next item sits, so every item is
visited exactly once, and a cursor used with another query, caller or organization is refused. Links
come once per answer, as templates over the item fields, and not at all when the caller chose ``fields``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from cursors import Position, binding_for, codec_for
from errors import InvalidRequest
from links import link, links_for, links_template, lookup
from page_sizing import next_page_size
from resource_queries import MAX_PAGE_SIZE, ResourceKind
from views import drop_fixed, fixed_by, has_path, project

if TYPE_CHECKING:
    from auth import TokenSource
    from services import Services

__all__ = [
    "DATA",
    "MAX_LIMIT",
    "InvalidRequest",
    "ListQuery",
    "dumps",
    "fits",
    "link",
    "list_answer",
    "project",
    "render",
    "single_answer",
]

DATA = "data"  # the one key holding what Flight Control and devices said; the instructions name it
MAX_LIMIT = 1000  # most items one answer may hold (the budget usually holds fewer)
_ENVELOPE_RESERVE = 1200  # bytes kept free for returned/total/next/note/links around the items


# orjson, ~10x faster than the json module on the hot path; default=str as before for anything else.
_ORJSON = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class _Encoded:
    """An item already encoded while its size was measured: written into the answer as it is."""

    __slots__ = ("raw",)

    def __init__(self, raw: bytes) -> None:
        self.raw = raw


def _orjson_default(value: Any) -> Any:
    return orjson.Fragment(value.raw) if isinstance(value, _Encoded) else str(value)


def _json_default(value: Any) -> Any:
    return (
        json.loads(value.raw.decode("utf-8", "surrogatepass")) if isinstance(value, _Encoded) else str(value)
    )


def dumps(value: Any) -> str:
    """Compact JSON, the one wire form of every answer."""
    try:
        return orjson.dumps(value, default=_orjson_default, option=_ORJSON).decode()
    except TypeError:  # what orjson refuses (integers over 64 bits, lone surrogates): the json module
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def _encode(value: Any) -> bytes:
    """``value`` as sent: compact UTF-8 JSON."""
    try:
        return orjson.dumps(value, default=_orjson_default, option=_ORJSON)
    except TypeError:
        return dumps(value).encode("utf-8", "surrogatepass")


def _size(value: Any) -> int:
    """Bytes of ``value`` as sent (compact UTF-8 JSON)."""
    return len(_encode(value))


def fits(value: Any, budget_tokens: int) -> bool:
    """True when ``value`` as compact JSON is within the token budget (bytes/4)."""
    return _size(value) <= budget_tokens * 4


@dataclass(frozen=True)
class _Fixed:
    """What the selectors pin: field paths and label keys with the one value each must have."""

    fields: Mapping[str, str]
    labels: Mapping[str, str]


def render(
    kind: ResourceKind,
    obj: Mapping[str, Any],
    *,
    fields: Sequence[str] | None = None,
    full: bool = False,
    fixed: _Fixed | None = None,
) -> dict[str, Any]:
    """The item as the assistant sees it: compact view (minus what the selectors fix), ``fields`` or all."""
    paths = _view_paths(kind, fields, full)
    if paths is None:
        return dict(obj)
    item = project(obj, paths)
    if not fields and fixed is not None and (fixed.fields or fixed.labels):
        drop_fixed(item, fixed.fields, fixed.labels)
    return item


def _view_paths(kind: ResourceKind, fields: Sequence[str] | None, full: bool) -> tuple[str, ...] | None:
    """The dotted paths an item shows: the kind's view, or the chosen fields (and the name); None: all."""
    if full:
        return None
    return ("metadata.name", *fields) if fields else kind.view


# --- list answers ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListQuery:
    """A list request as the operations hand it over; ``arguments`` are echoed in the continuation.

    ``parent`` is the hook for nested kinds (``Fleet/east`` for a fleet's template versions): it binds
    cursors to that parent, and ``page_extra`` carries whatever the API call needs to read under it.
    ``notes`` are hints the operation adds (an unknown status value, a name found as an alias).
    """

    limit: int | None = None
    label_selector: str | None = None
    field_selector: str | None = None
    order: str | None = None
    fields: tuple[str, ...] | None = None
    full: bool = False
    cursor: str | None = None
    arguments: Mapping[str, Any] | None = None
    parent: str | None = None
    page_extra: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def selectors(self) -> dict[str, Any]:
        return {
            "label_selector": self.label_selector,
            "field_selector": self.field_selector,
            "order": self.order,
            "parent": self.parent,
        }

    @property
    def effective_limit(self) -> int:
        return self.limit or MAX_LIMIT

    @property
    def fixed(self) -> _Fixed | None:
        """Values the selectors fix, left out of default-view items (never out of chosen fields)."""
        if self.fields or self.full:
            return None
        fields = fixed_by(self.field_selector)
        fields.pop("metadata.name", None)  # an item always says which object it is
        return _Fixed(fields, fixed_by(self.label_selector))


@dataclass
class _Collected:
    items: list[dict[str, Any]]
    positions: list[Position]
    after: Position | None
    total: int | None
    stopped_by_budget: bool = False
    total_read: bool = False
    oversized: bool = False
    sizes: list[int] = field(default_factory=list)  # encoded bytes of each item, plus its comma
    encoded: list[bytes] = field(default_factory=list)  # each item as sent, encoded once


async def list_answer(
    services: Services, tokens: TokenSource | None, kind: ResourceKind, query: ListQuery
) -> dict[str, Any]:
    """Page until ``limit`` items or the response budget; say what remains and how to get it."""
    _check_view_options(query.fields, query.full, kind.tool)
    settings = services.settings
    budget = settings.response_token_budget * 4
    binding = binding_for(tokens, settings, kind.tool, query.selectors)
    codec = codec_for(settings)
    start = (
        codec.decode(query.cursor, binding, kind.tool)
        if query.cursor
        else Position(None, 0, 0, min(query.effective_limit, MAX_PAGE_SIZE))
    )
    collected = await _collect(services, tokens, kind, query, start, budget - _ENVELOPE_RESERVE)

    def envelope() -> dict[str, Any]:
        cursor = codec.encode(collected.after, binding) if collected.after is not None else None
        return _list_envelope(kind, query, collected, cursor, settings.response_token_budget)

    answer = envelope()
    while _answer_size(answer, collected) > budget and len(collected.items) > 1:
        collected.items.pop()
        collected.sizes.pop()
        collected.encoded.pop()
        collected.after = collected.positions.pop()
        collected.stopped_by_budget = True
        answer = envelope()
    if collected.sizes:
        services.item_sizes.learn(_view_of(kind, query), sum(collected.sizes) // len(collected.sizes))
    # The items as measured, not encoded again: dumps() copies their bytes into the answer.
    answer[DATA] = [_Encoded(encoded) for encoded in collected.encoded]
    return answer


def _answer_size(answer: dict[str, Any], collected: _Collected) -> int:
    """Bytes of the answer as sent: the envelope plus the item sizes measured once while collecting."""
    envelope = _size({**answer, DATA: []})
    return envelope + sum(collected.sizes)


def _view_of(kind: ResourceKind, query: ListQuery) -> tuple[str, bool, tuple[str, ...] | None]:
    """What decides an item's size in an answer: the kind and the view (fields, full or compact)."""
    return (kind.tool, query.full, query.fields)


_MIN_ROOM_FRACTION = 4  # fetch another page only while at least 1/4 of the budget is still free


async def _collect(
    services: Services,
    tokens: TokenSource | None,
    kind: ResourceKind,
    query: ListQuery,
    position: Position,
    budget: int,
) -> _Collected:
    out = _Collected([], [], None, None)
    limit = query.effective_limit
    fixed = query.fixed
    used = 0
    item_bytes = position.item_bytes or services.item_sizes.guess(_view_of(kind, query), whole=query.full)
    while True:
        page_size = next_page_size(position, limit - len(out.items), budget - used, item_bytes)
        position = Position(position.token, position.offset, position.base, page_size, item_bytes)
        page = await services.api.list_page(
            kind,
            tokens,
            limit=page_size,
            continue_token=position.token,
            label_selector=query.label_selector,
            field_selector=query.field_selector,
            order=query.order,
            view=_view_paths(kind, query.fields, query.full),
            **query.page_extra,
        )
        if not out.total_read:
            out.total_read = True
            if not page.continue_token:
                out.total = position.base + len(page.items)
            elif page.remaining is not None:
                out.total = position.base + len(page.items) + page.remaining
        for index in range(position.offset, len(page.items)):
            here = Position(position.token, index, position.base, page_size, item_bytes)
            if len(out.items) == limit:
                out.after = here
                return out
            item = render(kind, page.items[index], fields=query.fields, full=query.full, fixed=fixed)
            encoded = _encode(item)
            size = len(encoded) + 1
            if size > budget:
                item = _oversized(page.items[index], size)
                out.oversized = True
                encoded = _encode(item)
                size = len(encoded) + 1
            if used + size > budget and out.items:
                out.after, out.stopped_by_budget = here, True
                return out
            out.items.append(item)
            out.encoded.append(encoded)
            out.positions.append(here)
            out.sizes.append(size)
            used += size
            item_bytes = used // len(out.items)
        if not page.continue_token:
            return out
        position = Position(page.continue_token, 0, position.base + len(page.items), 0, item_bytes)
        if len(out.items) == limit:
            out.after = position
            return out
        if out.items and budget - used < budget // _MIN_ROOM_FRACTION:
            # Another request for the last few items would cost a round trip per call: stop at the page
            # boundary, so the next call starts on a fresh page instead of re-reading this one.
            out.after, out.stopped_by_budget = position, True
            return out


def _oversized(obj: Mapping[str, Any], size: int) -> dict[str, Any]:
    """Stand-in for one object larger than the whole budget: never dropped silently (the note says why)."""
    return {"metadata": {"name": lookup(obj, "metadata.name") or "?"}, "omittedTokens": size // 4}


def _oversized_note(kind: ResourceKind, budget_tokens: int) -> str:
    return (
        f"Items with omittedTokens are over the response budget of {budget_tokens} tokens; ask for parts: "
        f"{kind.tool}(name=..., fields=[...])."
    )


def _list_envelope(
    kind: ResourceKind, query: ListQuery, collected: _Collected, cursor: str | None, budget_tokens: int
) -> dict[str, Any]:
    returned = len(collected.items)
    answer: dict[str, Any] = {"kind": kind.kind, "returned": returned, "total": collected.total}
    notes = list(query.notes)
    if cursor is not None and collected.after is not None:
        first = collected.positions[0] if collected.positions else collected.after
        seen_before = first.base + first.offset
        arguments = {k: v for k, v in (query.arguments or {}).items() if v is not None and k != "cursor"}
        arguments["cursor"] = cursor
        if collected.total is not None:
            answer["more"] = max(collected.total - seen_before - returned, 1)
        answer["next"] = link(kind.tool, **arguments)
        reason = "the response budget" if collected.stopped_by_budget else "limit"
        notes.append(
            f"Stopped at {reason}: call {kind.tool} with next.arguments to continue, or narrow the selectors"
            + (" (count_devices counts)." if kind.name == "devices" else ".")
        )
    if collected.oversized:
        notes.append(_oversized_note(kind, budget_tokens))
    if query.fields and collected.items:
        missing = [p for p in query.fields if not any(has_path(i, p.split(".")) for i in collected.items)]
        if missing:
            notes.append(_missing_fields_note(kind, missing))
    if notes:
        answer["note"] = " ".join(notes)
    if not query.fields:
        fixed = query.fixed
        links = links_template(kind, collected.items, fixed.fields if fixed else {})
        if links:
            answer["links"] = links
    answer[DATA] = collected.items
    return answer


_PATH_ADVICE: Mapping[str, str] = {
    "metadata.alias": "a device's alias is the label metadata.labels.alias",
}


def _missing_fields_note(kind: ResourceKind, missing: Sequence[str]) -> str:
    advice = [_PATH_ADVICE[p] for p in missing if p in _PATH_ADVICE]
    return (
        f"No {kind.singular} here has {', '.join(missing)}"
        + (f" ({'; '.join(advice)})" if advice else "")
        + f"; {kind.tool}(name=..., full=true) shows every path."
    )


def _check_view_options(fields: Sequence[str] | None, full: bool, tool: str) -> None:
    if fields and full:
        raise InvalidRequest(
            f"{tool}: pass either fields (the dotted paths you want) or full=true (the whole object), "
            "not both."
        )


# --- single answers -------------------------------------------------------------------------------------


def single_answer(
    services: Services,
    kind: ResourceKind,
    obj: Mapping[str, Any],
    *,
    fields: Sequence[str] | None = None,
    full: bool = False,
    extra: Mapping[str, Any] | None = None,
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    """One object: its view (or fields/full) and extras such as lastSeen under data, its links beside."""
    _check_view_options(fields, full, kind.tool)
    budget_tokens = services.settings.response_token_budget
    item = render(kind, obj, fields=fields, full=full)
    item.update(extra or {})
    answer: dict[str, Any] = {"kind": kind.kind}
    notes = list(notes)
    if fields:
        missing = [p for p in fields if not has_path(item, p.split("."))]
        if missing:
            notes.append(_missing_fields_note(kind, missing))
    else:
        answer["links"] = links_for(kind, obj)
    if notes:
        answer["note"] = " ".join(notes)
    answer[DATA] = item
    if fits(answer, budget_tokens):
        return answer
    answer["note"] = " ".join([*notes, _oversized_note(kind, budget_tokens)])
    answer[DATA] = _oversized(obj, _size(answer))
    return answer
