"""Scale: query_devices over 1,000, 10,000 and 100,000 devices against the direct-fetch floor.

For each fleet size the simulator (``--latency-ms`` per API request) and the MCP server (full HTTP stack)
run as their own processes; a fastmcp Client calls over streamable-http:

- count: ``count_devices()`` (one summaryOnly request);
- list: ``query_devices(limit=1000)``, the default view up to the response budget;
- walk: every page with the cursor (``next.arguments``) until the end, at sizes up to ``--walk-max``.

The floor is the time to send the very requests the server sent (read back from the simulator's request
log) directly with httpx, one after the other; server overhead = (server - floor) / floor. Peak memory is
the server process's VmHWM from /proc.

    .venv/bin/python bench/scale.py            # 1,000 / 10,000 / 100,000 devices, 50 ms (a few minutes)
    .venv/bin/python bench/scale.py --quick    # smoke run: 200 devices
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastmcp import Client

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import _common as common

TARGET_OVERHEAD = 0.25
TARGET_RSS_MIB = 200.0


@dataclass
class Figure:
    """One measured operation at one fleet size (medians over the repeats)."""

    devices: int
    what: str
    calls: int = 0
    items: int = 0
    requests: int = 0
    distinct: int = 0
    server_s: list[float] = field(default_factory=list)
    floor_s: list[float] = field(default_factory=list)
    distinct_s: list[float] = field(default_factory=list)

    @property
    def server(self) -> float:
        return common.median(self.server_s)

    @property
    def floor(self) -> float:
        return common.median(self.floor_s)

    @property
    def overhead(self) -> float:
        return (self.server - self.floor) / self.floor if self.floor else 0.0

    @property
    def overhead_distinct(self) -> float:
        """Against fetching each distinct page once (re-reads of a page count as the server's cost)."""
        floor = common.median(self.distinct_s)
        return (self.server - floor) / floor if floor else 0.0


async def _call(client: Client[Any], tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    answer: dict[str, Any] = json.loads(result.content[0].text)  # type: ignore[union-attr]
    return answer


async def _run(client: Client[Any], what: str, max_calls: int) -> tuple[int, int]:
    """One operation; returns (tool calls, items returned). The walk is bounded by ``max_calls``."""
    if what == "count":
        answer = await _call(client, "count_devices", {})
        return 1, int(answer["total"])
    arguments: dict[str, Any] = {"limit": 1000}
    calls = items = 0
    while calls < max_calls:
        answer = await _call(client, "query_devices", arguments)
        calls += 1
        items += int(answer["returned"])
        if what == "list" or "next" not in answer:
            break
        arguments = answer["next"]["arguments"]
    return calls, items


def _replay(sim: httpx.Client, requests: list[dict[str, Any]]) -> float:
    """Send the logged API requests again, directly, one after the other; returns the seconds taken."""
    headers = common.api_headers()
    began = time.perf_counter()
    for entry in requests:
        query = str(entry["query"])
        sim.get(str(entry["path"]) + (f"?{query}" if query else ""), headers=headers).raise_for_status()
    return time.perf_counter() - began


async def _measure(
    client: Client[Any], sim: httpx.Client, figure: Figure, repeats: int, max_calls: int
) -> None:
    for _ in range(repeats):
        common.clear_sim_requests(sim)
        began = time.perf_counter()
        figure.calls, figure.items = await _run(client, figure.what, max_calls)
        figure.server_s.append(time.perf_counter() - began)
        logged = [r for r in common.sim_requests(sim) if str(r["path"]).startswith("/api/")]
        if len(logged) >= 1000:
            raise SystemExit("the simulator's request log (1000 entries) overflowed; lower --walk-max")
        figure.requests = len(logged)
        distinct = list({(r["path"], r["query"]): r for r in logged}.values())
        figure.distinct = len(distinct)
        figure.floor_s.append(_replay(sim, logged))
        figure.distinct_s.append(_replay(sim, distinct))


async def _fleet(
    devices: int, latency_ms: float, repeats: int, walk_max: int
) -> tuple[list[Figure], float, float, float]:
    """All figures for one fleet size, plus the server's RSS at start, its peak, and its CPU seconds."""
    with (
        common.simulator(devices, latency_ms) as sim,
        common.mcp_http_server(sim.url) as server,
        httpx.Client(base_url=sim.url, timeout=120) as direct,
    ):
        rss_start = common.peak_rss_mib(server.pid)
        figures = [Figure(devices, "count"), Figure(devices, "list")]
        if devices <= walk_max:
            figures.append(Figure(devices, "walk"))
        async with Client(server.url, timeout=300) as client:
            await _run(client, "count", 1)  # warm-up: first-call imports and connections
            _replay(direct, [{"path": "/api/v1/devices", "query": "limit=1"}])
            cpu = common.cpu_seconds(server.pid)
            for figure in figures:
                await _measure(client, direct, figure, 1 if figure.what == "walk" else repeats, 990)
            cpu = common.cpu_seconds(server.pid) - cpu
        return figures, rss_start, common.peak_rss_mib(server.pid), cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", default="1000,10000,100000", help="comma-separated fleet sizes")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="added per API request (default 50)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats of count and list (median)")
    parser.add_argument("--walk-max", type=int, default=10_000, help="walk every page up to this size")
    parser.add_argument("--quick", action="store_true", help="smoke run: 200 devices, one repeat")
    args = parser.parse_args()
    if args.quick:
        args.devices, args.repeats = "200", 1
    sizes = [int(n) for n in args.devices.split(",")]

    print(f"machine: {common.machine()}")
    rows, memory, worst = [], [], 0.0
    for devices in sizes:
        print(f"... {devices:,} devices", file=sys.stderr, flush=True)
        figures, rss_start, rss_peak, cpu = asyncio.run(
            _fleet(devices, args.latency_ms, args.repeats, args.walk_max)
        )
        memory.append([f"{devices:,}", f"{rss_start:.0f}", f"{rss_peak:.0f}", f"{cpu:.1f}"])
        for f in figures:
            worst = max(worst, f.overhead)
            rows.append(
                [
                    f"{devices:,}", f.what, f.calls, f.items, f"{f.requests} ({f.distinct})",
                    f"{f.server:.3f}", f"{f.floor:.3f}", f"{f.overhead * 100:+.0f}%",
                    f"{f.overhead_distinct * 100:+.0f}%",
                    f"{f.server / max(f.requests, 1) * 1000:.0f}",
                ]
            )  # fmt: skip
    print(
        f"back-end latency {args.latency_ms:g} ms; count and list: median of {args.repeats}; walk: once; "
        "floor = the same requests sent directly with httpx"
    )
    headers = [
        "devices", "operation", "tool calls", "items", "API requests (distinct)", "server s", "floor s",
        "overhead", "vs distinct pages", "server ms per request",
    ]  # fmt: skip
    print(common.table(headers, rows))
    print(common.table(["devices", "server RSS at start MiB", "peak RSS MiB", "server CPU s"], memory))
    print(f"load average after: {common.load_average()}")
    verdict = "met" if worst < TARGET_OVERHEAD else "MISSED"
    print(f"target: overhead < {TARGET_OVERHEAD:.0%} at every scale: worst {worst:+.0%} ({verdict})")
    if sizes and max(sizes) >= 100_000:
        peak = float(memory[-1][2])
        print(f"target: peak RSS < {TARGET_RSS_MIB:.0f} MB at 100,000 devices: {peak:.0f} MiB "
              f"({'met' if peak < TARGET_RSS_MIB else 'MISSED'})")  # fmt: skip


if __name__ == "__main__":
    main()
