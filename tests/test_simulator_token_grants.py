"""Tokens issued and refreshed, over real sockets: rotation as Keycloak does it, the grant errors,
lifetimes, and the token controls under /_sim/."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from simulator.harness import SimulatorServer
from simulator.tokens import decode_jwt_claims
from tests.simulator_calls import bearer


def _oidc_refresh(
    client: httpx.Client, sim: SimulatorServer, refresh_token: str, client_id: str = "flightctl"
) -> httpx.Response:
    return client.post(
        sim.oidc_token_url,
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id},
    )


def _proxy_refresh(
    client: httpx.Client, sim: SimulatorServer, refresh_token: str, *, as_json: bool = False
) -> httpx.Response:
    body = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": "flightctl"}
    if as_json:
        return client.post(sim.token_proxy_url, json=body)
    return client.post(sim.token_proxy_url, data=body)


@pytest.mark.parametrize("endpoint", ["oidc", "proxy-form", "proxy-json"])
def test_refresh_rotates(simulator_client: httpx.Client, simulator: SimulatorServer, endpoint: str) -> None:
    def refresh(token: str) -> httpx.Response:
        if endpoint == "oidc":
            return _oidc_refresh(simulator_client, simulator, token)
        return _proxy_refresh(simulator_client, simulator, token, as_json=endpoint == "proxy-json")

    first = simulator.issue_tokens("viewer", access_ttl=90)
    answer = refresh(first.refresh_token)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 90
    assert body["refresh_token"] != first.refresh_token
    assert decode_jwt_claims(body["access_token"])["preferred_username"] == "viewer"
    assert simulator_client.get("/api/v1/devices", headers=bearer(body["access_token"])).status_code == 200
    reused = refresh(first.refresh_token)
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    assert refresh(body["refresh_token"]).status_code == 200


def test_reused_refresh_token_is_refused_as_keycloak_does(make_simulator: Any) -> None:
    sim = make_simulator(tls=False, devices=3, access_token_ttl=2)
    first = sim.issue_tokens()
    with httpx.Client() as client:
        rotated = _oidc_refresh(client, sim, first.refresh_token).json()
        assert rotated["expires_in"] == 2
        for reuse in (
            _oidc_refresh(client, sim, first.refresh_token),
            _proxy_refresh(client, sim, first.refresh_token),
        ):
            assert reuse.status_code == 400
            assert reuse.json() == {
                "error": "invalid_grant",
                "error_description": "Maximum allowed refresh token reuse exceeded",
            }
        assert _oidc_refresh(client, sim, rotated["refresh_token"]).status_code == 200


def test_without_rotation_a_refresh_token_works_again(make_simulator: Any) -> None:
    sim = make_simulator(tls=False, devices=3, refresh_token_rotation=False)
    first = sim.issue_tokens()
    with httpx.Client() as client:
        assert _oidc_refresh(client, sim, first.refresh_token).status_code == 200
        assert _oidc_refresh(client, sim, first.refresh_token).status_code == 200


def test_refresh_keeps_scopes(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    first = simulator.issue_tokens("admin", scopes=["devices:list"])
    body = _oidc_refresh(simulator_client, simulator, first.refresh_token).json()
    assert simulator_client.get("/api/v1/events", headers=bearer(body["access_token"])).status_code == 403


def test_refresh_errors(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    unknown = _oidc_refresh(simulator_client, simulator, "nope")
    assert unknown.status_code == 400
    assert unknown.json() == {"error": "invalid_grant", "error_description": "Invalid refresh token"}
    assert _proxy_refresh(simulator_client, simulator, "nope").json()["error"] == "invalid_grant"
    wrong_client = _oidc_refresh(simulator_client, simulator, simulator.issue_tokens().refresh_token, "other")
    assert wrong_client.status_code == 401
    assert wrong_client.json()["error"] == "invalid_client"
    revoked = simulator.issue_tokens()
    simulator.revoke(revoked.refresh_token)
    assert (
        _oidc_refresh(simulator_client, simulator, revoked.refresh_token).json()["error"] == "invalid_grant"
    )
    no_grant = simulator_client.post(simulator.oidc_token_url, data={"client_id": "flightctl"})
    assert no_grant.json()["error"] == "invalid_request"
    bad_grant = simulator_client.post(
        simulator.token_proxy_url, data={"grant_type": "magic", "client_id": "flightctl"}
    )
    assert bad_grant.status_code == 400
    assert bad_grant.json()["error"] == "unsupported_grant_type"


def test_refresh_token_lifetime(make_simulator: Any) -> None:
    sim = make_simulator(tls=False, devices=3, refresh_token_ttl=100, access_token_ttl=10)
    tokens = sim.issue_tokens()
    assert tokens.expires_in == 10
    sim.state.clock.advance(101)
    with httpx.Client() as client:
        answer = _oidc_refresh(client, sim, tokens.refresh_token)
    assert answer.status_code == 400
    assert answer.json() == {"error": "invalid_grant", "error_description": "Token is not active"}


def test_sim_token_endpoints(make_simulator: Any) -> None:
    sim = make_simulator(tls=False, devices=3)
    with httpx.Client(base_url=sim.base_url) as client:
        issued = client.post("/_sim/tokens", json={"user": "viewer", "scopes": ["devices:list"]}).json()
        assert client.get("/api/v1/devices", headers=bearer(issued["access_token"])).status_code == 200
        assert client.get("/api/v1/fleets", headers=bearer(issued["access_token"])).status_code == 403
        assert client.post("/_sim/revoke", json={"token": issued["access_token"]}).status_code == 200
        assert client.get("/api/v1/devices", headers=bearer(issued["access_token"])).status_code == 401
        assert client.post("/_sim/revoke", json={"token": "unknown"}).status_code == 404
        other = client.post("/_sim/tokens", json={}).json()
        assert client.post("/_sim/expire", json={"token": other["access_token"]}).status_code == 200
        assert client.get("/api/v1/devices", headers=bearer(other["access_token"])).status_code == 401
        assert client.post("/_sim/tokens", json={"user": "mallory"}).status_code == 400
