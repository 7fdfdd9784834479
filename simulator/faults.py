"""Faults on demand: latency, 429/503 for the next N matching requests, dropped connections.

Tests drive these through ``SimulatorServer.faults`` or ``POST /_sim/faults``; the app asks
:meth:`Faults.take` once per request (``/_sim/`` paths are never faulted).
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any

__all__ = ["Fault", "Faults"]


@dataclass
class Fault:
    kind: str  # "status" or "drop"
    remaining: int
    status: int = 503
    retry_after: int | None = None
    path_prefix: str | None = None
    message: str | None = None
    continued: bool | None = None  # True: only continued pages (continue=...); False: only first pages

    def matches(self, path: str, query: str = "") -> bool:
        if self.path_prefix is not None and not path.startswith(self.path_prefix):
            return False
        return self.continued is None or self.continued == _continues(query)


def _continues(query: str) -> bool:
    """True for a list request that carries a continue token (a page after the first)."""
    return any(part.partition("=")[0] == "continue" for part in query.split("&"))


class Faults:
    """Thread-safe fault queue plus the per-request latency (seconds)."""

    def __init__(self, latency_ms: float = 0.0) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self.latency_ms = float(latency_ms)
        self._waiting = 0
        #: The most requests that waited out the latency at the same time since it was last set.
        self.most_waiting = 0

    def set_latency(self, ms: float) -> None:
        self.latency_ms = float(ms)
        with self._lock:
            self.most_waiting = self._waiting

    async def delay(self) -> None:
        """Wait the configured latency, counting how many requests wait at once (``most_waiting``)."""
        if self.latency_ms <= 0:
            return
        with self._lock:
            self._waiting += 1
            self.most_waiting = max(self.most_waiting, self._waiting)
        try:
            await asyncio.sleep(self.latency_ms / 1000)
        finally:
            with self._lock:
                self._waiting -= 1

    def rate_limit(self, count: int = 1, *, retry_after: int = 1, path_prefix: str | None = None) -> None:
        """Answer the next ``count`` matching requests with 429 and ``Retry-After``."""
        self._add(Fault("status", count, 429, retry_after, path_prefix))

    def unavailable(
        self,
        count: int = 1,
        *,
        path_prefix: str | None = None,
        retry_after: int | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next ``count`` matching requests with 503."""
        self._add(Fault("status", count, 503, retry_after, path_prefix, message))

    def fail(
        self, status: int, count: int = 1, *, path_prefix: str | None = None, message: str | None = None
    ) -> None:
        """Answer the next ``count`` matching requests with any status code."""
        self._add(Fault("status", count, status, None, path_prefix, message))

    def drop(self, count: int = 1, *, path_prefix: str | None = None, continued: bool | None = None) -> None:
        """Close the connection without answering on the next ``count`` matching requests; ``continued``
        True drops only requests for a continued page, False only first pages."""
        self._add(Fault("drop", count, path_prefix=path_prefix, continued=continued))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self.latency_ms = 0.0

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(vars(f)) for f in self._faults]

    def _add(self, fault: Fault) -> None:
        if fault.remaining < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._faults.append(fault)

    def take(self, path: str, query: str = "") -> Fault | None:
        """The fault for this request, if any, consuming one of its repetitions."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(path, query):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def configure(self, body: dict[str, Any]) -> None:
        """Apply a ``POST /_sim/faults`` body (see the README for its fields)."""
        action = body.get("action") or body.get("kind")
        count = int(body.get("count", 1))
        prefix = body.get("path_prefix")
        if action == "latency":
            self.set_latency(float(body.get("ms", 0)))
        elif action == "rate_limit":
            self.rate_limit(count, retry_after=int(body.get("retry_after", 1)), path_prefix=prefix)
        elif action == "unavailable":
            retry = body.get("retry_after")
            self.unavailable(count, path_prefix=prefix, retry_after=int(retry) if retry is not None else None)
        elif action == "status":
            self.fail(int(body["status"]), count, path_prefix=prefix, message=body.get("message"))
        elif action == "drop":
            continued = body.get("continued")
            self.drop(count, path_prefix=prefix, continued=None if continued is None else bool(continued))
        elif action == "clear":
            self.clear()
        else:
            raise ValueError(
                f"unknown fault action {action!r}; "
                "use latency, rate_limit, unavailable, status, drop, clear, expire_token or revoke_token"
            )
