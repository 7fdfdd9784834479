"""What a simulated device command sees: the device's facts, its stdin, where it writes, exit codes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["EXIT_NOT_FOUND", "EXIT_USAGE", "CommandIO", "DeviceFacts", "Handler", "Stdin", "Writer"]

Writer = Callable[[bytes], Awaitable[None]]
Handler = Callable[[Sequence[str], "CommandIO"], Awaitable[int]]

EXIT_NOT_FOUND = 127
EXIT_USAGE = 2


@dataclass(frozen=True)
class DeviceFacts:
    """What a command may know about the device it runs on."""

    name: str
    hostname: str = ""
    architecture: str = "x86_64"
    kernel: str = "5.14.0-570.el9.x86_64"
    distro_name: str = "CentOS Stream"
    distro_version: str = "9"
    agent_version: str = "v1.3.0"
    boot_id: str = "3b8f0b5e-0f4c-4a4e-9d2e-6b7f2b1c9a10"

    @classmethod
    def from_device(cls, device: Mapping[str, Any]) -> DeviceFacts:
        """Read the facts from a Device resource, keeping defaults where the agent reported nothing."""
        name = str(device.get("metadata", {}).get("name", "device"))
        info = device.get("status", {}).get("systemInfo", {}) or {}
        picked = {
            field: str(info[key])
            for field, key in (
                ("hostname", "hostname"),
                ("architecture", "architecture"),
                ("kernel", "kernel"),
                ("distro_name", "distroName"),
                ("distro_version", "distroVersion"),
                ("agent_version", "agentVersion"),
                ("boot_id", "bootID"),
            )
            if info.get(key)
        }
        if picked.get("architecture") == "amd64":
            picked["architecture"] = "x86_64"
        elif picked.get("architecture") == "arm64":
            picked["architecture"] = "aarch64"
        picked.setdefault("hostname", name)
        return cls(name=name, **picked)

    def __post_init__(self) -> None:
        if not self.hostname:
            object.__setattr__(self, "hostname", self.name)

    @property
    def distro_id(self) -> str:
        return "rhel" if self.distro_name.startswith("Red Hat") else "centos"


class Stdin:
    """The command's standard input: bytes fed by the console session, then EOF."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    @classmethod
    def of(cls, data: bytes) -> Stdin:
        stdin = cls()
        stdin.feed(data)
        stdin.close()
        return stdin

    def feed(self, data: bytes) -> None:
        self._queue.put_nowait(data)

    def close(self) -> None:
        self._queue.put_nowait(None)

    async def read_all(self) -> bytes:
        """Everything up to EOF; a client that never closes stdin keeps the command waiting, like a device."""
        chunks: list[bytes] = []
        while (chunk := await self._queue.get()) is not None:
            chunks.append(chunk)
        self._queue.put_nowait(None)  # EOF stays EOF for a second reader
        return b"".join(chunks)


@dataclass(frozen=True)
class CommandIO:
    """Where a command reads and writes, and which device it believes it runs on."""

    device: DeviceFacts
    stdin: Stdin
    stdout: Writer
    stderr: Writer

    async def out(self, text: str) -> None:
        await self.stdout(text.encode())

    async def err(self, text: str) -> None:
        await self.stderr(text.encode())
