"""Read-only checks of the MCP server against a real Flight Control, and the checks themselves.

The ``check_*`` functions take a connected fastmcp ``Client`` and assert what must hold on any Flight
Control, whatever its devices: every query tool answers, paging visits each device once, counts agree
with listings, a bad selector comes back with the server's grammar, an unknown name is a 404. They only
read. tests/test_e2e_live_checks.py runs them against the simulator; this file runs them against your
own Flight Control:

    flightctl login                                   # or API_BASE_URL + REFRESH_TOKEN/ACCESS_TOKEN ...
    python test_live_instance.py                      # prints a short report; exit 0 when all pass
    FLIGHTCTL_MCP_LIVE=1 python -m pytest test_live_instance.py -v

Under pytest the checks run only with ``FLIGHTCTL_MCP_LIVE=1`` (so ``make test`` never touches a real
fleet by accident) and otherwise skip with a one-line reason. Run as a script, the configuration alone
decides; exit code 0 = all checks passed, 1 = a check failed, 2 = nothing usable is configured.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import pytest
from fastmcp import Client

__all__ = [
    "CHECKS",
    "QUERY_TOOLS",
    "Check",
    "answer_of",
    "check_bad_selector_explains_grammar",
    "check_count_matches_listing",
    "check_each_kind_selects_one_by_name",
    "check_every_query_tool_answers",
    "check_paging_visits_each_device_once",
    "check_unknown_device_is_not_found",
    "error_of",
    "live_configuration",
    "run_checks",
    "walk",
]

LIVE_FLAG = "FLIGHTCTL_MCP_LIVE"

#: Each query tool and the Kind its answers carry.
QUERY_TOOLS: Mapping[str, str] = {
    "query_devices": "Device",
    "query_fleets": "Fleet",
    "query_events": "Event",
    "query_enrollment_requests": "EnrollmentRequest",
    "query_repositories": "Repository",
    "query_resource_syncs": "ResourceSync",
}

Check = Callable[[Client[Any]], Awaitable[str]]


# --- calling tools ------------------------------------------------------------------------------------


async def answer_of(
    client: Client[Any], tool: str, arguments: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Call a tool that must succeed; its one answer is compact JSON text, sent once (no structured copy)."""
    result = await client.call_tool(tool, dict(arguments or {}), raise_on_error=False)
    text = "".join(getattr(block, "text", "") for block in result.content)
    assert not result.is_error, f"{tool}({dict(arguments or {})}) failed: {text}"
    assert result.structured_content is None, f"{tool} sent its answer twice (text and structured)"
    assert len(result.content) == 1, f"{tool} answered in {len(result.content)} content blocks"
    answer = json.loads(text)
    assert isinstance(answer, dict), f"{tool} answered {type(answer).__name__}, not a JSON object"
    return answer


async def error_of(client: Client[Any], tool: str, arguments: Mapping[str, Any]) -> str:
    """Call a tool that must fail as a tool error (isError, not a protocol error); return its message."""
    result = await client.call_tool(tool, dict(arguments), raise_on_error=False)
    text = "".join(getattr(block, "text", "") for block in result.content)
    assert result.is_error, f"{tool}({dict(arguments)}) should have failed but answered: {text[:300]}"
    assert text.strip(), f"{tool} failed without a message"
    return text


async def walk(
    client: Client[Any], tool: str, arguments: Mapping[str, Any], *, max_calls: int = 1000
) -> tuple[list[str], list[dict[str, Any]]]:
    """Follow ``next.arguments`` from ``arguments``: the names seen, in order, and every answer."""
    names: list[str] = []
    answers: list[dict[str, Any]] = []
    args: dict[str, Any] | None = dict(arguments)
    while args is not None and len(answers) < max_calls:
        answer = await answer_of(client, tool, args)
        answers.append(answer)
        assert answer["returned"] == len(answer["data"]), answer
        names += [item["metadata"]["name"] for item in answer["data"]]
        nxt = answer.get("next")
        if nxt is not None:
            assert nxt["tool"] == tool, nxt
            assert nxt["arguments"].get("cursor"), f"next of {tool} carries no cursor: {nxt}"
        args = nxt["arguments"] if nxt else None
    return names, answers


# --- the checks ---------------------------------------------------------------------------------------


async def check_every_query_tool_answers(client: Client[Any]) -> str:
    """Every query tool is offered and answers a small list in the documented envelope."""
    offered = {tool.name for tool in await client.list_tools()}
    missing = sorted((set(QUERY_TOOLS) | {"count_devices", "list_device_labels"}) - offered)
    assert not missing, f"tools not offered: {missing}"
    seen = []
    for tool, kind in QUERY_TOOLS.items():
        answer = await answer_of(client, tool, {"limit": 2})
        assert answer["kind"] == kind, answer
        assert 0 <= answer["returned"] <= 2, answer
        assert answer["returned"] == len(answer["data"]), answer
        total = answer["total"]
        assert total is None or total >= answer["returned"], answer
        for item in answer["data"]:
            assert item["metadata"]["name"], item
        if "next" in answer:
            assert answer["more"] >= 1, answer
            assert answer["next"]["tool"] == tool, answer
        elif total is not None:
            assert total == answer["returned"], f"{tool}: no next page but total {total} > returned"
        seen.append(f"{tool.removeprefix('query_')}={total}")
    counts = await answer_of(client, "count_devices")
    assert counts["total"] == sum(counts["summaryStatus"].values()), counts
    labels = await answer_of(client, "list_device_labels")
    assert labels["kind"] == "DeviceLabels", labels
    assert labels["keys"] == len(labels["data"]), labels
    return ", ".join(seen) + f"; {labels['keys']} label keys"


async def check_paging_visits_each_device_once(
    client: Client[Any], *, page: int = 4, max_calls: int = 25
) -> str:
    """A walk in small pages never repeats a device, and a completed walk returns exactly ``total``."""
    names, answers = await walk(client, "query_devices", {"limit": page}, max_calls=max_calls)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert not duplicates, f"devices returned twice while paging: {duplicates[:5]}"
    assert all(a["returned"] <= page for a in answers), [a["returned"] for a in answers]
    complete = "next" not in answers[-1]
    total = answers[0]["total"]
    if complete:
        assert total is None or len(names) == total, f"walk saw {len(names)} devices, first page said {total}"
        return f"{len(names)} devices in {len(answers)} calls of {page}, each once"
    assert len(names) == page * len(answers), "a page short of its limit before the end"
    return f"first {len(names)} of {total} devices in {len(answers)} calls of {page}, no repeats"


async def check_count_matches_listing(client: Client[Any]) -> str:
    """count_devices agrees with the listing's total, overall, per status and over a label selector."""
    counts = await answer_of(client, "count_devices")
    listing = await answer_of(client, "query_devices", {"limit": 1})
    assert listing["total"] == counts["total"], f"listing total {listing['total']} != count {counts['total']}"
    compared = [f"all={counts['total']}"]
    statuses = counts["summaryStatus"]
    if statuses:
        status = max(statuses, key=lambda s: statuses[s])
        selector = {"field_selector": f"status.summary.status={status}"}
        narrowed = await answer_of(client, "count_devices", selector)
        narrowed_listing = await answer_of(client, "query_devices", {**selector, "limit": 1})
        assert narrowed["total"] == statuses[status] == narrowed_listing["total"], (
            narrowed,
            statuses,
            narrowed_listing["total"],
        )
        compared.append(f"{status}={statuses[status]}")
    labels = (await answer_of(client, "list_device_labels"))["data"]
    pairs = [(k, v) for k, vs in sorted(labels.items()) if isinstance(vs, list) for v in vs if v]
    if labels:
        # a key=value pair when the answer lists values, else (too many to list) just "the key exists"
        selector = {"label_selector": "=".join(pairs[0]) if pairs else sorted(labels)[0]}
        by_label = await answer_of(client, "count_devices", selector)
        by_label_listing = await answer_of(client, "query_devices", {**selector, "limit": 1})
        assert 1 <= by_label["total"] == by_label_listing["total"], (selector, by_label, by_label_listing)
        compared.append(f"{selector['label_selector']}={by_label['total']}")
    return "counts equal listing totals: " + ", ".join(compared)


async def check_bad_selector_explains_grammar(client: Client[Any]) -> str:
    """A rejected selector is a tool error carrying Flight Control's own explanation."""
    message = await error_of(client, "query_devices", {"field_selector": "no.such.field=1"})
    assert "400" in message, message
    assert 'unable to resolve selector name "no.such.field"' in message, message
    for supported in ("metadata.name", "status.summary.status"):
        assert supported in message, f"the supported fields are missing: {message}"
    label_message = await error_of(client, "query_devices", {"label_selector": "region in eu"})
    assert "400" in label_message, label_message
    assert "failed to parse label selector" in label_message, label_message
    return "field and label selector errors carry the server's grammar"


async def check_unknown_device_is_not_found(client: Client[Any]) -> str:
    """Asking for a device that does not exist is a 404 tool error that names it and says where to look."""
    name = f"flightctl-mcp-no-such-device-{uuid.uuid4().hex[:8]}"
    message = await error_of(client, "query_devices", {"name": name})
    assert "404" in message, message
    assert name in message, message
    assert "not found" in message.lower(), message
    assert "query_devices" in message, f"no hint where to list names: {message}"
    return f"{name!r} is a 404 naming query_devices"


async def check_each_kind_selects_one_by_name(client: Client[Any]) -> str:
    """For each kind with objects, name= and field_selector metadata.name= both give exactly that one."""
    done = []
    for tool, kind in QUERY_TOOLS.items():
        first = await answer_of(client, tool, {"limit": 1})
        if not first["data"]:
            continue
        name = first["data"][0]["metadata"]["name"]
        selected = await answer_of(client, tool, {"field_selector": f"metadata.name={name}"})
        assert [i["metadata"]["name"] for i in selected["data"]] == [name], selected
        assert selected["total"] == 1, selected
        assert "next" not in selected, selected
        one = await answer_of(client, tool, {"name": name})
        assert one["kind"] == kind, one
        assert one["data"]["metadata"]["name"] == name, one
        if kind == "Device":
            assert one["data"].get("lastSeen"), f"a device by name should say when it was last seen: {one}"
        done.append(kind)
    return "by name and by metadata.name selector: " + (", ".join(done) or "no objects to select")


CHECKS: tuple[Check, ...] = (
    check_every_query_tool_answers,
    check_paging_visits_each_device_once,
    check_count_matches_listing,
    check_bad_selector_explains_grammar,
    check_unknown_device_is_not_found,
    check_each_kind_selects_one_by_name,
)


# --- configuration and the report ---------------------------------------------------------------------


def live_configuration(environ: Mapping[str, str], *, require_flag: bool) -> tuple[Any, str | None]:
    """(Settings, None) when a Flight Control is configured, else (None, the one-line reason)."""
    from config import load_settings
    from errors import ConfigurationError

    if require_flag and environ.get(LIVE_FLAG) != "1":
        return None, f"no live Flight Control requested: set {LIVE_FLAG}=1 (plus client.yaml or API_BASE_URL)"
    try:
        settings = load_settings({}, environ)
    except ConfigurationError as exc:
        return None, f"configuration error: {exc}"
    if not settings.api_base_url:
        return None, "no Flight Control configured: run `flightctl login` or set API_BASE_URL"
    if settings.auth.method == "none":
        return None, "no credentials: run `flightctl login`, or set REFRESH_TOKEN or ACCESS_TOKEN"
    return settings, None


async def run_checks(client: Client[Any], out: Any = sys.stdout) -> bool:
    """Run every check, one report line each; True when all passed."""
    passed = True
    for check in CHECKS:
        name = check.__name__.removeprefix("check_")
        started = time.monotonic()
        try:
            detail = await check(client)
        except Exception as exc:  # a report lists every failure, not only the first
            passed = False
            out.write(f"  FAIL {name}: {' '.join(str(exc).split())[:400]}\n")
        else:
            out.write(f"  ok   {name} ({time.monotonic() - started:.1f} s): {detail}\n")
    return passed


async def _report(settings: Any) -> int:
    from main import build_server

    logging.getLogger("fastmcp").setLevel(logging.CRITICAL)  # failures belong in the report, not on stderr
    sys.stdout.write(f"flightctl-mcp live checks against {settings.api_base_url} ({settings.auth.method})\n")
    async with Client(build_server(settings)) as client:
        passed = await run_checks(client)
    sys.stdout.write("result: all checks passed\n" if passed else "result: some checks FAILED\n")
    return 0 if passed else 1


def main() -> int:
    """``python test_live_instance.py``: the checks against the configured Flight Control, as a report."""
    settings, reason = live_configuration(os.environ, require_flag=False)
    if settings is None:
        sys.stdout.write(f"skipped: {reason}\n")
        return 2
    return asyncio.run(_report(settings))


# --- under pytest -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live_services() -> Any:
    """The server's shared objects for the configured Flight Control (one token refresh for all checks)."""
    settings, reason = live_configuration(os.environ, require_flag=True)
    if settings is None:
        pytest.skip(reason or "not configured")
    from services import Services

    return Services.from_settings(settings)


@pytest.mark.live
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
async def test_live_instance(live_services: Any, check: Check) -> None:
    from main import build_server

    async with Client(build_server(live_services.settings, live_services)) as client:
        await check(client)


if __name__ == "__main__":
    sys.exit(main())
