"""The commands a simulated device answers on its console: a fixed table, never the host.

A real agent runs ``sudo -u flightctl-console --non-interactive -- <argv>`` with no shell. Here every
command is a small coroutine that writes realistic output for the device it runs on (its name, OS,
kernel and agent version come from the device's ``status.systemInfo``). Nothing in this module starts a
process, opens a file or touches the network: files live in a tiny in-memory table, ``sleep`` is
``asyncio.sleep`` (so it is cancelled when the console client goes) and ``sh -c`` understands only a
small, safe subset (``;``, ``&&``, ``||``, ``|``, ``>&2``, ``2>&1``, ``exit N``).

Exit codes follow the coreutils/systemd ones; an unknown command is ``bash: <cmd>: command not found``
with exit 127.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["COMMANDS", "CommandIO", "DeviceFacts", "Stdin", "Writer", "run_command"]

Writer = Callable[[bytes], Awaitable[None]]
Handler = Callable[[Sequence[str], "CommandIO"], Awaitable[int]]

EXIT_NOT_FOUND = 127
EXIT_USAGE = 2
# Upper bounds that keep a simulated command from eating the simulator's memory or CPU.
_SEQ_MAX_LINES = 5_000_000
_PIPE_BUFFER_LIMIT = 16 * 1024 * 1024
_WRITE_CHUNK = 64 * 1024


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


async def run_command(argv: Sequence[str], io: CommandIO) -> int:
    """Run one simulated command and return its exit code."""
    if not argv:
        await io.err("usage: sudo -h | -K | -k | -V\n")
        return 1
    handler = COMMANDS.get(argv[0].rsplit("/", 1)[-1])
    if handler is None:
        await io.err(f"bash: {argv[0]}: command not found\n")
        return EXIT_NOT_FOUND
    return await handler(argv, io)


# --- the in-memory file system ---------------------------------------------------------------------


def _os_release(device: DeviceFacts) -> str:
    return (
        f'NAME="{device.distro_name}"\n'
        f'VERSION="{device.distro_version}"\n'
        f'ID="{device.distro_id}"\nID_LIKE="fedora"\n'
        f'VERSION_ID="{device.distro_version.split()[0]}"\n'
        f'PLATFORM_ID="platform:el{device.distro_version.split(".")[0]}"\n'
        f'PRETTY_NAME="{device.distro_name} {device.distro_version}"\n'
        'ANSI_COLOR="0;31"\nLOGO="fedora-logo-icon"\n'
        f'CPE_NAME="cpe:/o:{device.distro_id}:{device.distro_id}:{device.distro_version.split()[0]}"\n'
        'BUG_REPORT_URL="https://issues.redhat.com/"\n'
    )


_FILES: dict[str, Callable[[DeviceFacts], str]] = {
    "/etc/os-release": _os_release,
    "/usr/lib/os-release": _os_release,
    "/etc/hostname": lambda device: f"{device.hostname}\n",
    "/proc/sys/kernel/random/boot_id": lambda device: f"{device.boot_id}\n",
    "/etc/flightctl/config.yaml": lambda device: (
        "enrollment-service:\n  service:\n    server: https://agent-api.flightctl.example.com\n"
        "spec-fetch-interval: 1m0s\nstatus-update-interval: 1m0s\n"
    ),
}
_DIRS: dict[str, tuple[str, ...]] = {
    "/": ("bin", "boot", "dev", "etc", "home", "proc", "root", "run", "sys", "tmp", "usr", "var"),
    "/etc": ("flightctl", "hostname", "os-release", "passwd", "systemd"),
    "/etc/flightctl": ("certs", "config.yaml"),
    "/home": ("flightctl-console",),
    "/home/flightctl-console": (),
    "/var": ("lib", "log", "tmp"),
    "/var/log": ("journal",),
    "/tmp": (),  # noqa: S108 - a name in the simulated file table, not a real path
}


def _resolve(path: str) -> str:
    if path in ("~", "."):
        return "/home/flightctl-console"
    if not path.startswith("/"):
        path = f"/home/flightctl-console/{path}"
    return path.rstrip("/") or "/"


# --- commands ----------------------------------------------------------------------------------------


async def _echo(argv: Sequence[str], io: CommandIO) -> int:
    args = list(argv[1:])
    newline = "\n"
    if args[:1] == ["-n"]:
        args, newline = args[1:], ""
    await io.out(" ".join(args) + newline)
    return 0


async def _true(argv: Sequence[str], io: CommandIO) -> int:
    return 0


async def _false(argv: Sequence[str], io: CommandIO) -> int:
    return 1


async def _hostname(argv: Sequence[str], io: CommandIO) -> int:
    await io.out(f"{io.device.hostname}\n")
    return 0


async def _uname(argv: Sequence[str], io: CommandIO) -> int:
    device = io.device
    fields = {
        "-s": "Linux",
        "-n": device.hostname,
        "-r": device.kernel,
        "-v": "#1 SMP PREEMPT_DYNAMIC Tue Jun 3 12:00:00 UTC 2025",
        "-m": device.architecture,
        "-p": device.architecture,
        "-i": device.architecture,
        "-o": "GNU/Linux",
    }
    flags = list(argv[1:]) or ["-s"]
    unknown = [flag for flag in flags if flag not in fields and flag != "-a"]
    if unknown:
        await io.err(f"uname: invalid option -- '{unknown[0].lstrip('-')}'\nTry 'uname --help'.\n")
        return 1
    chosen = list(fields) if "-a" in flags else [flag for flag in fields if flag in flags]
    await io.out(" ".join(fields[flag] for flag in chosen) + "\n")
    return 0


async def _cat(argv: Sequence[str], io: CommandIO) -> int:
    paths = list(argv[1:]) or ["-"]
    status = 0
    for path in paths:
        if path == "-":
            await io.stdout(await io.stdin.read_all())
            continue
        full = _resolve(path)
        if full in _FILES:
            await io.out(_FILES[full](io.device))
        elif full in _DIRS:
            await io.err(f"cat: {path}: Is a directory\n")
            status = 1
        else:
            await io.err(f"cat: {path}: No such file or directory\n")
            status = 1
    return status


async def _ls(argv: Sequence[str], io: CommandIO) -> int:
    paths = [arg for arg in argv[1:] if not arg.startswith("-")] or ["."]
    status = 0
    for path in paths:
        full = _resolve(path)
        if full in _DIRS:
            entries = _DIRS[full]
            await io.out("".join(f"{entry}\n" for entry in entries))
        elif full in _FILES:
            await io.out(f"{path}\n")
        else:
            await io.err(f"ls: cannot access '{path}': No such file or directory\n")
            status = EXIT_USAGE
    return status


_DF_ROWS = (
    # filesystem, size KiB, used KiB, mount point
    ("/dev/vda4", 20_905_984, 6_396_416, "/sysroot"),
    ("composefs", 6_016, 6_016, "/"),
    ("devtmpfs", 4_096, 0, "/dev"),
    ("tmpfs", 1_967_640, 0, "/dev/shm"),  # noqa: S108 - simulated df output
    ("tmpfs", 787_056, 9_664, "/run"),
    ("tmpfs", 1_967_640, 8, "/tmp"),  # noqa: S108 - simulated df output
    ("/dev/vda3", 358_400, 112_640, "/boot"),
    ("/dev/vda2", 129_024, 7_272, "/boot/efi"),
)


def _human(kib: int) -> str:
    value, units = float(kib), "KMGT"
    for unit in units:
        if value < 1024 or unit == units[-1]:
            if unit == "K" and value == 0:
                return "0"
            return f"{value:.1f}{unit}" if value < 10 else f"{value:.0f}{unit}"
        value /= 1024
    return f"{value:.0f}T"  # pragma: no cover - the loop always returns


async def _df(argv: Sequence[str], io: CommandIO) -> int:
    human = "-h" in argv[1:]
    header = "Size  Used Avail" if human else "1K-blocks    Used Available"
    lines = [f"Filesystem      {header} Use% Mounted on"]
    for source, size, used, mount in _DF_ROWS:
        avail = size - used
        percent = f"{-(-used * 100 // size)}%"
        if human:
            numbers = f"{_human(size):>4}  {_human(used):>4}  {_human(avail):>4}"
        else:
            numbers = f"{size:>9} {used:>7} {avail:>9}"
        lines.append(f"{source:<15} {numbers} {percent:>4} {mount}")
    await io.out("\n".join(lines) + "\n")
    return 0


def _agent_journal(device: DeviceFacts) -> list[str]:
    prefix = f"{device.hostname} flightctl-agent[1234]:"
    messages = (
        f"Starting Flight Control agent {device.agent_version}",
        "Bootstrap complete, device is enrolled",
        "Device spec fetched: renderedVersion=3",
        "Syncing device: config, os, applications",
        "Synced device to renderedVersion: 3",
        "Status updated: summary=Online updated=UpToDate",
        "Console session requested",
        "Console session started for user flightctl-console",
    )
    return [
        f'Jun 03 12:{minute:02d}:01 {prefix} time="2025-06-03T12:{minute:02d}:01Z" level=info msg="{msg}"'
        for minute, msg in enumerate(messages)
    ]


def _option_value(args: Sequence[str], *names: str) -> str | None:
    for index, arg in enumerate(args):
        for name in names:
            if arg == name and index + 1 < len(args):
                return args[index + 1]
            if name.startswith("--") and arg.startswith(f"{name}="):
                return arg.split("=", 1)[1]
            if not name.startswith("--") and arg.startswith(name) and len(arg) > len(name):
                return arg[len(name) :]
    return None


def _unit_name(unit: str) -> str:
    return unit if "." in unit else f"{unit}.service"


async def _journalctl(argv: Sequence[str], io: CommandIO) -> int:
    unit = _option_value(argv[1:], "-u", "--unit")
    lines = _agent_journal(io.device) if unit is None or _unit_name(unit) == "flightctl-agent.service" else []
    count = _option_value(argv[1:], "-n", "--lines")
    if count is not None:
        if not count.isdigit():
            await io.err(f'Failed to parse lines "{count}".\n')
            return 1
        lines = lines[-int(count) :] if int(count) else []
    await io.out("\n".join(lines) + "\n" if lines else "-- No entries --\n")
    return 0


_UNITS: dict[str, tuple[str, str, str]] = {
    # unit: (description, binary, memory)
    "flightctl-agent.service": ("Flight Control Agent", "/usr/bin/flightctl-agent", "38.2M"),
    "sshd.service": ("OpenSSH server daemon", "/usr/sbin/sshd -D", "5.1M"),
    "podman.service": ("Podman API Service", "/usr/bin/podman system service", "21.7M"),
    "chronyd.service": ("NTP client/server", "/usr/sbin/chronyd -F 2", "3.4M"),
}


async def _systemctl(argv: Sequence[str], io: CommandIO) -> int:
    args = [arg for arg in argv[1:] if not arg.startswith("-")]
    verb, units = (args[0], args[1:]) if args else ("list-units", [])
    if verb == "is-active":
        known = [_unit_name(unit) in _UNITS for unit in units]
        await io.out("".join("active\n" if ok else "inactive\n" for ok in known))
        return 0 if known and all(known) else 3
    if verb != "status":
        await io.out(
            "".join(f"{unit:<40} loaded active running {desc}\n" for unit, (desc, _, _) in _UNITS.items())
        )
        return 0
    if not units:
        await io.out(
            f"● {io.device.hostname}\n    State: running\n    Units: 312 loaded\n     Jobs: 0 queued\n"
        )
        return 0
    status = 0
    for unit in map(_unit_name, units):
        if unit not in _UNITS:
            await io.err(f"Unit {unit} could not be found.\n")
            status = 4
            continue
        description, binary, memory = _UNITS[unit]
        await io.out(
            f"● {unit} - {description}\n"
            f"     Loaded: loaded (/usr/lib/systemd/system/{unit}; enabled; preset: enabled)\n"
            "     Active: active (running) since Tue 2025-06-03 12:00:00 UTC; 3 days ago\n"
            f"   Main PID: 1234 ({binary.split()[0].rsplit('/', 1)[-1]})\n"
            f"     Memory: {memory}\n"
            f"     CGroup: /system.slice/{unit}\n"
            f"             └─1234 {binary}\n"
        )
    return status


async def _sleep(argv: Sequence[str], io: CommandIO) -> int:
    if len(argv) < 2:
        await io.err("sleep: missing operand\nTry 'sleep --help' for more information.\n")
        return 1
    try:
        seconds = sum(float(arg.rstrip("s")) for arg in argv[1:])
    except ValueError:
        await io.err(f"sleep: invalid time interval '{argv[1]}'\nTry 'sleep --help' for more information.\n")
        return 1
    await asyncio.sleep(seconds)
    return 0


async def _seq(argv: Sequence[str], io: CommandIO) -> int:
    """Counts like coreutils seq: the simulator's way to print megabytes on request."""
    try:
        numbers = [int(arg) for arg in argv[1:]]
    except ValueError:
        await io.err(f"seq: invalid argument: {' '.join(argv[1:])!r}\n")
        return 1
    if not 1 <= len(numbers) <= 3:
        await io.err("seq: missing operand\nTry 'seq --help' for more information.\n")
        return 1
    first, step, last = {1: (1, 1, numbers[-1]), 2: (numbers[0], 1, numbers[-1])}.get(
        len(numbers), (numbers[0], numbers[1] if len(numbers) == 3 else 1, numbers[-1])
    )
    if step == 0 or (last - first) // step > _SEQ_MAX_LINES:
        await io.err(f"seq: the simulator prints at most {_SEQ_MAX_LINES} numbers\n")
        return 1
    batch: list[str] = []
    for number in range(first, last + (1 if step > 0 else -1), step):
        batch.append(f"{number}\n")
        if len(batch) >= 10_000:
            await io.out("".join(batch))
            batch = []
    if batch:
        await io.out("".join(batch))
    return 0


async def _read_inputs(argv: Sequence[str], io: CommandIO) -> bytes:
    """The files named in argv, or stdin when there are none (what head/tail/wc/grep read)."""
    files = [arg for arg in argv if not arg.startswith("-")]
    if not files:
        return await io.stdin.read_all()
    return b"".join(_FILES[_resolve(path)](io.device).encode() for path in files if _resolve(path) in _FILES)


def _split_count(args: Sequence[str]) -> tuple[str, list[str]]:
    """Pull ``-n N``, ``-nN`` or ``-N`` out of head/tail arguments (10 when absent)."""
    value, rest = "10", []
    remaining = iter(args)
    for arg in remaining:
        if arg == "-n":
            value = next(remaining, "")
        elif arg.startswith("-n"):
            value = arg[2:]
        elif arg.startswith("-") and arg[1:].isdigit():
            value = arg[1:]
        else:
            rest.append(arg)
    return value, rest


async def _head_or_tail(argv: Sequence[str], io: CommandIO) -> int:
    value, rest = _split_count(argv[1:])
    if not value.isdigit():
        await io.err(f"{argv[0]}: invalid number of lines: '{value}'\n")
        return 1
    count = int(value)
    lines = (await _read_inputs(rest, io)).splitlines(keepends=True)
    chosen = lines[:count] if argv[0].endswith("head") else lines[len(lines) - count :] if count else []
    await io.stdout(b"".join(chosen))
    return 0


async def _wc(argv: Sequence[str], io: CommandIO) -> int:
    flags = [arg for arg in argv[1:] if arg.startswith("-")]
    data = await _read_inputs(argv[1:], io)
    counts = {"-l": data.count(b"\n"), "-w": len(data.split()), "-c": len(data)}
    chosen = [flag for flag in counts if flag in flags] or list(counts)
    await io.out(" ".join(str(counts[flag]) for flag in chosen) + "\n")
    return 0


async def _grep(argv: Sequence[str], io: CommandIO) -> int:
    flags = {arg for arg in argv[1:] if arg.startswith("-")}
    words = [arg for arg in argv[1:] if not arg.startswith("-")]
    if not words:
        await io.err("Usage: grep [OPTION]... PATTERNS [FILE]...\n")
        return EXIT_USAGE
    pattern, files = words[0], words[1:]
    ignore_case, invert = "-i" in flags, "-v" in flags

    def matches(line: str) -> bool:
        found = pattern.lower() in line.lower() if ignore_case else pattern in line
        return found != invert

    lines = (await _read_inputs(files, io)).decode(errors="replace").splitlines(keepends=True)
    hits = [line for line in lines if matches(line)]
    await io.out(f"{len(hits)}\n" if "-c" in flags else "".join(hits))
    return 0 if hits else 1


def _constant(text: Callable[[DeviceFacts], str]) -> Handler:
    """A command whose output depends only on the device (whoami, pwd, ...)."""

    async def handler(argv: Sequence[str], io: CommandIO) -> int:
        await io.out(text(io.device))
        return 0

    return handler


# --- sh -c: a tiny, safe subset -------------------------------------------------------------------------

_OPERATORS = (";", "&&", "||")


class _ScriptError(Exception):
    """The script uses something outside the subset; the message is what sh would print."""


@dataclass(frozen=True)
class _Simple:
    argv: tuple[str, ...]
    stdout_to_stderr: bool = False
    stderr_to_stdout: bool = False


def _tokenize(script: str) -> list[str]:
    lexer = shlex.shlex(script, posix=True, punctuation_chars=";&|<>")
    lexer.whitespace_split = True
    try:
        return list(lexer)
    except ValueError as exc:
        raise _ScriptError(f"sh: -c: line 1: syntax error: {exc}") from exc


def _simple(words: list[str]) -> _Simple:
    """One command with its ``>&2`` / ``2>&1`` redirections pulled out."""
    argv: list[str] = []
    result = _Simple(())
    index = 0
    while index < len(words):
        word = words[index]
        if word == ">&" and index + 1 < len(words) and words[index + 1] in ("1", "2"):
            fd_from = argv.pop() if argv and argv[-1] in ("1", "2") else "1"
            target = words[index + 1]
            if fd_from == "1" and target == "2":
                result = replace(result, stdout_to_stderr=True)
            elif fd_from == "2" and target == "1":
                result = replace(result, stderr_to_stdout=True)
            index += 2
            continue
        if set(word) <= set("<>&|") and word:
            raise _ScriptError(f"sh: redirection '{word}' is not supported on this simulated device")
        argv.append(word)
        index += 1
    if not argv:
        raise _ScriptError("sh: -c: line 1: syntax error near unexpected token")
    return replace(result, argv=tuple(argv))


def _parse_script(script: str) -> list[tuple[str, list[_Simple]]]:
    """``[(operator before it, pipeline)]``; the first operator is ``;``."""
    steps: list[tuple[str, list[_Simple]]] = []
    operator, pipeline, words = ";", list[_Simple](), list[str]()
    for token in [*_tokenize(script), ";"]:
        if token in _OPERATORS or token == "|":
            if words:
                pipeline.append(_simple(words))
            elif token != ";" or pipeline:
                raise _ScriptError(f"sh: -c: line 1: syntax error near unexpected token `{token}'")
            words = []
            if token == "|":
                continue
            if pipeline:
                steps.append((operator, pipeline))
            operator, pipeline = token, []
        else:
            words.append(token)
    return steps


class _Exit(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


async def _run_simple(command: _Simple, io: CommandIO) -> int:
    stdout = io.stderr if command.stdout_to_stderr else io.stdout
    stderr = io.stdout if command.stderr_to_stdout else io.stderr
    io = replace(io, stdout=stdout, stderr=stderr)
    if command.argv[0] == "exit":
        code = command.argv[1] if len(command.argv) > 1 else "0"
        raise _Exit(int(code) % 256 if code.lstrip("-").isdigit() else EXIT_USAGE)
    return await run_command(command.argv, io)


async def _run_pipeline(pipeline: list[_Simple], io: CommandIO) -> int:
    """Stages run one after another, each reading the previous one's buffered output."""
    stdin = io.stdin
    for command in pipeline[:-1]:
        buffer = bytearray()

        async def collect(data: bytes, buffer: bytearray = buffer) -> None:
            if len(buffer) + len(data) > _PIPE_BUFFER_LIMIT:
                raise _ScriptError("sh: pipe buffer limit reached on this simulated device")
            buffer.extend(data)

        await _run_simple(command, replace(io, stdin=stdin, stdout=collect))
        stdin = Stdin.of(bytes(buffer))
    return await _run_simple(pipeline[-1], replace(io, stdin=stdin))


async def _sh(argv: Sequence[str], io: CommandIO) -> int:
    if len(argv) < 3 or argv[1] != "-c":
        await io.err(f"{argv[0]}: only '{argv[0]} -c <script>' is available on this simulated device\n")
        return EXIT_USAGE
    try:
        steps = _parse_script(argv[2])
        status = 0
        for operator, pipeline in steps:
            if (operator == "&&" and status != 0) or (operator == "||" and status == 0):
                continue
            status = await _run_pipeline(pipeline, io)
        return status
    except _Exit as done:
        return done.code
    except _ScriptError as exc:
        await io.err(f"{exc}\n")
        return EXIT_USAGE


COMMANDS: Mapping[str, Handler] = {
    "echo": _echo,
    "true": _true,
    "false": _false,
    "hostname": _hostname,
    "uname": _uname,
    "cat": _cat,
    "ls": _ls,
    "df": _df,
    "journalctl": _journalctl,
    "systemctl": _systemctl,
    "sleep": _sleep,
    "seq": _seq,
    "head": _head_or_tail,
    "tail": _head_or_tail,
    "wc": _wc,
    "grep": _grep,
    "sh": _sh,
    "bash": _sh,
    "whoami": _constant(lambda device: "flightctl-console\n"),
    "id": _constant(lambda device: "uid=992(flightctl-console) gid=990(flightctl-console) groups=990\n"),
    "pwd": _constant(lambda device: "/home/flightctl-console\n"),
    "uptime": _constant(
        lambda device: " 12:00:00 up 3 days,  2:14,  0 users,  load average: 0.08, 0.03, 0.01\n"
    ),
    "env": _constant(
        lambda device: "HOME=/home/flightctl-console\nUSER=flightctl-console\nPATH=/usr/local/bin:/usr/bin\n"
    ),
}
