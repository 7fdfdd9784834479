"""The read-only REST API over a real socket, against the simulator, in pass-through mode.

What a user notices: the same answers as the MCP tools, Flight Control's permissions per caller, JSON
errors with a fitting status, and an OpenAPI document that matches what is served and what is in docs/.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastmcp import Client

import rest_api
from errors import Audience, user_error
from operations import OPERATIONS
from tests.http_harness import (
    ServedApp,
    Simulated,
    bearer,
    serve_in_thread,
    settings_from,
    simulated,
    text_of,
)

REGENERATE = "python scripts/gen_docs.py"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulated]:
    with simulated(tmp_path_factory.mktemp("rest")) as running:
        yield running


@pytest.fixture(scope="module")
def served(sim: Simulated) -> Iterator[ServedApp]:
    with serve_in_thread(settings_from(sim.environ())) as app:
        yield app


@pytest.fixture(scope="module")
def rest(served: ServedApp) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=30) as client:
        yield client


async def tool_text(served: ServedApp, token: str, tool: str, arguments: dict[str, Any]) -> str:
    async with Client(served.mcp_url, auth=token) as client:
        result = await client.call_tool(tool, arguments, raise_on_error=False)
    assert not result.is_error, result.content
    return text_of(result)


def _still(value: Any) -> Any:
    """The answer without lastSeen: simulated devices keep reporting in between the two calls."""
    if isinstance(value, dict):
        return {k: _still(v) for k, v in value.items() if k != "lastSeen"}
    if isinstance(value, list):
        return [_still(v) for v in value]
    return value


def same_answer(rest_text: str, tool_text: str) -> bool:
    return bool(_still(json.loads(rest_text)) == _still(json.loads(tool_text)))


# (REST path, query, tool, arguments): the same question asked both ways.
SAME_QUESTION: list[tuple[str, dict[str, Any], str, dict[str, Any]]] = [
    ("/rest/v1/devices", {"limit": 5}, "query_devices", {"limit": 5}),
    (
        "/rest/v1/devices",
        {"limit": 3, "fields": ["metadata.name", "status.summary.status"]},
        "query_devices",
        {"limit": 3, "fields": ["metadata.name", "status.summary.status"]},
    ),
    ("/rest/v1/fleets", {"limit": 2, "full": "true"}, "query_fleets", {"limit": 2, "full": True}),
    ("/rest/v1/events", {"limit": 4, "order": "asc"}, "query_events", {"limit": 4, "order": "asc"}),
    ("/rest/v1/device-counts", {}, "count_devices", {}),
    ("/rest/v1/device-labels", {"key": "region"}, "list_device_labels", {"key": "region"}),
]


@pytest.mark.parametrize(
    ("path", "query", "tool", "arguments"), SAME_QUESTION, ids=[q[0] for q in SAME_QUESTION]
)
async def test_rest_answer_is_the_tool_answer(
    served: ServedApp, sim: Simulated, path: str, query: dict[str, Any], tool: str, arguments: dict[str, Any]
) -> None:
    token = sim.token("admin")
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as rest:
        response = await rest.get(path, params=query, headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert same_answer(response.text, await tool_text(served, token, tool, arguments))


async def test_one_object_by_name_in_the_path(served: ServedApp, sim: Simulated) -> None:
    token = sim.token("admin")
    async with httpx.AsyncClient(base_url=served.url, timeout=30, headers=bearer(token)) as rest:
        name = _first_name((await rest.get("/rest/v1/devices", params={"limit": 1})).json())
        one = await rest.get(f"/rest/v1/devices/{name}")
        rendered = await rest.get(f"/rest/v1/devices/{name}/rendered-config")
    assert one.status_code == 200, one.text
    assert same_answer(one.text, await tool_text(served, token, "query_devices", {"name": name}))
    assert rendered.status_code == 200, rendered.text
    assert same_answer(
        rendered.text, await tool_text(served, token, "get_device_rendered_config", {"name": name})
    )


def _first_name(answer: dict[str, Any]) -> str:
    """The first object name in a list answer, wherever the compact view puts it."""
    item = answer["data"][0]
    name = item.get("name") or item.get("metadata", {}).get("name")
    assert isinstance(name, str), item
    return name


def test_each_caller_sees_what_flight_control_lets_them(rest: httpx.Client, sim: Simulated) -> None:
    seen: dict[str, set[str]] = {}
    for user in ("admin", "lab"):
        token = sim.token(user)
        query: dict[str, Any] = {"limit": 1000, "fields": ["metadata.name"]}
        response = rest.get("/rest/v1/devices", params=query, headers=bearer(token))
        assert response.status_code == 200, response.text
        seen[user] = {_name(item) for item in response.json()["data"]}
        assert seen[user] == sim.device_names(token), (
            f"{user} sees exactly what Flight Control lists for them"
        )
    assert not seen["admin"] & seen["lab"], (
        "the lab organization's devices are not the default organization's"
    )


def _name(item: dict[str, Any]) -> str:
    return str(item.get("name") or item.get("metadata", {}).get("name"))


@pytest.mark.parametrize(
    ("path", "query", "user", "status", "says"),
    [
        ("/rest/v1/events", {"limit": 1}, "viewer", 403, ""),
        ("/rest/v1/devices", {"limit": 0}, "admin", 400, "limit"),
        ("/rest/v1/devices", {"limit": "many"}, "admin", 400, "limit"),
        ("/rest/v1/devices", {"colour": "blue"}, "admin", 400, "colour"),
        ("/rest/v1/devices", {"field_selector": "no.such.field=1"}, "admin", 400, "no.such.field"),
        ("/rest/v1/devices/no-such-device-anywhere", {}, "admin", 404, "no-such-device-anywhere"),
    ],
    ids=[
        "rbac-forbidden",
        "limit-too-small",
        "limit-not-a-number",
        "unknown-param",
        "bad-selector",
        "not-found",
    ],
)
def test_errors_are_json_with_a_fitting_status(
    rest: httpx.Client, sim: Simulated, path: str, query: dict[str, Any], user: str, status: int, says: str
) -> None:
    response = rest.get(path, params=query, headers=bearer(sim.token(user)))
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert isinstance(body["error"], str)
    assert body["error"]
    assert says in body["error"]


async def test_rest_errors_carry_no_tool_advice_that_tool_errors_do(
    served: ServedApp, sim: Simulated
) -> None:
    """One error adapter, two audiences: the same 404 names the listing tool only to a tool caller."""
    token = sim.token("admin")
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as rest:
        response = await rest.get("/rest/v1/devices/no-such-device-anywhere", headers=bearer(token))
    async with Client(served.mcp_url, auth=token) as client:
        result = await client.call_tool(
            "query_devices", {"name": "no-such-device-anywhere"}, raise_on_error=False
        )
    assert response.status_code == 404, response.text
    assert result.is_error
    rest_message, tool_message = response.json()["error"], text_of(result)
    assert "no-such-device-anywhere" in rest_message
    assert "query_" not in rest_message, rest_message
    assert "tool" not in rest_message, rest_message
    assert tool_message.startswith(rest_message), (tool_message, rest_message)
    assert "query_devices" in tool_message


@pytest.mark.parametrize("audience", ["tool", "rest", "cli"])
def test_an_unexpected_failure_is_logged_and_never_shown(
    audience: Audience, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug's exception text (which may hold anything) reaches the log with its traceback, not the caller."""
    try:
        raise RuntimeError("token=abc123 leaked by a bug")
    except RuntimeError as exc:
        failure = user_error(exc, audience, operation="query_devices")
    assert failure.status == 500
    assert "abc123" not in failure.message
    assert "server log" in failure.message
    assert any(r.exc_info and "abc123" in str(r.exc_info[1]) for r in caplog.records)


def test_flight_control_rate_limit_reaches_the_caller_with_retry_after(
    rest: httpx.Client, sim: Simulated
) -> None:
    sim.sim.faults.rate_limit(5, retry_after=60, path_prefix="/api/v1/devices")
    try:
        response = rest.get("/rest/v1/devices", params={"limit": 1}, headers=bearer(sim.token("admin")))
    finally:
        sim.sim.faults.clear()
    assert response.status_code == 429, response.text
    assert int(response.headers["retry-after"]) >= 1
    assert "error" in response.json()


def test_rest_needs_the_same_bearer_as_mcp(rest: httpx.Client) -> None:
    missing = rest.get("/rest/v1/devices")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    refused = rest.get("/rest/v1/devices", headers=bearer("not-a-flight-control-token"))
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]


def test_served_openapi_matches_docs(rest: httpx.Client) -> None:
    served = rest.get(rest_api.OPENAPI_PATH)  # no token: the document holds no secrets
    assert served.status_code == 200
    checked_in = (rest_api.DOCS_DIR / "openapi.json").read_text()
    assert served.text == checked_in, f"docs/openapi.json is stale: run `{REGENERATE}`"
    doc = (rest_api.DOCS_DIR / "rest-api.md").read_text()
    assert doc == rest_api.render_rest_doc(doc), (
        f"docs/rest-api.md's endpoint table is stale: run `{REGENERATE}`"
    )


def test_every_read_only_operation_has_a_route_and_paths_are_unique() -> None:
    found = rest_api.endpoints()
    assert {e.operation.name for e in found} == {op.name for op in OPERATIONS if op.read_only}
    assert "run_command_on_device" not in {e.operation.name for e in found}
    assert len({e.path for e in found}) == len(found)
    assert len({e.operation_id for e in found}) == len(found)
    document = rest_api.openapi_document()
    assert document["openapi"].startswith("3.1")
    for endpoint in found:
        operation = document["paths"][endpoint.path]["get"]
        assert {p["name"] for p in operation["parameters"]} == set(endpoint.path_params) | set(
            endpoint.query_params
        )


@pytest.mark.parametrize("mode", ["server", "shared-secret"])
def test_rest_serves_with_the_servers_own_credentials_in_each_mode(sim: Simulated, mode: str) -> None:
    """On loopback without caller auth (the default of a clone), and with a shared secret."""
    extra = {"MCP_SHARED_SECRET": "s3cret-for-the-test"} if mode == "shared-secret" else {}
    environ = sim.environ(MCP_AUTH_MODE=mode, ACCESS_TOKEN=sim.token("admin"), **extra)
    headers = bearer("s3cret-for-the-test") if extra else {}
    with serve_in_thread(settings_from(environ)) as app:
        answer = httpx.get(app.url + "/rest/v1/device-counts", headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["total"] == len(sim.device_names(sim.token("admin")))
