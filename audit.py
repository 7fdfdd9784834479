"""The audit trail of device commands: one line per attempt, on a stream of its own.

Every ``run_command_on_device`` attempt, allowed or refused, is one INFO record on the
``flightctl_mcp.audit`` logger: when, who (the caller's identity), device, argv, outcome, exit code,
duration and bytes of output; never the output, never a token. logging_setup.py gives that logger its
own rotating file (and stderr in containers), sets it to INFO whatever LOG_LEVEL says and stops it from
propagating, so ordinary log lines can neither hide nor rotate it away.

A caller that floods refusals cannot rotate the trail away either: past ``REFUSALS_PER_WINDOW`` refusals
in ``WINDOW_SECONDS`` a caller's further refusals (and unanswered confirmation requests, which run
nothing either) are counted, not written one by one, and one summary line ("N more refusals by
<caller>") gives the count when the window closes (at the next attempt after it, or at exit). Attempts
that reached a device are always written.
"""

from __future__ import annotations

import atexit
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["AUDIT_LOGGER", "REFUSALS_PER_WINDOW", "WINDOW_SECONDS", "AuditTrail", "trail"]

AUDIT_LOGGER = "flightctl_mcp.audit"
REFUSALS_PER_WINDOW = 20
WINDOW_SECONDS = 60.0
_MAX_CALLERS = 10_000  # windows kept at once; the oldest is closed (and summarised) first
_PREFIX = "run_command_on_device"
_LIMITED = frozenset({"refused", "awaiting-confirmation"})  # outcomes where nothing ran


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _line(record: dict[str, Any]) -> str:
    """key=value pairs, values JSON-quoted so no argument can forge a second line or field."""
    return " ".join(f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in record.items())


@dataclass
class _Window:
    """One caller's refusals since ``opened``: how many were written and how many only counted."""

    opened: float
    first_at: str
    written: int = 0
    suppressed: int = 0
    last_at: str = field(default="")


class AuditTrail:
    """Writes attempt records; rate-limits refusals per caller without losing their count."""

    def __init__(
        self,
        logger: logging.Logger | None = None,
        *,
        limit: int = REFUSALS_PER_WINDOW,
        window: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger or logging.getLogger(AUDIT_LOGGER)
        self._limit = limit
        self._window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: OrderedDict[str, _Window] = OrderedDict()  # in opening order

    def attempt(self, record: dict[str, Any]) -> None:
        """Write one attempt (``record`` has at least ``who`` and ``outcome``), or count a flooded refusal."""
        record = {"at": _now(), **record}
        with self._lock:
            now = self._clock()
            self._close_expired(now)
            if record.get("outcome") in _LIMITED and not self._admit_refusal(str(record["who"]), now):
                return
            self._write(record)

    def flush(self) -> None:
        """Write the summary of every open window that counted refusals (at exit)."""
        with self._lock:
            while self._windows:
                self._close(*self._windows.popitem(last=False))

    def _admit_refusal(self, who: str, now: float) -> bool:
        window = self._windows.get(who)
        if window is None:
            if len(self._windows) >= _MAX_CALLERS:
                self._close(*self._windows.popitem(last=False))
            window = self._windows[who] = _Window(opened=now, first_at=_now())
        if window.written < self._limit:
            window.written += 1
            return True
        window.suppressed += 1
        window.last_at = _now()
        return False

    def _close_expired(self, now: float) -> None:
        while self._windows:
            who, window = next(iter(self._windows.items()))
            if now - window.opened < self._window:
                return
            del self._windows[who]
            self._close(who, window)

    def _close(self, who: str, window: _Window) -> None:
        if window.suppressed:
            self._write(
                {
                    "at": _now(),
                    "outcome": "refusals-summarised",
                    "who": who,
                    "count": window.suppressed,
                    "from": window.first_at,
                    "until": window.last_at,
                    "reason": f"{window.suppressed} more refusals by {who} (over {self._limit} in "
                    f"{self._window:g} s: counted, not written one by one)",
                }
            )

    def _write(self, record: dict[str, Any]) -> None:
        self._log.info("%s %s", _PREFIX, _line(record), extra={"audit": record})


#: The process's trail; its summaries are written at exit.
trail = AuditTrail()
atexit.register(trail.flush)
