"""Every answer as small as its content, and device text kept under ``data`` (issues 18 and 14).

A generated fleet of 1,500 devices (its labels, aliases included, are more than Flight Control lists in
one labels request) over HTTPS, the server built in this process and called through a real MCP client.
Hostile objects (tests/fixtures/hostile.yaml) run on their own small simulator.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest
import trustme
from fastmcp import Client

from auth import StaticTokenSource
from config import HTTPSettings, Secret
from resource_queries import KINDS_BY_NAME
from simulator.harness import SimulatorServer
from simulator.state import DEFAULT_ORG, LAB_ORG
from tests import hostile
from tests.query_support import call, client_for, error_of, https_simulator, page_all, services_for

pytestmark = pytest.mark.slow
FLEET_SIZE = 1500
BUDGET_TOKENS = 10_000
LABELS_PER_REQUEST = 1000  # Flight Control's most label pairs per /labels answer (no continue token)

Sim = tuple[SimulatorServer, trustme.CA]


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    with https_simulator(tmp_path_factory.mktemp("small"), devices=FLEET_SIZE) as running:
        yield running


@pytest.fixture
async def client(sim: Sim) -> Any:
    async with client_for(services_for(*sim)) as connected:
        yield connected


@pytest.fixture(scope="module")
def labels_of_all(sim: Sim) -> list[dict[str, str]]:
    """Every device's labels, read through the tools (chosen fields, so nothing is left out)."""
    import asyncio

    async def collect() -> list[dict[str, str]]:
        async with client_for(services_for(*sim)) as connected:
            items, _ = await page_all(connected, "query_devices", {"fields": ["metadata.labels"]})
        return [item.get("metadata", {}).get("labels", {}) for item in items]

    return asyncio.run(collect())


async def _text(client: Client[Any], tool: str, arguments: dict[str, Any]) -> str:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    return str(result.content[0].text)  # type: ignore[union-attr]


# --- links ------------------------------------------------------------------------------------------------


async def test_a_list_carries_its_links_once_and_none_when_fields_are_chosen(client: Client[Any]) -> None:
    answer = await call(client, "query_devices", {"limit": 10})
    assert set(answer["links"]) == {"fleet", "events"}
    assert answer["links"]["events"]["arguments"]["field_selector"].endswith("={metadata.name}")
    assert all("links" not in item for item in answer["data"])
    chosen = await _text(client, "query_devices", {"limit": 10, "fields": ["status.summary"]})
    assert '"links"' not in chosen


# --- labels -----------------------------------------------------------------------------------------------


async def test_labels_of_one_key_cover_a_fleet_larger_than_one_labels_page(
    client: Client[Any], labels_of_all: list[dict[str, str]]
) -> None:
    pairs = {f"{k}={v}" for labels in labels_of_all for k, v in labels.items()}
    assert len(pairs) > LABELS_PER_REQUEST, "the fleet must hold more pairs than one /labels answer"
    sites = sorted({labels["site"] for labels in labels_of_all if "site" in labels})
    answer = await call(client, "list_device_labels", {"key": "site"})
    assert answer["data"] == {"site": sites}
    assert "note" not in answer, "one key's values fit one request: nothing to say"

    everything = await call(client, "list_device_labels")
    assert f"all {len(labels_of_all)} matching devices" in everything["note"]
    assert everything["keys"] == len({k for labels in labels_of_all for k in labels})
    assert everything["pairs"] == len(pairs)


async def test_values_over_the_budget_say_exactly_how_many_are_left_out(
    sim: Sim, labels_of_all: list[dict[str, str]]
) -> None:
    aliases = sorted({labels["alias"] for labels in labels_of_all if "alias" in labels})
    async with client_for(services_for(*sim, response_token_budget=2000)) as small:
        answer = await call(small, "list_device_labels", {"key": "alias"})
        size = len((await _text(small, "list_device_labels", {"key": "alias"})).encode())
    assert size <= 2000 * 4
    shown = answer["data"]["alias"]
    assert 0 < len(shown) < len(aliases)
    assert shown == aliases[: len(shown)]
    assert f"Showing {len(shown)} of {len(aliases)} values" in answer["note"]
    assert f"the other {len(aliases) - len(shown)} are not shown" in answer["note"]


# --- views, alias, notes ----------------------------------------------------------------------------------


async def test_the_device_view_names_only_paths_devices_have(client: Client[Any]) -> None:
    assert "metadata.alias" not in KINDS_BY_NAME["devices"].view
    answer = await call(client, "query_devices", {"limit": 5, "fields": ["metadata.alias"]})
    assert "metadata.alias" in answer["note"]
    assert "metadata.labels.alias" in answer["note"], "says where the alias really is"
    labels = await call(client, "query_devices", {"limit": 5, "fields": ["metadata.labels.alias"]})
    assert any(item["metadata"].get("labels", {}).get("alias") for item in labels["data"])
    assert "has metadata" not in labels["note"], "a path some item has gets no note"


async def test_a_fields_path_no_item_has_is_named(client: Client[Any]) -> None:
    answer = await call(client, "query_fleets", {"limit": 3, "fields": ["spec.nonsense", "metadata.labels"]})
    assert "spec.nonsense" in answer["note"]
    assert "metadata.labels" not in answer["note"]


async def test_an_alias_given_as_name_finds_the_device_and_says_so(
    client: Client[Any], labels_of_all: list[dict[str, str]]
) -> None:
    alias = next(labels["alias"] for labels in labels_of_all if "alias" in labels)
    answer = await call(client, "query_devices", {"name": alias})
    assert answer["data"]["metadata"]["labels"]["alias"] == alias
    assert answer["data"]["metadata"]["name"] != alias
    assert "alias" in answer["note"]
    assert "metadata.nameOrAlias" in answer["note"]


async def test_an_unknown_status_value_gets_the_known_values(client: Client[Any]) -> None:
    selector = "status.summary.status=Offline"
    counted = await call(client, "count_devices", {"field_selector": selector})
    listed = await call(client, "query_devices", {"field_selector": selector})
    assert counted["total"] == listed["total"] == 0
    for answer in (counted, listed):
        assert "'Offline'" in answer["note"]
        assert "Unknown" in answer["note"]
        assert "a device that stopped reporting is Unknown" in answer["note"]
    both = "status.summary.status in (Online,Unknown)"
    known = await call(client, "count_devices", {"field_selector": both})
    assert "note" not in known


# --- enrollment, fleets, events ---------------------------------------------------------------------------


async def test_the_pending_example_matches_only_requests_without_a_decision(client: Client[Any]) -> None:
    kind = KINDS_BY_NAME["enrollment_requests"]
    field = next(f for f in kind.fields if f.path == "status.approval.approved")
    everything, _ = await page_all(client, "query_enrollment_requests", {"fields": ["status.approval"]})
    denied = [r for r in everything if r.get("status", {}).get("approval", {}).get("approved") is False]
    undecided = sorted(r["metadata"]["name"] for r in everything if "approval" not in r.get("status", {}))
    assert denied, "the fleet must hold a denied request for this to mean anything"
    pending, _ = await page_all(client, "query_enrollment_requests", {"field_selector": field.example})
    assert sorted(r["metadata"]["name"] for r in pending) == undecided


async def test_a_fleet_shows_its_template_version_and_rollout(sim: Sim, client: Client[Any]) -> None:
    services = services_for(*sim)
    fleets, _ = await page_all(client, "query_fleets", {})
    fleet = next(f for f in fleets if f.get("status", {}).get("rollout"))
    raw = await services.api.get(KINDS_BY_NAME["fleets"], fleet["metadata"]["name"], services.tokens)
    services.api.close()
    version = raw["metadata"]["annotations"]["fleet-controller/templateVersion"]
    one = await call(client, "query_fleets", {"name": fleet["metadata"]["name"]})
    for item in (fleet, one["data"]):
        assert item["metadata"]["annotations"] == {"fleet-controller/templateVersion": version}
        assert item["status"]["rollout"] == raw["status"]["rollout"]


async def test_events_of_one_device_leave_out_what_the_selector_fixes(client: Client[Any]) -> None:
    device = (await call(client, "query_devices", {"limit": 1}))["data"][0]["metadata"]["name"]
    selector = f"involvedObject.kind=Device,involvedObject.name={device}"
    answer = await call(client, "query_events", {"field_selector": selector})
    assert answer["data"]
    for event in answer["data"]:
        assert "involvedObject" not in event
        assert device not in json.dumps(event), "the device is named once, in the selector"
    assert answer["links"]["involved_object"] == {"tool": "query_devices", "arguments": {"name": device}}
    chosen = await call(client, "query_events", {"field_selector": selector, "fields": ["involvedObject"]})
    assert all(e["involvedObject"] == {"kind": "Device", "name": device} for e in chosen["data"])


# --- limit and cursors ------------------------------------------------------------------------------------


async def test_without_limit_an_answer_holds_what_the_budget_holds(client: Client[Any]) -> None:
    answer = await call(client, "query_devices", {"fields": ["metadata.name"]})
    size = len((await _text(client, "query_devices", {"fields": ["metadata.name"]})).encode())
    assert answer["returned"] > 100, "many more than the old default of 40"
    assert size <= BUDGET_TOKENS * 4
    fleets = await call(client, "query_fleets", {})
    assert "next" not in fleets
    assert fleets["returned"] == fleets["total"] > 40


async def test_once_an_answer_measured_its_items_a_list_reads_about_what_it_shows(sim: Sim) -> None:
    """Devices read but never shown are parsed for nothing: after one answer, the next asks Flight Control
    for about as many devices as it can show, and walking on from it reads each device once."""
    async with client_for(services_for(*sim)) as fresh:
        await call(fresh, "query_devices", {})  # the first answer of a server guesses the item size
        sim[0].state.clear_requests()
        answer = await call(fresh, "query_devices", {})
        after = await call(fresh, "query_devices", answer["next"]["arguments"])
    pages = [r["query"] for r in sim[0].state.requests() if r["path"] == "/api/v1/devices"]
    assert len(pages) == 2, "one API page per answer"
    read = [int(parse_qs(page)["limit"][0]) for page in pages]
    shown = [answer["returned"], after["returned"]]
    assert all(r >= s for r, s in zip(read, shown, strict=True))
    assert sum(read) <= sum(shown) * 1.1, f"read {read} devices to show {shown}"


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("query_devices", {"limit": 3}),
        ("query_devices", {"limit": 3, "full": True, "label_selector": "region=eu-west-1"}),
        ("query_events", {"limit": 3}),
        ("query_events", {"limit": 3, "order": "asc"}),
        ("query_enrollment_requests", {"limit": 1}),
    ],
    ids=lambda v: v if isinstance(v, str) else ",".join(sorted(v)),
)
async def test_cursors_are_at_most_200_bytes_and_continue_exactly(
    client: Client[Any], tool: str, arguments: dict[str, Any]
) -> None:
    first = await call(client, tool, arguments)
    cursor = first["next"]["arguments"]["cursor"]
    assert len(cursor) <= 200, cursor
    second = await call(client, tool, first["next"]["arguments"])
    both = [item["metadata"]["name"] for item in first["data"] + second["data"]]
    straight = await call(client, tool, {**arguments, "limit": len(both)})
    assert both == [item["metadata"]["name"] for item in straight["data"]]


def _forged(cursor: str) -> str:
    raw = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    raw[-1] ^= 0xFF  # the signature
    return base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")


async def test_forged_and_other_organizations_cursors_are_refused(sim: Sim, client: Client[Any]) -> None:
    first = await call(client, "query_devices", {"limit": 2})
    cursor = first["next"]["arguments"]["cursor"]
    forged = await error_of(client, "query_devices", {"limit": 2, "cursor": _forged(cursor)})
    assert "not issued by this server" in forged
    assert "without a cursor" in forged

    other_key = dataclasses.replace(
        services_for(*sim).settings.http, cursor_key=Secret("another deployment's cursor key")
    )
    async with client_for(services_for(*sim, http=other_key)) as elsewhere:
        message = await error_of(elsewhere, "query_devices", {"limit": 2, "cursor": cursor})
    assert "not issued by this server" in message
    assert "MCP_CURSOR_KEY" in message

    token = StaticTokenSource(Secret(sim[0].issue_access_token("multi", ttl=3600)))
    async with (
        client_for(services_for(*sim, tokens=token, organization=DEFAULT_ORG)) as default_org,
        client_for(services_for(*sim, tokens=token, organization=LAB_ORG)) as lab_org,
    ):
        mine = (await call(default_org, "query_devices", {"limit": 2}))["next"]["arguments"]
        refused = await error_of(lab_org, "query_devices", mine)
        continued = await call(default_org, "query_devices", mine)
    assert "another caller or for another organization" in refused
    assert continued["data"]


def test_a_configured_cursor_key_is_never_shown() -> None:
    settings = HTTPSettings(cursor_key=Secret("s3cr3t-cursor-key"))
    assert "s3cr3t" not in repr(settings)


# --- device text stays under data -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    with https_simulator(
        tmp_path_factory.mktemp("hostile"), devices=4, load=[hostile.HOSTILE_FILE]
    ) as running:
        yield running


def _outside_data(answer: Any, path: str = "") -> list[str]:
    """Paths of strings holding the hostile mark anywhere except under the top-level ``data``."""
    if isinstance(answer, dict):
        return [
            found
            for key, value in answer.items()
            if not (path == "" and key == "data")
            for found in _outside_data(value, f"{path}.{key}")
        ] + [f"{path} key {key!r}" for key in answer if hostile.MARK in str(key)]
    if isinstance(answer, list):
        return [found for i, value in enumerate(answer) for found in _outside_data(value, f"{path}[{i}]")]
    return [path] if isinstance(answer, str) and hostile.MARK in answer else []


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("query_devices", {"name": hostile.DEVICE}),
        ("query_devices", {"name": hostile.DEVICE, "full": True}),
        ("query_devices", {"field_selector": f"metadata.name={hostile.DEVICE}"}),
        ("query_devices", {"full": True}),
        ("query_fleets", {"name": hostile.FLEET}),
        ("query_fleets", {}),
        ("query_events", {"limit": 1000}),
        ("query_enrollment_requests", {"full": True}),
        ("list_device_labels", {}),
        ("get_device_rendered_config", {"name": hostile.DEVICE}),
        ("count_devices", {}),
    ],
    ids=lambda v: v if isinstance(v, str) else ",".join(f"{k}={v[k]}" for k in sorted(v)),
)
async def test_hostile_device_text_reaches_the_assistant_only_under_data(
    hostile_sim: Sim, tool: str, arguments: dict[str, Any]
) -> None:
    async with client_for(services_for(*hostile_sim)) as hostile_client:
        text = await _text(hostile_client, tool, arguments)
    answer = json.loads(text)
    assert _outside_data(answer) == [], f"device text outside data in {tool}: {answer}"
    if tool == "count_devices":
        assert hostile.MARK not in text, "counts carry numbers and status names only"
    elif tool != "get_device_rendered_config":
        assert hostile.MARK in json.dumps(answer["data"]), "the hostile text is reported, as data"


# --- what the assistant reads about arguments and resources -----------------------------------------------


async def test_prompt_arguments_and_resources_say_what_they_are(
    client: Client[Any], labels_of_all: list[dict[str, str]]
) -> None:
    prompts = {p.name: p for p in await client.list_prompts()}
    described = {a.name: a.description for p in prompts.values() for a in p.arguments or []}
    assert described == {"device": "The device's name or alias.", "fleet": "The fleet's name."}
    tools = {t.name: t for t in await client.list_tools()}
    name = tools["get_device_rendered_config"].input_schema["properties"]["name"]
    assert "device name" in name["description"].lower()
    assert "alias" in name["description"]

    resources = {str(r.uri): r for r in await client.list_resources()}
    assert "flightctl://fleets" in resources
    (contents,) = await client.read_resource("flightctl://fleets")
    fleets = json.loads(contents.text)  # type: ignore[union-attr]
    assert fleets["kind"] == "Fleet"
    assert fleets["returned"] == fleets["total"] > 0

    alias = next(labels["alias"] for labels in labels_of_all if "alias" in labels)
    rendered = await call(client, "get_device_rendered_config", {"name": alias})
    assert rendered["name"] != alias
    assert "alias" in rendered["note"]
    assert rendered["data"]["spec"]
