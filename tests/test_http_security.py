"""Serving over the network safely, shown over real loopback sockets against the simulator.

Each test is something an operator or an attacker would notice: who gets in, as whom, what is refused
(and with which status), and how the process starts and stops.
"""

from __future__ import annotations

import asyncio
import json
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

import caller_auth
import http_server
from config import HTTPSettings, Settings
from errors import ConfigurationError
from tests.http_harness import (
    INITIALIZE,
    MCP_HEADERS,
    ROOT,
    ServedApp,
    Simulated,
    bearer,
    main_process,
    refused_port,
    serve_in_thread,
    settings_from,
    simulated,
    text_of,
)


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulated]:
    with simulated(tmp_path_factory.mktemp("security")) as running:
        yield running


@pytest.fixture(scope="module")
def environ(sim: Simulated) -> dict[str, str]:
    """Pass-through on loopback; the server's own credentials are an admin token, which pass-through
    callers must never get to use."""
    return sim.environ(
        ACCESS_TOKEN=sim.token("admin"),
        MCP_MAX_BODY_BYTES="4096",
        MCP_ALLOWED_ORIGINS="https://console.example.com",
    )


@pytest.fixture(scope="module")
def served(environ: dict[str, str]) -> Iterator[ServedApp]:
    with serve_in_thread(settings_from(environ)) as app:
        yield app


@pytest.fixture
def http(served: ServedApp) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=30) as client:
        yield client


async def device_names(url: str, token: str) -> set[str]:
    """The device names an MCP caller with this bearer gets from query_devices."""
    async with Client(url, auth=token) as client:
        result = await client.call_tool("query_devices", {"limit": 1000, "fields": ["metadata.name"]})
    assert not result.is_error
    text = text_of(result)
    return {
        str(item.get("metadata", {}).get("name") or item.get("name")) for item in json.loads(text)["data"]
    }


# --- who gets in, as whom -------------------------------------------------------------------------


def test_no_token_gets_401_with_a_bearer_challenge(http: httpx.Client, served: ServedApp) -> None:
    response = http.post(served.settings.path, json=INITIALIZE, headers=MCP_HEADERS)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_token_flight_control_refuses_gets_401(http: httpx.Client, served: ServedApp) -> None:
    headers = {**MCP_HEADERS, **bearer("forged.token.value")}
    response = http.post(served.settings.path, json=INITIALIZE, headers=headers)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_each_caller_sees_what_their_own_token_allows(served: ServedApp, sim: Simulated) -> None:
    admin, lab = sim.token("admin"), sim.token("lab")
    assert await device_names(served.mcp_url, admin) == sim.device_names(admin)
    assert await device_names(served.mcp_url, lab) == sim.device_names(lab), (
        "lab is in another organization: it must see its own devices, not the server's (admin) view"
    )
    assert not sim.device_names(admin) & sim.device_names(lab)


async def test_pass_through_callers_choose_their_own_organization(sim: Simulated) -> None:
    default_org, lab_org = "00000000-0000-0000-0000-000000000000", "7e3a4b52-1c1d-4a8e-9f0a-2b6c8d9e0f11"
    environ = sim.environ(ACCESS_TOKEN=sim.token("admin"), ORG_ID=default_org)
    lab, multi = sim.token("lab"), sim.token("multi")

    async def names(token: str, headers: dict[str, str] | None = None) -> tuple[bool, str]:
        transport = StreamableHttpTransport(app.mcp_url, headers=headers or {}, auth=token)
        async with Client(transport) as client:
            result = await client.call_tool("query_devices", {"limit": 1000}, raise_on_error=False)
        return result.is_error, text_of(result)

    with serve_in_thread(settings_from(environ)) as app:
        failed, text = await names(lab)
        assert not failed, "the server's ORG_ID (default org) must not be imposed on a lab caller: " + text
        assert {i["metadata"]["name"] for i in json.loads(text)["data"]} == sim.device_names(lab)
        failed, text = await names(multi)
        assert failed
        assert "multiple organizations" in text, "Flight Control's own advice reaches the caller"
        failed, text = await names(multi, {"Flightctl-Org-Id": lab_org})
        assert not failed, text
        assert {i["metadata"]["name"] for i in json.loads(text)["data"]} == sim.device_names(lab)
        failed, text = await names(lab, {"Flightctl-Org-Id": "not-a-uuid"})
        assert failed
        assert "must be an organization UUID" in text
        async with httpx.AsyncClient(base_url=app.url, timeout=30) as http:
            rest = await http.get(
                "/rest/v1/devices",
                params={"limit": 1000},
                headers={**bearer(multi), "Flightctl-Org-Id": lab_org},
            )
        assert rest.status_code == 200, rest.text
        assert {i["metadata"]["name"] for i in rest.json()["data"]} == sim.device_names(lab)


async def test_rbac_denial_reaches_the_caller(served: ServedApp, sim: Simulated) -> None:
    async with Client(served.mcp_url, auth=sim.token("viewer")) as client:
        events = await client.call_tool("query_events", {"limit": 1}, raise_on_error=False)
        devices = await client.call_tool("query_devices", {"limit": 1}, raise_on_error=False)
    assert events.is_error, "viewer may not list events in the simulator's RBAC"
    assert "403" in text_of(events)
    assert not devices.is_error


async def test_a_callers_token_is_validated_once_not_per_request(served: ServedApp, sim: Simulated) -> None:
    opaque = "an-opaque-operator-token-flight-control-knows"
    sim.sim.state.add_static_token(opaque, "operator")
    before = sim.validations()
    async with httpx.AsyncClient(base_url=served.url, timeout=30, headers=bearer(opaque)) as http:
        together = await asyncio.gather(*(http.get("/rest/v1/device-counts") for _ in range(8)))
        later = await http.get("/rest/v1/device-counts")
    assert [r.status_code for r in [*together, later]] == [200] * 9
    assert sim.validations() - before == 1, "Flight Control rate-limits /auth/validate: ask once per token"


async def test_a_token_the_issuer_signed_is_checked_locally(served: ServedApp, sim: Simulated) -> None:
    before = sim.validations()
    async with httpx.AsyncClient(
        base_url=served.url, timeout=30, headers=bearer(sim.token("viewer"))
    ) as http:
        assert (await http.get("/rest/v1/device-counts")).status_code == 200
    assert sim.validations() == before, "a JWT signed with the issuer's published key needs no remote check"
    signed = sim.token("viewer")
    forged = signed[: signed.rindex(".") + 1] + "A" * 40
    async with httpx.AsyncClient(base_url=served.url, timeout=30, headers=bearer(forged)) as http:
        assert (await http.get("/rest/v1/device-counts")).status_code == 401
    assert sim.validations() == before, "a forged signature is refused without asking Flight Control"


async def test_pass_through_works_over_sse(sim: Simulated, environ: dict[str, str]) -> None:
    with serve_in_thread(settings_from({**environ, "MCP_TRANSPORT": "sse"})) as app:
        lab = sim.token("lab")
        async with Client(app.url + "/sse", auth=lab) as client:
            result = await client.call_tool("query_devices", {"limit": 1000, "fields": ["metadata.name"]})
        async with httpx.AsyncClient(base_url=app.url, timeout=10) as http:
            refused = await http.get("/sse")
    assert {i["metadata"]["name"] for i in json.loads(text_of(result))["data"]} == sim.device_names(lab)
    assert refused.status_code == 401


# --- what is refused ------------------------------------------------------------------------------


def test_a_rebinding_host_is_refused(http: httpx.Client, served: ServedApp, sim: Simulated) -> None:
    token = sim.token("admin")
    for path in (served.settings.path, "/rest/v1/device-counts"):
        response = http.request(
            "POST" if path == served.settings.path else "GET",
            path,
            json=INITIALIZE if path == served.settings.path else None,
            headers={**MCP_HEADERS, **bearer(token), "Host": "attacker.example:80"},
        )
        assert response.status_code == 421, path


def test_a_foreign_origin_is_refused_and_an_allowed_one_is_not(http: httpx.Client, sim: Simulated) -> None:
    token = bearer(sim.token("admin"))
    foreign = http.get("/rest/v1/device-counts", headers={**token, "Origin": "https://attacker.example"})
    allowed = http.get("/rest/v1/device-counts", headers={**token, "Origin": "https://console.example.com"})
    assert foreign.status_code == 403
    assert allowed.status_code == 200


def test_an_oversized_body_is_refused(http: httpx.Client, served: ServedApp, sim: Simulated) -> None:
    headers = {**MCP_HEADERS, **bearer(sim.token("admin"))}
    padded = {**INITIALIZE, "padding": "x" * 5000}
    declared = http.post(served.settings.path, json=padded, headers=headers)
    assert declared.status_code == 413
    assert "4096" in declared.json()["error"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must hold while streaming
        yield b'{"jsonrpc":"2.0","padding":"'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    streamed = http.post(served.settings.path, content=chunks(), headers=headers)
    assert streamed.status_code == 413


def test_rate_limit_answers_429_per_caller(sim: Simulated, environ: dict[str, str]) -> None:
    with (
        serve_in_thread(settings_from({**environ, "MCP_RATE_LIMIT": "5"})) as app,
        httpx.Client(base_url=app.url, timeout=30) as http,
    ):
        greedy = bearer(sim.token("admin"))
        answers = [http.get("/rest/v1/device-counts", headers=greedy).status_code for _ in range(6)]
        assert answers[:5] == [200] * 5
        assert answers[5] == 429
        refused = http.get("/rest/v1/device-counts", headers=greedy)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert "error" in refused.json()
        other = http.get("/rest/v1/device-counts", headers=bearer(sim.token("operator")))
        assert other.status_code == 200, "another caller has its own budget"
        assert http.get("/healthz").status_code == 200, "health probes are never rate limited"
        token = greedy["Authorization"].removeprefix("Bearer ")
        for scheme in ("bearer", "BEARER", "BeArEr"):
            respelled = http.get("/rest/v1/device-counts", headers={"Authorization": f"{scheme}  {token}"})
            assert respelled.status_code == 429, "spelling the scheme differently is the same caller"


def test_an_expired_token_is_refused_without_asking_flight_control(
    http: httpx.Client, served: ServedApp, sim: Simulated
) -> None:
    before = sim.validations()
    expired = sim.sim.issue_access_token("admin", ttl=-60)
    response = http.get("/rest/v1/device-counts", headers=bearer(expired))
    assert response.status_code == 401
    assert sim.validations() == before


def test_callers_with_opaque_tokens_are_distinct_principals() -> None:
    alice, bob = (
        caller_auth.passthrough_access_token("opaque-a"),
        caller_auth.passthrough_access_token("opaque-b"),
    )
    assert (alice.client_id, alice.subject) != (bob.client_id, bob.subject), "sessions must not be shared"


# --- health -----------------------------------------------------------------------------------------


def test_health_and_readiness_need_no_token(http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}


def test_readiness_reports_refused_credentials_without_showing_them(sim: Simulated) -> None:
    secret = "not-a-token-flight-control-knows"
    environ = sim.environ(MCP_AUTH_MODE="server", ACCESS_TOKEN=secret)
    with serve_in_thread(settings_from(environ)) as app:
        response = httpx.get(app.url + "/readyz", timeout=30)
    assert response.status_code == 503
    assert response.json() == {"status": "not ready"}, "the reason is for the log, not for anyone asking"
    assert secret not in response.text


def test_unreachable_flight_control_is_503_not_401(sim: Simulated) -> None:
    with (
        refused_port() as port,
        serve_in_thread(settings_from(sim.environ(API_BASE_URL=f"https://127.0.0.1:{port}"))) as app,
        httpx.Client(base_url=app.url, timeout=30) as http,
    ):
        ready = http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {"status": "not ready"}
        call = http.post(app.settings.path, json=INITIALIZE, headers={**MCP_HEADERS, **bearer("some-token")})
        assert call.status_code == 503
        assert call.headers["retry-after"]


# --- shared secret ------------------------------------------------------------------------------------


def test_shared_secret_callers_use_the_servers_credentials(sim: Simulated) -> None:
    environ = sim.environ(
        MCP_AUTH_MODE="shared-secret",
        MCP_SHARED_SECRET="correct-horse-battery-staple",
        ACCESS_TOKEN=sim.token("lab"),
    )
    with serve_in_thread(settings_from(environ)) as app, httpx.Client(base_url=app.url, timeout=30) as http:
        query: dict[str, Any] = {"limit": 1000, "fields": ["metadata.name"]}
        good = http.get("/rest/v1/devices", params=query, headers=bearer("correct-horse-battery-staple"))
        wrong = http.get("/rest/v1/devices", headers=bearer("correct-horse-battery-stapler"))
        own_token = http.get("/rest/v1/devices", headers=bearer(sim.token("admin")))
    assert good.status_code == 200
    served_as = {item["metadata"]["name"] for item in good.json()["data"]}
    assert served_as == sim.device_names(sim.token("lab")), "served with the server's own (lab) credentials"
    assert wrong.status_code == 401
    assert own_token.status_code == 401, "shared-secret mode does not accept Flight Control tokens"


# --- starting and stopping --------------------------------------------------------------------------


def test_non_loopback_bind_without_caller_auth_is_refused_in_process() -> None:
    exposed = Settings(
        api_base_url="https://127.0.0.1:1", transport="streamable-http", host="0.0.0.0", http=HTTPSettings()
    )
    with pytest.raises(ConfigurationError, match="MCP_AUTH_MODE=passthrough"):
        http_server.build_http_app(exposed, None, None)  # type: ignore[arg-type]


def test_non_loopback_bind_without_caller_auth_refuses_to_start(sim: Simulated) -> None:
    environ = sim.environ(MCP_HOST="0.0.0.0", MCP_AUTH_MODE="server")
    done = subprocess.run(
        [sys.executable, str(ROOT / "main.py")],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    stderr = done.stderr.decode()
    assert "MCP_AUTH_MODE=passthrough" in stderr
    assert "MCP_SHARED_SECRET" in stderr
    assert done.stdout == b""


def test_tls_listener(sim: Simulated, tmp_path: Path) -> None:
    listener_ca = trustme.CA()
    cert = listener_ca.issue_cert("127.0.0.1")
    cert.private_key_pem.write_to_path(tmp_path / "key.pem")
    cert.cert_chain_pems[0].write_to_path(tmp_path / "cert.pem")
    listener_ca.cert_pem.write_to_path(tmp_path / "ca.pem")
    environ = sim.environ(MCP_TLS_CERT=str(tmp_path / "cert.pem"), MCP_TLS_KEY=str(tmp_path / "key.pem"))
    with serve_in_thread(settings_from(environ)) as app:
        assert app.url.startswith("https://")
        assert (
            httpx.get(
                app.url + "/healthz",
                verify=ssl.create_default_context(cafile=str(tmp_path / "ca.pem")),
                timeout=10,
            ).status_code
            == 200
        )
        with pytest.raises(httpx.HTTPError):
            httpx.get(app.url.replace("https://", "http://") + "/healthz", timeout=5)


def test_sigterm_shuts_down_cleanly(sim: Simulated) -> None:
    with main_process(sim.environ()) as (process, url):
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        assert process.stdout is not None
        assert process.stdout.read() == b""
        with pytest.raises(httpx.HTTPError):
            httpx.get(url + "/healthz", timeout=2)
