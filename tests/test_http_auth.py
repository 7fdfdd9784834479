"""Logging in over HTTP the way MCP clients expect, and token checks nobody can turn against others.

Over real loopback sockets against the simulator's HTTPS API and OIDC issuer: the RFC 9728 metadata and
the 401 challenge, a complete authorization-code + PKCE login through fastmcp's OAuth client ending in
a tool call, and the throttling attacks replayed (one bogus token drawing Flight Control's 429, forty
bogus tokens from one address).
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import httpx2
import pytest
from fastmcp import Client
from fastmcp.client.auth import OAuth
from fastmcp.client.transports import StreamableHttpTransport
from mcp.shared.auth import AuthorizationCodeResult

from caller_auth import PassThroughVerifier, verifier_for
from identity_provider import FlightControlProbe, IdentityProvider, LoginConfig, default_provider
from tests.http_harness import (
    INITIALIZE,
    MCP_HEADERS,
    ServedApp,
    Simulated,
    bearer,
    serve_in_thread,
    settings_from,
    simulated,
    text_of,
)

SCOPES = "openid profile email offline_access"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulated]:
    """The simulator logs "lab" (Lab organization only) in at its authorization endpoint, no form."""
    with simulated(tmp_path_factory.mktemp("oauth"), login_user="lab") as running:
        yield running


@pytest.fixture(scope="module")
def server_token(sim: Simulated) -> str:
    return sim.token("admin")


@pytest.fixture(scope="module")
def served(sim: Simulated, server_token: str) -> Iterator[ServedApp]:
    with serve_in_thread(settings_from(sim.environ(ACCESS_TOKEN=server_token))) as app:
        yield app


def challenge(response: httpx.Response) -> dict[str, str]:
    """The parameters of a ``WWW-Authenticate: Bearer k="v", ...`` header."""
    header = response.headers["www-authenticate"]
    assert header.startswith("Bearer")
    return dict(re.findall(r'(\w+)="([^"]*)"', header))


# --- metadata and challenges ----------------------------------------------------------------------


def test_protected_resource_metadata_names_flight_controls_issuer(
    served: ServedApp, sim: Simulated, server_token: str
) -> None:
    with httpx.Client(base_url=served.url, timeout=30) as http:
        endpoint = http.get("/.well-known/oauth-protected-resource" + served.settings.path)
        server = http.get("/.well-known/oauth-protected-resource")
    assert endpoint.status_code == 200
    document = endpoint.json()
    assert document["resource"] == served.mcp_url
    assert document["authorization_servers"] == [sim.sim.oidc_issuer]
    assert document["scopes_supported"] == SCOPES.split()
    assert document["bearer_methods_supported"] == ["header"]
    assert server.status_code == 200
    assert server.json()["resource"] == served.url + "/"
    for answer in (endpoint, server):
        assert server_token not in answer.text
        assert "refresh" not in answer.text.lower()


def test_a_request_without_a_token_learns_where_to_log_in(served: ServedApp) -> None:
    with httpx.Client(base_url=served.url, timeout=30) as http:
        response = http.post(served.settings.path, json=INITIALIZE, headers=MCP_HEADERS)
        params = challenge(response)
        metadata = http.get(urlsplit(params["resource_metadata"]).path)
    assert response.status_code == 401
    assert "error" not in params, "RFC 6750: no error code when no credentials were sent"
    assert params["resource_metadata"] == f"{served.url}/.well-known/oauth-protected-resource/mcp"
    assert params["scope"] == SCOPES
    assert metadata.json()["resource"] == served.mcp_url
    advice = response.json()["error"]
    assert "flightctl login" in advice
    assert "expires within minutes" in advice
    assert "REFRESH_TOKEN" not in advice, "callers cannot set the server's credentials"


def test_a_refused_token_is_told_to_log_in_again(served: ServedApp) -> None:
    with httpx.Client(base_url=served.url, timeout=30) as http:
        response = http.get("/rest/v1/device-counts", headers=bearer("not-a-flight-control-token"))
    assert response.status_code == 401
    params = challenge(response)
    assert params["error"] == "invalid_token"
    assert params["resource_metadata"].endswith("/.well-known/oauth-protected-resource/mcp")
    assert "Log in again" in response.json()["error"]
    assert "not-a-flight-control-token" not in response.text


def test_shared_secret_mode_challenges_for_the_secret_not_oauth(sim: Simulated) -> None:
    environ = sim.environ(MCP_AUTH_MODE="shared-secret", MCP_SHARED_SECRET="s" * 40, ACCESS_TOKEN=sim.token())
    with serve_in_thread(settings_from(environ)) as app, httpx.Client(base_url=app.url, timeout=30) as http:
        missing = http.post(app.settings.path, json=INITIALIZE, headers=MCP_HEADERS)
        wrong = http.post(app.settings.path, json=INITIALIZE, headers={**MCP_HEADERS, **bearer("guess")})
        metadata = http.get("/.well-known/oauth-protected-resource/mcp")
    assert missing.headers["www-authenticate"] == "Bearer"
    assert "shared secret" in missing.json()["error"]
    assert challenge(wrong) == {"error": "invalid_token"}
    assert "shared secret" in wrong.json()["error"]
    assert metadata.status_code == 404, "the server's own credentials are not behind Flight Control's login"


async def test_a_token_revoked_after_it_got_in_is_answered_for_the_caller(
    served: ServedApp, sim: Simulated
) -> None:
    token = sim.token("viewer")
    async with httpx.AsyncClient(base_url=served.url, timeout=30, headers=bearer(token)) as http:
        assert (await http.get("/rest/v1/device-counts")).status_code == 200
        sim.sim.revoke(token)
        rest = await http.get("/rest/v1/device-counts")
    async with Client(served.mcp_url, auth=token, timeout=60) as client:
        tool = await client.call_tool("count_devices", {}, raise_on_error=False)
    assert rest.status_code == 401
    assert challenge(rest)["resource_metadata"].endswith("/.well-known/oauth-protected-resource/mcp")
    assert tool.is_error
    for advice in (rest.json()["error"], text_of(tool)):
        assert "log in again" in advice
        assert "REFRESH_TOKEN" not in advice, "the caller's own token was refused, not the server's"


def test_shared_secret_callers_hear_when_the_servers_own_login_is_refused(sim: Simulated) -> None:
    own = sim.token("admin")
    environ = sim.environ(MCP_AUTH_MODE="shared-secret", MCP_SHARED_SECRET="s" * 40, ACCESS_TOKEN=own)
    with serve_in_thread(settings_from(environ)) as app, httpx.Client(base_url=app.url, timeout=30) as http:
        sim.sim.revoke(own)
        response = http.get("/rest/v1/device-counts", headers=bearer("s" * 40))
    assert response.status_code == 401
    assert "flightctl login" in response.json()["error"], "the operator must renew the server's login"
    assert "shared secret" not in response.json()["error"]


# --- a real client's OAuth login --------------------------------------------------------------------


class BrowserlessLogin(OAuth):
    """fastmcp's OAuth client with the browser replaced: it opens the authorization URL itself and
    reads the code from the redirect, which the simulator answers for its pre-authorised test user."""

    def __init__(self, ca_file: Path, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._ca_file = ca_file
        self._redirect: str | None = None
        self.authorization_urls: list[str] = []

    async def redirect_handler(self, authorization_url: str) -> None:
        self.authorization_urls.append(authorization_url)
        async with httpx2.AsyncClient(verify=ssl.create_default_context(cafile=self._ca_file)) as browser:
            response = await browser.get(authorization_url)
        assert response.status_code == 302, response.text
        self._redirect = response.headers["location"]

    async def callback_handler(self) -> AuthorizationCodeResult:
        assert self._redirect is not None
        query = httpx2.URL(self._redirect).params
        return AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))


@pytest.mark.filterwarnings("ignore:Using in-memory token storage")
async def test_an_oauth_login_through_a_real_mcp_client_ends_in_a_tool_call(
    served: ServedApp, sim: Simulated
) -> None:
    login = BrowserlessLogin(sim.ca_file, client_id="flightctl")
    transport = StreamableHttpTransport(served.mcp_url, auth=login, verify=sim.ssl_context())
    async with Client(transport, timeout=60) as client:
        result = await client.call_tool("query_devices", {"limit": 1000, "fields": ["metadata.name"]})
    assert not result.is_error
    assert len(login.authorization_urls) == 1
    asked = httpx.URL(login.authorization_urls[0]).params
    assert asked["code_challenge_method"] == "S256"
    assert asked["scope"] == SCOPES
    assert asked["resource"] == served.mcp_url, "RFC 8707: the client names this server as the resource"
    grants = [r for r in sim.sim.state.requests() if r["path"].endswith("/openid-connect/token")]
    assert grants, "the code was redeemed at Flight Control's issuer"
    text = text_of(result)
    lab_devices = sim.device_names(sim.token("lab"))
    assert lab_devices
    assert all(name in text for name in lab_devices), "the call ran as the user who logged in"
    server_devices = sim.device_names(sim.token("admin"))
    assert not any(f'"{name}"' in text for name in server_devices), "not with the server's own token"


# --- throttling cannot be turned against other callers ----------------------------------------------


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[Simulated]:
    """A simulator with Flight Control's /auth/validate limit on (20 per hour per client address)."""
    with simulated(tmp_path, auth_rate_limit=(20, 3600)) as running:
        yield running


def opaque(sim: Simulated, name: str, user: str = "viewer") -> str:
    """A token Flight Control accepts but nobody can check locally (not a JWT)."""
    token = f"opaque-{name}-{user}-token"
    sim.sim.state.add_static_token(token, user)
    return token


def test_one_throttled_token_check_does_not_lock_out_other_callers(limited: Simulated) -> None:
    environ = limited.environ(ACCESS_TOKEN=limited.token("admin"), MCP_TOKEN_CHECK_PAUSE="30")
    known = opaque(limited, "known")
    with serve_in_thread(settings_from(environ)) as app, httpx.Client(base_url=app.url, timeout=30) as http:
        assert http.get("/rest/v1/device-counts", headers=bearer(known)).status_code == 200
        assert http.get("/readyz").status_code == 200
        limited.sim.faults.rate_limit(1, retry_after=3600, path_prefix="/api/v1/auth/validate")
        bogus = http.get("/rest/v1/device-counts", headers=bearer("bogus-token-drawing-a-429"))
        asked = limited.validations()
        newcomer = http.get("/rest/v1/device-counts", headers=bearer(opaque(limited, "new")))
        signed = http.get("/rest/v1/device-counts", headers=bearer(limited.token("operator")))
        already = http.get("/rest/v1/device-counts", headers=bearer(known))
        ready = http.get("/readyz")
        health = http.get("/healthz")
    assert bogus.status_code == 503
    assert int(bogus.headers["retry-after"]) <= 30, "Flight Control's hour-long Retry-After is not passed on"
    assert newcomer.status_code == 503, "a new opaque token waits out the short pause"
    assert int(newcomer.headers["retry-after"]) <= 30
    assert limited.validations() == asked, "no token check is sent while Flight Control throttles them"
    assert signed.status_code == 200, "a token the issuer signed needs no check"
    assert already.status_code == 200, "a caller already accepted keeps working"
    assert ready.status_code == 503
    assert ready.json() == {"status": "not ready"}
    assert health.status_code == 200


async def test_the_pause_after_a_throttle_ends_and_new_tokens_are_checked_again(limited: Simulated) -> None:
    now = [1000.0]
    settings = settings_from(limited.environ())
    probe = FlightControlProbe(settings)
    verifier = PassThroughVerifier(probe, IdentityProvider(probe), throttle_cap=20, clock=lambda: now[0])
    limited.sim.faults.rate_limit(1, retry_after=3600, path_prefix="/api/v1/auth/validate")
    with pytest.raises(Exception, match="rate-limiting"):
        await verifier.verify_token(opaque(limited, "first"))
    assert 0 < verifier.throttled_for() <= 20
    now[0] += 21
    assert verifier.throttled_for() == 0
    asked = limited.validations()
    accepted = await verifier.verify_token(opaque(limited, "second"))
    assert accepted is not None
    assert limited.validations() == asked + 1


def test_forty_bogus_tokens_from_one_address_spend_only_that_addresss_budget(limited: Simulated) -> None:
    environ = limited.environ(ACCESS_TOKEN=limited.token("admin"))
    with serve_in_thread(settings_from(environ)) as app, httpx.Client(base_url=app.url, timeout=30) as http:
        before = limited.validations()
        answers = [
            http.get("/rest/v1/device-counts", headers=bearer(f"bogus-{i}")).status_code for i in range(40)
        ]
        asked = limited.validations() - before
        neighbour = http.get("/rest/v1/device-counts", headers=bearer(limited.token("operator")))
        ready = http.get("/readyz")
        over = http.get("/rest/v1/device-counts", headers=bearer("bogus-41"))
    assert asked == 12, "the per-address budget (12 an hour) stays below Flight Control's 20"
    assert answers[:12] == [401] * 12
    assert set(answers[12:]) == {429}
    assert neighbour.status_code == 200, "a caller behind the same address with a signed token gets in"
    assert ready.status_code == 200, "Flight Control never had to throttle this server"
    assert over.status_code == 429
    assert 1 <= int(over.headers["retry-after"]) <= 3600
    assert "bogus-41" not in over.text


# --- what anyone may see ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["passthrough", "shared-secret"])
def test_unauthenticated_answers_show_no_configuration_or_token(sim: Simulated, mode: str) -> None:
    own, secret = sim.token("admin"), "a-shared-secret-of-more-than-32-characters"
    environ = sim.environ(MCP_AUTH_MODE=mode, MCP_SHARED_SECRET=secret, ACCESS_TOKEN=own)
    private = [own, secret, str(sim.ca_file), str(sim.home), "ACCESS_TOKEN", "MCP_SHARED_SECRET"]
    with serve_in_thread(settings_from(environ)) as app, httpx.Client(base_url=app.url, timeout=30) as http:
        sim.sim.faults.unavailable(1, path_prefix="/api/v1/auth/validate")
        answers = [
            http.get("/healthz"),
            http.get("/readyz"),
            http.get("/.well-known/oauth-protected-resource/mcp"),
            http.get("/.well-known/oauth-protected-resource"),
            http.post(app.settings.path, json=INITIALIZE, headers=MCP_HEADERS),
            http.post(app.settings.path, json=INITIALIZE, headers={**MCP_HEADERS, **bearer("wrong")}),
            http.get("/rest/v1/device-counts"),
            http.get("/rest/v1/device-counts", headers=bearer("opaque-token-flight-control-fails-on")),
            http.get("/no/such/path"),
        ]
    assert {a.status_code for a in answers} <= {200, 401, 404, 503}
    for answer in answers:
        shown = answer.text + " ".join(f"{k}: {v}" for k, v in answer.headers.items())
        for value in private:
            assert value not in shown, (answer.request.url.path, value)
        assert "opaque-token-flight-control-fails-on" not in shown


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            {
                "providers": [
                    {"metadata": {"name": "a"}, "spec": {"providerType": "oauth2", "clientId": "x"}},
                    {
                        "metadata": {"name": "pam"},
                        "spec": {
                            "providerType": "oidc",
                            "issuer": "https://fc.example.com:8444/api/v1/auth",
                            "clientId": "flightctl-client",
                            "scopes": ["openid", "offline_access"],
                        },
                    },
                ],
                "defaultProvider": "pam",
            },
            LoginConfig(
                "https://fc.example.com:8444/api/v1/auth",
                "flightctl-client",
                ("openid", "offline_access"),
                "oidc",
            ),
        ),
        ({"providers": [{"metadata": "junk", "spec": ["junk"]}]}, LoginConfig(None, None, (), "")),
        ({"providers": {"not": "a list"}}, None),
        ({}, None),
    ],
)
def test_the_login_provider_is_the_one_flightctl_login_would_pick(
    config: dict[str, object], expected: LoginConfig | None
) -> None:
    assert default_provider(config) == expected


def test_behind_a_named_proxy_each_client_has_its_own_budget(limited: Simulated) -> None:
    environ = limited.environ(ACCESS_TOKEN=limited.token("admin"), MCP_TRUSTED_PROXIES="127.0.0.1")
    with serve_in_thread(settings_from(environ)) as app, httpx.Client(base_url=app.url, timeout=30) as http:
        sprayer = {"X-Forwarded-For": "10.0.0.1"}
        sprayed = [
            http.get("/rest/v1/device-counts", headers={**sprayer, **bearer(f"bogus-{i}")}).status_code
            for i in range(13)
        ]
        neighbour = http.get(
            "/rest/v1/device-counts", headers={"X-Forwarded-For": "10.0.0.2", **bearer(opaque(limited, "n"))}
        )
    assert sprayed[-1] == 429, "the sprayer spent its own budget"
    assert neighbour.status_code == 200, "another client behind the same proxy still gets its token checked"


def test_forwarded_addresses_are_ignored_unless_the_proxy_is_named(limited: Simulated) -> None:
    environ = limited.environ(ACCESS_TOKEN=limited.token("admin"))
    with serve_in_thread(settings_from(environ)) as app, httpx.Client(base_url=app.url, timeout=30) as http:
        answers = [
            http.get(
                "/rest/v1/device-counts",
                headers={"X-Forwarded-For": f"10.0.1.{i}", **bearer(f"bogus-{i}")},
            ).status_code
            for i in range(13)
        ]
    assert answers[-1] == 429, "a made-up X-Forwarded-For does not buy a fresh budget"


def test_worker_processes_share_one_token_check_budget(sim: Simulated) -> None:
    """Flight Control sees one address however many workers serve it: the budget is split among them."""
    settings = settings_from(sim.environ(MCP_WORKERS="3", MCP_TOKEN_CHECKS_PER_HOUR="12"))
    verifier = verifier_for(settings, FlightControlProbe(settings))
    assert isinstance(verifier, PassThroughVerifier)
    assert verifier.checks_per_hour == 4
