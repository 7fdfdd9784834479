"""Size: ten everyday questions, query_devices' default answer, the full objects and tools/list.

On a generated fleet of 2,500 devices (the simulator in its own process), the server built in this
process and called through the in-memory ``Client(mcp)``; every figure is the text the assistant
receives (compact JSON), except "as the API sends them", which is the API's own response body.

The ten questions are each answered with a fixed plan of at most two tool calls, checked against the
API's own answer (counts, names, values), and measured in bytes and ~tokens (bytes/4). Beside them: the
same questions asked of flightctl-mcp 3fbced9 with its tools (whole objects of every match; its own
plan per question), measured when ``--compare-legacy DIR --legacy-python PY`` names that version (see
bench/_serve_legacy.py), else estimated as the whole matching objects in compact JSON (a lower bound:
that version indents them).

    .venv/bin/python bench/size.py           # 2,500 devices
    .venv/bin/python bench/size.py --quick   # smoke run: 100 devices
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from fastmcp import Client

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import _common as common

CLAUDE_CODE_LIMIT_TOKENS = 25_000  # Claude Code refuses a tool result over this


def _compact(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


async def _text(client: Client[Any], tool: str, arguments: dict[str, Any]) -> str:
    result = await client.call_tool(tool, arguments)
    return str(result.content[0].text)  # type: ignore[union-attr]


async def _measure(mcp: Any, api_base_url: str) -> tuple[list[list[object]], int]:
    async with httpx.AsyncClient(base_url=api_base_url, timeout=60) as direct:
        return await _measure_with(mcp, direct)


async def _measure_with(mcp: Any, direct: httpx.AsyncClient) -> tuple[list[list[object]], int]:
    rows: list[list[object]] = []

    def row(what: str, items: int, size: int, one_answer: bool = True) -> None:
        per = f"{size / items:,.0f}" if items else ""
        flag = " (over 25k)" if one_answer and size / 4 > CLAUDE_CODE_LIMIT_TOKENS else ""
        rows.append([what, items or "", f"{size:,}", f"{size / 4:,.0f}{flag}", per])

    async with Client(mcp) as client:
        default = await _text(client, "query_devices", {})
        returned = int(json.loads(default)["returned"])
        row("query_devices() default answer", returned, len(default.encode()))
        full_answer = await _text(client, "query_devices", {"full": True})
        row("query_devices(full=true) answer (budget-cut)", int(json.loads(full_answer)["returned"]),
            len(full_answer.encode()))  # fmt: skip
        response = await direct.get(
            "/api/v1/devices", params={"limit": returned}, headers=common.api_headers()
        )
        response.raise_for_status()
        row(f"the same {returned} devices, full objects (compact JSON)", returned,
            _compact(response.json()["items"]))  # fmt: skip
        row(f"the same {returned} devices, as the API sends them", returned, len(response.content))

        compact_total, items, arguments, calls = 0, 0, {"limit": 1000}, 0
        while calls < 500:  # bounded walk over the whole fleet
            text = await _text(client, "query_devices", arguments)
            answer = json.loads(text)
            compact_total += len(text.encode())
            items += int(answer["returned"])
            calls += 1
            if "next" not in answer:
                break
            arguments = answer["next"]["arguments"]
        row(f"whole fleet, default view ({calls} answers)", items, compact_total, one_answer=False)
        everything: list[Any] = []
        params: dict[str, Any] = {"limit": 1000}
        for _ in range(1000):
            page = (await direct.get("/api/v1/devices", params=params, headers=common.api_headers())).json()
            everything.extend(page["items"])
            token = page["metadata"].get("continue")
            if not token:
                break
            params = {"limit": 1000, "continue": token}
        row(
            "whole fleet, full objects (compact JSON)",
            len(everything),
            _compact(everything),
            one_answer=False,
        )

        name = everything[0]["metadata"]["name"]
        row(
            "query_devices(name=...) one device",
            1,
            len((await _text(client, "query_devices", {"name": name})).encode()),
        )
        row("count_devices()", 0, len((await _text(client, "count_devices", {})).encode()))

        listed = await client.list_tools_mcp()
        tools_list = listed.model_dump_json(by_alias=True, exclude_none=True).encode()
        row(f"tools/list ({len(listed.tools)} tools)", 0, len(tools_list))
        biggest = max(listed.tools, key=lambda t: len(t.model_dump_json(by_alias=True, exclude_none=True)))
        row(f"  largest tool definition ({biggest.name})", 0,
            len(biggest.model_dump_json(by_alias=True, exclude_none=True).encode()))  # fmt: skip
    return rows, len(everything)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=2500)
    parser.add_argument("--quick", action="store_true", help="smoke run: 100 devices")
    parser.add_argument("--compare-legacy", type=Path, help="flightctl-mcp 3fbced9's directory")
    parser.add_argument("--legacy-python", help="the Python of a venv with 3fbced9's dependencies")
    args = parser.parse_args()
    if args.quick:
        args.devices = 100

    print(f"machine: {common.machine()}")
    from config import load_settings
    from main import build_server
    from services import Services

    with common.simulator(args.devices, 0) as sim:
        settings = load_settings({}, common.server_env(sim.url))
        mcp = build_server(settings, Services.from_settings(settings))
        legacy_url = None
        with contextlib.ExitStack() as stack:
            if args.compare_legacy:
                legacy = common.legacy_server(
                    args.compare_legacy, args.legacy_python or sys.executable, sim.url
                )
                legacy_url = stack.enter_context(legacy).url
            questions = asyncio.run(_questions(mcp, sim.url, legacy_url))
        rows, fleet = asyncio.run(_measure(mcp, sim.url))
    print(f"{fleet:,} devices; response budget {settings.response_token_budget:,} tokens; tokens ~ bytes/4")
    print(common.table(_QUESTION_HEADER, questions))
    print()
    print(common.table(["answer", "devices", "bytes", "~tokens", "bytes per device"], rows))


# --- ten questions ----------------------------------------------------------------------------------------

_QUESTION_HEADER = ["question", "calls", "bytes", "~tokens", "3fbced9 calls", "3fbced9 ~tokens", "smaller"]


@dataclasses.dataclass(frozen=True)
class Question:
    """One question: our plan (tool calls), 3fbced9's plan, and the API's own answer to check ours."""

    text: str
    plan: list[tuple[str, dict[str, Any]]]
    legacy_plan: list[tuple[str, dict[str, Any]]]
    legacy_estimate: list[tuple[str, dict[str, str]]]  # API paths + params of 3fbced9's plan's objects
    check: Callable[[list[dict[str, Any]]], None]


async def _api_items(direct: httpx.AsyncClient, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
    """Every object the API lists for these params (all pages)."""
    items: list[dict[str, Any]] = []
    query = {**params, "limit": "1000"}
    while True:
        response = await direct.get(f"/api/v1/{path}", params=query, headers=common.api_headers())
        response.raise_for_status()
        page = response.json()
        items += page["items"]
        token = page["metadata"].get("continue")
        if not token:
            return items
        query["continue"] = token


def _names(items: list[dict[str, Any]]) -> set[str]:
    return {item["metadata"]["name"] for item in items}


async def _ten_questions(direct: httpx.AsyncClient) -> list[Question]:
    """The plans, with names picked from the data: the fleet with most degraded devices and its first
    degraded device, the first fleet with a rollout, the first region and that region's first site."""
    devices = await _api_items(direct, "devices", {})
    labels = [d["metadata"]["labels"] for d in devices]
    degraded = [d for d in devices if d["status"]["summary"]["status"] == "Degraded"]
    owners = Counter(d["metadata"]["owner"] for d in degraded if d["metadata"].get("owner"))
    owner = owners.most_common(1)[0][0]
    fleet = owner.removeprefix("Fleet/")
    device = next(d for d in degraded if d["metadata"].get("owner") == owner)["metadata"]["name"]
    region = min(label["region"] for label in labels)
    sites = sorted({label["site"] for label in labels if label["region"] == region})
    site = sites[0]
    in_fleet_degraded = f"metadata.owner={owner},status.summary.status=Degraded"
    device_events = f"involvedObject.kind=Device,involvedObject.name={device}"
    pending = "!status.approval.approved"
    out_of_date = "status.updated.status=OutOfDate"
    by_status = Counter(d["status"]["summary"]["status"] for d in devices)
    stale = [d for d in devices if d["status"]["updated"]["status"] == "OutOfDate"]
    stale_fleets = sorted(
        {d["metadata"]["labels"]["fleet"] for d in stale if "fleet" in d["metadata"]["labels"]}
    )
    at_site = [d for d in devices if d["metadata"]["labels"]["site"] == site]
    events = await _api_items(direct, "events", {"fieldSelector": device_events})
    requests = await _api_items(direct, "enrollmentrequests", {"fieldSelector": pending})
    rolling_fleet = next(f for f in await _api_items(direct, "fleets", {}) if f["status"].get("rollout"))
    rolling = rolling_fleet["metadata"]["name"]
    version = rolling_fleet["metadata"]["annotations"]["fleet-controller/templateVersion"]

    def check_counts(answers: list[dict[str, Any]]) -> None:
        assert answers[0]["summaryStatus"] == dict(by_status), answers[0]

    def check_names(expected: list[dict[str, Any]]) -> Callable[[list[dict[str, Any]]], None]:
        def check(answers: list[dict[str, Any]]) -> None:
            assert "next" not in answers[-1], "the whole answer in one call"
            assert _names(answers[-1]["data"]) == _names(expected), answers[-1]

        return check

    def check_events(answers: list[dict[str, Any]]) -> None:
        newest = sorted(events, key=lambda e: e["metadata"]["creationTimestamp"], reverse=True)[:10]
        assert [e["metadata"]["name"] for e in answers[0]["data"]] == [e["metadata"]["name"] for e in newest]

    def check_rollout(answers: list[dict[str, Any]]) -> None:
        item = answers[0]["data"]
        assert item["status"]["rollout"] == rolling_fleet["status"]["rollout"], item
        assert item["metadata"]["annotations"] == {"fleet-controller/templateVersion": version}, item

    def check_out_of_date(answers: list[dict[str, Any]]) -> None:
        assert answers[0]["total"] == len(stale)
        assert answers[1]["data"] == {"fleet": stale_fleets}, answers[1]

    def check_sites(answers: list[dict[str, Any]]) -> None:
        assert answers[0]["data"] == {"site": sites}, answers[0]

    def check_all(answers: list[dict[str, Any]]) -> None:
        assert "next" not in answers[0]
        assert len(answers[0]["data"]) == answers[0]["total"]

    return [
        Question("How many devices per status?", [("count_devices", {})], [("query_devices", {})],
                 [("devices", {})], check_counts),
        Question(f"Which devices of fleet {fleet} are degraded, and why?",
                 [("query_devices", {"field_selector": in_fleet_degraded})],
                 [("query_devices", {"field_selector": in_fleet_degraded})],
                 [("devices", {"fieldSelector": in_fleet_degraded})],
                 check_names([d for d in degraded if d["metadata"].get("owner") == owner])),
        Question("What happened to one device lately?",
                 [("query_events", {"field_selector": device_events, "limit": 10})],
                 [("query_events", {"field_selector": device_events})],
                 [("events", {"fieldSelector": device_events})], check_events),
        Question(f"How is fleet {rolling}'s rollout going?", [("query_fleets", {"name": rolling})],
                 [("query_fleets", {"field_selector": f"metadata.name={rolling}"})],
                 [("fleets", {"fieldSelector": f"metadata.name={rolling}"})], check_rollout),
        Question("Which enrollment requests wait for a decision?",
                 [("query_enrollment_requests", {"field_selector": pending})],
                 [("query_enrollment_requests", {"field_selector": pending})],
                 [("enrollmentrequests", {"fieldSelector": pending})], check_names(requests)),
        Question("How many devices are out of date, in which fleets?",
                 [("count_devices", {"field_selector": out_of_date}),
                  ("list_device_labels", {"key": "fleet", "field_selector": out_of_date})],
                 [("query_devices", {"field_selector": out_of_date})],
                 [("devices", {"fieldSelector": out_of_date})], check_out_of_date),
        Question(f"Which sites are there in {region}?",
                 [("list_device_labels", {"key": "site", "label_selector": f"region={region}"})],
                 [("query_devices", {"label_selector": f"region={region}"})],
                 [("devices", {"labelSelector": f"region={region}"})], check_sites),
        Question("Which repositories are unhealthy?", [("query_repositories", {})],
                 [("query_repositories", {})], [("repositories", {})], check_all),
        Question("Which resource syncs are failing?", [("query_resource_syncs", {})],
                 [("query_resource_syncs", {})], [("resourcesyncs", {})], check_all),
        Question(f"Which devices are at site {site}, with alias and OS image?",
                 [("query_devices", {"label_selector": f"site={site}",
                                     "fields": ["metadata.labels.alias", "status.os.image"]})],
                 [("query_devices", {"label_selector": f"site={site}"})],
                 [("devices", {"labelSelector": f"site={site}"})], check_names(at_site)),
    ]  # fmt: skip


async def _legacy_bytes(url: str, plan: list[tuple[str, dict[str, Any]]]) -> int:
    """Bytes of every text 3fbced9 sends for its plan (it sends each list item as its own text)."""
    total = 0
    async with Client(url, timeout=300) as legacy:
        for tool, arguments in plan:
            result = await legacy.call_tool(tool, arguments, raise_on_error=False)
            total += sum(len(str(getattr(c, "text", "")).encode()) for c in result.content)
    return total


def _row(text: str, calls: int, ours: int, legacy_calls: int, theirs: int) -> list[object]:
    ratio = f"{theirs / ours:,.0f}x"
    return [text, calls, f"{ours:,}", f"{ours / 4:,.0f}", legacy_calls, f"{theirs / 4:,.0f}", ratio]


async def _questions(mcp: Any, api_base_url: str, legacy_url: str | None) -> list[list[object]]:
    rows: list[list[object]] = []
    ours_total = legacy_total = 0
    async with httpx.AsyncClient(base_url=api_base_url, timeout=120) as direct, Client(mcp) as client:
        questions = await _ten_questions(direct)
        for question in questions:
            texts = [await _text(client, tool, arguments) for tool, arguments in question.plan]
            question.check([json.loads(text) for text in texts])
            ours = sum(len(text.encode()) for text in texts)
            if legacy_url:
                theirs = await _legacy_bytes(legacy_url, question.legacy_plan)
            else:
                estimate = question.legacy_estimate
                theirs = sum([_compact(await _api_items(direct, path, params)) for path, params in estimate])
            ours_total += ours
            legacy_total += theirs
            rows.append(_row(question.text, len(question.plan), ours, len(question.legacy_plan), theirs))
    calls = sum(len(q.plan) for q in questions)
    legacy_calls = sum(len(q.legacy_plan) for q in questions)
    rows.append(_row("all ten", calls, ours_total, legacy_calls, legacy_total))
    return rows


if __name__ == "__main__":
    main()
