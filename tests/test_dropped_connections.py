"""Connections the API (or a proxy) closes without answering: read requests are sent again, also mid-paging.

The simulator closes a real socket without a response (``faults.drop``), on a first page or only on
continued pages (``continued=True``), through the whole MCP server.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trustme

from flightctl_api import FlightControlAPI
from services import Services
from simulator.harness import SimulatorServer
from tests.query_support import call, client_for, error_of, names, page_all, services_for

Sim = tuple[SimulatorServer, trustme.CA]


@pytest.fixture
def sim(make_simulator: Callable[..., SimulatorServer], tls_ca: trustme.CA) -> Iterator[Sim]:
    """A private simulator (faults are its own); the API pools of the servers under test are closed
    before it stops."""
    yield make_simulator(devices=60), tls_ca
    for services in _built:
        services.api.close()
    _built.clear()


_built: list[Services] = []


def _services(sim: Sim, **overrides: Any) -> Services:
    services = services_for(*sim, **overrides)
    _built.append(services)
    return services


def _device_lists(sim: SimulatorServer) -> list[tuple[bool, object]]:
    """(continued page?, status) of each device list request the server sent, in order."""
    return [
        ("continue=" in str(r["query"]), r["status"])
        for r in sim.state.requests()
        if r["path"] == "/api/v1/devices"
    ]


async def test_two_drops_of_a_first_page_and_of_a_continued_page_are_ridden_out(sim: Sim) -> None:
    async with client_for(_services(sim)) as client:
        undisturbed, calls = await page_all(client, "query_devices", {"limit": 25})
        assert calls >= 2, "the walk reads continued pages"
        sim[0].state.clear_requests()
        sim[0].faults.drop(2, path_prefix="/api/v1/devices", continued=False)
        sim[0].faults.drop(2, path_prefix="/api/v1/devices", continued=True)
        walked, _ = await page_all(client, "query_devices", {"limit": 25})
    assert names(walked) == names(undisturbed)
    sent = _device_lists(sim[0])
    assert sent[:3] == [(False, "dropped"), (False, "dropped"), (False, 200)]
    assert sent[3:6] == [(True, "dropped"), (True, "dropped"), (True, 200)]
    assert sim[0].faults.pending() == []


async def test_a_single_object_read_rides_out_a_dropped_connection(sim: Sim) -> None:
    name = sim[0].state.device_names()[0]
    sim[0].faults.drop(2, path_prefix=f"/api/v1/devices/{name}")
    async with client_for(_services(sim)) as client:
        answer = await call(client, "query_devices", {"name": name})
    assert name in str(answer)


async def test_a_third_drop_in_a_row_is_a_clear_connection_error(sim: Sim) -> None:
    async with client_for(_services(sim)) as client:
        first = await call(client, "query_devices", {"limit": 25})
        sim[0].faults.drop(3, path_prefix="/api/v1/devices", continued=True)
        message = await error_of(client, "query_devices", first["next"]["arguments"])
    assert "closed the connection without answering, 3 times in a row" in message
    assert "Remote end closed connection without response" in message
    assert "proxy or load balancer" in message
    assert [s for c, s in _device_lists(sim[0]) if c] == ["dropped"] * 3


async def test_no_second_send_past_the_request_timeout(sim: Sim) -> None:
    sim[0].faults.drop(3, path_prefix="/api/v1/fleets")
    base = _services(sim)  # request timeout 10 s; a backoff of 1000 s cannot fit in it
    services = dataclasses.replace(base, api=FlightControlAPI(base.settings, backoff=1000))
    _built.append(services)
    async with client_for(services) as client:
        message = await error_of(client, "query_fleets", {})
    assert "closed the connection without answering, 1 time, with no time left" in message
    assert "10 s request timeout" in message
    assert [r["status"] for r in sim[0].state.requests() if r["path"] == "/api/v1/fleets"] == ["dropped"]
