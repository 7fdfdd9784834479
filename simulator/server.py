"""Running the app under uvicorn: one place for the settings the CLI and the harness share."""

from __future__ import annotations

import socket
from pathlib import Path

import uvicorn

from simulator.outer_layer import SimulatorApp

__all__ = ["bind_socket", "make_server"]


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket (port 0 picks a free one), bound before uvicorn starts so the URL is known."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted sockets only when proto says TCP.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def make_server(
    app: SimulatorApp,
    *,
    tls_cert: str | Path | None = None,
    tls_key: str | Path | None = None,
    log_level: str = "warning",
) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        http="h11",
        ws="websockets-sansio",
        # Like the real server (gorilla): never ping, answer the client's pings.
        ws_ping_interval=None,
        ws_ping_timeout=None,
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
        timeout_graceful_shutdown=2,
        server_header=False,
        date_header=True,
    )
    return uvicorn.Server(config)
