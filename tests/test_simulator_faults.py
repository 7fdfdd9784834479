"""Faults on demand (latency, 429, 503, dropped connections, expired or revoked tokens) and the
request log, over real sockets."""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Iterator

import httpx
import pytest
import websockets
from websockets.typing import Subprotocol

from simulator.harness import SimulatorServer
from simulator.state import DEFAULT_ORG


@pytest.fixture
def sim(make_simulator: object) -> SimulatorServer:
    server: SimulatorServer = make_simulator(tls=False, devices=5)  # type: ignore[operator]
    return server


@pytest.fixture
def client(sim: SimulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.base_url, headers=sim.auth_headers(), timeout=10) as client:
        yield client


def test_latency(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.faults.set_latency(150)
    started = time.monotonic()
    assert client.get("/api/v1/version").status_code == 200
    assert time.monotonic() - started >= 0.15
    sim.faults.set_latency(0)
    client.get("/api/v1/version")
    assert sim.faults.most_waiting == 0, "with the latency cleared no request waits"


def test_latency_from_the_constructor(make_simulator: object) -> None:
    sim: SimulatorServer = make_simulator(tls=False, devices=1, latency_ms=120)  # type: ignore[operator]
    started = time.monotonic()
    httpx.get(f"{sim.base_url}/api/v1/version", headers=sim.auth_headers())
    assert time.monotonic() - started >= 0.12


def test_rate_limit_for_the_next_n_requests(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.faults.rate_limit(2, retry_after=7)
    for _ in range(2):
        response = client.get("/api/v1/devices")
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "7"
        assert response.json() == {
            "apiVersion": "",
            "code": 429,
            "kind": "",
            "message": "Rate limit exceeded, please try again later",
            "reason": "TooManyRequests",
            "status": "",
        }
    assert client.get("/api/v1/devices").status_code == 200


def test_unavailable(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.faults.unavailable(1)
    response = client.get("/api/v1/devices")
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == 503
    assert body["kind"] == "Status"
    assert body["reason"] == "Service Unavailable"
    assert client.get("/api/v1/devices").status_code == 200


def test_faults_only_for_a_path_prefix(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.faults.unavailable(1, path_prefix="/api/v1/events")
    assert client.get("/api/v1/devices").status_code == 200
    assert client.get("/api/v1/events").status_code == 503
    assert client.get("/api/v1/events").status_code == 200


def test_dropped_connection(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.faults.drop(1)
    with pytest.raises(httpx.RemoteProtocolError):
        client.get("/api/v1/devices")
    assert client.get("/api/v1/devices").status_code == 200
    assert sim.state.requests()[-2]["status"] == "dropped"


def test_dropping_only_continued_pages(sim: SimulatorServer, client: httpx.Client) -> None:
    assert client.post("/_sim/faults", json={"action": "drop", "continued": True}).status_code == 200
    first = client.get("/api/v1/devices", params={"limit": 2})
    assert first.status_code == 200, "a first page is not dropped"
    token = first.json()["metadata"]["continue"]
    with pytest.raises(httpx.RemoteProtocolError, match="without"):
        client.get("/api/v1/devices", params={"limit": 2, "continue": token})
    assert client.get("/api/v1/devices", params={"limit": 2, "continue": token}).status_code == 200
    sim.faults.drop(1, continued=False)
    with pytest.raises(httpx.RemoteProtocolError):
        client.get("/api/v1/devices", params={"limit": 2})
    assert sim.faults.pending() == []


def test_faults_over_http(sim: SimulatorServer, client: httpx.Client) -> None:
    assert (
        client.post("/_sim/faults", json={"action": "rate_limit", "count": 1, "retry_after": 2}).status_code
        == 200
    )
    assert client.post("/_sim/faults", json={"action": "unavailable", "count": 1}).status_code == 200
    assert client.get("/_sim/faults").json()["pending"][0]["status"] == 429
    assert client.get("/api/v1/version").status_code == 429
    assert client.get("/api/v1/version").status_code == 503
    assert client.get("/api/v1/version").status_code == 200
    assert client.post("/_sim/faults", json={"action": "drop"}).status_code == 200
    with pytest.raises(httpx.RemoteProtocolError):
        client.get("/api/v1/version")
    assert client.post("/_sim/faults", json={"action": "latency", "ms": 100}).json()["latency_ms"] == 100
    assert client.post("/_sim/faults", json={"action": "clear"}).json()["latency_ms"] == 0
    assert (
        client.post("/_sim/faults", json={"action": "status", "status": 500, "message": "boom"}).status_code
        == 200
    )
    broken = client.get("/api/v1/version")
    assert (broken.status_code, broken.json()["message"]) == (500, "boom")
    assert client.post("/_sim/faults", json={"action": "explode"}).status_code == 400


def test_expire_and_revoke_over_http(sim: SimulatorServer) -> None:
    with httpx.Client(base_url=sim.base_url) as client:
        for action in ("expire_token", "revoke_token"):
            token = sim.issue_access_token()
            headers = {"Authorization": f"Bearer {token}"}
            assert client.get("/api/v1/version", headers=headers).status_code == 200
            assert client.post("/_sim/faults", json={"action": action, "token": token}).status_code == 200
            answer = client.get("/api/v1/version", headers=headers)
            assert (answer.status_code, answer.json()["message"]) == (401, "failed to validate token")


def test_sim_paths_are_never_faulted(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.faults.unavailable(1)
    assert client.get("/_sim/requests").status_code == 200
    assert client.get("/api/v1/version").status_code == 503


def test_request_log(sim: SimulatorServer, client: httpx.Client) -> None:
    client.delete("/_sim/requests")
    client.get("/api/v1/devices", params={"limit": 2, "org_id": DEFAULT_ORG}, headers={"X-Request-Id": "abc"})
    httpx.get(f"{sim.base_url}/api/v1/auth/config")
    log = client.get("/_sim/requests").json()["requests"]
    assert [(e["method"], e["path"]) for e in log] == [
        ("GET", "/api/v1/devices"),
        ("GET", "/api/v1/auth/config"),
    ]
    first, second = log
    assert first["query"] == f"limit=2&org_id={DEFAULT_ORG}"
    assert first["authorization_present"] is True
    assert "authorization" not in first["headers"]
    assert first["headers"]["x-request-id"] == "abc"
    assert first["org"] == DEFAULT_ORG
    assert first["status"] == 200
    assert second["authorization_present"] is False
    assert second["org"] is None


PROTOCOL = Subprotocol("v5.channel.k8s.io")


async def test_faults_apply_to_the_console_websocket(sim: SimulatorServer) -> None:
    name = sim.state.pick_device(summary="Online", lifecycle="Enrolled")
    query = urllib.parse.urlencode({"metadata": json.dumps({"command": {"command": "echo", "args": ["hi"]}})})
    url = f"{sim.base_url.replace('http', 'ws', 1)}/ws/v1/devices/{name}/console?{query}"
    headers = {"Authorization": f"Bearer {sim.issue_access_token('operator')}"}
    sim.faults.rate_limit(1, retry_after=4)
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(url, additional_headers=headers, subprotocols=[PROTOCOL])
    assert refused.value.response.status_code == 429
    assert refused.value.response.headers["Retry-After"] == "4"
    sim.faults.drop(1)
    with pytest.raises(websockets.InvalidMessage):
        await websockets.connect(url, additional_headers=headers, subprotocols=[PROTOCOL])
    async with websockets.connect(url, additional_headers=headers, subprotocols=[PROTOCOL]) as ws:
        frames = [frame async for frame in ws]
    assert frames[0] == b"\x01hi\n"


def test_clock_control(sim: SimulatorServer, client: httpx.Client) -> None:
    before = client.get("/_sim/clock").json()["offset"]
    assert client.post("/_sim/clock", json={"advance": 30}).json()["offset"] == before + 30
    wrong = client.post("/_sim/clock", json={"advance_seconds": 30})
    assert wrong.status_code == 400
    assert "advance" in wrong.json()["error"]
