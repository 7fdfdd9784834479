"""Authentication, authorization, organizations and tokens, over real sockets."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from simulator.accounts import DEFAULT_ORG, LAB_ORG
from simulator.harness import SimulatorServer
from simulator.tokens import decode_jwt_claims, s256


def status(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert body["code"] == response.status_code
    return response.status_code, body["message"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


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


# --------------------------------------------------------------------------------- identity routes


def test_auth_config_is_public(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    body = simulator_client.get("/api/v1/auth/config").json()
    assert body["apiVersion"] == "v1beta1"
    assert "kind" not in body
    assert body["organizationsEnabled"] is True
    (provider,) = body["providers"]
    assert body["defaultProvider"] == provider["metadata"]["name"]
    assert provider["apiVersion"] == "v1beta1"
    assert provider["spec"]["providerType"] == "oidc"
    assert provider["spec"]["issuer"] == simulator.oidc_issuer
    assert provider["spec"]["clientId"] == "flightctl"
    assert provider["spec"]["clientSecret"] == "*****"


def test_validate_and_userinfo(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    ok = simulator_client.get("/api/v1/auth/validate", headers=simulator.auth_headers())
    assert ok.status_code == 200
    assert ok.json()["status"] == "Success"
    assert status(simulator_client.get("/api/v1/auth/validate", headers=bearer("x"))) == (
        401,
        "failed to validate token",
    )
    assert status(simulator_client.get("/api/v1/auth/validate")) == (400, "failed to get auth token")
    info = simulator_client.get("/api/v1/auth/userinfo", headers=simulator.auth_headers("multi")).json()
    assert info["preferred_username"] == "multi"
    assert [o["metadata"]["name"] for o in info["organizations"]] == [DEFAULT_ORG, LAB_ORG]


def test_oidc_discovery(simulator_client: httpx.Client, simulator: SimulatorServer) -> None:
    config = simulator_client.get("/realms/flightctl/.well-known/openid-configuration").json()
    assert config["issuer"] == simulator.oidc_issuer
    assert config["token_endpoint"] == simulator.oidc_token_url
    assert "refresh_token" in config["grant_types_supported"]
    assert simulator_client.get("/realms/other/.well-known/openid-configuration").status_code == 404


# ------------------------------------------------------------------------- refresh and rotation


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


# ------------------------------------------------- the issuer: JWKS, authorization code with PKCE

VERIFIER = "a-pkce-code-verifier-of-at-least-forty-three-characters-0123456789"
REDIRECT = "http://127.0.0.1:53682/callback"


def _authorize_params(**overrides: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": "flightctl",
        "redirect_uri": REDIRECT,
        "scope": "openid profile email offline_access",
        "state": "s-123",
        "code_challenge": s256(VERIFIER),
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return params


def _redirect_query(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def _redeem(client: httpx.Client, sim: SimulatorServer, code: str, **overrides: str) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": "flightctl",
        "redirect_uri": REDIRECT,
        "code_verifier": VERIFIER,
    }
    form.update(overrides)
    return client.post(sim.oidc_token_url, data=form)


@pytest.fixture
def login_sim(make_simulator: Any) -> SimulatorServer:
    sim: SimulatorServer = make_simulator(tls=False, devices=3, login_user="viewer")
    return sim


def test_tokens_verify_against_the_published_jwks(
    simulator_client: httpx.Client, simulator: SimulatorServer
) -> None:
    config = simulator_client.get("/realms/flightctl/.well-known/openid-configuration").json()
    keys = simulator_client.get(config["jwks_uri"]).json()["keys"]
    token = simulator.issue_access_token("viewer")
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    assert header["kid"] in {k["kid"] for k in keys}
    key = jwt.PyJWK(next(k for k in keys if k["kid"] == header["kid"]))
    claims = jwt.decode(token, key, algorithms=["RS256"], options={"verify_aud": False})
    assert claims["iss"] == simulator.oidc_issuer
    assert claims["preferred_username"] == "viewer"
    forged = token[: token.rindex(".") + 1] + "A" * 20
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(forged, key, algorithms=["RS256"], options={"verify_aud": False})


def test_authorization_code_with_pkce_logs_the_test_user_in(login_sim: SimulatorServer) -> None:
    with httpx.Client(base_url=login_sim.base_url) as client:
        config = client.get("/realms/flightctl/.well-known/openid-configuration").json()
        assert config["code_challenge_methods_supported"] == ["S256"]
        reply = _redirect_query(client.get(config["authorization_endpoint"], params=_authorize_params()))
        assert reply["state"] == "s-123"
        assert reply["iss"] == login_sim.oidc_issuer
        tokens = _redeem(client, login_sim, reply["code"])
        assert tokens.status_code == 200, tokens.text
        access = tokens.json()["access_token"]
        assert decode_jwt_claims(access)["preferred_username"] == "viewer"
        assert client.get("/api/v1/devices", headers=bearer(access)).status_code == 200
        # A code is redeemed once.
        again = _redeem(client, login_sim, reply["code"])
        assert again.status_code == 400
        assert again.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("overrides", "description"),
    [
        ({"code_verifier": "another-verifier-that-does-not-match-the-challenge-000000"}, "PKCE verification"),
        ({"code_verifier": ""}, "PKCE code verifier not specified"),
        ({"redirect_uri": "http://127.0.0.1:1/other"}, "Incorrect redirect_uri"),
    ],
)
def test_the_code_grant_checks_pkce_and_the_redirect(
    login_sim: SimulatorServer, overrides: dict[str, str], description: str
) -> None:
    with httpx.Client(base_url=login_sim.base_url) as client:
        reply = _redirect_query(
            client.get(login_sim.oidc_issuer + "/protocol/openid-connect/auth", params=_authorize_params())
        )
        refused = _redeem(client, login_sim, reply["code"], **overrides)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"
    assert description in refused.json()["error_description"]


def test_the_authorization_endpoint_refuses_bad_requests(login_sim: SimulatorServer) -> None:
    url = login_sim.oidc_issuer + "/protocol/openid-connect/auth"
    with httpx.Client() as client:
        assert client.get(url, params=_authorize_params(client_id="other")).status_code == 400
        foreign = client.get(url, params=_authorize_params(redirect_uri="https://evil.example/cb"))
        assert foreign.status_code == 400
        assert "redirect_uri" in foreign.text
        no_pkce = _redirect_query(client.get(url, params=_authorize_params(code_challenge_method="plain")))
        assert no_pkce["error"] == "invalid_request"
        assert "code" not in no_pkce


def test_without_a_test_user_the_login_form_checks_the_password(make_simulator: Any) -> None:
    sim: SimulatorServer = make_simulator(tls=False, devices=3)
    url = sim.oidc_issuer + "/protocol/openid-connect/auth"
    with httpx.Client() as client:
        page = client.get(url, params=_authorize_params())
        assert page.status_code == 200
        assert "<form" in page.text
        wrong = client.post(url, params=_authorize_params(), data={"username": "admin", "password": "x"})
        assert wrong.status_code == 401
        reply = _redirect_query(
            client.post(
                url, params=_authorize_params(), data={"username": "operator", "password": "operator"}
            )
        )
        # Flight Control's own token proxy redeems the code too (what `flightctl login --web` uses).
        tokens = client.post(
            sim.token_proxy_url,
            data={
                "grant_type": "authorization_code",
                "code": reply["code"],
                "client_id": "flightctl",
                "redirect_uri": REDIRECT,
                "code_verifier": VERIFIER,
            },
        )
    assert tokens.status_code == 200, tokens.text
    assert decode_jwt_claims(tokens.json()["access_token"])["preferred_username"] == "operator"


def test_auth_validate_rate_limit_answers_like_flight_control(make_simulator: Any) -> None:
    sim: SimulatorServer = make_simulator(tls=False, devices=3, auth_rate_limit=(2, 3600))
    token = sim.issue_access_token("viewer")
    with httpx.Client(base_url=sim.base_url) as client:
        answers = [client.get("/api/v1/auth/validate", headers=bearer(token)) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert answers[2].headers["retry-after"] == "3600"
        assert answers[2].json()["message"] == "Login rate limit exceeded, please try again later"
        # Only /auth/validate has the stricter limit.
        assert client.get("/api/v1/devices", headers=bearer(token)).status_code == 200
        sim.state.clock.advance(3601)
        fresh = sim.issue_access_token("viewer")
        assert client.get("/api/v1/auth/validate", headers=bearer(fresh)).status_code == 200
