"""Hints from the API's enums: a selector value no object can have gets a note naming the known values.

``status.summary.status=Offline`` is valid grammar and returns nothing, which reads like "no device is
offline". The note says the value does not exist and what does (a device that stopped reporting is
``Unknown``), so the assistant asks again instead of reporting a wrong zero.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from resource_queries import ResourceKind
from views import requirements, unescape

__all__ = ["unknown_value_notes"]

_REQUIREMENT = re.compile(
    r"^\s*!?\s*(?P<key>[A-Za-z0-9_./-]+)\s*(?P<op>==|=|!=|\s+notin\s*|\s+in\s*)\s*(?P<value>.*?)\s*$"
)
_ADVICE: Mapping[str, str] = {
    "Offline": "a device that stopped reporting is Unknown",
    "Disconnected": "a device that stopped reporting is Unknown",
    "Failed": "failures are Error",
}


def unknown_value_notes(kind: ResourceKind, field_selector: str | None) -> list[str]:
    """One note per field whose selector names a value outside that field's enum."""
    known = {f.path: f.values for f in kind.fields if f.values}
    notes = []
    for requirement in requirements(field_selector):
        match = _REQUIREMENT.match(requirement)
        if not match or match.group("key") not in known:
            continue
        raw = match.group("value")
        values = raw.strip("()").split(",") if match.group("op").strip() in ("in", "notin") else [raw]
        values = [unescape(v.strip()) for v in values if v.strip()]
        allowed = known[match.group("key")]
        unknown = [v for v in values if v not in allowed]
        if unknown:
            advice = "; ".join(sorted({_ADVICE[v] for v in unknown if v in _ADVICE}))
            notes.append(
                f"{match.group('key')} is never {', '.join(repr(v) for v in unknown)}; its values are "
                f"{', '.join(allowed)}" + (f" ({advice})." if advice else ".")
            )
    return notes
