"""What every API request passes before its handler, over real sockets: authentication, authorization,
the org_id rules and API version negotiation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from simulator.accounts import DEFAULT_ORG, LAB_ORG
from simulator.harness import SimulatorServer
from simulator.tokens import decode_jwt_claims
from tests.simulator_calls import bearer, status

# --------------------------------------------------------------------------------- authentication


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
        {"Authorization": "token abc"},
        {"Authorization": "Bearer"},
    ],
)
def test_missing_token_is_400(simulator_client: httpx.Client, headers: dict[str, str]) -> None:
    response = simulator_client.get("/api/v1/devices", headers=headers)
    assert status(response) == (400, "failed to get auth token")
    assert response.json()["reason"] == "Bad Request"


def test_unknown_token_is_401(simulator_client: httpx.Client) -> None:
    response = simulator_client.get("/api/v1/devices", headers=bearer("not-a-token"))
    assert status(response) == (401, "failed to validate token")
    assert response.json()["reason"] == "Unauthorized"


def test_expired_token_is_401(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    token = simulator.issue_access_token("admin", ttl=60)
    assert simulator_client.get("/api/v1/version", headers=bearer(token)).status_code == 200
    simulator.expire(token)
    assert status(simulator_client.get("/api/v1/version", headers=bearer(token))) == (
        401,
        "failed to validate token",
    )


def test_token_expires_with_the_clock(make_simulator: Any) -> None:
    sim = make_simulator(tls=False, devices=3)
    token = sim.issue_access_token("admin", ttl=30)
    with httpx.Client(base_url=sim.base_url) as client:
        assert client.get("/api/v1/version", headers=bearer(token)).status_code == 200
        assert client.post("/_sim/clock", json={"advance": 31}).status_code == 200
        assert client.get("/api/v1/version", headers=bearer(token)).status_code == 401


def test_revoked_token_is_401(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    token = simulator.issue_access_token()
    assert simulator.revoke(token)
    assert status(simulator_client.get("/api/v1/version", headers=bearer(token))) == (
        401,
        "failed to validate token",
    )


def test_tokens_are_jwts_with_exp(simulator: SimulatorServer) -> None:
    tokens = simulator.issue_tokens("viewer", access_ttl=120)
    claims = decode_jwt_claims(tokens.access_token)
    assert claims["preferred_username"] == "viewer"
    assert claims["iss"] == simulator.oidc_issuer
    assert claims["exp"] - claims["iat"] == 120
    assert {"sub", "aud", "jti", "scope"} <= set(claims)
    assert decode_jwt_claims(tokens.id_token)["aud"] == "flightctl"
    assert tokens.expires_in == 120
    assert tokens.refresh_token.count(".") == 0


def test_id_token_is_accepted_as_bearer(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    tokens = simulator.issue_tokens("admin")
    assert simulator_client.get("/api/v1/devices?limit=1", headers=bearer(tokens.id_token)).status_code == 200


# ----------------------------------------------------------------------------------- authorization


def test_viewer_reads_devices_but_not_events(
    simulator_client: httpx.Client, simulator: SimulatorServer
) -> None:
    headers = simulator.auth_headers("viewer")
    assert simulator_client.get("/api/v1/devices", headers=headers).status_code == 200
    assert simulator_client.get("/api/v1/labels?kind=Device", headers=headers).status_code == 200
    forbidden = simulator_client.get("/api/v1/events", headers=headers)
    assert status(forbidden) == (403, "Forbidden")
    assert forbidden.json()["reason"] == "Forbidden"


def test_scoped_token_narrows_permissions(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    token = simulator.issue_access_token("admin", scopes=["devices:list"])
    assert simulator_client.get("/api/v1/devices", headers=bearer(token)).status_code == 200
    assert status(simulator_client.get("/api/v1/events", headers=bearer(token))) == (403, "Forbidden")
    name = simulator.state.device_names()[0]
    assert simulator_client.get(f"/api/v1/devices/{name}", headers=bearer(token)).status_code == 403
    wildcard = simulator.issue_access_token("admin", scopes=["devices:*", "events:list"])
    assert simulator_client.get(f"/api/v1/devices/{name}", headers=bearer(wildcard)).status_code == 200
    assert simulator_client.get("/api/v1/events", headers=bearer(wildcard)).status_code == 200


def test_scopes_cannot_widen_a_user(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    token = simulator.issue_access_token("viewer", scopes=["events:list"])
    assert simulator_client.get("/api/v1/events", headers=bearer(token)).status_code == 403


def test_permissions_endpoint_lists_roles_as_upstream(
    simulator_client: httpx.Client, simulator: SimulatorServer
) -> None:
    """A wildcard resource, specific entries overriding it, and empty lists for explicit denials."""

    def permissions(user: str) -> dict[str, list[str]]:
        response = simulator_client.get("/api/v1/auth/permissions", headers=simulator.auth_headers(user))
        assert response.status_code == 200, response.text
        listed = response.json()["permissions"]
        assert [p["resource"] for p in listed] == sorted(p["resource"] for p in listed)
        return {p["resource"]: p["operations"] for p in listed}

    assert permissions("admin") == {"*": ["*"]}
    viewer = permissions("viewer")
    assert viewer["*"] == ["get", "list"]
    assert viewer["events"] == []
    assert viewer["devices/console"] == []
    assert permissions("operator")["devices/console"] == ["get"]
    headers = simulator.auth_headers("viewer")
    assert simulator_client.get("/api/v1/events", headers=headers).status_code == 403
    assert simulator_client.get("/api/v1/fleets", headers=headers).status_code == 200


def test_permissions_of_a_scoped_token_are_spelled_out(
    simulator_client: httpx.Client, simulator: SimulatorServer
) -> None:
    token = simulator.issue_access_token("operator", scopes=["devices:list", "devices/console:get"])
    body = simulator_client.get("/api/v1/auth/permissions", headers=bearer(token)).json()
    assert body["permissions"] == [
        {"resource": "devices", "operations": ["list"]},
        {"resource": "devices/console", "operations": ["get"]},
    ]


def test_permissions_need_an_organization(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    """Not in upstream's list of org-free routes: a user of several organizations must name one."""
    headers = simulator.auth_headers("multi")
    missing = simulator_client.get("/api/v1/auth/permissions", headers=headers)
    assert status(missing) == (400, "user belongs to multiple organizations but no organization specified")
    chosen = simulator_client.get("/api/v1/auth/permissions", params={"org_id": DEFAULT_ORG}, headers=headers)
    assert chosen.status_code == 200


# ---------------------------------------------------------------------------------- organizations


@pytest.mark.parametrize(
    ("user", "org_id", "expected"),
    [
        ("admin", None, 200),
        ("admin", "", 200),
        ("admin", DEFAULT_ORG, 200),
        ("admin", DEFAULT_ORG.upper(), 200),
        ("admin", "not-a-uuid", (400, "invalid organization ID format")),
        ("admin", LAB_ORG, (403, "access denied to organization")),
        ("admin", "11111111-2222-3333-4444-555555555555", (403, "access denied to organization")),
        ("multi", None, (400, "user belongs to multiple organizations but no organization specified")),
        ("multi", LAB_ORG, 200),
        ("nobody", None, (403, "user belongs to no organizations")),
        ("lab", None, 200),
    ],
)
def test_org_id_rules(
    simulator_client: httpx.Client, simulator: SimulatorServer, user: str, org_id: str | None, expected: Any
) -> None:
    params = {} if org_id is None else {"org_id": org_id}
    response = simulator_client.get("/api/v1/devices", params=params, headers=simulator.auth_headers(user))
    if expected == 200:
        assert response.status_code == 200, response.text
    else:
        assert status(response) == expected


def test_org_rules_skip_the_public_and_identity_routes(
    simulator_client: httpx.Client, simulator: SimulatorServer
) -> None:
    headers = simulator.auth_headers("nobody")
    for path in ("/api/v1/organizations", "/api/v1/auth/validate", "/api/v1/auth/userinfo"):
        assert simulator_client.get(path, params={"org_id": "bad"}, headers=headers).status_code == 200, path
    assert simulator_client.get("/api/v1/auth/config", params={"org_id": "bad"}).status_code == 200
    assert simulator_client.get("/api/v1/version", headers=headers).status_code == 403


# ---------------------------------------------------------------------------------- API version


def test_unsupported_api_version_is_406(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    response = simulator_client.get(
        "/api/v1/devices", headers={**simulator.auth_headers(), "Flightctl-API-Version": "v1alpha1"}
    )
    assert response.status_code == 406
    assert response.headers["Flightctl-API-Versions-Supported"] == "v1beta1"
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json() == {
        "apiVersion": "",
        "code": 406,
        "kind": "",
        "message": "Requested API version is not supported for this endpoint. Supported versions: v1beta1",
        "reason": "",
        "status": "",
    }
    ok = simulator_client.get(
        "/api/v1/devices?limit=1", headers={**simulator.auth_headers(), "Flightctl-API-Version": "v1beta1"}
    )
    assert ok.headers["Flightctl-API-Version"] == "v1beta1"
    assert ok.headers["Vary"] == "Flightctl-API-Version"
