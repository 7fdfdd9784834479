"""A bare FastMCP server with one tool: the floor set by the framework, which benchmarks compare against.

    python bench/_bare_fastmcp.py                    # stdio, tool ``ping`` (bench/startup.py)
    python bench/_bare_fastmcp.py http SECONDS FILE  # streamable-http on 127.0.0.1:0 (bench/concurrency.py)

Over HTTP its one tool is ``query_devices``: it waits ``SECONDS`` (the back end's latency) and answers the
text in ``FILE`` (an answer flightctl-mcp gave), and the process prints its URL once listening.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

# As quiet as flightctl-mcp makes fastmcp (cli._quiet_fastmcp): no banner, update check or log lines.
os.environ.update(
    FASTMCP_SHOW_SERVER_BANNER="false", FASTMCP_CHECK_FOR_UPDATES="off", FASTMCP_LOG_ENABLED="false"
)

from fastmcp import FastMCP  # after the environment it reads at import

mcp: FastMCP[None] = FastMCP("bare")


def _ping() -> str:
    """Answer pong."""
    return "pong"


async def _serve_http(latency: float, answer: str) -> None:
    import uvicorn

    from bench import _common  # found once __main__ has put the checkout on the path

    async def query_devices(limit: int | None = None) -> str:
        """Wait as the back end would, then answer what flightctl-mcp answered."""
        await asyncio.sleep(latency)
        return answer

    mcp.tool(query_devices)
    server = uvicorn.Server(uvicorn.Config(mcp.http_app(path="/mcp"), log_level="warning"))
    await _common.serve_on_loopback(server, "/mcp")


if __name__ == "__main__":
    if sys.argv[1:2] == ["http"]:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        with open(sys.argv[3], encoding="utf-8") as file:
            asyncio.run(_serve_http(float(sys.argv[2]), file.read()))
    else:
        mcp.tool(_ping, name="ping")
        mcp.run(transport="stdio", show_banner=False)
