"""The identity side, over real sockets: /api/v1/auth/config, validate (with its rate limit) and userinfo,
and the OIDC issuer: discovery, JWKS, the authorization code with PKCE and the login form."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from simulator.accounts import DEFAULT_ORG, LAB_ORG
from simulator.harness import SimulatorServer
from simulator.tokens import decode_jwt_claims, s256
from tests.simulator_calls import bearer, status

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
