"""List semantics over real sockets: limits, continue tokens, pagination walks, ordering."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from simulator.accounts import DEFAULT_ORG
from simulator.harness import SimulatorServer
from simulator.kinds import KINDS as SIM_KINDS
from simulator.resources import encode_continue
from tests.simulator_calls import collection, get

KINDS = tuple(SIM_KINDS)  # every kind the simulator serves: a new row is tested without a change here


def walk(
    client: httpx.Client, sim: SimulatorServer, path: str, limit: int, **params: Any
) -> list[dict[str, Any]]:
    """Every item of a list, page by page, checking the metadata of each page."""
    items: list[dict[str, Any]] = []
    token: str | None = None
    first = True
    while True:
        query = dict(params, limit=limit)
        if token is not None:
            query["continue"] = token
        response = get(client, sim, path, **query)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= limit
        items.extend(body["items"])
        metadata = body["metadata"]
        if "continue" not in metadata:
            assert metadata == {}
            return items
        assert len(body["items"]) == limit
        decoded = json.loads(base64.b64decode(metadata["continue"]))
        assert decoded["Version"] == 1
        assert decoded["Count"] == metadata["remainingItemCount"]
        if first:
            first = False
        token = metadata["continue"]


@pytest.mark.parametrize("plural", KINDS)
@pytest.mark.parametrize("limit", [1, 7, 1000])
def test_pagination_returns_every_item_once(
    simulator_client: httpx.Client, simulator: SimulatorServer, plural: str, limit: int
) -> None:
    path, records = collection(simulator, plural)
    items = walk(simulator_client, simulator, path, limit)
    names = [item["metadata"]["name"] for item in items]
    assert len(names) == len(set(names))
    assert sorted(names) == sorted(r.name for r in records)


def test_pagination_with_selector(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    selector = "status.summary.status!=Online"
    want = [r.name for r in simulator.state.org(DEFAULT_ORG).devices if r.summary != "Online"]
    items = walk(simulator_client, simulator, "/api/v1/devices", 3, fieldSelector=selector)
    assert [i["metadata"]["name"] for i in items] == want


def test_remaining_item_count(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    total = len(simulator.state.org(DEFAULT_ORG).devices)
    first = get(simulator_client, simulator, "/api/v1/devices", limit=10).json()
    assert first["metadata"]["remainingItemCount"] == total - 10
    second = get(
        simulator_client,
        simulator,
        "/api/v1/devices",
        limit=10,
        **{"continue": first["metadata"]["continue"]},
    ).json()
    assert second["metadata"]["remainingItemCount"] == total - 20
    names = [r.name for r in simulator.state.org(DEFAULT_ORG).devices]
    token = json.loads(base64.b64decode(first["metadata"]["continue"]))
    assert token == {"Version": 1, "Names": [names[10]], "Count": total - 10}


def test_remaining_item_count_with_selector(
    simulator_client: httpx.Client, simulator: SimulatorServer
) -> None:
    matching = [r for r in simulator.state.org(DEFAULT_ORG).devices if r.owner]
    body = get(simulator_client, simulator, "/api/v1/devices", limit=5, fieldSelector="metadata.owner").json()
    assert body["metadata"]["remainingItemCount"] == len(matching) - 5


def test_limit_zero_or_absent_means_1000(make_simulator: Any) -> None:
    sim = make_simulator(devices=1005, tls=False)
    with httpx.Client(base_url=sim.base_url, timeout=60) as client:
        for params in ({}, {"limit": 0}):
            body = client.get("/api/v1/devices", params=params, headers=sim.auth_headers()).json()
            assert len(body["items"]) == 1000
            assert body["metadata"]["remainingItemCount"] == 5
            assert body["summary"]["total"] == 1000


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        ("1001", 'API Error: parameter "limit" in query has an error: number must be at most 1000'),
        ("2000", 'API Error: parameter "limit" in query has an error: number must be at most 1000'),
        ("-1", 'API Error: parameter "limit" in query has an error: number must be at least 0'),
        (
            "abc",
            'API Error: parameter "limit" in query has an error: '
            "value abc: an invalid integer: invalid syntax",
        ),
    ],
)
def test_limit_errors(
    simulator_client: httpx.Client, simulator: SimulatorServer, limit: str, message: str
) -> None:
    for plural in KINDS:
        response = get(simulator_client, simulator, collection(simulator, plural)[0], limit=limit)
        assert response.status_code == 400
        assert response.json()["message"] == message


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("abc!", "failed to parse continue parameter: illegal base64 data at input byte 3"),
        ("abcde", "failed to parse continue parameter: illegal base64 data at input byte 4"),
        (
            base64.b64encode(b'{"Version":2,"Names":["c"],"Count":3}').decode(),
            "failed to parse continue parameter: continue string version 2 must be 1",
        ),
        (
            base64.b64encode(b"xyz").decode(),
            "failed to parse continue parameter: invalid character 'x' looking for beginning of value",
        ),
    ],
)
def test_bad_continue_tokens(
    simulator_client: httpx.Client, simulator: SimulatorServer, token: str, message: str
) -> None:
    response = get(simulator_client, simulator, "/api/v1/devices", **{"continue": token})
    assert response.status_code == 400
    assert response.json()["message"] == message


def test_continue_token_format_is_the_real_one(
    simulator_client: httpx.Client, simulator: SimulatorServer
) -> None:
    assert encode_continue(["c"], 3) == "eyJWZXJzaW9uIjoxLCJOYW1lcyI6WyJjIl0sIkNvdW50IjozfQ=="
    # Go decodes JSON keys case-insensitively.
    lower = base64.b64encode(b'{"version":1,"names":["0"],"count":9}').decode()
    assert get(simulator_client, simulator, "/api/v1/devices", **{"continue": lower}).status_code == 200


def test_names_ascending(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    for plural in (p for p, spec in SIM_KINDS.items() if not spec.by_time):
        names = [
            i["metadata"]["name"]
            for i in get(simulator_client, simulator, collection(simulator, plural)[0]).json()["items"]
        ]
        assert names == sorted(names), plural


def test_events_newest_first_and_order_asc(
    simulator_client: httpx.Client, simulator: SimulatorServer
) -> None:
    def key(event: dict[str, Any]) -> tuple[str, str]:
        return (event["metadata"]["creationTimestamp"], event["metadata"]["name"])

    newest = walk(simulator_client, simulator, "/api/v1/events", 9)
    oldest = walk(simulator_client, simulator, "/api/v1/events", 9, order="asc")
    times = [
        simulator.state.org(DEFAULT_ORG).collections["events"].get(e["metadata"]["name"]).created  # type: ignore[union-attr]
        for e in newest
    ]
    assert times == sorted(times, reverse=True)
    assert [key(e) for e in oldest] == [key(e) for e in reversed(newest)]
    token = get(simulator_client, simulator, "/api/v1/events", limit=1).json()["metadata"]["continue"]
    names = json.loads(base64.b64decode(token))["Names"]
    assert len(names) == 2
    assert names[0].endswith("Z")


def test_order_must_be_asc_or_desc(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    response = get(simulator_client, simulator, "/api/v1/events", order="up")
    assert response.status_code == 400
    assert response.json()["message"] == (
        'API Error: parameter "order" in query has an error: '
        'value is not one of the allowed values ["asc","desc"]'
    )
