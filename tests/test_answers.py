"""Issue 5 on a generated fleet of 5,000 devices: budget, cursors, counts, links, fields and full."""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import trustme
from fastmcp import Client

from answers import dumps
from main import resource_uri
from resource_queries import KINDS, KINDS_BY_NAME, ResourceKind
from simulator.harness import SimulatorServer
from tests.query_support import (
    call,
    client_for,
    error_of,
    https_simulator,
    names,
    page_all,
    scoped,
    services_for,
)

pytestmark = pytest.mark.slow
FLEET_SIZE = 5000
BUDGET_TOKENS = 10_000  # the default; every answer must fit in budget * 4 bytes
DEVICE = "<a device>"  # stands for a real device name in parametrizations (names come from the simulator)


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SimulatorServer, trustme.CA]]:
    with https_simulator(tmp_path_factory.mktemp("fleet"), devices=FLEET_SIZE) as running:
        yield running


@pytest.fixture
async def client(sim: tuple[SimulatorServer, trustme.CA]) -> Any:
    async with client_for(services_for(*sim, response_token_budget=BUDGET_TOKENS)) as connected:
        yield connected


@pytest.fixture(scope="module")
def all_devices(sim: tuple[SimulatorServer, trustme.CA]) -> list[dict[str, Any]]:
    """Every device, paged through query_devices' cursors once for the module."""
    import asyncio

    async def collect() -> list[dict[str, Any]]:
        async with client_for(services_for(*sim, response_token_budget=BUDGET_TOKENS)) as connected:
            items, _ = await page_all(connected, "query_devices", {"limit": 1000})
        return items

    return asyncio.run(collect())


async def _raw_size(client: Client[Any], tool: str, arguments: dict[str, Any]) -> int:
    result = await client.call_tool(tool, arguments)
    return len(result.content[0].text.encode())  # type: ignore[union-attr]


def test_cursor_paging_visits_every_device_exactly_once(
    sim: tuple[SimulatorServer, trustme.CA], all_devices: list[dict[str, Any]]
) -> None:
    seen = names(all_devices)
    assert len(seen) == FLEET_SIZE
    assert len(set(seen)) == FLEET_SIZE
    assert sorted(seen) == sorted(sim[0].state.device_names())


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        *((k.tool, {"limit": 1000}) for k in KINDS),
        ("query_devices", {"limit": 1000, "full": True}),
        ("query_devices", {"limit": 1000, "fields": ["status", "spec"]}),
        ("count_devices", {}),
        ("list_device_labels", {}),
        ("get_device_rendered_config", {"name": DEVICE}),
        ("query_devices", {"name": DEVICE, "full": True}),
    ],
    ids=lambda v: v if isinstance(v, str) else ",".join(f"{k}={v[k]}" for k in sorted(v)),
)
async def test_every_answer_fits_the_budget_and_says_how_to_continue(
    client: Client[Any], all_devices: list[dict[str, Any]], tool: str, arguments: dict[str, Any]
) -> None:
    if arguments.get("name") == DEVICE:
        arguments = {**arguments, "name": all_devices[0]["metadata"]["name"]}
    arguments = await scoped(client, tool, arguments)
    size = await _raw_size(client, tool, arguments)
    assert size <= BUDGET_TOKENS * 4, f"{tool} answered {size} bytes"
    answer = await call(client, tool, arguments)
    if isinstance(answer.get("data"), list) and answer["total"] > answer["returned"]:
        assert answer["next"]["arguments"]["cursor"]
        assert "next.arguments" in answer["note"]
        assert answer["more"] == answer["total"] - answer["returned"]


async def test_full_objects_page_completely_within_the_budget(client: Client[Any]) -> None:
    fleet = (await call(client, "query_fleets", {"limit": 1}))["data"][0]["metadata"]["name"]
    selector = f"metadata.owner=Fleet/{fleet}"
    expected = (await call(client, "count_devices", {"field_selector": selector}))["total"]
    args: dict[str, Any] | None = {"field_selector": selector, "full": True, "limit": 1000}
    seen: list[str] = []
    while args is not None:
        assert await _raw_size(client, "query_devices", args) <= BUDGET_TOKENS * 4
        answer = await call(client, "query_devices", args)
        seen += names(answer["data"])
        args = answer["next"]["arguments"] if "next" in answer else None
    assert len(seen) == len(set(seen)) == expected > 0


async def test_an_object_larger_than_the_budget_is_named_not_dropped(
    sim: tuple[SimulatorServer, trustme.CA],
) -> None:
    """A budget of 500 tokens cannot hold one whole device: each is listed as a stand-in that names it and
    says how to get parts of it, every answer stays within the budget, and the cursor still visits every
    device of the selection once."""
    budget = 500
    async with client_for(services_for(*sim, response_token_budget=budget)) as small:
        fleet = (await call(small, "query_fleets", {"limit": 1}))["data"][0]["metadata"]["name"]
        selector = f"metadata.owner=Fleet/{fleet}"
        expected = (await call(small, "count_devices", {"field_selector": selector}))["total"]
        args: dict[str, Any] | None = {"field_selector": selector, "full": True, "limit": 1000}
        seen: list[str] = []
        calls = 0
        while args is not None and calls < 2 * expected + 2:
            size = await _raw_size(small, "query_devices", args)
            assert size <= budget * 4, f"an answer of {size} bytes over a budget of {budget * 4}"
            answer = await call(small, "query_devices", args)
            calls += 1
            assert answer["data"], answer
            assert "query_devices(name=..., fields=[...])" in answer["note"], answer
            assert str(budget) in answer["note"], answer
            for item in answer["data"]:
                assert set(item) == {"metadata", "omittedTokens"}, item
                assert item["omittedTokens"] > budget, item
            seen += names(answer["data"])
            args = answer["next"]["arguments"] if "next" in answer else None
    assert args is None, f"still paging after {calls} calls"
    assert len(seen) == len(set(seen)) == expected > 1
    assert calls > 1


async def test_counts_equal_what_listing_everything_gives(
    client: Client[Any], all_devices: list[dict[str, Any]]
) -> None:
    counts = await call(client, "count_devices")
    assert counts["total"] == len(all_devices)
    assert counts["summaryStatus"] == dict(Counter(d["status"]["summary"]["status"] for d in all_devices))
    assert counts["updateStatus"] == dict(Counter(d["status"]["updated"]["status"] for d in all_devices))
    assert counts["applicationStatus"] == dict(
        Counter(d["status"]["applicationsSummary"]["status"] for d in all_devices)
    )


async def test_counts_over_a_selector_equal_the_listing_with_that_selector(client: Client[Any]) -> None:
    selector = "status.summary.status in (Error,Degraded)"
    listed, _ = await page_all(client, "query_devices", {"field_selector": selector, "limit": 1000})
    counts = await call(client, "count_devices", {"field_selector": selector})
    assert counts["total"] == len(listed) > 0
    assert counts["links"]["devices"]["arguments"] == {"field_selector": selector}


async def test_fleet_by_name_has_devices_summary_and_rollout_that_match_counts(client: Client[Any]) -> None:
    fleets, _ = await page_all(client, "query_fleets", {"limit": 1000})
    fleet = next(f for f in fleets if f.get("status", {}).get("rollout"))
    answer = await call(client, "query_fleets", {"name": fleet["metadata"]["name"]})
    item = answer["data"]
    counted = await _resolve(client, answer["links"]["device_counts"])
    assert item["status"]["devicesSummary"]["total"] == counted["total"]
    assert item["status"]["devicesSummary"]["summaryStatus"] == counted["summaryStatus"]
    assert "currentBatch" in item["status"]["rollout"]


async def _resolve(client: Client[Any], link: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return await call(client, link["tool"], {**link["arguments"], **extra})


def _lookup(item: dict[str, Any], path: str) -> str:
    if path.startswith("owner."):
        kind, _, name = str(item["metadata"]["owner"]).partition("/")
        return kind if path == "owner.kind" else name
    value: Any = item
    for part in path.split("."):
        value = value[part]
    return str(value)


def _filled(template: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """A list answer's link template filled from one item, as the assistant is told to."""
    tool = template["tool"]
    if isinstance(tool, dict):  # the tool depends on the item's kind
        tool = tool[item["involvedObject"]["kind"]]
    arguments = {
        name: re.sub(r"\{([^{}]+)\}", lambda m: _lookup(item, m.group(1)), value)
        for name, value in template["arguments"].items()
    }
    return {"tool": tool, "arguments": arguments}


async def test_device_links_resolve_through_the_tools_they_name(
    client: Client[Any], all_devices: list[dict[str, Any]]
) -> None:
    owned = next(d for d in all_devices if d["metadata"].get("owner", "").startswith("Fleet/"))
    name = owned["metadata"]["name"]
    answer = await call(client, "query_devices", {"name": name})
    links = answer["links"]
    assert set(links) == {"fleet", "events", "enrollment_request", "rendered_config"}
    assert answer["data"]["lastSeen"]
    fleet = await _resolve(client, links["fleet"])
    assert f"Fleet/{fleet['data']['metadata']['name']}" == owned["metadata"]["owner"]
    events = await _resolve(client, links["events"], fields=["involvedObject"])
    assert all(e["involvedObject"] == {"kind": "Device", "name": name} for e in events["data"])
    enrollment = await _resolve(client, links["enrollment_request"])
    assert names(enrollment["data"]) in ([], [name])
    rendered = await _resolve(client, links["rendered_config"])
    assert rendered["name"] == name
    assert rendered["data"]["renderedVersion"]
    assert rendered["data"]["spec"]


async def test_fleet_devices_link_lists_exactly_the_fleets_devices(
    client: Client[Any], all_devices: list[dict[str, Any]]
) -> None:
    answer = await call(client, "query_fleets", {"limit": 1})
    fleet = answer["data"][0]
    link = _filled(answer["links"]["devices"], fleet)
    listed, _ = await page_all(client, link["tool"], {**link["arguments"], "limit": 1000})
    owner = f"Fleet/{fleet['metadata']['name']}"
    assert sorted(names(listed)) == sorted(
        d["metadata"]["name"] for d in all_devices if d["metadata"].get("owner") == owner
    )


@pytest.mark.parametrize("kind", [k for k in KINDS if k.name != "devices"], ids=lambda k: k.name)
async def test_every_link_in_a_list_of_each_kind_resolves(client: Client[Any], kind: Any) -> None:
    answer = await call(client, kind.tool, await scoped(client, kind.tool, {"limit": 5}))
    assert answer["data"]
    assert answer["links"]
    for item in answer["data"]:
        assert "links" not in item
        for template in answer["links"].values():
            resolved = await _resolve(client, _filled(template, item))
            assert resolved["kind"], template


async def test_events_link_back_to_their_object(client: Client[Any]) -> None:
    answer = await call(client, "query_events", {"limit": 20})
    for event in answer["data"]:
        target = await _resolve(client, _filled(answer["links"]["involved_object"], event))
        assert target["data"]["metadata"]["name"] == event["involvedObject"]["name"]
        assert target["kind"] == event["involvedObject"]["kind"]


async def test_resource_sync_links_to_its_repository(client: Client[Any]) -> None:
    answer = await call(client, "query_resource_syncs", {"limit": 1000})
    assert answer["data"]
    for sync in answer["data"]:
        repository = await _resolve(client, _filled(answer["links"]["repository"], sync))
        assert repository["data"]["metadata"]["name"] == sync["spec"]["repository"]


async def test_fields_return_exactly_the_paths_asked_for(client: Client[Any]) -> None:
    answer = await call(
        client, "query_devices", {"limit": 3, "fields": ["status.systemInfo.architecture", "spec.os"]}
    )
    assert "links" not in answer, "fields chosen: no links"
    for item in answer["data"]:
        assert set(item) == {"metadata", "status", "spec"}
        assert set(item["metadata"]) == {"name"}
        assert set(item["status"]) == {"systemInfo"}
        assert set(item["status"]["systemInfo"]) == {"architecture"}
        assert set(item["spec"]) == {"os"}


async def test_full_returns_the_whole_object_as_the_api_has_it(
    sim: tuple[SimulatorServer, trustme.CA], client: Client[Any]
) -> None:
    answer = await call(client, "query_devices", {"limit": 1, "full": True})
    item = answer["data"][0]
    services = services_for(*sim)
    raw = await services.api.get(KINDS_BY_NAME["devices"], item["metadata"]["name"], services.tokens)
    services.api.close()
    assert item.keys() == raw.keys()
    assert item["metadata"] == raw["metadata"]
    assert item["spec"] == raw["spec"]
    assert item["status"].keys() == raw["status"].keys()


async def test_the_default_view_is_much_smaller_than_full(client: Client[Any]) -> None:
    """Per device, since the budget cuts the full answer to fewer devices than the compact one."""
    compact = await call(client, "query_devices", {"limit": 20})
    full = await call(client, "query_devices", {"limit": 20, "full": True})
    per_device = {
        view: len(dumps(answer["data"]).encode()) / answer["returned"]
        for view, answer in (("compact", compact), ("full", full))
    }
    assert per_device["compact"] * 2 < per_device["full"], per_device


async def test_a_cursor_reused_with_another_query_is_refused(client: Client[Any]) -> None:
    first = await call(
        client, "query_devices", {"limit": 5, "field_selector": "status.summary.status=Online"}
    )
    cursor = first["next"]["arguments"]["cursor"]
    message = await error_of(client, "query_devices", {"limit": 5, "cursor": cursor})
    assert "different query" in message
    assert "next.arguments" in message
    garbled = await error_of(client, "query_devices", {"cursor": "not-a-cursor"})
    assert "without a cursor" in garbled


@pytest.mark.parametrize("at", [0, 1, 5, 9, 12, -13, -1], ids=lambda at: f"byte {at}")
async def test_a_tampered_cursor_is_refused_not_crashed_on(client: Client[Any], at: int) -> None:
    """Any changed byte (version, tags, position, token, signature) makes the cursor one we never issued."""
    first = await call(client, "query_devices", {"limit": 5})
    cursor = first["next"]["arguments"]["cursor"]
    raw = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    raw[at] ^= 0x01
    forged = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    message = await error_of(client, "query_devices", {"limit": 5, "cursor": forged})
    assert (
        "not issued by this server" in message or "another caller" in message or "different query" in message
    )
    assert "without a cursor" in message


async def test_changing_limit_or_view_between_pages_keeps_the_walk_exact(client: Client[Any]) -> None:
    selector = {"field_selector": "status.updated.status=OutOfDate"}
    expected, _ = await page_all(client, "query_devices", {**selector, "limit": 1000})
    seen: list[str] = []
    args: dict[str, Any] = {**selector, "limit": 7}
    for step in range(1000):
        answer = await call(client, "query_devices", args)
        seen += names(answer["data"])
        if "next" not in answer:
            break
        args = {**answer["next"]["arguments"], "limit": 7 + step % 50, "full": step % 3 == 0}
    assert seen == names(expected)


async def test_labels_are_discovered_and_each_pair_selects_devices(client: Client[Any]) -> None:
    answer = await call(client, "list_device_labels")
    assert answer["keys"] == len(answer["data"]) > 0
    key = next(iter(answer["data"]))
    one = await call(client, "list_device_labels", {"key": key})
    assert set(one["data"]) == {key}
    value = one["data"][key][0]
    counted = await call(client, "count_devices", {"label_selector": f"{key}={value}"})
    assert counted["total"] > 0


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
async def test_each_kind_resource_matches_its_tool(client: Client[Any], kind: ResourceKind) -> None:
    scope = await scoped(client, kind.tool, {})
    name = (await call(client, kind.tool, {"limit": 1, **scope}))["data"][0]["metadata"]["name"]
    contents = await client.read_resource(resource_uri(kind).format(name=name, **scope))
    assert len(contents) == 1
    from_resource = json.loads(contents[0].text)  # type: ignore[union-attr]
    from_tool = await call(client, kind.tool, {"name": name, **scope})
    assert from_tool["data"]["metadata"]["name"] == name
    for answer in (from_resource, from_tool):
        answer["data"].pop("lastSeen", None)  # the simulator advances it between the two reads
    assert from_resource == from_tool


_CALL = re.compile(r"\b([a-z]+(?:_[a-z]+)+)\(([^()]*)\)")
_TOOL_NAME = re.compile(r"\b((?:query|count|list|get|run)_[a-z_]+)\b")


@pytest.mark.parametrize(
    "prompt", ["troubleshoot_device", "fleet_health_report", "review_enrollment_requests"]
)
async def test_every_prompt_names_only_existing_tools(
    client: Client[Any], all_devices: list[dict[str, Any]], prompt: str
) -> None:
    """Every tool a prompt names exists, and every call it spells out answers on a real fleet."""
    owned = next(d for d in all_devices if d["metadata"].get("owner", "").startswith("Fleet/"))
    arguments = {
        "troubleshoot_device": {"device": owned["metadata"]["name"]},
        "fleet_health_report": {"fleet": owned["metadata"]["owner"].removeprefix("Fleet/")},
        "review_enrollment_requests": {},
    }[prompt]
    prompts = {p.name for p in await client.list_prompts()}
    assert prompt in prompts
    tools = {t.name for t in await client.list_tools()}
    result = await client.get_prompt(prompt, arguments)
    text = " ".join(m.content.text for m in result.messages)  # type: ignore[union-attr]
    calls = _CALL.findall(text)
    named = {tool for tool, _ in calls} | set(_TOOL_NAME.findall(text))
    assert calls, text
    assert named <= tools, named - tools
    for tool, spelled in calls:
        call_arguments = dict(re.findall(r"(\w+)='([^']*)'", spelled))
        outcome = await client.call_tool(tool, call_arguments, raise_on_error=False)
        assert not outcome.is_error, (tool, call_arguments, outcome.content)
