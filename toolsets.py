"""Which tools a caller is offered: toolsets, read-only mode and the caller's own permissions.

Every operation belongs to one toolset (``core``, ``fleet-ops``, ``pki``, ``admin``, ``commands``) and
declares the Flight Control permissions it needs (resource, verb, as the spec's ``x-rbac`` names them).
``offered_for(settings)`` decides once, at start-up, from ``--toolsets``/``--read-only`` and the tools'
annotations; ``PermissionFilter`` then hides, per caller, the tools that ``/auth/permissions`` says
the caller cannot use (cached briefly per caller and organization). When Flight Control cannot say
(an older server, auth not configured, a network error), nothing is hidden: the calls themselves will
answer with the real reason.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from errors import FlightControlError
from toolset_names import DEFAULT_TOOLSETS, TOOLSETS, parse_toolsets

if TYPE_CHECKING:
    from auth import TokenSource
    from services import Services

__all__ = [
    "DEFAULT_TOOLSETS",
    "PERMISSIONS_PATH",
    "TOOLSETS",
    "Grants",
    "PermissionFilter",
    "parse_toolsets",
]

_log = logging.getLogger("flightctl_mcp.toolsets")

Permission = tuple[str, str]  # (resource, verb)


PERMISSIONS_PATH = "/auth/permissions"  # the caller's allowed (resource, verb) pairs in its organization


@dataclass(frozen=True)
class Grants:
    """A caller's permissions as ``/auth/permissions`` lists them: a ``*`` resource, specific entries that
    override it, and empty lists that deny (upstream's precedence)."""

    by_resource: Mapping[str, frozenset[str]]

    @classmethod
    def parse(cls, body: Any) -> Grants | None:
        """None when the body is not a PermissionList (then nothing is hidden)."""
        listed = body.get("permissions") if isinstance(body, dict) else None
        if not isinstance(listed, list):
            return None
        grants: dict[str, frozenset[str]] = {}
        for entry in listed:
            if isinstance(entry, dict) and isinstance(entry.get("resource"), str):
                operations = entry.get("operations")
                verbs = (
                    frozenset(v for v in operations if isinstance(v, str))
                    if isinstance(operations, list)
                    else frozenset()
                )
                grants[entry["resource"]] = grants.get(entry["resource"], frozenset()) | verbs
        return cls(grants)

    def allows(self, resource: str, verb: str) -> bool:
        verbs = self.by_resource.get(resource)
        if verbs is None:
            verbs = self.by_resource.get("*", frozenset())
        return "*" in verbs or verb in verbs

    def allows_all(self, needed: Iterable[Permission]) -> bool:
        return all(self.allows(resource, verb) for resource, verb in needed)


Fetch = Callable[["TokenSource | None"], Any]


class PermissionFilter:
    """Per-caller view of the tools: hides what the caller's permissions rule out, cached for ``ttl``."""

    def __init__(
        self,
        services: Services,
        needs: Mapping[str, Sequence[Permission]],
        *,
        ttl: float = 60.0,
        max_callers: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._services = services
        self._needs = needs
        self._ttl = ttl
        self._max = max_callers
        self._clock = clock
        self._cache: OrderedDict[str, tuple[float, Grants | None]] = OrderedDict()

    async def grants(self, tokens: TokenSource | None) -> Grants | None:
        """The caller's grants (None: unknown, hide nothing); one API call per caller per ``ttl``."""
        key = await self._key(tokens)
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < self._ttl:
            self._cache.move_to_end(key)
            return cached[1]
        try:
            body = await self._services.api.read_path(PERMISSIONS_PATH, tokens)
            grants = Grants.parse(body)
        except FlightControlError as exc:  # unknown: the calls themselves will explain
            _log.info("permissions unavailable, offering every tool: %s", exc)
            grants = None
        self._cache[key] = (now, grants)
        self._cache.move_to_end(key)
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)
        return grants

    async def usable(self, names: Iterable[str], tokens: TokenSource | None) -> set[str]:
        """The tool names among ``names`` this caller may use."""
        names = list(names)
        grants = await self.grants(tokens)
        if grants is None:
            return set(names)
        return {name for name in names if grants.allows_all(self._needs.get(name, ()))}

    async def _key(self, tokens: TokenSource | None) -> str:
        """Who asks, in which organization: a hash of the bearer (never the bearer itself)."""
        from auth import organization_for

        bearer = await tokens.bearer() if tokens is not None else ""
        organization = organization_for(tokens, self._services.settings.organization) or ""
        return hashlib.sha256(f"{bearer}\0{organization}".encode()).hexdigest()
