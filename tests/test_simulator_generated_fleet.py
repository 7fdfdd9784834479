"""The generated fleet as the API serves it: every status value, production-size devices, rollouts
in progress, and the same fleet from the same seed."""

from __future__ import annotations

import json
from typing import Any

import httpx

from simulator.accounts import DEFAULT_ORG
from simulator.harness import SimulatorServer
from tests.simulator_calls import get


def test_full_size_devices_are_the_same_fleet_at_production_size(make_simulator: Any) -> None:
    bodies = []
    for full in (False, True):
        sim = make_simulator(devices=200, tls=False, full_devices=full)
        with httpx.Client(base_url=sim.base_url, timeout=60) as client:
            bodies.append(client.get("/api/v1/devices", headers=sim.auth_headers()).json())
    small, full_size = bodies
    assert [d["metadata"] for d in small["items"]] == [d["metadata"] for d in full_size["items"]]
    assert small["summary"] == full_size["summary"]
    sizes = [len(json.dumps(d, separators=(",", ":"))) for d in full_size["items"]]
    assert 3500 < sum(sizes) / len(sizes) < 5000, "about 4 KB per device, as real ones with applications"
    assert sum(sizes) > 1.3 * len(json.dumps(small["items"], separators=(",", ":")))
    for device in full_size["items"]:
        spec, status = device["spec"], device["status"]
        assert spec["resources"]
        assert spec["updatePolicy"]["updateSchedule"]["at"]
        apps = [a["name"] for a in spec.get("applications", [])]
        assert apps == [a["name"] for a in status["applications"]]
        assert bool(apps) == (status["applicationsSummary"]["status"] != "NoApplications")


def test_fleet_rollout_state(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    fleets = get(simulator_client, simulator, "/api/v1/fleets").json()["items"]
    rolling = [f for f in fleets if "rollout" in f["status"]]
    assert rolling
    for fleet in rolling:
        condition = next(c for c in fleet["status"]["conditions"] if c["type"] == "RolloutInProgress")
        assert condition["status"] == "True"


def test_every_status_value_is_generated(simulator: SimulatorServer) -> None:
    from simulator.generator import (
        APP_STATUSES,
        LIFECYCLE_STATUSES,
        RESOURCE_STATUSES,
        SUMMARY_STATUSES,
        UPDATED_STATUSES,
    )

    records = list(simulator.state.org(DEFAULT_ORG).devices)
    assert {r.summary for r in records} >= set(SUMMARY_STATUSES)
    assert {r.apps for r in records} >= set(APP_STATUSES)
    assert {r.updated for r in records} >= set(UPDATED_STATUSES)
    assert {r.lifecycle for r in records} >= set(LIFECYCLE_STATUSES)
    for attribute in ("cpu", "memory", "disk"):
        assert {getattr(r, attribute) for r in records} <= set(RESOURCE_STATUSES)
    assert {r.cpu for r in records} | {r.memory for r in records} | {r.disk for r in records} == set(
        RESOURCE_STATUSES
    )
    assert {r.os_mode for r in records} == {"image", "package", None}
    rendered = [simulator.state.render(DEFAULT_ORG, "devices", r) for r in records]
    app_states = {a["status"] for d in rendered for a in d["status"]["applications"]}
    assert app_states == {
        "Preparing",
        "Starting",
        "Running",
        "Error",
        "Unknown",
        "Completed",
        "Stopped",
        "Stopping",
    }
    integrity = {d["status"]["integrity"]["status"] for d in rendered}
    assert integrity == {"Verified", "Failed", "Unknown", "Unsupported"}
    assert any(r.seen is None for r in records)


def test_same_seed_same_fleet() -> None:
    from simulator.state import SimulatorState

    one = SimulatorState(devices=30, seed=5, anchor=1_700_000_000)
    two = SimulatorState(devices=30, seed=5, anchor=1_700_000_000)
    other = SimulatorState(devices=30, seed=6, anchor=1_700_000_000)
    names = one.device_names()
    assert names == two.device_names()
    assert names != other.device_names()
    for name in names:
        first, second = one.find_device(DEFAULT_ORG, name), two.find_device(DEFAULT_ORG, name)
        assert first is not None
        assert second is not None
        if "lastSeen" not in json.dumps(first):
            first["status"]["conditions"] = second["status"]["conditions"] = []
            first["status"].get("integrity", {}).pop("lastVerified", None)
            second["status"].get("integrity", {}).pop("lastVerified", None)
        assert first["spec"] == second["spec"]
        assert first["metadata"] == second["metadata"]
        assert first["status"]["summary"] == second["status"]["summary"]
