"""flightctl-mcp at git commit 3fbced9 (synchronous) on a kernel-picked loopback port, for comparison.

Not part of this project: ``bench/concurrency.py --compare-legacy DIR`` runs this file with the Python of
a virtual environment that has that version's dependencies (``mcp<2``, requests, pyyaml, uvicorn), and
``DIR`` holding its ``main.py`` and ``resource_queries.py``. It imports that ``main`` module, serves its
FastMCP app's streamable-http transport with uvicorn on 127.0.0.1:0 and prints
``http://127.0.0.1:<port>/mcp`` once listening. It reads API_BASE_URL, OIDC_TOKEN_URL and REFRESH_TOKEN
from the environment (HOME points at an empty directory, so no client.yaml is read).
"""

from __future__ import annotations

import asyncio
import importlib
import socket
import sys
from typing import Any


async def _serve(directory: str) -> None:
    import uvicorn

    sys.path.insert(0, directory)
    legacy: Any = importlib.import_module("main")
    # Plain JSON answers instead of SSE events: its answers (whole devices, indented, sent twice, as text
    # and as structured content) exceed the MCP client's 1 MiB limit on one SSE event.
    legacy.mcp.settings.json_response = True
    app = legacy.mcp.streamable_http_app()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn offers no event
        await asyncio.sleep(0.005)
    print(f"http://127.0.0.1:{sock.getsockname()[1]}/mcp", flush=True)
    await task


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1]))
