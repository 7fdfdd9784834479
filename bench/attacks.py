"""Starvation attacks on the HTTP listener, replayed with the default limits (pass-through mode).

Three attacks, each against a fresh server process (bench/_serve_http.py, the full HTTP stack) and the
simulator with Flight Control's /auth/validate limit on (20 per hour per address):

- sessions: one caller sends N initialize requests (legacy protocol, stateful); how many sessions it
  got, the server's resident memory before and after, and whether another caller still gets one;
- connections: 50 silent and 50 trickling (one header byte a second) connections; /healthz latency
  while they hang, and the seconds until the server has closed all of them;
- tokens: 40 bogus tokens from one address; how many reached Flight Control's /auth/validate, and
  whether a caller with a token the identity provider signed is still served.

    .venv/bin/python bench/attacks.py            # N = 2000 sessions
    .venv/bin/python bench/attacks.py --quick    # smoke run: N = 40, header timeout 1 s
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import _common as common
from tests.http_harness import INITIALIZE, MCP_HEADERS


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextlib.contextmanager
def _stack(extra: dict[str, str]) -> Iterator[tuple[common.Process, common.Process, httpx.Client]]:
    command_extra = {"MCP_AUTH_MODE": "passthrough", **extra}
    limited = ["--auth-rate-limit", "20"]
    with (
        common.simulator(devices=20, latency_ms=0, extra=limited) as sim,
        httpx.Client(base_url=sim.url, timeout=30) as api,
    ):
        api.post("/_sim/faults", json={"action": "clear"}).raise_for_status()
        with common.mcp_http_server(sim.url, command_extra) as server:
            yield sim, server, api


def _signed_token(api: httpx.Client, user: str) -> str:
    response = api.post("/_sim/tokens", json={"user": user, "access_ttl": 3600})
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def sessions(count: int) -> list[list[object]]:
    with _stack({}) as (_, server, api):
        base, path = server.url.rsplit("/", 1)
        greedy = {"Authorization": f"Bearer {_signed_token(api, 'viewer')}", **MCP_HEADERS}
        with httpx.Client(base_url=base, timeout=30) as http:
            http.post("/" + path, json=INITIALIZE, headers=greedy)  # warm up
            before = _rss_mib(server.pid)
            statuses = [
                http.post("/" + path, json=INITIALIZE, headers=greedy).status_code for _ in range(count)
            ]
            after = _rss_mib(server.pid)
            other = {"Authorization": f"Bearer {_signed_token(api, 'operator')}", **MCP_HEADERS}
            neighbour = http.post("/" + path, json=INITIALIZE, headers=other).status_code
    return [
        [
            f"{count} initialize from one caller",
            f"{statuses.count(200) + 1} sessions, {statuses.count(429)} refused",
        ],
        ["server RSS before / after, MiB", f"{before:.0f} / {after:.0f}"],
        ["another caller's initialize", neighbour],
    ]


def _trickle(sockets: list[socket.socket], stop: threading.Event) -> None:
    while not stop.wait(1.0):
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.sendall(b"a")


def connections(header_timeout: str) -> list[list[object]]:
    with _stack({"MCP_HEADER_TIMEOUT": header_timeout}) as (_, server, _api):
        url = httpx.URL(server.url)
        address = (url.host, url.port or 80)
        silent = [socket.create_connection(address) for _ in range(50)]
        trickling = [socket.create_connection(address) for _ in range(50)]
        for sock in trickling:
            sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        began = time.monotonic()
        stop = threading.Event()
        feeder = threading.Thread(target=_trickle, args=(trickling, stop), daemon=True)
        feeder.start()
        latencies = []
        for _ in range(5):
            started = time.perf_counter()
            status = httpx.get(f"{url.scheme}://{url.host}:{url.port}/healthz", timeout=30).status_code
            latencies.append((time.perf_counter() - started) * 1000)
            assert status == 200
        open_sockets = silent + trickling
        for sock in open_sockets:
            sock.settimeout(120)
            with contextlib.suppress(OSError):
                while sock.recv(4096):
                    pass
        closed_after = time.monotonic() - began
        stop.set()
        for sock in open_sockets:
            sock.close()
    return [
        ["/healthz during 100 hanging connections, median ms", f"{common.median(latencies):.1f}"],
        [
            "all 100 closed by the server after, s",
            f"{closed_after:.1f} (MCP_HEADER_TIMEOUT={header_timeout})",
        ],
    ]


def tokens() -> list[list[object]]:
    with _stack({}) as (_sim, server, api):
        base = server.url.rsplit("/", 1)[0]
        common.clear_sim_requests(api)
        with httpx.Client(base_url=base, timeout=30) as http:
            answers = [
                http.get("/rest/v1/device-counts", headers={"Authorization": f"Bearer bogus-{i}"}).status_code
                for i in range(40)
            ]
            signed = {"Authorization": f"Bearer {_signed_token(api, 'operator')}"}
            legit = http.get("/rest/v1/device-counts", headers=signed).status_code
        checks = sum(1 for r in common.sim_requests(api) if r["path"] == "/api/v1/auth/validate")
    return [
        ["40 bogus tokens from one address", f"{answers.count(401)} x 401, {answers.count(429)} x 429"],
        ["of them checked at Flight Control's /auth/validate", checks],
        ["a signed token from the same address", legit],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes for a smoke run")
    parser.add_argument("--sessions", type=int, default=2000, help="initialize requests from one caller")
    args = parser.parse_args()
    count = 40 if args.quick else args.sessions
    print(f"machine: {common.machine()}")
    rows = [*sessions(count), *connections("1" if args.quick else "10"), *tokens()]
    print()
    print(common.table(["attack", "result"], rows))


if __name__ == "__main__":
    main()
