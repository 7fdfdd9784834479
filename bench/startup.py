"""Start-up: time from process start to the first tools/list answer over stdio (median of N).

Each run starts ``python main.py`` (MCP_TRANSPORT=stdio) through fastmcp's ``StdioTransport`` exactly as
an assistant would, then times initialize + tools/list; each start alternates with one of a bare FastMCP
server with one tool (bench/_bare_fastmcp.py), the floor set by the framework, and their medians are
compared. The import of the server's modules alone
(``python -c "import main"``) and a bare interpreter are timed too, to show where the time goes. The
API is a simulator on loopback; start-up itself sends it nothing.

    .venv/bin/python bench/startup.py             # median of 7
    .venv/bin/python bench/startup.py --quick     # smoke run: one start
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path

from fastmcp import Client
from fastmcp.client.transports import StdioTransport

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import _common as common

TARGET_S = 1.5


BARE = str(Path(__file__).resolve().parent / "_bare_fastmcp.py")
TARGET_RATIO = 1.2  # first tools/list within 1.2x of a bare FastMCP server with one tool


async def _first_tools_list(env: dict[str, str], script: str = "main.py") -> tuple[float, float, int]:
    """Seconds to initialize and to the first tools/list answer, and the number of tools."""
    transport = StdioTransport(
        command=sys.executable, args=[script], env=env, cwd=str(common.ROOT), keep_alive=False
    )
    began = time.perf_counter()
    async with Client(transport, timeout=60) as client:
        initialized = time.perf_counter() - began
        tools = await client.list_tools()
        listed = time.perf_counter() - began
    return initialized, listed, len(tools)


def _run(code: str, env: dict[str, str]) -> float:
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=common.ROOT, env=env, check=True)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="smoke run: one start")
    args = parser.parse_args()
    if args.quick:
        args.runs = 1

    print(f"machine: {common.machine()}")
    with common.simulator(10, 0) as sim:
        env = common.server_env(sim.url, MCP_TRANSPORT="stdio")
        asyncio.run(_first_tools_list(env))  # warm the file cache and .pyc files, not counted
        asyncio.run(_first_tools_list(env, BARE))
        starts, floors = [], []
        for _ in range(args.runs):  # interleaved, so both see the same load
            starts.append(asyncio.run(_first_tools_list(env)))
            floors.append(asyncio.run(_first_tools_list(env, BARE)))
        bare = [_run("pass", env) for _ in range(args.runs)]
        imports = [_run("import main", env) for _ in range(args.runs)]
    initialized = common.median([s[0] for s in starts])
    listed = common.median([s[1] for s in starts])
    rows = [
        ["bare interpreter (python -c pass)", f"{common.median(bare):.2f}", ""],
        ["import main (server modules)", f"{common.median(imports):.2f}", ""],
        ["process start to initialize answered", f"{initialized:.2f}", ""],
        [
            f"process start to first tools/list ({starts[0][2]} tools)",
            f"{listed:.2f}",
            f"{min(s[1] for s in starts):.2f} .. {max(s[1] for s in starts):.2f}",
        ],
        [
            "bare FastMCP server, one tool: process start to first tools/list",
            f"{common.median([f[1] for f in floors]):.2f}",
            f"{min(f[1] for f in floors):.2f} .. {max(f[1] for f in floors):.2f}",
        ],
    ]
    ratio = listed / common.median([f[1] for f in floors])
    print(f"stdio; median of {args.runs} starts (after one unmeasured start)")
    print(common.table(["measure", "median s", "range s"], rows))
    print(f"load average after: {common.load_average()}")
    print(f"target: first tools/list over stdio < {TARGET_S:g} s: {listed:.2f} s "
          f"({'met' if listed < TARGET_S else 'MISSED'})")  # fmt: skip
    print(f"target: within {TARGET_RATIO:g}x of the bare FastMCP server in the same run: {ratio:.2f}x "
          f"({'met' if ratio <= TARGET_RATIO else 'MISSED'})")  # fmt: skip


if __name__ == "__main__":
    main()
