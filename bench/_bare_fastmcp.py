"""A bare FastMCP server with one tool over stdio: the floor bench/startup.py compares start-up against."""

from __future__ import annotations

import os

# As quiet as flightctl-mcp makes fastmcp (cli._quiet_fastmcp): no banner, update check or log lines.
os.environ.update(
    FASTMCP_SHOW_SERVER_BANNER="false", FASTMCP_CHECK_FOR_UPDATES="off", FASTMCP_LOG_ENABLED="false"
)

from fastmcp import FastMCP  # after the environment it reads at import

mcp: FastMCP[None] = FastMCP("bare")


@mcp.tool
def ping() -> str:
    """Answer pong."""
    return "pong"


if __name__ == "__main__":
    mcp.run(transport="stdio", show_banner=False)
