"""What the assistant sees in tools/list: snapshot, annotation invariants, size budget, generated docs."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client

from config import CommandSettings, Settings
from kind_queries import COMMON_FIELDS
from main import INSTRUCTIONS, build_server, resource_uri
from operations import OPERATIONS
from resource_queries import KINDS

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT = Path(__file__).parent / "snapshots" / "tool_list.json"
UPDATE_ENV = "UPDATE_TOOL_SNAPSHOT"
TOOLS_LIST_BUDGET_BYTES = 12_000  # about 3,000 tokens for the whole default tools/list answer
HINTS = ("readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint")


async def _tools(settings: Settings | None = None) -> list[dict[str, Any]]:
    async with Client(build_server(settings or Settings())) as client:
        tools = await client.list_tools()
    return [t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in tools]


@pytest.fixture(scope="module")
def tools() -> list[dict[str, Any]]:
    return asyncio.run(_tools())


def _snapshot_view(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = ("name", "title", "description", "inputSchema", "annotations")
    return [{k: t[k] for k in keys if k in t} for t in tools]


#: Each configuration whose tools/list is snapshotted: file name and the settings that produce it.
SNAPSHOTS = {
    "tool_list.json": Settings(),
    "tool_list-commands-enabled.json": Settings(commands=CommandSettings(enabled=True, confirm=True)),
}


@pytest.mark.parametrize("snapshot_name", list(SNAPSHOTS))
def test_tool_list_matches_the_checked_in_snapshot(snapshot_name: str) -> None:
    snapshot = SNAPSHOT.parent / snapshot_name
    current = json.dumps(
        _snapshot_view(asyncio.run(_tools(SNAPSHOTS[snapshot_name]))), indent=2, sort_keys=True
    )
    current += "\n"
    if os.environ.get(UPDATE_ENV):
        snapshot.parent.mkdir(exist_ok=True)
        snapshot.write_text(current)
    recorded = snapshot.read_text() if snapshot.exists() else ""
    assert current == recorded, (
        f"tools/list changed from {snapshot.relative_to(ROOT)}. If the change is deliberate, re-run with "
        f"{UPDATE_ENV}=1 and review the diff."
    )


def test_every_operation_is_a_tool_and_nothing_else_by_default(tools: list[dict[str, Any]]) -> None:
    assert [t["name"] for t in tools] == [op.name for op in OPERATIONS if op.offered_when is None]
    assert "run_command_on_device" not in {t["name"] for t in tools}
    assert {k.tool for k in KINDS} <= {t["name"] for t in tools}, "every read kind is reachable"


def test_every_tool_states_all_four_hints_and_a_title(tools: list[dict[str, Any]]) -> None:
    for tool in tools:
        hints = tool["annotations"]
        assert all(isinstance(hints.get(h), bool) for h in HINTS), tool["name"]
        assert tool["title"]
        assert hints.get("title", tool["title"]) == tool["title"]
        assert not (hints["readOnlyHint"] and hints["destructiveHint"]), (
            f"{tool['name']} read-only and destructive"
        )


def test_query_tools_are_read_only_idempotent_and_open_world(tools: list[dict[str, Any]]) -> None:
    for tool in tools:
        hints = tool["annotations"]
        assert (hints["readOnlyHint"], hints["idempotentHint"], hints["openWorldHint"]) == (True, True, True)
        assert not hints["destructiveHint"]


def test_tools_list_stays_within_its_size_budget(tools: list[dict[str, Any]]) -> None:
    size = len(json.dumps(tools, separators=(",", ":")).encode())
    assert size <= TOOLS_LIST_BUDGET_BYTES, f"tools/list is {size} bytes, budget {TOOLS_LIST_BUDGET_BYTES}"


def test_selector_grammar_is_explained_once_not_per_tool(tools: list[dict[str, Any]]) -> None:
    assert "notin" in INSTRUCTIONS
    assert "RFC 3339" in INSTRUCTIONS
    for tool in tools:
        text = json.dumps(tool)
        assert not {"notin", "RFC 3339"} & set(re.findall(r"notin|RFC 3339", text)), tool["name"]


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_each_query_tool_lists_its_own_fields_with_examples_for_its_kind(
    tools: list[dict[str, Any]], kind: Any
) -> None:
    tool = next(t for t in tools if t["name"] == kind.tool)
    description = tool["description"]
    for field in kind.fields:  # the common ones are named once, in the server instructions
        assert field.path in (INSTRUCTIONS if field.path in COMMON_FIELDS else description)
    for path in COMMON_FIELDS:
        assert path in INSTRUCTIONS
        if path not in kind.field_paths:
            assert f"Not selectable here: {path}" in description
    others = {f.path for k in KINDS if k is not kind for f in k.fields} - set(kind.field_paths)
    for example in re.findall(r"field_selector='([^']*)'", description):
        key = re.split(r"[!=<>\s]", example.lstrip("!"), maxsplit=1)[0]
        assert key in kind.field_paths, example
        assert key not in others, example
    properties = tool["inputSchema"]["properties"]
    assert ("label_selector" in properties) == kind.label_selector
    assert ("order" in properties) == kind.order
    assert {"name", "field_selector", "limit", "fields", "full", "cursor"} <= set(properties)
    assert properties["limit"]["maximum"] == 1000


async def test_command_tool_appears_only_when_enabled(tools: list[dict[str, Any]]) -> None:
    assert "run_command_on_device" not in {t["name"] for t in tools}
    if importlib.util.find_spec("command_tool") is None:
        pytest.skip("command_tool.py has not landed yet")
    enabled = await _tools(
        Settings(api_base_url="https://127.0.0.1:9", commands=CommandSettings(enabled=True, confirm=True))
    )
    command = next(t for t in enabled if t["name"] == "run_command_on_device")
    assert command["annotations"]["readOnlyHint"] is False


async def test_resources_and_prompts_are_offered() -> None:
    async with Client(build_server(Settings())) as client:
        templates = {t.uri_template for t in await client.list_resource_templates()}
        prompts = {p.name for p in await client.list_prompts()}
    assert templates == {resource_uri(k) for k in KINDS}
    assert "flightctl://fleets/{fleet}/template_versions/{name}" in templates
    assert {"troubleshoot_device", "fleet_health_report", "review_enrollment_requests"} <= prompts


@pytest.mark.parametrize("toolsets", [("core",), ("fleet-ops", "admin"), ("pki",), ("commands",)])
async def test_toolsets_choose_the_tools(toolsets: tuple[str, ...]) -> None:
    settings = Settings(api_base_url="https://127.0.0.1:9", toolsets=toolsets)
    names = {t["name"] for t in await _tools(settings)}
    assert names == {op.name for op in OPERATIONS if op.toolset in toolsets and op.read_only}


async def test_read_only_lists_no_tool_without_read_only_hint() -> None:
    enabled = CommandSettings(enabled=True, confirm=True)
    writable = await _tools(Settings(api_base_url="https://127.0.0.1:9", commands=enabled))
    assert any(not t["annotations"]["readOnlyHint"] for t in writable), "the command tool is offered"
    read_only = await _tools(Settings(api_base_url="https://127.0.0.1:9", commands=enabled, read_only=True))
    assert read_only
    assert all(t["annotations"]["readOnlyHint"] is True for t in read_only)
    assert {t["name"] for t in writable} - {t["name"] for t in read_only} == {"run_command_on_device"}


def test_toolsets_option_is_validated() -> None:
    from config import load_settings
    from errors import ConfigurationError

    assert load_settings({"MCP_TOOLSETS": "core, pki"}, {}).toolsets == ("core", "pki")
    assert load_settings({"MCP_READ_ONLY": "true"}, {}).read_only is True
    with pytest.raises(ConfigurationError, match="choose from core, fleet-ops, pki, admin, commands"):
        load_settings({"MCP_TOOLSETS": "core,bogus"}, {})


def test_readme_tool_table_names_every_tool(tools: list[dict[str, Any]]) -> None:
    """A new tool (a new KINDS row's too) fails here until the README says what to ask it."""
    table = (ROOT / "README.md").read_text().split("## Tools", 1)[1].split("\n\n|", 1)[1]
    rows = set(re.findall(r"^\| `(\w+)`", "|" + table, re.MULTILINE))
    assert {t["name"] for t in tools} <= rows
