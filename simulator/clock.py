"""The simulator's clock: wall-clock time plus an offset tests move forward (``POST /_sim/clock``)."""

from __future__ import annotations

import time

__all__ = ["Clock"]


class Clock:
    """Wall-clock time plus an offset tests can advance (token expiry follows it)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def now_micros(self) -> int:
        return int(self.now() * 1_000_000)

    def advance(self, seconds: float) -> None:
        self.offset += seconds
