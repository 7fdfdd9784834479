"""The long-lived objects one server process shares: settings, the API client and the default tokens.

Built once at start-up (``Services.from_settings``) and passed to every handler, so nothing reads the
environment or opens a connection pool per call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flightctl_api import FlightControlAPI
from page_sizing import ItemSizes

if TYPE_CHECKING:
    from auth import TokenSource
    from config import Settings

__all__ = ["Services"]


@dataclass(frozen=True)
class Services:
    """Settings, the shared ``FlightControlAPI``, the server's own ``TokenSource`` (None without auth) and
    what earlier answers measured."""

    settings: Settings
    api: FlightControlAPI
    tokens: TokenSource | None
    item_sizes: ItemSizes = field(default_factory=ItemSizes)  # sizes list pages to what an answer shows

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        """Build the shared objects once; no network traffic happens here."""
        from call_credentials import token_source_from_settings

        return cls(
            settings=settings, api=FlightControlAPI(settings), tokens=token_source_from_settings(settings)
        )
