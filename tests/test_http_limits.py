"""Nobody can starve the HTTP listener: slow and silent connections, too many connections, too many
sessions. Replayed over real loopback sockets with small limits; what is asserted is that the server
closes the attacker's connections, keeps answering /healthz and keeps serving a legitimate caller."""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
from collections.abc import Iterator

import httpx
import pytest
from fastmcp import Client

from tests.http_harness import (
    INITIALIZE,
    MCP_HEADERS,
    ServedApp,
    Simulated,
    bearer,
    main_process,
    serve_in_thread,
    settings_from,
    simulated,
)


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulated]:
    with simulated(tmp_path_factory.mktemp("limits")) as running:
        yield running


def _address(app: ServedApp) -> tuple[str, int]:
    url = httpx.URL(app.url)
    assert url.port is not None
    return url.host, url.port


def _closed_by_server(sock: socket.socket, trickle: bytes = b"") -> bool:
    """Wait until the server closes ``sock`` (sending one more header byte each round when trickling);
    False if it was still open after 60 rounds of 0.5 s (a generous bound, not a timing assertion)."""
    for _ in range(60):
        readable, _, _ = select.select([sock], [], [], 0.5)
        if readable:
            try:
                if not sock.recv(4096):
                    return True
            except OSError:
                return True
        elif trickle:
            try:
                sock.sendall(trickle)
            except OSError:
                return True
    return False


@contextlib.contextmanager
def connections(app: ServedApp, count: int, first_bytes: bytes) -> Iterator[list[socket.socket]]:
    opened = []
    try:
        for _ in range(count):
            sock = socket.create_connection(_address(app), timeout=30)
            if first_bytes:
                sock.sendall(first_bytes)
            opened.append(sock)
        yield opened
    finally:
        for sock in opened:
            sock.close()


async def test_slow_and_silent_connections_are_closed_and_others_served(sim: Simulated) -> None:
    environ = sim.environ(MCP_HEADER_TIMEOUT="1", MCP_MAX_CONNECTIONS="40")
    token = sim.token("viewer")
    partial = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
    with (
        serve_in_thread(settings_from(environ)) as app,
        connections(app, 50, b"") as silent,
        connections(app, 50, partial) as trickling,
    ):
        async with httpx.AsyncClient(base_url=app.url, timeout=30) as http:
            health = await http.get("/healthz")
        async with Client(app.mcp_url, auth=token, timeout=60) as client:
            result = await client.call_tool("query_devices", {"limit": 5})
        closed_silent = sum([await asyncio.to_thread(_closed_by_server, sock) for sock in silent])
        closed_trickling = sum([await asyncio.to_thread(_closed_by_server, sock, b"a") for sock in trickling])
        async with httpx.AsyncClient(base_url=app.url, timeout=30) as http:
            after = await http.get("/healthz")
    assert health.status_code == 200, "/healthz answers while 100 connections hang"
    assert not result.is_error, "a legitimate caller is served meanwhile"
    assert closed_silent == 50
    assert closed_trickling == 50, "sending a byte now and then does not extend the header deadline"
    assert after.status_code == 200


def test_a_low_open_file_limit_does_not_let_half_open_sockets_stop_health_probes(sim: Simulated) -> None:
    """The case that restarted pods: 150 silent connections against 128 open files, default settings."""
    environ = sim.environ(ACCESS_TOKEN=sim.token("admin"))
    with main_process(environ, open_files=128) as (_, url):
        host, port = httpx.URL(url).host, httpx.URL(url).port
        assert port is not None
        silent = [socket.create_connection((host, port), timeout=30) for _ in range(150)]
        try:
            health = httpx.get(url + "/healthz", timeout=30)
            ready = httpx.get(url + "/readyz", timeout=30)
        finally:
            for sock in silent:
                sock.close()
    assert health.status_code == 200
    assert ready.status_code == 200


def test_at_the_connection_cap_only_health_probes_are_answered(sim: Simulated) -> None:
    environ = sim.environ(MCP_MAX_CONNECTIONS="8", MCP_HEADER_TIMEOUT="30")
    token = sim.token("viewer")
    # Requests whose bodies never arrive: busy connections, which the cap does not evict.
    stalled = (
        f"POST /rest/v1/device-counts HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
    ).encode()
    with (
        serve_in_thread(settings_from(environ)) as app,
        connections(app, 8, stalled),
        httpx.Client(base_url=app.url, timeout=30) as http,
    ):
        health = http.get("/healthz", headers={"Connection": "close"})
        work = http.get("/rest/v1/device-counts", headers={**bearer(token), "Connection": "close"})
    assert health.status_code == 200
    assert work.status_code == 503
    assert work.headers["retry-after"] == "1"
    assert "connection limit" in work.json()["error"]


def _open_session(http: httpx.Client, path: str, token: str) -> httpx.Response:
    return http.post(path, json=INITIALIZE, headers={**MCP_HEADERS, **bearer(token)})


def test_one_caller_cannot_fill_the_session_table(sim: Simulated) -> None:
    environ = sim.environ(MCP_MAX_SESSIONS_PER_CALLER="3")
    greedy, other = sim.token("viewer"), sim.token("operator")
    with serve_in_thread(settings_from(environ)) as app, httpx.Client(base_url=app.url, timeout=30) as http:
        opened = [_open_session(http, app.settings.path, greedy) for _ in range(3)]
        refused = [_open_session(http, app.settings.path, greedy) for _ in range(20)]
        neighbour = _open_session(http, app.settings.path, other)
        session = opened[0].headers["mcp-session-id"]
        ended = http.delete(app.settings.path, headers={**bearer(greedy), "mcp-session-id": session})
        again = _open_session(http, app.settings.path, greedy)
    assert [r.status_code for r in opened] == [200] * 3
    assert {r.status_code for r in refused} == {429}, "the session count stays bounded at 3"
    assert "3 open MCP sessions" in refused[0].json()["error"]["message"]
    assert neighbour.status_code == 200, "another caller still gets a session"
    assert ended.status_code == 200
    assert again.status_code == 200, "a closed session stops counting"
