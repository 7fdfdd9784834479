"""The query tools against the simulator over HTTPS: selectors, limits, paging, get-by-name and errors."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import trustme

from auth import StaticTokenSource
from config import Secret
from resource_queries import KINDS, ResourceKind
from simulator.harness import SimulatorServer
from simulator.state import DEFAULT_ORG
from tests.query_support import call, client_for, error_of, https_simulator, names, page_all, services_for

Sim = tuple[SimulatorServer, trustme.CA]


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    with https_simulator(tmp_path_factory.mktemp("sim"), devices=60) as running:
        yield running


@pytest.fixture(autouse=True)
def _no_leftover_faults(sim: Sim) -> Iterator[None]:
    yield
    sim[0].faults.clear()


def _scope(sim: SimulatorServer, kind: ResourceKind) -> dict[str, str]:
    """The parent argument of a nested kind (the first fleet with template versions); none for a flat one."""
    if kind.parent_arg is None:
        return {}
    record = next(iter(sim.state.org(DEFAULT_ORG).collections["templateversions"]))
    return {kind.parent_arg: record.doc["spec"]["fleet"]}


def _api_path(sim: SimulatorServer, kind: ResourceKind) -> str:
    path = kind.path
    for arg, value in _scope(sim, kind).items():
        path = path.replace("{" + arg + "}", value)
    return "/api/v1" + path


def _match_all(kind: ResourceKind) -> dict[str, str]:
    """Selectors that every object satisfies, so paging with them must still visit everything."""
    selectors = {"field_selector": "metadata.name!=no-such-object"}
    if kind.label_selector:
        selectors["label_selector"] = "!no-such-label"
    return selectors


def _list_requests(sim: SimulatorServer, kind: ResourceKind) -> list[dict[str, list[str]]]:
    return [
        parse_qs(r["query"])
        for r in sim.state.requests()
        if r["method"] == "GET" and r["path"] == _api_path(sim, kind)
    ]


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
async def test_paging_with_small_limits_visits_every_object_once_and_resends_selectors(
    sim: Sim, kind: ResourceKind
) -> None:
    scope = _scope(sim[0], kind)
    async with client_for(services_for(*sim)) as client:
        everything, _ = await page_all(client, kind.tool, {"limit": 1000, **scope})
        assert everything, f"the simulator has no {kind.plural}"
        sim[0].state.clear_requests()
        small = max(1, len(everything) // 3)
        paged, calls = await page_all(client, kind.tool, {"limit": small, **_match_all(kind), **scope})
    assert names(paged) == names(everything)
    assert calls == math.ceil(len(everything) / small) >= 2
    requests = _list_requests(sim[0], kind)
    assert sum("continue" in q for q in requests) >= calls - 1, "later pages follow the API's continue token"
    for query in requests:
        assert query["fieldSelector"] == ["metadata.name!=no-such-object"]
        assert ("labelSelector" in query) == kind.label_selector
        assert int(query["limit"][0]) <= 1000


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
async def test_each_answer_reports_returned_and_total_and_how_to_continue(
    sim: Sim, kind: ResourceKind
) -> None:
    scope = _scope(sim[0], kind)
    async with client_for(services_for(*sim)) as client:
        everything, _ = await page_all(client, kind.tool, {"limit": 1000, **scope})
        answer = await call(client, kind.tool, {"limit": 1, **scope})
    assert answer["kind"] == kind.kind
    assert answer["returned"] == len(answer["data"]) == 1
    assert answer["total"] == len(everything)
    if len(everything) > 1:
        assert answer["next"]["tool"] == kind.tool
        assert set(answer["next"]["arguments"]) == {"limit", "cursor", *scope}
        assert answer["more"] == len(everything) - 1


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
async def test_get_by_name_returns_that_object(sim: Sim, kind: ResourceKind) -> None:
    scope = _scope(sim[0], kind)
    async with client_for(services_for(*sim)) as client:
        first = (await call(client, kind.tool, {"limit": 2, **scope}))["data"][-1]["metadata"]["name"]
        answer = await call(client, kind.tool, {"name": first, **scope})
    assert answer["kind"] == kind.kind
    assert answer["data"]["metadata"]["name"] == first


async def test_field_selector_filters_and_agrees_with_count_devices(sim: Sim) -> None:
    async with client_for(services_for(*sim)) as client:
        counts = await call(client, "count_devices")
        status, expected = Counter(counts["summaryStatus"]).most_common(1)[0]
        selector = f"status.summary.status={status}"
        devices, _ = await page_all(
            client, "query_devices", {"field_selector": selector, "limit": 7, "fields": ["status.summary"]}
        )
        narrowed = await call(client, "count_devices", {"field_selector": selector})
    assert len(devices) == expected == narrowed["total"]
    assert {d["status"]["summary"]["status"] for d in devices} == {status}


async def test_label_selector_filters_devices(sim: Sim) -> None:
    async with client_for(services_for(*sim)) as client:
        labels = (await call(client, "list_device_labels"))["data"]
        key, values = next(iter(labels.items()))
        devices, _ = await page_all(
            client, "query_devices", {"label_selector": f"{key}={values[0]}", "fields": ["metadata.labels"]}
        )
    assert devices
    assert all(d["metadata"]["labels"][key] == values[0] for d in devices)


async def test_events_order_asc_is_the_reverse_of_the_default(sim: Sim) -> None:
    async with client_for(services_for(*sim)) as client:
        newest_first, _ = await page_all(client, "query_events", {"limit": 1000})
        oldest_first, _ = await page_all(client, "query_events", {"limit": 1000, "order": "asc"})
    assert len(newest_first) > 1
    assert names(oldest_first) == names(newest_first)[::-1]


async def test_every_request_carries_api_version_org_and_bearer(sim: Sim) -> None:
    services = services_for(*sim, organization=DEFAULT_ORG)
    sim[0].state.clear_requests()
    async with client_for(services) as client:
        await call(client, "query_devices", {"limit": 2})
        await call(client, "count_devices")
    requests = [r for r in sim[0].state.requests() if r["path"].startswith("/api/v1/")]
    assert requests
    for request in requests:
        assert request["headers"].get("flightctl-api-version") == "v1beta1"
        assert parse_qs(request["query"]).get("org_id") == [DEFAULT_ORG]
        assert request["authorization_present"]


async def test_unknown_and_contradictory_arguments_are_refused_with_the_rule(sim: Sim) -> None:
    async with client_for(services_for(*sim)) as client:
        assert "limit" in await error_of(client, "query_devices", {"limit": 0})
        assert "label_selector" in await error_of(client, "query_events", {"label_selector": "a=b"})
        assert "name" in await error_of(client, "query_devices", {"name": "../etc"})
        both = await error_of(client, "query_devices", {"fields": ["metadata.labels"], "full": True})
        assert "either fields" in both
        mixed = await error_of(client, "query_devices", {"name": "x", "field_selector": "metadata.name=x"})
        assert "drop field_selector" in mixed


# --- errors from Flight Control -------------------------------------------------------------------------


async def test_bad_field_selector_returns_the_servers_explanation(sim: Sim) -> None:
    async with client_for(services_for(*sim)) as client:
        message = await error_of(client, "query_devices", {"field_selector": "text"})
    assert "400" in message
    assert "Supported selectors are" in message
    assert "status.summary.status" in message


async def test_bad_label_selector_returns_the_servers_explanation(sim: Sim) -> None:
    async with client_for(services_for(*sim)) as client:
        message = await error_of(client, "query_fleets", {"label_selector": "=x"})
    assert "400" in message
    assert "label selector" in message


async def test_unknown_name_is_a_404_that_says_where_to_look(sim: Sim) -> None:
    async with client_for(services_for(*sim)) as client:
        message = await error_of(client, "query_devices", {"name": "no-such-device"})
    assert "404" in message
    assert "no-such-device" in message
    assert "query_devices" in message


async def test_forbidden_kind_is_a_403_with_advice(sim: Sim) -> None:
    async with client_for(services_for(*sim, user="viewer")) as client:
        assert (await call(client, "query_devices", {"limit": 1}))["returned"] == 1
        message = await error_of(client, "query_events", {"limit": 1})
    assert "403" in message
    assert "administrator" in message


async def test_revoked_token_that_cannot_refresh_says_log_in_again(sim: Sim) -> None:
    token = sim[0].issue_access_token("admin", ttl=3600)
    sim[0].revoke(token)
    async with client_for(services_for(*sim, tokens=StaticTokenSource(Secret(token)))) as client:
        message = await error_of(client, "query_devices", {"limit": 1})
    assert "401" in message
    assert "flightctl login" in message


class _RotatingTokens:
    """A token source whose first token was revoked; refreshing issues a new one from the simulator."""

    def __init__(self, sim: SimulatorServer) -> None:
        self._sim = sim
        self.current = sim.issue_access_token("admin", ttl=3600)
        sim.revoke(self.current)
        self.rejected: list[str] = []
        self.identity = "admin"

    async def bearer(self) -> str:
        return self.current

    async def refresh_after_rejection(self, rejected: str) -> str | None:
        self.rejected.append(rejected)
        self.current = self._sim.issue_access_token("admin", ttl=3600)
        return self.current


async def test_a_401_is_retried_once_with_a_refreshed_token(sim: Sim) -> None:
    tokens = _RotatingTokens(sim[0])
    revoked = tokens.current
    async with client_for(services_for(*sim, tokens=tokens)) as client:
        answer = await call(client, "query_devices", {"limit": 1})
    assert answer["returned"] == 1
    assert tokens.rejected == [revoked]


class _RevokedRefreshes:
    """A token source whose every token, the refreshed one too, was revoked before it was handed out."""

    def __init__(self, sim: SimulatorServer) -> None:
        self._sim = sim
        self.current = self._revoked()
        self.rejected: list[str] = []
        self.identity = "admin"

    def _revoked(self) -> str:
        token = self._sim.issue_access_token("admin", ttl=3600)
        self._sim.revoke(token)
        return token

    async def bearer(self) -> str:
        return self.current

    async def refresh_after_rejection(self, rejected: str) -> str | None:
        self.rejected.append(rejected)
        self.current = self._revoked()
        return self.current


async def test_a_401_is_retried_only_once(sim: Sim) -> None:
    tokens = _RevokedRefreshes(sim[0])
    first = tokens.current
    sim[0].state.clear_requests()
    async with client_for(services_for(*sim, tokens=tokens)) as client:
        message = await error_of(client, "query_devices", {"limit": 1})
    assert tokens.rejected == [first], "exactly one refresh, after the first 401"
    statuses = [r["status"] for r in sim[0].state.requests() if r["path"] == "/api/v1/devices"]
    assert statuses == [401, 401], statuses
    assert "401" in message
    assert "flightctl login" in message


async def test_a_short_rate_limit_is_retried_after_retry_after(sim: Sim) -> None:
    sim[0].faults.rate_limit(1, retry_after=1, path_prefix="/api/v1/fleets")
    started = time.monotonic()
    async with client_for(services_for(*sim)) as client:
        answer = await call(client, "query_fleets", {"limit": 1})
    assert answer["returned"] == 1
    assert time.monotonic() - started >= 1.0, "Retry-After must be honoured"


@pytest.mark.parametrize(
    ("inject", "expected"),
    [
        (lambda f: f.rate_limit(20, retry_after=1, path_prefix="/api/v1/devices"), ["429", "rate limiting"]),
        (lambda f: f.unavailable(20, path_prefix="/api/v1/devices"), ["503", "unavailable"]),
    ],
    ids=["429", "503"],
)
async def test_persistent_429_and_503_give_up_within_the_cap_and_say_so(
    sim: Sim, inject: Any, expected: list[str]
) -> None:
    inject(sim[0].faults)
    sim[0].state.clear_requests()
    async with client_for(services_for(*sim)) as client:
        message = await error_of(client, "query_devices", {"limit": 1})
    assert all(word in message for word in expected), message
    assert "retried" in message
    # Given up after a bounded number of attempts (the API client's four), not retried until a timeout.
    tries = [r for r in sim[0].state.requests() if r["path"] == "/api/v1/devices"]
    assert 1 < len(tries) <= 4, len(tries)


async def test_one_503_is_retried_transparently(sim: Sim) -> None:
    sim[0].faults.unavailable(1, path_prefix="/api/v1/devices")
    async with client_for(services_for(*sim)) as client:
        assert (await call(client, "count_devices"))["total"] > 0


async def test_slow_api_hits_the_request_timeout(sim: Sim) -> None:
    sim[0].faults.set_latency(1500)
    async with client_for(services_for(*sim, request_timeout=0.5)) as client:
        message = await error_of(client, "query_fleets", {})
    assert "did not answer within 0.5 s" in message


async def test_wrong_ca_is_refused_with_tls_advice(sim: Sim, tmp_path: Path) -> None:
    other = trustme.CA()
    async with client_for(services_for(sim[0], other)) as client:
        message = await error_of(client, "query_fleets", {})
    assert "TLS" in message
    assert "CA_CERT_PATH" in message


async def test_concurrent_calls_run_together_not_one_after_another(sim: Sim) -> None:
    async with client_for(services_for(*sim)) as client:
        sim[0].faults.set_latency(500)
        try:
            answers = await asyncio.gather(*(call(client, "query_fleets", {"limit": 1}) for _ in range(16)))
            together = sim[0].faults.most_waiting
        finally:
            sim[0].faults.set_latency(0)
    assert all(a["returned"] == 1 for a in answers)
    # One after another, Flight Control would never see more than one of them waiting at a time.
    assert together >= 8, f"at most {together} of 16 calls ran together"
