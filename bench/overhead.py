"""Overhead: in-process tool-call latency with zero back-end latency, p50 and p99.

The server is built in this process (``main.build_server``) and called through fastmcp's in-memory
``Client(mcp)``, so no MCP transport is measured; the simulator runs in its own process with no added
latency. The floor is the same API request sent directly with httpx, alternating with the tool calls so
both see the same machine load; the server's own cost of call i is call i minus fetch i, and its p50 and
p99 are taken over those differences.

    .venv/bin/python bench/overhead.py           # 1,000 devices, 300 calls per tool
    .venv/bin/python bench/overhead.py --quick   # smoke run
    .venv/bin/python bench/overhead.py --profile query_devices   # cProfile of that tool's calls
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from fastmcp import Client

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import _common as common

TARGET_MS = 5.0

# (label, tool, arguments, the API requests one call sends)
CASES: list[tuple[str, str, dict[str, Any], list[str]]] = [
    ("count_devices()", "count_devices", {}, ["/api/v1/devices?summaryOnly=true"]),
    ("query_devices(limit=5)", "query_devices", {"limit": 5}, ["/api/v1/devices?limit=5"]),
    ("query_devices(limit=40)", "query_devices", {"limit": 40}, ["/api/v1/devices?limit=40"]),
]


def _server(api_base_url: str) -> Any:
    from config import load_settings
    from main import build_server
    from services import Services

    settings = load_settings({}, common.server_env(api_base_url))
    return build_server(settings, Services.from_settings(settings))


async def _paired(
    client: Client[Any],
    direct: httpx.AsyncClient,
    case: tuple[str, str, dict[str, Any], list[str]],
    calls: int,
    profile: cProfile.Profile | None,
) -> tuple[list[float], list[float]]:
    """Alternate one tool call and one direct fetch of the same requests, so both see the same load."""
    _, tool, arguments, paths = case
    headers = common.api_headers()

    async def fetch() -> None:
        for path in paths:
            response = await direct.get(path, headers=headers)
            response.raise_for_status()
            response.json()

    for _ in range(5):  # warm-up
        await client.call_tool(tool, arguments)
        await fetch()
    tool_s, floor_s = [], []
    for _ in range(calls):
        if profile:
            profile.enable()
        began = time.perf_counter()
        await client.call_tool(tool, arguments)
        tool_s.append(time.perf_counter() - began)
        if profile:
            profile.disable()
        began = time.perf_counter()
        await fetch()
        floor_s.append(time.perf_counter() - began)
    return tool_s, floor_s


def _ms(values: list[float], pct: float) -> float:
    return common.percentile(values, pct) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=300, help="calls per tool (default 300)")
    parser.add_argument("--profile", metavar="TOOL", help="cProfile the calls of this tool, print the top 25")
    parser.add_argument("--quick", action="store_true", help="smoke run: 100 devices, 20 calls")
    args = parser.parse_args()
    if args.quick:
        args.devices, args.calls = 100, 20

    print(f"machine: {common.machine()}")
    rows = []
    worst = 0.0
    profile = cProfile.Profile() if args.profile else None
    with common.simulator(args.devices, 0) as sim:
        mcp = _server(sim.url)

        async def run_all() -> list[tuple[str, list[float], list[float]]]:
            out = []
            async with Client(mcp) as client, httpx.AsyncClient(base_url=sim.url, timeout=30) as direct:
                for case in CASES:
                    prof = profile if case[1] == args.profile else None
                    calls, floor = await _paired(client, direct, case, args.calls, prof)
                    out.append((case[0], calls, floor))
            return out

        results = asyncio.run(run_all())
    for label, calls, floor in results:
        own = [c - f for c, f in zip(calls, floor, strict=True)]  # paired: call i minus fetch i
        own50, own99 = _ms(own, 50), _ms(own, 99)
        worst = max(worst, own50)
        rows.append(
            [label, f"{_ms(calls, 50):.2f}", f"{_ms(calls, 99):.2f}", f"{_ms(floor, 50):.2f}",
             f"{_ms(floor, 99):.2f}", f"{own50:.2f}", f"{own99:.2f}"]
        )  # fmt: skip
    print(f"in-memory Client(mcp); {args.devices} devices; back-end latency 0; {args.calls} calls per tool")
    headers = [
        "tool call",
        "call p50 ms",
        "call p99 ms",
        "floor p50 ms",
        "floor p99 ms",
        "own p50 ms",
        "own p99 ms",
    ]
    print(common.table(headers, rows))
    print(f"load average after: {common.load_average()}")
    verdict = "met" if worst < TARGET_MS else "MISSED"
    print(f"target: per-call overhead < {TARGET_MS:g} ms p50: worst {worst:.2f} ms ({verdict})")
    if profile:
        print("(figures above are inflated by cProfile; run without --profile for the real ones)")
        stats = pstats.Stats(profile)
        stats.sort_stats("cumulative").print_stats(25)
        stats.sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
