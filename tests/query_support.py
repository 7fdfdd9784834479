"""Helpers for the query and answer tests: an HTTPS simulator with a trustme CA, and the MCP server on it.

Each test module starts its own simulator (module scope) so the fleet size fits the test: a small one for
query behaviour, 5,000 devices for the answer budget and paging checks.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import trustme
from fastmcp import Client

from auth import StaticTokenSource
from config import Secret, Settings, TLSSettings
from flightctl_api import FlightControlAPI
from main import build_server
from services import Services
from simulator.harness import SimulatorServer


@contextmanager
def https_simulator(tmp: Path, **options: Any) -> Iterator[tuple[SimulatorServer, trustme.CA]]:
    """A simulator on 127.0.0.1 over HTTPS, its certificate issued by a fresh test CA."""
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    cert, key = tmp / "server.pem", tmp / "server.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    with SimulatorServer(tls_cert=cert, tls_key=key, **options) as sim:
        yield sim, ca


def settings_for(sim: SimulatorServer, ca: trustme.CA, **overrides: Any) -> Settings:
    """Settings pointing at the simulator and trusting exactly its CA."""
    options: dict[str, Any] = {
        "api_base_url": sim.base_url,
        "tls": TLSSettings(ca_data=ca.cert_pem.bytes().decode(), source="test CA"),
        "request_timeout": 10.0,
    }
    options.update(overrides)
    return Settings(**options)


def services_for(
    sim: SimulatorServer, ca: trustme.CA, *, user: str = "admin", tokens: Any = None, **overrides: Any
) -> Services:
    """Services with a fresh static token for ``user`` (or the given token source)."""
    settings = settings_for(sim, ca, **overrides)
    source = tokens or StaticTokenSource(Secret(sim.issue_access_token(user, ttl=3600)))
    return Services(
        settings=settings, api=FlightControlAPI(settings, max_retry_wait=3.0, backoff=0.05), tokens=source
    )


@asynccontextmanager
async def client_for(services: Services) -> AsyncIterator[Client[Any]]:
    """An in-memory MCP client on a server built around ``services``; the API pool is closed after it, so
    no connection to the simulator outlives the test (tools/list asks for the caller's permissions too)."""
    try:
        async with Client(build_server(services.settings, services)) as client:
            yield client
    finally:
        services.api.close()


async def call(client: Client[Any], tool: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    """Call a tool that must succeed; return its one JSON answer."""
    result = await client.call_tool(tool, arguments or {})
    assert result.structured_content is None, "the answer must be sent once, as text"
    assert len(result.content) == 1
    answer: dict[str, Any] = json.loads(result.content[0].text)  # type: ignore[union-attr]
    return answer


async def error_of(client: Client[Any], tool: str, arguments: dict[str, Any]) -> str:
    """Call a tool that must fail with a tool error (isError); return the message the assistant reads."""
    result = await client.call_tool(tool, arguments, raise_on_error=False)
    assert result.is_error, result.content
    return str(result.content[0].text)  # type: ignore[union-attr]


async def page_all(
    client: Client[Any], tool: str, arguments: dict[str, Any]
) -> tuple[list[dict[str, Any]], int]:
    """Follow next.arguments until the end; return every item and the number of calls."""
    items: list[dict[str, Any]] = []
    calls = 0
    args: dict[str, Any] | None = arguments
    while args is not None:
        answer = await call(client, tool, args)
        calls += 1
        items += answer["data"]
        nxt = answer.get("next")
        if nxt is not None:
            assert nxt["tool"] == tool
        args = nxt["arguments"] if nxt else None
    return items, calls


def names(items: list[dict[str, Any]]) -> list[str]:
    return [item["metadata"]["name"] for item in items]


async def scoped(client: Client[Any], tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """``arguments`` plus the parent a nested kind's tool needs (the first fleet), when not given."""
    from resource_queries import KINDS

    kind = next((k for k in KINDS if k.tool == tool), None)
    if kind is None or kind.parent_kind is None or kind.parent_arg in arguments:
        return arguments
    parent = (await call(client, kind.parent_kind.tool, {"limit": 1}))["data"][0]["metadata"]["name"]
    return {**arguments, str(kind.parent_arg): parent}
