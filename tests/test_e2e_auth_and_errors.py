"""Sessions and errors, end to end: short-lived tokens refreshed and rotated during a walk, a revoked or
expired session telling the user to run `flightctl login`, and 400/401/403/404/429/503 from the API
becoming tool errors that say what happened (429/503 retried first).

Part of the end-to-end specification that test_flightctl_mcp.py opens; helpers in tests/e2e_harness.py,
fixtures (``sim``, ``ca_file``) in conftest.py.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from simulator.harness import SimulatorServer
from test_live_instance import (
    answer_of,
    check_bad_selector_explains_grammar,
    check_unknown_device_is_not_found,
    error_of,
    walk,
)
from tests.e2e_harness import OIDC_TOKEN_PATH, base_env, env_only, in_memory, requests_to, truth

pytestmark = pytest.mark.usefixtures("no_faults_left_behind")


def refresh_token_is_spent(sim: SimulatorServer, ca_file: Path, refresh_token: str) -> str:
    """What the identity provider says now when ``refresh_token`` is used (once spent: invalid_grant)."""
    response = httpx.post(
        sim.oidc_token_url,
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": "flightctl"},
        verify=ssl.create_default_context(cafile=str(ca_file)),
    )
    return f"{response.status_code} {response.json().get('error')}"


# --- authentication -----------------------------------------------------------------------------------


async def test_short_lived_tokens_are_refreshed_and_rotated_during_a_walk(
    sim: SimulatorServer, ca_file: Path, tmp_path: Path
) -> None:
    """Access tokens live 2 s, the walk takes longer: tokens expire mid-pagination, each refresh spends
    the refresh token (the simulator rotates it), and the walk still returns every device once."""
    tokens = sim.state.issue_tokens("admin", access_ttl=2)
    env = env_only(sim, ca_file, tmp_path, refresh_token=tokens.refresh_token)
    latency = 0.15  # 15 pages and two refreshes take at least 2.4 s: longer than one token lives
    sim.faults.set_latency(latency * 1000)
    sim.state.clear_requests()

    async with in_memory(env) as client:
        names, answers = await walk(client, "query_devices", {"limit": 2})
    refreshes = requests_to(sim, OIDC_TOKEN_PATH, "POST")
    pages = requests_to(sim, "/api/v1/devices")

    assert names == truth(sim, ca_file, "devices")
    assert len(answers) == 15
    # the first token was issued at most latency + 2 s after its refresh request arrived
    first_expiry = refreshes[0]["time"] + latency + 2
    assert pages[-1]["time"] > first_expiry, "the walk must outlive the first token to mean anything"
    assert len(refreshes) >= 2, f"{len(refreshes)} refresh(es) for a walk that outlived its token"
    assert all(r["status"] == 200 for r in refreshes), "a refresh was refused: a spent token was reused"
    assert refresh_token_is_spent(sim, ca_file, tokens.refresh_token) == "400 invalid_grant"


@pytest.mark.parametrize("session", ["revoked refresh token", "revoked access token", "expired session"])
async def test_a_dead_session_says_to_run_flightctl_login(
    session: str, make_simulator: Callable[..., SimulatorServer], ca_file: Path, tmp_path: Path
) -> None:
    private = make_simulator(devices=5)
    if session == "revoked access token":
        token = private.issue_access_token("admin", ttl=600)
        private.revoke(token)
        env = base_env(tmp_path, API_BASE_URL=private.base_url, CA_CERT_PATH=str(ca_file), ACCESS_TOKEN=token)
    else:
        tokens = private.issue_tokens("admin")
        env = env_only(private, ca_file, tmp_path, refresh_token=tokens.refresh_token)
        if session == "revoked refresh token":
            private.revoke(tokens.refresh_token)

    async with in_memory(env) as client:
        if session == "expired session":
            assert (await answer_of(client, "query_devices", {"limit": 2}))["returned"] == 2
            private.state.clock.advance(private.state.refresh_token_ttl + 60)  # a long weekend
        message = await error_of(client, "query_devices", {"limit": 2})

    assert "flightctl login" in message, message
    if session == "revoked access token":
        assert "401" in message, message
    else:
        assert "invalid_grant" in message, message


# --- errors -------------------------------------------------------------------------------------------


async def test_api_errors_become_tool_errors_that_say_what_to_do(
    sim: SimulatorServer, ca_file: Path, tmp_path: Path
) -> None:
    async with in_memory(env_only(sim, ca_file, tmp_path / "admin")) as client:
        await check_bad_selector_explains_grammar(client)  # 400 with the server's grammar
        await check_unknown_device_is_not_found(client)  # 404 naming the tool that lists names
        message = await error_of(client, "query_events", {"field_selector": "type>3"})
        assert "400" in message, message
        assert 'operator "gt" is unsupported' in message, message

    async with in_memory(env_only(sim, ca_file, tmp_path / "viewer", user="viewer")) as client:
        assert (await answer_of(client, "query_devices", {"limit": 1}))["returned"] == 1
        message = await error_of(client, "query_events", {"limit": 1})  # viewers may not read events
    assert "403" in message, message
    assert "Forbidden" in message, message
    assert "administrator" in message, message


async def test_429_and_503_are_retried_then_given_up_with_a_clear_error(
    sim: SimulatorServer, ca_file: Path, tmp_path: Path
) -> None:
    async with in_memory(env_only(sim, ca_file, tmp_path)) as client:
        await answer_of(client, "query_devices", {"limit": 1})  # sign in before timing anything

        # one 429 (Retry-After: 1) and one 503: retried behind the scenes, the user sees answers
        sim.faults.rate_limit(1, retry_after=1, path_prefix="/api/v1/devices")
        sim.faults.unavailable(1, path_prefix="/api/v1/fleets")
        started = time.monotonic()
        devices, fleets = await asyncio.gather(
            answer_of(client, "query_devices", {"limit": 3}),
            answer_of(client, "query_fleets", {"limit": 3}),
        )
        assert devices["returned"] == 3
        assert fleets["returned"] == 3
        assert time.monotonic() - started >= 1.0, "Retry-After: 1 was not honoured"
        assert [r["status"] for r in requests_to(sim, "/api/v1/devices")][-2:] == [429, 200]
        assert [r["status"] for r in requests_to(sim, "/api/v1/fleets")][-2:] == [503, 200]

        # a 429 and a 503 that do not stop: given up within the cap, and the user is told
        sim.state.clear_requests()
        sim.faults.rate_limit(100, retry_after=1, path_prefix="/api/v1/devices")
        sim.faults.unavailable(100, retry_after=1, path_prefix="/api/v1/fleets")
        limited, unavailable = await asyncio.gather(
            error_of(client, "query_devices", {"limit": 3}), error_of(client, "query_fleets", {"limit": 3})
        )

    assert "429" in limited, limited
    assert "retried" in limited, limited
    assert "rate limit" in limited.lower(), limited
    assert "503" in unavailable, unavailable
    assert "unavailable" in unavailable.lower(), unavailable
    assert "retried" in unavailable, unavailable
    # Retried, but a bounded number of times (the API client's four attempts), then given up.
    assert 1 < len(requests_to(sim, "/api/v1/devices")) <= 4
    assert 1 < len(requests_to(sim, "/api/v1/fleets")) <= 4
