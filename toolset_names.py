"""The toolsets an operator can choose (--toolsets): names, what each holds, how the option is read.

Kept apart from toolsets.py (which filters tools by a caller's permissions at run time) so the settings
can name them without importing anything that talks to Flight Control.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["DEFAULT_TOOLSETS", "TOOLSETS", "parse_toolsets"]

#: Every toolset and what it holds (the --toolsets help and docs/tools.md show this).
TOOLSETS: Mapping[str, str] = {
    "core": "devices, fleets, events, device counts and labels, rendered configuration",
    "fleet-ops": "template versions, rollouts, repositories, resource syncs, devices not seen lately",
    "pki": "enrollment requests, certificate signing requests, enrollment configuration",
    "admin": "organizations, the caller's permissions, server version",
    "commands": "run_command_on_device (also needs --enable-commands)",
}
DEFAULT_TOOLSETS: tuple[str, ...] = ("core", "fleet-ops", "pki", "admin", "commands")


def parse_toolsets(raw: str) -> tuple[str, ...]:
    """``core,pki`` or ``all``; unknown names are refused with the list of known ones."""
    names = tuple(dict.fromkeys(part.strip().lower() for part in raw.split(",") if part.strip()))
    if names == ("all",):
        return tuple(TOOLSETS)
    unknown = [n for n in names if n not in TOOLSETS]
    if unknown or not names:
        raise ValueError(
            f"unknown toolset {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(TOOLSETS)} or all"
        )
    return names
