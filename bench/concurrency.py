"""Concurrency: query_devices over streamable-http with 1, 4, 16 and 64 concurrent clients.

The simulator (its own process, ``--latency-ms`` added to every API request) and the MCP server (its own
process, the full HTTP stack) run on loopback; this process runs the clients, each a fastmcp ``Client``
calling ``query_devices()`` (the default view, one API page of 50) back to back for ``--seconds``.
The back end is latency-bound, so the ideal throughput of N clients is N / latency; the table gives the
measured throughput, the ratio to that ideal, the speed-up over one client, latency percentiles, and the
CPU each process used (cores = CPU seconds / wall seconds) to show where a ceiling comes from.

    .venv/bin/python bench/concurrency.py            # 1,000 devices, 50 ms, 1/4/16/64 clients, 8 s each
    .venv/bin/python bench/concurrency.py --quick    # smoke run: seconds
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pstats
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


async def _worker(
    client: Client[Any], arguments: dict[str, Any], deadline: float, latencies: list[float], errors: list[int]
) -> None:
    """Call the tool back to back until the deadline (bounded: stops by itself)."""
    while time.perf_counter() < deadline:
        began = time.perf_counter()
        result = await client.call_tool(TOOL, arguments, raise_on_error=False)
        if result.is_error:
            errors.append(1)
            continue
        latencies.append(time.perf_counter() - began)


async def _level(
    url: str, arguments: dict[str, Any], clients: int, seconds: float, warmup: int, pids: tuple[int, int]
) -> Level:
    """Connect ``clients`` clients, warm each up, then measure for ``seconds``."""
    async with contextlib.AsyncExitStack() as stack:
        connected = [await stack.enter_async_context(Client(url, timeout=60)) for _ in range(clients)]
        for _ in range(warmup):
            await asyncio.gather(*(c.call_tool(TOOL, arguments) for c in connected))
        latencies: list[float] = []
        errors: list[int] = []
        server_cpu, sim_cpu = common.cpu_seconds(pids[0]), common.cpu_seconds(pids[1])
        own_cpu = time.process_time()
        began = time.perf_counter()
        deadline = began + seconds
        await asyncio.gather(*(_worker(c, arguments, deadline, latencies, errors) for c in connected))
        elapsed = time.perf_counter() - began
        return Level(
            clients=clients,
            calls=len(latencies),
            errors=len(errors),
            seconds=elapsed,
            latencies=latencies,
            server_cpu=common.cpu_seconds(pids[0]) - server_cpu,
            simulator_cpu=common.cpu_seconds(pids[1]) - sim_cpu,
            client_cpu=time.process_time() - own_cpu,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=50.0, help="added per API request (default 50)")
    parser.add_argument("--clients", default="1,4,16,64", help="comma-separated levels (default 1,4,16,64)")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured time per level (default 8)")
    parser.add_argument("--warmup", type=int, default=2, help="calls per client before measuring")
    parser.add_argument("--limit", type=int, help="query_devices limit (default: the tool's default, 50)")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the server into FILE; print its top")
    parser.add_argument("--quick", action="store_true", help="smoke run: 100 devices, 1 and 4 clients, 1 s")
    args = parser.parse_args()
    if args.quick:
        args.devices, args.clients, args.seconds, args.warmup = 100, "1,4", 1.0, 1
    levels = [int(c) for c in args.clients.split(",")]
    arguments: dict[str, Any] = {"limit": args.limit} if args.limit else {}

    print(f"machine: {common.machine()}")
    extra = {"BENCH_PROFILE": str(Path(args.profile).resolve())} if args.profile else {}
    with (
        common.simulator(args.devices, args.latency_ms) as sim,
        common.mcp_http_server(sim.url, **extra) as server,
    ):
        results = [
            asyncio.run(_level(server.url, arguments, n, args.seconds, args.warmup, (server.pid, sim.pid)))
            for n in levels
        ]
        peak = common.peak_rss_mib(server.pid)
    latency = args.latency_ms / 1000
    single = results[0].throughput if results and results[0].clients == 1 else 0.0
    rows = []
    for r in results:
        ideal = r.clients / latency if latency else float("inf")
        rows.append(
            [
                r.clients,
                r.calls,
                r.errors,
                f"{r.throughput:.1f}",
                f"{ideal:.0f}",
                f"{r.throughput / ideal:.2f}" if latency else "n/a",
                f"{r.throughput / single:.1f}x" if single else "n/a",
                *(
                    f"{common.percentile(r.latencies, p) * 1000:.0f}" if r.latencies else "n/a"
                    for p in (50, 90, 99)
                ),
                f"{r.server_cpu / r.seconds:.2f}",
                f"{r.server_cpu / max(r.calls, 1) * 1000:.1f}",
                f"{r.simulator_cpu / r.seconds:.2f}",
                f"{r.client_cpu / r.seconds:.2f}",
            ]
        )
    headers = [
        "clients", "calls", "errors", "calls/s", "ideal/s", "of ideal", "vs 1 client",
        "p50 ms", "p90 ms", "p99 ms", "server cores", "server CPU ms/call", "simulator cores",
        "clients cores",
    ]  # fmt: skip
    print(
        f"query_devices({', '.join(f'{k}={v}' for k, v in arguments.items())}) over streamable-http; "
        f"{args.devices} devices; "
        f"back-end latency {args.latency_ms:g} ms; "
        f"{args.seconds:g} s per level; {os.cpu_count()} CPUs shared by server, simulator and clients"
    )
    print(common.table(headers, rows))
    print(f"server peak RSS: {peak:.0f} MiB; load average after: {common.load_average()}")
    by_clients = {r.clients: r for r in results}
    if 16 in by_clients and single:
        speedup = by_clients[16].throughput / single
        verdict = "met" if speedup >= 12 else "MISSED"
        print(f"target: 16 clients >= 12x one client: {speedup:.1f}x ({verdict})")
    if single and results[0].calls and results[0].server_cpu > 0:
        per_call = results[0].server_cpu / results[0].calls * 1000
        print(
            f"server CPU per call with one client: {per_call:.1f} ms, so one server process (one core, "
            f"one GIL) tops out near {1000 / per_call:.0f} calls/s even with the whole core"
        )
    if args.profile:
        print("(figures above are inflated by cProfile; run without --profile for the real ones)")
        stats = pstats.Stats(args.profile)
        stats.sort_stats("tottime").print_stats(20)
        stats.sort_stats("cumulative").print_stats(30)
    if any(r.errors for r in results):
        raise SystemExit("some calls failed; see the errors column")


if __name__ == "__main__":
    main()
