"""Several organizations: the error when none is chosen, and the per-call ``organization`` argument.

The simulator's "multi" user belongs to Default and Lab (the Flight Control rule: a user in several
organizations who names none gets 400). Calls go through a real MCP client and over HTTPS to the simulator;
the simulator's request log says which organization each call reached.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from errors import APIError, user_error
from organizations import run_in_organization, several_organizations_error
from simulator.harness import SimulatorServer
from simulator.state import DEFAULT_ORG, LAB_ORG
from tests.query_support import call, client_for, error_of, https_simulator, services_for

ORG_FREE_PATHS = ("/api/v1/organizations", "/api/v1/auth/")
TOOLS_AND_ARGUMENTS: list[tuple[str, dict[str, Any]]] = [
    ("query_devices", {"limit": 2}),
    ("count_devices", {}),
    ("list_device_labels", {}),
    ("query_fleets", {"limit": 2}),
]


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SimulatorServer, trustme.CA]]:
    with https_simulator(tmp_path_factory.mktemp("orgs"), devices=6, lab_devices=3) as running:
        yield running


def orgs_reached(sim: SimulatorServer, path_prefix: str = "/api/v1/devices") -> list[str | None]:
    return [r["org"] for r in sim.state.requests() if r["path"].startswith(path_prefix)]


async def test_user_in_two_organizations_with_none_chosen_is_told_both_and_how_to_choose(
    sim: tuple[SimulatorServer, trustme.CA],
) -> None:
    server, ca = sim
    async with client_for(services_for(server, ca, user="multi")) as client:
        message = await error_of(client, "query_devices", {"limit": 1})
    assert DEFAULT_ORG in message
    assert "Default" in message
    assert LAB_ORG in message
    assert "Lab" in message
    assert "ORG_ID" in message
    assert "flightctl config set-organization" in message
    assert "pass organization" in message
    assert "Fix the argument" not in message
    assert "Selector grammar" not in message


@pytest.mark.parametrize("chosen", ["Lab", "lab", LAB_ORG])
async def test_organization_argument_sends_each_call_to_that_organization(
    sim: tuple[SimulatorServer, trustme.CA], chosen: str
) -> None:
    server, ca = sim
    async with client_for(services_for(server, ca, user="multi")) as client:
        for tool, arguments in TOOLS_AND_ARGUMENTS:
            server.state.clear_requests()
            await call(client, tool, {**arguments, "organization": chosen})
            reached = [
                r["org"]
                for r in server.state.requests()
                if not r["path"].startswith(ORG_FREE_PATHS)  # Flight Control reads no org_id on these
            ]
            assert reached, tool
            assert set(reached) == {LAB_ORG}, tool
        answer = await call(client, "query_devices", {"organization": chosen, "limit": 50})
    assert answer["data"]
    assert all(item["metadata"]["name"].startswith("lab") for item in answer["data"])


async def test_organization_argument_overrides_the_configured_one(
    sim: tuple[SimulatorServer, trustme.CA],
) -> None:
    server, ca = sim
    services = services_for(server, ca, user="multi", organization=DEFAULT_ORG)
    async with client_for(services) as client:
        server.state.clear_requests()
        await call(client, "count_devices", {})
        assert orgs_reached(server) == [DEFAULT_ORG]
        server.state.clear_requests()
        await call(client, "count_devices", {"organization": "Lab"})
        assert orgs_reached(server) == [LAB_ORG]


async def test_organization_the_user_does_not_belong_to(sim: tuple[SimulatorServer, trustme.CA]) -> None:
    server, ca = sim
    async with client_for(services_for(server, ca, user="viewer")) as client:
        by_name = await error_of(client, "query_devices", {"organization": "Lab"})
        by_id = await error_of(client, "query_devices", {"organization": LAB_ORG})
    assert "no organization called 'Lab'" in by_name
    assert f"{DEFAULT_ORG} (Default)" in by_name
    assert "403" in by_id  # Flight Control itself refuses an organization the caller is not in
    assert "access denied to organization" in by_id


async def test_rest_and_command_line_readers_get_no_tool_advice(
    sim: tuple[SimulatorServer, trustme.CA],
) -> None:
    server, ca = sim
    services = services_for(server, ca, user="multi")
    with pytest.raises(APIError) as caught:
        await run_in_organization(services.api, services.tokens, None, lambda t: services.api.summary(t))
    for audience in ("rest", "cli"):
        message = user_error(caught.value, audience).message
        assert LAB_ORG in message
        assert "ORG_ID" in message
        assert "tool" not in message
        assert "pass organization" not in message


async def test_pass_through_callers_are_told_about_their_header(
    sim: tuple[SimulatorServer, trustme.CA],
) -> None:
    from auth import PassThroughTokenSource

    server, ca = sim
    services = services_for(server, ca, user="multi")
    token = server.issue_access_token("multi", ttl=600)
    error = await several_organizations_error(services.api, PassThroughTokenSource(token))
    assert "Flightctl-Org-Id" in str(error)
    assert "ORG_ID" not in str(error)
    assert LAB_ORG in str(error)


def test_check_lists_the_organizations(
    sim: tuple[SimulatorServer, trustme.CA],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import cli
    from config import OPTIONS

    server, ca = sim
    for option in OPTIONS:
        monkeypatch.delenv(option.env, raising=False)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("API_BASE_URL", server.base_url)
    monkeypatch.setenv("CA_CERT_PATH", str(ca_file))
    monkeypatch.setenv("ACCESS_TOKEN", server.issue_access_token("multi", ttl=600))
    assert cli.main(["check"]) == 1
    out = capsys.readouterr().out
    assert f"{LAB_ORG} (Lab)" in out
    assert "ORG_ID" in out
    assert "tool" not in out.split("result:")[0].split("FAIL", 1)[1]
