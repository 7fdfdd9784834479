"""The tools beyond query_<kind>, against the simulator over HTTPS through an MCP client: template
versions (paged within one fleet, cursors bound to it), CSRs, the rollout view, devices not seen,
organizations, permissions, server info, and tools hidden by the caller's permissions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trustme

from config import CommandSettings
from services import Services
from simulator.harness import SimulatorServer
from simulator.state import DEFAULT_ORG, LAB_ORG
from tests.query_support import call, client_for, error_of, https_simulator, names, page_all
from tests.query_support import services_for as _services_for

Sim = tuple[SimulatorServer, trustme.CA]


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    with https_simulator(tmp_path_factory.mktemp("sim"), devices=200) as running:
        yield running


_OPENED: list[Services] = []


def services_for(sim: SimulatorServer, ca: trustme.CA, **options: Any) -> Services:
    """The shared helper's Services, remembered so their connection pools are closed after the test."""
    services = _services_for(sim, ca, **options)
    _OPENED.append(services)
    return services


@pytest.fixture(autouse=True)
def _close_pools() -> Iterator[None]:
    yield
    while _OPENED:
        _OPENED.pop().api.close()


def _fleets(sim: Sim) -> list[Any]:
    return list(sim[0].state.org(DEFAULT_ORG).collections["fleets"])


def _versions_of(sim: Sim, fleet: str) -> list[str]:
    records = sim[0].state.org(DEFAULT_ORG).collections["templateversions"]
    return [r.name for r in records if r.doc["spec"]["fleet"] == fleet]


async def test_template_versions_page_within_one_fleet_newest_first(sim: Sim) -> None:
    fleet = _fleets(sim)[0].name
    async with client_for(services_for(*sim)) as client:
        items, calls = await page_all(client, "query_template_versions", {"fleet": fleet, "limit": 2})
        one = await call(
            client, "query_template_versions", {"fleet": fleet, "name": items[-1]["metadata"]["name"]}
        )
    assert sorted(names(items)) == sorted(_versions_of(sim, fleet))
    assert calls == -(-len(items) // 2) >= 2
    created = [i["metadata"]["creationTimestamp"] for i in items]
    assert created == sorted(created, reverse=True)
    assert one["links"]["fleet"] == {"tool": "query_fleets", "arguments": {"name": fleet}}


async def test_a_template_version_cursor_is_refused_for_another_fleet(sim: Sim) -> None:
    first, second = (f.name for f in _fleets(sim)[:2])
    async with client_for(services_for(*sim)) as client:
        answer = await call(client, "query_template_versions", {"fleet": first, "limit": 1})
        cursor = answer["next"]["arguments"]["cursor"]
        assert answer["next"]["arguments"]["fleet"] == first
        message = await error_of(
            client, "query_template_versions", {"fleet": second, "limit": 1, "cursor": cursor}
        )
        same = await call(client, "query_template_versions", {"fleet": first, "limit": 1, "cursor": cursor})
    assert "different query" in message
    assert names(same["data"])[0] != names(answer["data"])[0]


async def test_template_versions_need_their_fleet(sim: Sim) -> None:
    async with client_for(services_for(*sim)) as client:
        message = await error_of(client, "query_template_versions", {"limit": 1})
        missing = await error_of(
            client,
            "query_template_versions",
            {"fleet": _fleets(sim)[1].name, "name": _versions_of(sim, _fleets(sim)[0].name)[0]},
        )
    assert "fleet" in message
    assert "404" in missing


async def test_pending_certificate_signing_requests(sim: Sim) -> None:
    records = list(sim[0].state.org(DEFAULT_ORG).collections["certificatesigningrequests"])
    unissued = sorted(r.name for r in records if not r.doc["status"].get("certificate"))
    async with client_for(services_for(*sim)) as client:
        items, _ = await page_all(
            client, "query_certificate_signing_requests", {"field_selector": "!status.certificate"}
        )
    assert sorted(names(items)) == unissued
    assert any(not i.get("status", {}).get("conditions") for i in items), "some are pending"
    assert all("signerName" in i["spec"] for i in items)


async def test_rollout_view_says_which_rollout_is_stuck(sim: Sim) -> None:
    verdicts: dict[str, str] = {}
    async with client_for(services_for(*sim)) as client:
        for fleet in _fleets(sim):
            view = await call(client, "get_fleet_rollout", {"fleet": fleet.name})
            verdicts[fleet.name] = view["verdict"]
            said = view["data"]
            annotations = fleet.doc["metadata"]["annotations"]
            assert said["templateVersion"] == annotations["fleet-controller/templateVersion"]
            assert said["devices"]["total"] == sum(
                1 for d in sim[0].state.org(DEFAULT_ORG).devices if d.owner == f"Fleet/{fleet.name}"
            )
            assert said["previousVersion"]["name"] != said["templateVersion"]
    stuck = [n for n, v in verdicts.items() if v.startswith("Stuck")]
    rolling = [n for n, v in verdicts.items() if v.startswith("Rolling out")]
    assert stuck
    assert rolling
    suspended = next(f for f in _fleets(sim) if f.name == stuck[0])
    condition = next(c for c in suspended.doc["status"]["conditions"] if c["type"] == "RolloutInProgress")
    assert condition["reason"] == "Suspended"
    assert "60% succeeded, threshold 90%" in verdicts[stuck[0]]


async def test_unseen_devices_match_the_simulators_last_contact(sim: Sim) -> None:
    state = sim[0].state
    cutoff = state.clock.now_micros() - 24 * 3600 * 1_000_000
    expected = sorted(
        r.name
        for r in state.org(DEFAULT_ORG).devices
        if r.summary != "Online" and ((seen := state.last_seen(r)) is None or seen < cutoff)
    )
    async with client_for(services_for(*sim)) as client:
        answer = await call(client, "find_unseen_devices", {"hours": 24, "max_devices": 2000})
        partial = await call(client, "find_unseen_devices", {"hours": 24, "max_devices": 5})
    assert answer["complete"] is True
    assert sorted(i["name"] for i in answer["data"]) == expected
    assert expected, "the generated fleet has devices not seen for a day"
    assert any(i["lastSeen"] == "never" for i in answer["data"])
    assert partial["complete"] is False
    assert partial["scanned"] == 5
    assert partial["candidates"] == answer["candidates"]
    assert "max_devices" in partial["note"]
    since = datetime.fromisoformat(answer["notSeenSince"].replace("Z", "+00:00"))
    assert abs(since - (datetime.now(UTC) - timedelta(hours=24))) < timedelta(minutes=5)


async def test_organizations_of_a_multi_org_user(sim: Sim) -> None:
    async with client_for(services_for(*sim, user="multi", organization=DEFAULT_ORG)) as client:
        answer = await call(client, "list_organizations")
    assert {o["id"]: o["displayName"] for o in answer["data"]} == {DEFAULT_ORG: "Default", LAB_ORG: "Lab"}
    assert answer["current"] == DEFAULT_ORG


async def test_permissions_say_which_tools_work(sim: Sim) -> None:
    async with client_for(services_for(*sim, user="viewer")) as client:
        answer = await call(client, "get_my_permissions")
        listed = {t.name for t in await client.list_tools()}
    assert "query_events" in answer["unusableTools"]
    assert "list events" in answer["unusableTools"]["query_events"]
    assert "query_devices" in answer["usableTools"]
    assert answer["data"]["permissions"]["events"] == []
    assert "query_events" not in listed, "a tool the caller cannot use is not offered"
    assert {"query_devices", "get_my_permissions"} <= listed


async def test_command_tool_needs_the_console_permission(sim: Sim) -> None:
    enabled = CommandSettings(enabled=True, confirm=True)
    async with client_for(services_for(*sim, user="viewer", commands=enabled)) as client:
        viewer = {t.name for t in await client.list_tools()}
    async with client_for(services_for(*sim, user="operator", commands=enabled)) as client:
        operator = {t.name for t in await client.list_tools()}
    scoped = sim[0].issue_access_token("operator", scopes=["devices:list", "devices:get"], ttl=600)
    from auth import StaticTokenSource
    from config import Secret

    narrow = StaticTokenSource(Secret(scoped))
    async with client_for(services_for(*sim, tokens=narrow, commands=enabled)) as client:
        without_console = {t.name for t in await client.list_tools()}
    assert "run_command_on_device" in operator
    assert "run_command_on_device" not in viewer
    assert "run_command_on_device" not in without_console
    assert "query_devices" in without_console


async def test_permissions_are_asked_once_per_caller_while_fresh(sim: Sim) -> None:
    services = services_for(*sim, user="operator")
    sim[0].state.clear_requests()
    async with client_for(services) as client:
        for _ in range(3):
            await client.list_tools()
    asked = [r for r in sim[0].state.requests() if r["path"] == "/api/v1/auth/permissions"]
    assert len(asked) == 1


_FIRST_TOOLS_LIST = """
import asyncio, json, sys
from fastmcp import Client
from auth import StaticTokenSource
from config import CommandSettings, Secret, Settings
from flightctl_api import FlightControlAPI
from main import build_server
from services import Services
from simulator.harness import SimulatorServer

with SimulatorServer(devices=5) as sim:
    settings = Settings(api_base_url=sim.base_url, commands=CommandSettings(enabled=True, confirm=True))
    tokens = StaticTokenSource(Secret(sim.issue_access_token("viewer", ttl=600)))
    services = Services(settings, FlightControlAPI(settings), tokens)

    async def first_list() -> list[str]:
        async with Client(build_server(settings, services)) as client:
            return [tool.name for tool in await client.list_tools()]

    listed = asyncio.run(first_list())
    services.api.close()
    print(json.dumps({"tools": listed, "generated_client_imported": "flightctl.api" in sys.modules}))
"""


def test_the_first_tools_list_filters_without_loading_the_generated_client() -> None:
    """A fresh server's first tools/list already hides what the caller may not use, and its permission
    lookup does not wait for flightctl-client's generated API classes to import (the slowest part of a
    start; bench/startup.py times it)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", _FIRST_TOOLS_LIST], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert "query_devices" in seen["tools"]
    assert "run_command_on_device" not in seen["tools"], "a viewer has no devices/console permission"
    assert seen["generated_client_imported"] is False


async def test_server_info(sim: Sim) -> None:
    async with client_for(services_for(*sim)) as client:
        info = await call(client, "get_server_info")
    assert info["data"]["flightctlVersion"] == sim[0].state.version
    assert info["data"]["enrollmentService"]["server"].startswith("https://")
    assert info["data"]["enrollmentService"]["certificateAuthority"].endswith("bytes of base64 PEM")
    async with client_for(services_for(*sim, user="viewer")) as client:
        limited = await call(client, "get_server_info")
    assert "403" in limited["data"]["enrollmentService"]["unavailable"]
    assert limited["data"]["flightctlVersion"] == sim[0].state.version
