"""What the selector tests share: list names through a selector, the names a filter over the records
expects, and the text of a 400 answer (checked to be a Flight Control Status)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from simulator.accounts import DEFAULT_ORG
from simulator.generator import DeviceRecord
from simulator.harness import SimulatorServer


def list_names(
    client: httpx.Client, sim: SimulatorServer, path: str = "/api/v1/devices", **params: Any
) -> list[str]:
    response = client.get(path, params=params, headers=sim.auth_headers())
    assert response.status_code == 200, response.text
    return [item["metadata"]["name"] for item in response.json()["items"]]


def expected(sim: SimulatorServer, keep: Callable[[DeviceRecord], bool]) -> list[str]:
    return [r.name for r in sim.state.org(DEFAULT_ORG).devices if keep(r)]


def error(client: httpx.Client, sim: SimulatorServer, path: str = "/api/v1/devices", **params: Any) -> str:
    response = client.get(path, params=params, headers=sim.auth_headers())
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == 400
    assert body["kind"] == "Status"
    assert body["reason"] == "Bad Request"
    assert body["status"] == "Failure"
    message: str = body["message"]
    return message
