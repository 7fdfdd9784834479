"""Size: bytes and ~tokens (bytes/4) of query_devices' default answer, the full objects and tools/list.

On a generated fleet of 1,000 devices (the simulator in its own process), the server built in this
process and called through the in-memory ``Client(mcp)``; every figure is the text the assistant
receives (compact JSON), except "as the API sends them", which is the API's own response body.

    .venv/bin/python bench/size.py           # 1,000 devices
    .venv/bin/python bench/size.py --quick   # smoke run: 100 devices
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
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
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="smoke run: 100 devices")
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
        rows, fleet = asyncio.run(_measure(mcp, sim.url))
    print(f"{fleet:,} devices; response budget {settings.response_token_budget:,} tokens; tokens ~ bytes/4")
    print(common.table(["answer", "devices", "bytes", "~tokens", "bytes per device"], rows))


if __name__ == "__main__":
    main()
