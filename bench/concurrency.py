"""Concurrency: query_devices over streamable-http with 1, 4, 16 and 64 concurrent clients.

The simulator (its own process, ``--latency-ms`` added to every API request) and the MCP server (its own
process, the full HTTP stack) run on loopback; this process runs the clients, each a fastmcp ``Client``
calling ``query_devices()`` (the default view, one API page of 50) back to back for ``--seconds``.
The back end is latency-bound, so the ideal throughput of N clients is N / latency; the table gives the
measured throughput, the ratio to that ideal, the speed-up over one client, latency percentiles, and the
CPU each process used (cores = CPU seconds / wall seconds) to show where a ceiling comes from.

    .venv/bin/python bench/concurrency.py            # 1,000 devices, 50 ms, 1/4/16/64 clients, 8 s each
    .venv/bin/python bench/concurrency.py --quick    # smoke run: seconds

Optionally, in the same run and against the same simulator: the server with ``--workers N``
(``--workers``), another checkout of this project (``--compare-checkout DIR``), flightctl-mcp at git
commit 3fbced9 (``--compare-legacy DIR --legacy-python PY``), the back end alone, sent the very request
the server sends (``--backend``), and the framework's floor (``--framework-floor``: a bare FastMCP server
whose one tool waits the back end's latency and answers this server's answer, bench/_bare_fastmcp.py),
each at the ``--compare-clients`` levels, in one side-by-side table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pstats
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastmcp import Client

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import _common as common

TOOL = "query_devices"


@dataclass
class Level:
    """The figures of one concurrency level."""

    clients: int
    calls: int
    errors: int
    seconds: float
    latencies: list[float]
    server_cpu: float
    simulator_cpu: float
    client_cpu: float

    @property
    def throughput(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0


Once = Callable[[], Awaitable[bool]]  # one call or request; True when it succeeded


async def _measure(loops: list[Once], seconds: float, server_pid: int | None, sim_pid: int) -> Level:
    """Run every loop back to back until ``seconds`` have passed (bounded: each stops by itself)."""
    latencies: list[float] = []
    errors: list[int] = []
    server_cpu = common.cpu_seconds(server_pid) if server_pid else 0.0
    sim_cpu, own_cpu = common.cpu_seconds(sim_pid), time.process_time()
    began = time.perf_counter()
    deadline = began + seconds

    async def loop(once: Once) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            if await once():
                latencies.append(time.perf_counter() - started)
            else:
                errors.append(1)

    await asyncio.gather(*(loop(once) for once in loops))
    elapsed = time.perf_counter() - began
    return Level(
        clients=len(loops),
        calls=len(latencies),
        errors=len(errors),
        seconds=elapsed,
        latencies=latencies,
        server_cpu=common.cpu_seconds(server_pid) - server_cpu if server_pid else 0.0,
        simulator_cpu=common.cpu_seconds(sim_pid) - sim_cpu,
        client_cpu=time.process_time() - own_cpu,
    )


async def _level(
    url: str,
    arguments: dict[str, Any],
    clients: int,
    seconds: float,
    warmup: int,
    pids: tuple[int, int],
    client_timeout: float = 60,
) -> Level:
    """Connect ``clients`` clients, warm each up, then measure for ``seconds``."""
    async with contextlib.AsyncExitStack() as stack:
        connected = [
            await stack.enter_async_context(Client(url, timeout=client_timeout)) for _ in range(clients)
        ]
        await connected[0].call_tool(TOOL, arguments)  # the first call logs in and imports lazily
        for _ in range(warmup):
            await asyncio.gather(*(c.call_tool(TOOL, arguments) for c in connected))

        def caller(client: Client[Any]) -> Once:
            async def once() -> bool:
                result = await client.call_tool(TOOL, arguments, raise_on_error=False)
                return not result.is_error

            return once

        return await _measure([caller(c) for c in connected], seconds, *pids)


async def _backend_level(base_url: str, target: str, clients: int, seconds: float, sim_pid: int) -> Level:
    """The back end's own rate: ``clients`` loops sending the request the server sends, no server between."""
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:
        await asyncio.gather(*(client.get(target, headers=common.api_headers()) for _ in range(clients)))

        async def once() -> bool:
            response = await client.get(target, headers=common.api_headers())
            return response.status_code == 200

        return await _measure([once] * clients, seconds, None, sim_pid)


async def _answer_text(url: str, arguments: dict[str, Any]) -> str:
    """The text of one answer of this server: what the framework floor's tool answers."""
    async with Client(url, timeout=60) as client:
        result = await client.call_tool(TOOL, arguments)
    text: str = result.content[0].text
    return text


def _server_request(sim_url: str) -> str:
    """The path and query of the last list request the server sent (read back from the simulator's log)."""
    with httpx.Client(base_url=sim_url, timeout=30) as client:
        lists = [
            r for r in common.sim_requests(client) if r["path"] == "/api/v1/devices" and r["method"] == "GET"
        ]
    if not lists:
        raise SystemExit("the server sent no device list request")
    return f"{lists[-1]['path']}?{lists[-1]['query']}"


def _levels(
    url: str, arguments: dict[str, Any], levels: list[int], args: argparse.Namespace, pids: tuple[int, int]
) -> list[Level]:
    timeout = getattr(args, "timeout", 60)
    return [asyncio.run(_level(url, arguments, n, args.seconds, args.warmup, pids, timeout)) for n in levels]


def _row(r: Level, latency: float, single: float) -> list[str]:
    ideal = r.clients / latency if latency else float("inf")
    return [
        str(r.clients),
        str(r.calls),
        str(r.errors),
        f"{r.throughput:.1f}",
        f"{ideal:.0f}",
        f"{r.throughput / ideal:.2f}" if latency else "n/a",
        f"{r.throughput / single:.1f}x" if single else "n/a",
        *(f"{common.percentile(r.latencies, p) * 1000:.0f}" if r.latencies else "n/a" for p in (50, 90, 99)),
        f"{r.server_cpu / r.seconds:.2f}",
        f"{r.server_cpu / max(r.calls, 1) * 1000:.1f}",
        f"{r.simulator_cpu / r.seconds:.2f}",
        f"{r.client_cpu / r.seconds:.2f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--full-devices", action="store_true", help="devices at production size (~4 KB each)")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="added per API request (default 50)")
    parser.add_argument("--clients", default="1,4,16,64", help="comma-separated levels (default 1,4,16,64)")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured time per level (default 8)")
    parser.add_argument("--warmup", type=int, default=2, help="calls per client before measuring")
    parser.add_argument("--limit", type=int, help="query_devices limit (default: the tool's default)")
    parser.add_argument("--workers", type=int, help="also measure the server with --workers N (stateless)")
    parser.add_argument(
        "--compare-checkout", metavar="DIR", type=Path,
        help="also measure another checkout of this project (e.g. git worktree add DIR <commit>)",
    )  # fmt: skip
    parser.add_argument(
        "--compare-legacy", metavar="DIR", type=Path,
        help="also measure flightctl-mcp 3fbced9 from DIR (needs --legacy-python; bench/_serve_legacy.py)",
    )  # fmt: skip
    parser.add_argument(
        "--legacy-python", default=sys.executable, help="Python with mcp<2, requests, uvicorn"
    )
    parser.add_argument(
        "--compare-clients",
        default="16",
        help="levels for the compared servers and the back end (default 16)",
    )
    parser.add_argument("--backend", action="store_true", help="also measure the back end's own rate")
    parser.add_argument(
        "--framework-floor", action="store_true",
        help="also measure a bare FastMCP server whose one tool waits the latency and answers our answer",
    )  # fmt: skip
    parser.add_argument(
        "--floor-wait-ms", type=float,
        help="how long the bare server's tool waits (default: --latency-ms); longer matches our call rate",
    )  # fmt: skip
    parser.add_argument("--profile", metavar="FILE", help="cProfile the server into FILE; print its top")
    parser.add_argument("--quick", action="store_true", help="smoke run: 100 devices, 1 and 4 clients, 1 s")
    args = parser.parse_args()
    if args.quick:
        args.devices, args.clients, args.seconds, args.warmup = 100, "1,4", 1.0, 1
        args.compare_clients = "4"
    levels = [int(c) for c in args.clients.split(",")]
    compare_levels = [int(c) for c in args.compare_clients.split(",")]
    arguments: dict[str, Any] = {"limit": args.limit} if args.limit else {}

    print(f"machine: {common.machine()}")
    extra = {"BENCH_PROFILE": str(Path(args.profile).resolve())} if args.profile else {}
    compared: list[tuple[str, list[Level]]] = []
    floor = args.framework_floor or args.quick
    with common.simulator(args.devices, args.latency_ms, full_devices=args.full_devices) as sim:
        with common.mcp_http_server(sim.url, extra) as server:
            results = _levels(server.url, arguments, levels, args, (server.pid, sim.pid))
            peak = common.peak_rss_mib(server.pid)
            answer = asyncio.run(_answer_text(server.url, arguments)) if floor else ""
        target = _server_request(sim.url)
        compared.append(("this server", [r for r in results if r.clients in compare_levels]))
        if args.workers:
            workers = {"MCP_WORKERS": str(args.workers), "MCP_STATELESS": "true"}
            with common.mcp_http_server(sim.url, workers) as server:
                compared.append(
                    (
                        f"this server, {args.workers} workers",
                        _levels(server.url, arguments, compare_levels, args, (server.pid, sim.pid)),
                    )
                )
        if args.compare_checkout:
            with common.mcp_http_server(sim.url, root=args.compare_checkout.resolve()) as server:
                compared.append(
                    (
                        f"checkout {args.compare_checkout}",
                        _levels(server.url, arguments, compare_levels, args, (server.pid, sim.pid)),
                    )
                )
        if args.compare_legacy:
            with common.legacy_server(args.compare_legacy, args.legacy_python, sim.url) as server:
                # No per-client warm-up and a long timeout: it answers one call at a time, seconds each.
                legacy = argparse.Namespace(seconds=args.seconds, warmup=0, timeout=1800)
                pids = (server.pid, sim.pid)
                compared.append(
                    ("flightctl-mcp 3fbced9", _levels(server.url, arguments, compare_levels, legacy, pids))
                )
        if floor:
            wait = args.latency_ms if args.floor_wait_ms is None else args.floor_wait_ms
            with common.bare_fastmcp_server(wait / 1000, answer) as server:
                compared.append(
                    (
                        f"bare FastMCP, tool waits {wait:g} ms, same answer",
                        _levels(server.url, arguments, compare_levels, args, (server.pid, sim.pid)),
                    )
                )
        if args.backend or args.quick:
            compared.append(
                (
                    f"back end alone (GET {target.split('?')[0]}, same query)",
                    [
                        asyncio.run(_backend_level(sim.url, target, n, args.seconds, sim.pid))
                        for n in compare_levels
                    ],
                )
            )
    latency = args.latency_ms / 1000
    single = results[0].throughput if results and results[0].clients == 1 else 0.0
    headers = [
        "clients", "calls", "errors", "calls/s", "ideal/s", "of ideal", "vs 1 client",
        "p50 ms", "p90 ms", "p99 ms", "server cores", "server CPU ms/call", "simulator cores",
        "clients cores",
    ]  # fmt: skip
    print(
        f"query_devices({', '.join(f'{k}={v}' for k, v in arguments.items())}) over streamable-http; "
        f"{args.devices} {'full-size ' if args.full_devices else ''}devices; "
        f"back-end latency {args.latency_ms:g} ms; "
        f"{args.seconds:g} s per level; {os.cpu_count()} CPUs shared by server, simulator and clients"
    )
    print(common.table(headers, [_row(r, latency, single) for r in results]))
    print(f"server peak RSS: {peak:.0f} MiB; load average after: {common.load_average()}")
    by_clients = {r.clients: r for r in results}
    if 16 in by_clients and single:
        speedup = by_clients[16].throughput / single
        verdict = "met" if speedup >= 12 else "MISSED"
        print(f"target: 16 clients >= 12x one client: {speedup:.1f}x ({verdict})")
    if len(compared) > 1:
        _print_comparison(compared)
    if args.profile:
        print("(figures above are inflated by cProfile; run without --profile for the real ones)")
        stats = pstats.Stats(args.profile)
        stats.sort_stats("tottime").print_stats(20)
        stats.sort_stats("cumulative").print_stats(30)
    if any(r.errors for _, rs in compared for r in rs) or any(r.errors for r in results):
        raise SystemExit("some calls failed; see the errors column")


def _print_comparison(compared: list[tuple[str, list[Level]]]) -> None:
    """Every measured server (and the back end alone) side by side, same simulator, same run."""
    ours = {r.clients: r for r in compared[0][1]}
    rows = []
    for name, results in compared:
        for r in results:
            mine = ours.get(r.clients)
            rows.append(
                [
                    name,
                    str(r.clients),
                    str(r.calls),
                    str(r.errors),
                    f"{r.throughput:.1f}",
                    f"{mine.throughput / r.throughput:.2f}" if mine and r.throughput else "n/a",
                    f"{common.percentile(r.latencies, 50) * 1000:.0f}" if r.latencies else "n/a",
                    f"{r.server_cpu / max(r.calls, 1) * 1000:.1f}" if r.server_cpu else "",
                    f"{r.server_cpu / r.seconds:.2f}" if r.server_cpu else "",
                    f"{r.simulator_cpu / r.seconds:.2f}",
                ]
            )
    print("side by side (same simulator, same run):")
    headers = [
        "what", "clients", "calls", "errors", "calls/s", "this server's calls/s ÷ this", "p50 ms",
        "server CPU ms/call", "server cores", "simulator cores",
    ]  # fmt: skip
    print(common.table(headers, rows))


if __name__ == "__main__":
    main()
