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
from collections.abc import Callable, Mapping, Sequence

from simulator.command_io import EXIT_NOT_FOUND, EXIT_USAGE, CommandIO, DeviceFacts, Handler, Stdin, Writer
from simulator.shell import run_sh

__all__ = ["COMMANDS", "CommandIO", "DeviceFacts", "Stdin", "Writer", "run_command"]

# Upper bounds that keep a simulated command from eating the simulator's memory or CPU.
_SEQ_MAX_LINES = 5_000_000
_WRITE_CHUNK = 64 * 1024


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


async def _sh(argv: Sequence[str], io: CommandIO) -> int:
    """``sh -c``: simulator/shell.py's subset, each command run from this table."""
    return await run_sh(argv, io, run_command)


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
