"""Several replicas behind a load balancer: with MCP_STATELESS a client may hit any of them in turn.

Two ``python main.py`` processes serve the same simulator; a round-robin transport sends the client's
requests to A, then B, then A... The same client then fails against two stateful servers, which shows
the alternation is real and that the setting is what makes it work.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any, Literal

import httpx2
import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from tests.http_harness import Simulated, main_process, serve_in_thread, settings_from, simulated, text_of


class RoundRobin(httpx2.AsyncBaseTransport):
    """A load balancer in miniature: each request goes to the next backend port."""

    def __init__(self, ports: list[int]) -> None:
        self._next = itertools.cycle(ports)
        self._inner = httpx2.AsyncHTTPTransport()
        self.visits: list[int] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        port = next(self._next)
        self.visits.append(port)
        request.url = request.url.copy_with(port=port)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def balanced_client(
    urls: list[str], token: str, mode: Literal["legacy", "auto"], balancer: RoundRobin
) -> Client[Any]:
    """An MCP client of the first URL whose every request actually goes through ``balancer``."""

    def factory(
        headers: dict[str, str] | None = None,
        timeout: httpx2.Timeout | None = None,
        auth: httpx2.Auth | None = None,
        **kwargs: Any,
    ) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(headers=headers, timeout=timeout, auth=auth, transport=balancer, **kwargs)

    transport = StreamableHttpTransport(urls[0], auth=token, httpx_client_factory=factory)
    return Client(transport, mode=mode)


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulated]:
    with simulated(tmp_path_factory.mktemp("stateless")) as running:
        yield running


@pytest.fixture(scope="module")
def stateless_pair(sim: Simulated) -> Iterator[list[str]]:
    environ = sim.environ(MCP_STATELESS="true", MCP_CURSOR_KEY=CURSOR_KEY)
    with main_process(environ) as (_, url_a), main_process(environ) as (_, url_b):
        yield [url_a + "/mcp", url_b + "/mcp"]


CURSOR_KEY = "one key for every replica of this deployment"


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


async def three_calls(client: Client[Any]) -> list[str]:
    """count_devices three times over one client session; the answers' texts."""
    async with client:
        results = [await client.call_tool("count_devices", {}) for _ in range(3)]
    return [text_of(r) for r in results]


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_stateless_replicas_serve_one_client_alternately(
    stateless_pair: list[str], sim: Simulated, mode: Literal["legacy", "auto"]
) -> None:
    ports = [_port(u) for u in stateless_pair]
    balancer = RoundRobin(ports)
    answers = await three_calls(balanced_client(stateless_pair, sim.token("admin"), mode, balancer))
    assert answers[0] == answers[1] == answers[2]
    assert '"total":' in answers[0]
    assert balancer.visits[:3] == [ports[0], ports[1], ports[0]], "requests went A, B, A"
    assert set(balancer.visits) == set(ports)


async def test_stateful_servers_cannot_share_a_client(sim: Simulated) -> None:
    """The control: without MCP_STATELESS, B does not know the session A started."""
    with (
        serve_in_thread(settings_from(sim.environ())) as a,
        serve_in_thread(settings_from(sim.environ())) as b,
    ):
        urls = [a.mcp_url, b.mcp_url]
        balancer = RoundRobin([_port(u) for u in urls])
        with pytest.raises(Exception, match=r"(?i)session"):
            await three_calls(balanced_client(urls, sim.token("admin"), "legacy", balancer))
        await balancer.aclose()


async def _walk(client: Client[Any], limit: int) -> tuple[list[str], list[int]]:
    """Every device name, following next.arguments; and the length of each cursor."""
    names: list[str] = []
    cursors: list[int] = []
    arguments: dict[str, Any] | None = {"limit": limit, "fields": ["metadata.name"]}
    async with client:
        while arguments is not None:
            answer = json.loads(text_of(await client.call_tool("query_devices", arguments)))
            names += [item["metadata"]["name"] for item in answer["data"]]
            arguments = answer["next"]["arguments"] if "next" in answer else None
            if arguments is not None:
                cursors.append(len(arguments["cursor"]))
    return names, cursors


async def test_a_cursor_from_one_replica_continues_on_the_other(
    stateless_pair: list[str], sim: Simulated
) -> None:
    """Replicas sharing MCP_CURSOR_KEY: each page comes from the other process, and the walk is exact."""
    ports = [_port(u) for u in stateless_pair]
    balancer = RoundRobin(ports)
    token = sim.token("admin")
    names, cursors = await _walk(balanced_client(stateless_pair, token, "legacy", balancer), limit=6)
    assert names == sorted(sim.device_names(token))
    assert len(cursors) >= 3
    assert max(cursors) <= 200
    assert set(balancer.visits) == set(ports)


async def test_replicas_without_a_shared_cursor_key_say_what_to_set(sim: Simulated) -> None:
    environ = sim.environ(MCP_STATELESS="true")
    token = sim.token("admin")
    with main_process(environ) as (_, url_a), main_process(environ) as (_, url_b):
        async with Client(url_a + "/mcp", auth=token) as a:
            first = json.loads(text_of(await a.call_tool("query_devices", {"limit": 2})))
        async with Client(url_b + "/mcp", auth=token) as b:
            refused = await b.call_tool("query_devices", first["next"]["arguments"], raise_on_error=False)
    assert refused.is_error
    assert "MCP_CURSOR_KEY" in text_of(refused)


async def test_another_callers_cursor_is_refused(stateless_pair: list[str], sim: Simulated) -> None:
    """Pass-through callers: a cursor is bound to the caller it was issued to, on every replica."""
    async with Client(stateless_pair[0], auth=sim.token("admin")) as admin:
        issued = json.loads(text_of(await admin.call_tool("query_devices", {"limit": 2})))
    async with Client(stateless_pair[1], auth=sim.token("operator")) as operator:
        refused = await operator.call_tool("query_devices", issued["next"]["arguments"], raise_on_error=False)
    assert refused.is_error
    assert "another caller" in text_of(refused)
