"""Shared pieces of the benchmarks: the machine line, subprocesses on loopback, /proc readings, statistics.

Every benchmark runs the simulator (``python -m simulator``) and, where the server's own figures matter,
the MCP server as separate processes, so their CPU time and memory are theirs alone. Nothing leaves
127.0.0.1; every port is picked by the kernel (port 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    import uvicorn

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-static-token"  # a throwaway credential the simulator pre-issues for one run only
REFRESH_TOKEN = "bench-refresh-token"  # likewise, for a server that logs in with a refresh token
SERVE_HTTP = Path(__file__).resolve().parent / "_serve_http.py"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- the machine --------------------------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU model from /proc/cpuinfo (platform's answer elsewhere)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def load_average() -> str:
    """The 1/5/15-minute load averages, to judge whether other work disturbed a figure."""
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "n/a"


def machine() -> str:
    """One line naming the machine, the Python and the date, printed with every table."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{now}; {platform.system()} {platform.release()}; {os.cpu_count()} CPUs ({cpu_model()}); "
        f"Python {platform.python_version()}; load average {load_average()}"
    )


# --- /proc readings -----------------------------------------------------------------------------------


def peak_rss_mib(pid: int) -> float:
    """Peak resident memory (VmHWM) of a live process, MiB; 0 when unreadable."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a live process and its live child processes (workers) have used so far;
    0 when unreadable."""
    total = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / CLK_TCK
    with contextlib.suppress(OSError, ValueError):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        total += sum(cpu_seconds(int(child)) for child in children)
    return total


# --- statistics ---------------------------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    """The median (0 for no values)."""
    return float(statistics.median(values)) if values else 0.0


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (pastes straight into bench/README.md)."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


# --- processes ----------------------------------------------------------------------------------------


@dataclass
class Process:
    """A child process on loopback and the URL it printed when ready."""

    popen: subprocess.Popen[str]
    url: str

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s; this process only."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)
        if self.popen.stdout is not None:
            self.popen.stdout.close()


def _start(
    command: list[str], env: Mapping[str, str] | None, what: str, timeout: float, cwd: Path = ROOT
) -> Process:
    """Start ``command``; its first stdout line is the URL it serves. Fails loudly if it never comes."""
    popen = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    assert popen.stdout is not None
    began = time.monotonic()
    line = popen.stdout.readline().strip()  # the child prints its URL, or exits (EOF)
    if not line.startswith("http"):
        popen.kill()
        popen.wait(timeout=5)
        raise SystemExit(f"{what} did not start (got {line!r}); run {' '.join(command)} by hand to see why")
    if time.monotonic() - began > timeout:
        print(f"warning: {what} took {time.monotonic() - began:.1f} s to start", file=sys.stderr)
    return Process(popen, line)


async def serve_on_loopback(server: uvicorn.Server, path: str) -> None:
    """Serve on 127.0.0.1 at a kernel-picked port (MCP_PORT must be 1-65535, so the server cannot bind 0
    itself) and print ``http://127.0.0.1:<port><path>`` once listening: the line ``_start`` waits for."""
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say they are TCP; without it
    # Nagle holds each response body ~40 ms behind its headers on a kept-alive connection.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn offers no event
        await asyncio.sleep(0.005)
    print(f"http://127.0.0.1:{sock.getsockname()[1]}{path}", flush=True)
    await task


@contextlib.contextmanager
def simulator(
    devices: int, latency_ms: float, seed: int = 1, *, full_devices: bool = False, extra: Sequence[str] = ()
) -> Iterator[Process]:
    """``python -m simulator`` on 127.0.0.1:0 over HTTP with a static admin token (``TOKEN``) and a
    refresh token (``REFRESH_TOKEN``) whose access tokens last the whole run."""
    command = [
        sys.executable, "-m", "simulator", "--port", "0", "--devices", str(devices), "--seed", str(seed),
        "--latency-ms", str(latency_ms), "--access-token", TOKEN, "--log-level", "warning",
        "--refresh-token", REFRESH_TOKEN, "--access-token-ttl", "86400", "--refresh-token-ttl", "86400",
    ]  # fmt: skip
    if full_devices:
        command.append("--full-devices")
    command.extend(extra)
    process = _start(command, None, "the simulator", 120)
    try:
        yield process
    finally:
        process.stop()


def server_env(api_base_url: str, **extra: str) -> dict[str, str]:
    """Everything the MCP server needs, and nothing from the user's own configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FASTMCP_", "MCP_", "OIDC_"))}
    for name in (
        "API_BASE_URL",
        "ACCESS_TOKEN",
        "REFRESH_TOKEN",
        "CA_CERT_PATH",
        "ORG_ID",
        "CLIENT_CONFIG_PATH",
    ):
        env.pop(name, None)
    log_dir = tempfile.gettempdir()
    env.update(
        API_BASE_URL=api_base_url,
        ACCESS_TOKEN=TOKEN,
        XDG_CONFIG_HOME="/nonexistent",  # no client.yaml is read
        LOG_FILE=str(Path(log_dir) / f"flightctl-mcp-bench-{os.getpid()}.log"),
        LOG_LEVEL="WARNING",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(extra)
    return env


@contextlib.contextmanager
def mcp_http_server(
    api_base_url: str, extra: Mapping[str, str] | None = None, root: Path = ROOT
) -> Iterator[Process]:
    """The MCP server's full HTTP app (streamable-http) in its own process on 127.0.0.1:0; ``root`` may be
    another checkout of this project (its own bench/_serve_http.py and modules are used)."""
    env = server_env(api_base_url, MCP_TRANSPORT="streamable-http", MCP_RATE_LIMIT="1000000", **(extra or {}))
    command = [sys.executable, str(root / "bench" / SERVE_HTTP.name)]
    process = _start(command, env, "the MCP server", 30, cwd=root)
    try:
        yield process
    finally:
        process.stop()


@contextlib.contextmanager
def bare_fastmcp_server(latency_s: float, answer: str) -> Iterator[Process]:
    """bench/_bare_fastmcp.py over streamable-http: one tool that waits ``latency_s`` and answers
    ``answer``; the framework's own cost of a call, the floor under this server's."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8") as file:
        file.write(answer)
        file.flush()
        serve = Path(__file__).resolve().parent / "_bare_fastmcp.py"
        process = _start([sys.executable, str(serve), "http", str(latency_s), file.name], None, "bare", 30)
        try:
            yield process
        finally:
            process.stop()


@contextlib.contextmanager
def legacy_server(directory: Path, python: str, api_base_url: str) -> Iterator[Process]:
    """flightctl-mcp at git commit 3fbced9 (synchronous requests, mcp 1.x), from ``directory`` and run with
    ``python`` (see bench/_serve_legacy.py), logged in with the simulator's ``REFRESH_TOKEN``."""
    home = tempfile.mkdtemp(prefix="flightctl-mcp-bench-home-")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FASTMCP_", "MCP_", "OIDC_"))}
    env.update(
        HOME=home,
        API_BASE_URL=api_base_url,
        OIDC_TOKEN_URL=f"{api_base_url}/realms/flightctl/protocol/openid-connect/token",
        OIDC_CLIENT_ID="flightctl",
        REFRESH_TOKEN=REFRESH_TOKEN,
        LOG_LEVEL="WARNING",
        PYTHONDONTWRITEBYTECODE="1",
    )
    serve = Path(__file__).resolve().parent / "_serve_legacy.py"
    process = _start(
        [python, str(serve), str(directory.resolve())], env, "the 3fbced9 server", 60, cwd=directory
    )
    try:
        yield process
    finally:
        process.stop()


def api_headers() -> dict[str, str]:
    """What the server sends to Flight Control on every request (minus org_id, unused here)."""
    return {"Authorization": f"Bearer {TOKEN}", "Flightctl-API-Version": "v1beta1"}


def sim_requests(client: httpx.Client) -> list[dict[str, object]]:
    """The simulator's log of API requests (the last 1000), oldest first."""
    response = client.get("/_sim/requests")
    response.raise_for_status()
    entries: list[dict[str, object]] = response.json()["requests"]
    return entries


def clear_sim_requests(client: httpx.Client) -> None:
    """Empty the simulator's request log."""
    client.delete("/_sim/requests").raise_for_status()


def set_latency(client: httpx.Client, latency_ms: float) -> None:
    """Change the simulator's added latency per API request."""
    client.post("/_sim/faults", json={"action": "latency", "ms": latency_ms}).raise_for_status()
