"""The MCP server's complete HTTP app on a kernel-picked loopback port, for the benchmarks.

The same stack as ``python main.py`` with ``MCP_TRANSPORT=streamable-http`` (settings from the
environment, logging_setup, every http_server layer), except that it binds 127.0.0.1:0 itself, since
MCP_PORT must be 1-65535, and prints ``http://127.0.0.1:<port><path>`` on stdout once listening.
With ``BENCH_PROFILE=<file>`` the event-loop thread runs under cProfile, written to that file at exit.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import _common  # noqa: E402 - after the path it is found on

os.environ.update(
    FASTMCP_SHOW_SERVER_BANNER="false", FASTMCP_CHECK_FOR_UPDATES="off", FASTMCP_LOG_ENABLED="false"
)


async def _serve() -> None:
    import http_server
    from config import load_settings
    from logging_setup import configure_logging
    from main import build_server
    from services import Services

    settings = load_settings({}, os.environ)
    configure_logging(settings)
    services = Services.from_settings(settings)
    app = http_server.build_http_app(settings, build_server(settings, services), services)
    server = http_server._Server(http_server.uvicorn_config(settings, app))
    if (ROOT / "heap.py").exists():  # a checkout compared against may predate it
        import heap

        heap.settle(heap.HTTP_PRELOAD)
    await _common.serve_on_loopback(server, settings.path)


def _serve_workers() -> None:
    """MCP_WORKERS=N: the same worker processes as ``python main.py --workers N``, on 127.0.0.1:0."""
    import signal

    import http_workers
    from config import load_settings
    from logging_setup import configure_logging

    settings = load_settings({}, os.environ)
    configure_logging(settings)
    sock = http_workers.listen("127.0.0.1", 0)
    print(f"http://127.0.0.1:{sock.getsockname()[1]}{settings.path}", flush=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    http_workers.serve_workers(settings, {}, sock)


def main() -> None:
    """Serve until SIGTERM; with BENCH_PROFILE=<file>, cProfile the event-loop thread into that file."""
    if int(os.environ.get("MCP_WORKERS", "1")) > 1:
        _serve_workers()
        return
    target = os.environ.get("BENCH_PROFILE")
    if not target:
        asyncio.run(_serve())
        return
    import cProfile

    profile = cProfile.Profile()
    profile.enable()
    try:
        asyncio.run(_serve())
    finally:
        profile.disable()
        profile.dump_stats(target)


if __name__ == "__main__":
    main()
