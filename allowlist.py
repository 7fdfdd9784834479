"""The device-command allow-list: its syntax, how an entry matches an argv, and how it is shown.

``MCP_COMMAND_ALLOWLIST`` holds entries separated by ``;``, each split like a POSIX shell. An entry is the
exact argv it allows: ``df -h`` allows ``["df","-h"]`` and nothing else. An entry whose last word is a
lone ``*`` is a prefix: ``journalctl -u flightctl-agent *`` allows those words followed by any further
arguments (or none). Nothing is a glob: a ``*`` anywhere else is refused at start-up. A trailing lone
``$`` (an older way to say "exact") is accepted and changes nothing, since every entry is exact now.

Entries are shown to the assistant as JSON argument lists, exactly as they match: ``["df","-h"]``, and
``["journalctl","-u","flightctl-agent",...]`` for a prefix, so what it reads is what it may send.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ANY_MORE", "AllowEntry", "parse_allowlist", "shown_argv"]

ANY_MORE = "*"  # last word of a prefix entry
_OLD_EXACT = "$"  # last word of an exact entry in the older syntax; exact is the default now


def shown_argv(argv: Sequence[str]) -> str:
    """An argv as the assistant sends it: a compact JSON list, every character as it is."""
    return json.dumps(list(argv), ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class AllowEntry:
    """One allowed command: exact words, or (``prefix``) those words then any further arguments."""

    words: tuple[str, ...]
    prefix: bool = False

    def permits(self, argv: Sequence[str]) -> bool:
        if self.prefix:
            return tuple(argv[: len(self.words)]) == self.words
        return tuple(argv) == self.words

    def shown(self) -> str:
        exact = shown_argv(self.words)
        return f"{exact[:-1]},...]" if self.prefix else exact


def _entry(text: str) -> AllowEntry:
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ValueError(f"the entry {text!r} is not shell-quoted correctly ({exc})") from None
    prefix = bool(words) and words[-1] == ANY_MORE
    if words and words[-1] in (ANY_MORE, _OLD_EXACT):
        words = words[:-1]
    if not words:
        raise ValueError(f"the entry {text!r} names no command")
    if any(ANY_MORE in word for word in words):
        raise ValueError(
            f"the entry {text!r} has a '*' before its end; there are no globs: a lone '*' as the last word "
            "allows any further arguments, and nowhere else"
        )
    return AllowEntry(tuple(words), prefix)


def parse_allowlist(raw: str) -> tuple[AllowEntry, ...]:
    """'df -h;journalctl -u flightctl-agent *' -> exact ["df","-h"], prefix ["journalctl",...].

    A list that is set but names no command is an error, never "allow everything".
    """
    entries = tuple(_entry(part.strip()) for part in raw.split(";") if part.strip())
    if not entries:
        raise ValueError(
            "it names no command; list the allowed commands, e.g. 'df -h;journalctl -u flightctl-agent *'"
        )
    return entries
