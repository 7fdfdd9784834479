"""The long-lived objects one server process shares: settings, the API client and the default tokens.

Built once at start-up (``Services.from_settings``) and passed to every handler, so nothing reads the
environment or opens a connection pool per call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flightctl_api import FlightControlAPI

if TYPE_CHECKING:
    from auth import TokenSource
    from config import Settings

__all__ = ["Services"]


@dataclass(frozen=True)
class Services:
    """Settings, the shared ``FlightControlAPI`` and the server's own ``TokenSource`` (None without auth)."""

    settings: Settings
    api: FlightControlAPI
    tokens: TokenSource | None

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        """Build the shared objects once; no network traffic happens here."""
        from call_credentials import token_source_from_settings

        return cls(
            settings=settings, api=FlightControlAPI(settings), tokens=token_source_from_settings(settings)
        )
