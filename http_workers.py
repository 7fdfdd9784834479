"""Several server processes on one port (``MCP_WORKERS``), for a machine with cores to spare.

One process runs Python on one core at a time, so one server tops out at what one core can encode and
parse. With ``MCP_WORKERS=N`` this parent process binds the listening socket once and starts N worker
processes (spawned: fresh interpreters that share only the socket and the environment), each building
the whole HTTP app from the same configuration; the kernel hands each new connection to one of them.
Streamable-http runs stateless (config.py forces it), so any worker can answer any request. A worker
that dies is started again; SIGTERM or SIGINT stops them all, each finishing its requests first.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import multiprocessing
import os
import socket
import time
from collections.abc import Mapping
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING

import heap

if TYPE_CHECKING:
    from settings import Settings

__all__ = ["listen", "serve_workers"]

logger = logging.getLogger("flightctl_mcp.http")

_STOP_TIMEOUT = 30.0  # seconds a worker gets to finish its requests after SIGTERM
_RESTARTS_PER_MINUTE = 10  # more than this many worker deaths in a minute is a crash loop: give up


def serve_workers(settings: Settings, flags: Mapping[str, str], sock: socket.socket | None = None) -> int:
    """Run ``settings.http.workers`` workers on one socket (``sock``, else MCP_LISTEN_FD's, else one bound
    to MCP_HOST:MCP_PORT) until SIGTERM/SIGINT; the process exit code."""
    if sock is None:
        inherited = settings.listen_fd
        sock = (
            socket.socket(fileno=inherited) if inherited is not None else listen(settings.host, settings.port)
        )
    context = multiprocessing.get_context("spawn")

    def start() -> BaseProcess:
        process = context.Process(target=_worker, args=(dict(flags), sock), name="flightctl-mcp worker")
        process.start()
        return process

    workers = [start() for _ in range(settings.http.workers)]
    logger.info(
        "Serving streamable-http on %s:%s%s with %d worker processes (stateless)",
        settings.host,
        sock.getsockname()[1],
        settings.path,
        len(workers),
    )
    deaths: collections.deque[float] = collections.deque(maxlen=_RESTARTS_PER_MINUTE)
    try:
        while True:
            wait([w.sentinel for w in workers])  # a worker ended; SIGTERM/SIGINT raise KeyboardInterrupt
            for index, worker in enumerate(workers):
                if worker.is_alive():
                    continue
                deaths.append(time.monotonic())
                if len(deaths) == deaths.maxlen and deaths[-1] - deaths[0] < 60:
                    logger.error("Workers keep dying (last exit code %s); stopping", worker.exitcode)
                    return 1
                logger.warning(
                    "Worker %s ended with exit code %s; starting another", worker.pid, worker.exitcode
                )
                workers[index] = start()
    except KeyboardInterrupt:
        logger.info("Signal received: stopping %d workers", len(workers))
        return 0
    finally:
        _stop(workers)
        sock.close()


def listen(host: str, port: int) -> socket.socket:
    """The one listening socket; IPPROTO_TCP so asyncio turns Nagle off on accepted connections."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto or socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError:
        sock.close()  # a busy port is reported by the caller; the socket must not leak
        raise
    sock.set_inheritable(True)
    return sock


def _stop(workers: list[BaseProcess]) -> None:
    """SIGTERM each worker (a graceful uvicorn shutdown), then SIGKILL what is left after the timeout."""
    for worker in workers:
        if worker.is_alive():
            worker.terminate()
    deadline = time.monotonic() + _STOP_TIMEOUT
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
        if worker.is_alive():
            worker.kill()
            worker.join()


def _worker(flags: dict[str, str], sock: socket.socket) -> None:
    """One worker process: the configuration again, logging, the whole app, uvicorn on the shared socket."""
    import http_server
    import main
    from config import load_settings
    from logging_setup import configure_logging
    from services import Services

    settings = load_settings(flags, os.environ)  # the parent's environment, fastmcp quietened already
    configure_logging(settings)
    services = Services.from_settings(settings)
    app = http_server.build_http_app(settings, main.build_server(settings, services), services)
    server = http_server.GracefulServer(http_server.uvicorn_config(settings, app))
    heap.settle(heap.HTTP_PRELOAD)
    try:
        asyncio.run(server.serve(sockets=[sock]))
    except KeyboardInterrupt:
        pass
    finally:
        services.api.close()
