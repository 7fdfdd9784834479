"""Resource collections: compact records, ordering, pagination and the continue token.

A collection keeps every record of one kind in one organization, sorted by the kind's sort key (the
name, or ``(created_at, name)`` for events). Full JSON is rendered only for the records on a page, so a
100,000-device fleet costs a compact record per device. Pages follow the real store: fetch ``limit+1``,
put the first row of the next page in the token, count what remains on the first page and subtract on
later ones.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from simulator.errors import ApiFailure
from simulator.selector_parser import parse_rfc3339
from simulator.selectors import FieldSpec, Predicate

__all__ = [
    "Collection",
    "DocRecord",
    "KindSpec",
    "Page",
    "decode_continue",
    "encode_continue",
    "rfc3339",
]

MAX_LIMIT = 1000


def rfc3339(micros: int) -> str:
    """Go's RFC3339Nano in UTC: trailing zeros of the fraction trimmed, no fraction when zero."""
    seconds, fraction = divmod(micros, 1_000_000)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if fraction:
        text += "." + f"{fraction:06d}".rstrip("0")
    return text + "Z"


class DocRecord:
    """A record that holds its full JSON document (everything but devices, and loaded devices)."""

    __slots__ = ("created", "doc", "labels", "name", "values")

    def __init__(self, doc: dict[str, Any], values: dict[str, Any] | None = None) -> None:
        metadata = doc.setdefault("metadata", {})
        self.doc = doc
        self.name: str = metadata["name"]
        self.labels: dict[str, str] = metadata.get("labels") or {}
        created = metadata.get("creationTimestamp")
        self.created: int = parse_rfc3339(created) or 0 if isinstance(created, str) else 0
        self.values: dict[str, Any] = values or {}

    def render(self) -> dict[str, Any]:
        return self.doc


@dataclass(frozen=True)
class KindSpec:
    """One kind the simulator serves: names, selectable fields, ordering, routes and RBAC.

    ``parent`` names the path parameter of a nested kind (``fleet`` for
    ``/fleets/{fleet}/templateversions``); its list holds only the parent's objects, which the
    ``parent_value`` of each record names. ``get`` is False where the spec has no single-object GET.
    """

    kind: str
    list_kind: str
    plural: str
    fields: Mapping[str, FieldSpec]
    by_time: bool = False  # (created_at, name), newest first
    labels_selectable: bool = True
    order_param: bool = False  # events: ?order=asc|desc
    get: bool = True
    parent: str | None = None
    route: str = ""  # the list path under /api/v1 (default /<plural>)
    rbac: str = ""  # the spec's x-resource (default the plural)

    @property
    def list_path(self) -> str:
        return self.route or f"/{self.plural}"

    @property
    def resource(self) -> str:
        return self.rbac or self.plural

    def record(self, doc: dict[str, Any]) -> DocRecord:
        """A record of ``doc`` whose non-metadata selectable fields are read once, by dotted path."""
        return DocRecord(
            doc, {path: _dotted(doc, path) for path in self.fields if path.startswith(_VALUE_ROOTS)}
        )


_VALUE_ROOTS = ("spec.", "status.", "reason", "actor", "type", "involvedObject.")


def _dotted(doc: Mapping[str, Any], path: str) -> Any:
    current: Any = doc
    for part in path.split("."):
        if not isinstance(current, Mapping):
            return None
        current = current.get(part)
    return current


@dataclass
class Page:
    items: list[Any]
    next_names: list[str] | None
    remaining: int | None


def encode_continue(names: list[str], count: int) -> str:
    payload = json.dumps({"Version": 1, "Names": names, "Count": count}, separators=(",", ":"))
    return base64.b64encode(payload.encode()).decode()


_B64 = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def _go_base64_decode(text: str) -> bytes:
    """Decode like Go's base64.StdEncoding, failing with its message and byte offset."""
    stripped = text.replace("\r", "").replace("\n", "")
    for index, ch in enumerate(stripped):
        if ch == "=":
            if len(stripped) % 4 or index < len(stripped) - 2 or set(stripped[index:]) != {"="}:
                raise ValueError(f"illegal base64 data at input byte {index}")
            break
        if ch not in _B64:
            raise ValueError(f"illegal base64 data at input byte {index}")
    if len(stripped) % 4:
        raise ValueError(f"illegal base64 data at input byte {len(stripped) - len(stripped) % 4}")
    try:
        return base64.b64decode(stripped, validate=True)
    except binascii.Error as exc:  # pragma: no cover - the checks above catch what Go catches
        raise ValueError("illegal base64 data at input byte 0") from exc


def _go_json_error(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace").lstrip()
    if not text:
        return "unexpected end of JSON input"
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text):
            return "unexpected end of JSON input"
        return f"invalid character {text[exc.pos]!r} looking for beginning of value".replace('"', "'")
    return "json: cannot unmarshal value into Go value of type store.Continue"


def decode_continue(token: str) -> tuple[list[str], int]:
    """The names and count a continue token carries; 400 with the real texts when it is bad."""

    def fail(detail: str) -> ApiFailure:
        return ApiFailure(400, f"failed to parse continue parameter: {detail}")

    try:
        raw = _go_base64_decode(token)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise fail(_go_json_error(raw)) from exc
    if not isinstance(data, dict):
        kind = {list: "array", str: "string", int: "number", float: "number", bool: "bool"}.get(
            type(data), "value"
        )
        raise fail(f"json: cannot unmarshal {kind} into Go value of type store.Continue")
    # encoding/json matches keys case-insensitively.
    fields = {key.lower(): value for key, value in data.items()}
    version = fields.get("version", 0)
    names = fields.get("names") or []
    count = fields.get("count", 0)
    for label, value, expected in (("Version", version, int), ("Count", count, int)):
        if not isinstance(value, expected) or isinstance(value, bool):
            raise fail(
                f"json: cannot unmarshal {type(value).__name__} into Go struct field "
                f"Continue.{label} of type int"
            )
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise fail("json: cannot unmarshal value into Go struct field Continue.Names of type string")
    if version != 1:
        raise fail(f"continue string version {version} must be 1")
    if not names:
        # Upstream indexes Names[0] and the recoverer answers 500.
        raise ApiFailure(500, "runtime error: index out of range [0] with length 0")
    return names, count


@dataclass
class Collection:
    """All records of one kind in one organization, kept sorted."""

    spec: KindSpec
    _by_name: dict[str, Any] = field(default_factory=dict)
    _keys: list[tuple[Any, ...]] = field(default_factory=list)
    _records: list[Any] = field(default_factory=list)
    _dirty: bool = False

    def _key(self, record: Any) -> tuple[Any, ...]:
        return (record.created, record.name) if self.spec.by_time else (record.name,)

    def put(self, record: Any) -> None:
        old = self._by_name.get(record.name)
        self._by_name[record.name] = record
        if old is None and not self._dirty and (not self._keys or self._key(record) > self._keys[-1]):
            self._keys.append(self._key(record))
            self._records.append(record)
        else:
            self._dirty = True

    def bulk_load(self, records: list[Any]) -> None:
        for record in records:
            self._by_name[record.name] = record
        self._dirty = True

    def _sorted(self) -> tuple[list[tuple[Any, ...]], list[Any]]:
        if self._dirty:
            pairs = sorted(((self._key(r), r) for r in self._by_name.values()), key=lambda p: p[0])
            self._keys = [p[0] for p in pairs]
            self._records = [p[1] for p in pairs]
            self._dirty = False
        return self._keys, self._records

    def sort(self) -> None:
        """Sort now (list handlers run in worker threads; they should find the order ready)."""
        self._sorted()

    def get(self, name: str) -> Any | None:
        return self._by_name.get(name)

    def __len__(self) -> int:
        return len(self._by_name)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._sorted()[1])

    def filtered(self, predicate: Predicate | None) -> Iterator[Any]:
        records = self._sorted()[1]
        if predicate is None:
            return iter(records)
        return (r for r in records if predicate(r))

    def _token_key(self, names: list[str]) -> tuple[Any, ...]:
        if not self.spec.by_time:
            return (names[0],)
        micros = parse_rfc3339(names[0]) if names else None
        return (micros or 0, names[1] if len(names) > 1 else "")

    def _names_of(self, record: Any) -> list[str]:
        if self.spec.by_time:
            return [rfc3339(record.created), record.name]
        return [record.name]

    def page(
        self,
        predicate: Predicate | None,
        limit: int,
        continue_names: list[str] | None,
        continue_count: int | None,
        *,
        descending: bool = False,
    ) -> Page:
        keys, records = self._sorted()
        n = len(records)
        if descending:
            start = (
                n - 1
                if continue_names is None
                else bisect.bisect_right(keys, self._token_key(continue_names)) - 1
            )
            indexes: Iterator[int] | range = range(start, -1, -1)
        else:
            start = 0 if continue_names is None else bisect.bisect_left(keys, self._token_key(continue_names))
            indexes = range(start, n)
        found: list[Any] = []
        boundary_index = -1
        if predicate is None:
            window = list(indexes[: limit + 1]) if isinstance(indexes, range) else []
            found = [records[i] for i in window]
            if len(found) > limit:
                boundary_index = window[limit]
        else:
            for i in indexes:
                record = records[i]
                if predicate(record):
                    if len(found) == limit:
                        boundary_index = i
                        found.append(record)
                        break
                    found.append(record)
        if len(found) <= limit:
            return Page(found, None, None)
        boundary = found.pop()
        if continue_names is not None and continue_count is not None:
            remaining = max(continue_count - limit, 1)
        elif predicate is None:
            remaining = boundary_index + 1 if descending else n - boundary_index
        else:
            span = range(boundary_index, -1, -1) if descending else range(boundary_index, n)
            remaining = sum(1 for i in span if predicate(records[i]))
        return Page(found, self._names_of(boundary), remaining)


def summarize(
    records: Iterator[Any] | list[Any], renderer: Callable[[Any], Any] | None = None
) -> dict[str, Any]:
    """A DevicesSummary over device records (anything with the summary attributes)."""
    total = 0
    apps: dict[str, int] = {}
    summary: dict[str, int] = {}
    updated: dict[str, int] = {}
    os_mode: dict[str, int] = {}
    for record in records:
        total += 1
        apps[record.apps] = apps.get(record.apps, 0) + 1
        summary[record.summary] = summary.get(record.summary, 0) + 1
        updated[record.updated] = updated.get(record.updated, 0) + 1
        mode = record.os_mode or "unknown"
        os_mode[mode] = os_mode.get(mode, 0) + 1
    return {
        "total": total,
        "applicationStatus": apps,
        "summaryStatus": summary,
        "updateStatus": updated,
        "capabilities": {"osMode": os_mode},
    }
