"""The checks a device command passes before anything is sent, each refusal saying what to do instead.

A valid device name (whole-string match); an argv (a string is split with shell quoting rules, never on
bare spaces, and no shell is added); an allow-list entry (allowlist.py) when one is set; a timeout
within the operator's maximum.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING

from allowlist import shown_argv
from errors import CommandRefused

if TYPE_CHECKING:
    from config import CommandSettings

__all__ = ["ARGV_MAX_BYTES", "DEVICE_NAME_MAX", "CommandPolicy", "CommandRequest", "allowed_commands"]


# Resource names are DNS-1123 subdomains (Flight Control's generic name rule).
_DEVICE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DEVICE_NAME_MAX = 253
# The argv travels in the URL's query string: keep it well under common proxy URL limits.
ARGV_MAX_BYTES = 4096


@dataclass(frozen=True)
class CommandRequest:
    """A command that passed the policy: where (the device, and the organization the call names, by id),
    what, and for how long at most."""

    device: str
    argv: list[str]
    timeout: float
    organization: str | None = None

    def fingerprint(self) -> str:
        """Binds a confirmation to this exact command, device, organization and timeout."""
        text = json.dumps([self.device, self.argv, self.timeout, self.organization], separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


class CommandPolicy:
    """The checks before anything is sent; each refusal says what to do instead."""

    def __init__(self, settings: CommandSettings) -> None:
        self._settings = settings

    def check(
        self, device_name: str, command: list[str] | str, timeout_seconds: float | None
    ) -> CommandRequest:
        self.check_device_name(device_name)
        argv = self.argv(command)
        self.checkallowed_commands(argv)
        return CommandRequest(device=device_name, argv=argv, timeout=self.timeout(timeout_seconds))

    @staticmethod
    def check_device_name(name: str) -> None:
        if len(name) > DEVICE_NAME_MAX or not _DEVICE_NAME.fullmatch(name):
            raise CommandRefused(
                f"{json.dumps(name[:DEVICE_NAME_MAX])} is not a valid device name (lowercase letters, "
                f"digits, '-' and '.', at most {DEVICE_NAME_MAX} characters). Use the exact metadata.name "
                "from the device query tool."
            )

    @staticmethod
    def argv(command: list[str] | str) -> list[str]:
        """The argument list: a list is taken as is, a string is split like a POSIX shell would."""
        if isinstance(command, str):
            try:
                argv = shlex.split(command)
            except ValueError as exc:
                raise CommandRefused(
                    f"The command could not be split into arguments ({exc}). Pass it as a list of strings, "
                    'e.g. ["journalctl", "-u", "flightctl-agent", "-n", "50"].'
                ) from exc
        else:
            argv = list(command)
        if not argv or not argv[0]:
            raise CommandRefused(
                'The command is empty. Pass the program and its arguments, e.g. ["df", "-h"].'
            )
        if any("\x00" in arg for arg in argv):
            raise CommandRefused("An argument contains a NUL character, which no device command accepts.")
        if sum(len(arg.encode()) + 1 for arg in argv) > ARGV_MAX_BYTES:
            raise CommandRefused(
                f"The command is longer than {ARGV_MAX_BYTES} bytes. Shorten it; long scripts do not belong "
                "in a console command."
            )
        return argv

    def checkallowed_commands(self, argv: list[str]) -> None:
        entries = self._settings.allowlist
        if not entries or any(entry.permits(argv) for entry in entries):
            return
        raise CommandRefused(
            f"{shown_argv(argv)} is not allowed on this server, so it was not sent. Allowed: "
            f"{allowed_commands(self._settings)}. Use one of these, or ask the operator to extend "
            "MCP_COMMAND_ALLOWLIST."
        )

    def timeout(self, requested: float | None) -> float:
        limit = self._settings.max_timeout
        if requested is None:
            return min(self._settings.default_timeout, limit)
        if not 0 < requested <= limit:
            raise CommandRefused(
                f"timeout_seconds must be more than 0 and at most {limit:g} (the operator's maximum); "
                f"got {requested:g}. Leave it out for the default of {self._settings.default_timeout:g} s."
            )
        return float(requested)


def allowed_commands(settings: CommandSettings) -> str:
    """The allow-list exactly as it matches: JSON argument lists, ``...`` where any arguments may follow."""
    return " ".join(entry.shown() for entry in settings.allowlist)
