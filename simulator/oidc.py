"""The simulator's OIDC issuer, Keycloak-shaped (``/realms/flightctl``): discovery, JWKS, the
authorization endpoint, the token endpoint (authorization-code + PKCE, refresh, password) and userinfo.

The authorization endpoint logs a user in with a small form (username and password are the same, as
for the password grant) or, when the simulator was started with a pre-authorised test user
(``--login-as``), at once: then a client can follow the redirect without a browser, which is how the
tests drive a real MCP client's OAuth support end to end.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from simulator.accounts import USERS
from simulator.credentials import CLIENT_ID, REALM, OAuthError, token_response
from simulator.errors import ApiFailure
from simulator.state import SimulatorState
from simulator.tokens import TokenSet

__all__ = ["oidc_routes"]

_SCOPES = ["openid", "profile", "email", "offline_access"]
_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}


def _state(request: Request) -> SimulatorState:
    state: SimulatorState = request.app.state.simulator
    return state


def _no_realm() -> Response:
    return JSONResponse({"error": "Realm does not exist"}, 404)


async def configuration(request: Request) -> Response:
    if request.path_params["realm"] != REALM:
        return _no_realm()
    issuer = _state(request).issuer
    base = f"{issuer}/protocol/openid-connect"
    return JSONResponse(
        {
            "issuer": issuer,
            "authorization_endpoint": f"{base}/auth",
            "token_endpoint": f"{base}/token",
            "userinfo_endpoint": f"{base}/userinfo",
            "end_session_endpoint": f"{base}/logout",
            "jwks_uri": f"{base}/certs",
            "grant_types_supported": ["authorization_code", "refresh_token", "password"],
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": _SCOPES,
            "token_endpoint_auth_methods_supported": ["client_secret_post", "none"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "preferred_username", "scope"],
        }
    )


async def certs(request: Request) -> Response:
    if request.path_params["realm"] != REALM:
        return _no_realm()
    return JSONResponse({"keys": [_state(request).signing_key.jwk()]})


def _loopback_redirect(uri: str) -> bool:
    """Native-app redirect URIs (RFC 8252): http on a loopback host, any port and path."""
    parts = urlsplit(uri)
    return parts.scheme == "http" and (parts.hostname or "") in _LOOPBACK_HOSTS and not parts.fragment


def _back_to_client(redirect_uri: str, params: dict[str, str]) -> Response:
    separator = "&" if urlsplit(redirect_uri).query else "?"
    return RedirectResponse(redirect_uri + separator + urlencode(params), status_code=302)


async def authorize(request: Request) -> Response:
    """``GET`` shows the login (or logs the test user in); ``POST`` takes the form."""
    if request.path_params["realm"] != REALM:
        return _no_realm()
    state = _state(request)
    params = dict(request.query_params)
    form: dict[str, str] = {}
    if request.method == "POST":
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        params = {**params, **{k: v for k, v in form.items() if k not in ("username", "password")}}
    if params.get("client_id") != CLIENT_ID:
        return PlainTextResponse("Client not found.", 400)
    redirect_uri = params.get("redirect_uri", "")
    if not _loopback_redirect(redirect_uri):
        return PlainTextResponse("Invalid parameter: redirect_uri", 400)
    reply = {"state": params["state"]} if "state" in params else {}
    reply["iss"] = state.issuer
    error = _request_error(params)
    if error is not None:
        return _back_to_client(redirect_uri, {"error": error[0], "error_description": error[1], **reply})
    user = state.login_user
    if request.method == "POST":
        name = form.get("username", "")
        user = name if name in USERS and form.get("password") == name else None
        if user is None:
            return _login_page(params, "Invalid username or password.", 401)
    if user is None:
        return _login_page(params, None, 200)
    code = state.issue_code(user, CLIENT_ID, redirect_uri, params["code_challenge"])
    return _back_to_client(redirect_uri, {"code": code, **reply})


def _request_error(params: dict[str, str]) -> tuple[str, str] | None:
    """What Keycloak says back to the client about a bad authorization request (PKCE required)."""
    if params.get("response_type") != "code":
        return (
            "unsupported_response_type",
            "Client is not allowed to initiate browser login with given response_type.",
        )
    if params.get("code_challenge_method") != "S256":
        return "invalid_request", "Missing parameter: code_challenge_method"
    if not params.get("code_challenge"):
        return "invalid_request", "Missing parameter: code_challenge"
    return None


def _login_page(params: dict[str, str], problem: str | None, status: int) -> Response:
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in params.items()
    )
    notice = f"<p>{html.escape(problem)}</p>" if problem else ""
    return HTMLResponse(
        "<!doctype html><title>Sign in to flightctl</title>"
        f"{notice}<form method=post>{hidden}"
        '<label>Username <input name="username"></label> '
        '<label>Password <input name="password" type="password"></label> '
        "<button>Sign In</button></form>",
        status,
    )


async def token(request: Request) -> Response:
    """Form-encoded authorization-code (PKCE), refresh and password grants."""
    if request.path_params["realm"] != REALM:
        return _no_realm()
    state = _state(request)
    if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
        return JSONResponse(
            {"error": "invalid_request", "error_description": "Missing form parameter: grant_type"}, 400
        )
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
    grant = form.get("grant_type")
    if not grant:
        return JSONResponse(
            {"error": "invalid_request", "error_description": "Missing form parameter: grant_type"}, 400
        )
    if form.get("client_id") != CLIENT_ID:
        return JSONResponse(
            {"error": "invalid_client", "error_description": "Invalid client or Invalid client credentials"},
            401,
        )
    try:
        tokens = grant_tokens(state, form)
    except OAuthError as exc:
        return JSONResponse(exc.body(), exc.status)
    body: dict[str, Any] = token_response(tokens)
    body.update(
        {
            "refresh_expires_in": int(state.refresh_token_ttl),
            "not-before-policy": 0,
            "session_state": state.subject(tokens.access_token[-12:]),
            "scope": "openid profile email",
        }
    )
    return JSONResponse(body)


def grant_tokens(state: SimulatorState, form: dict[str, Any]) -> TokenSet:
    """The token grants the issuer (and Flight Control's token proxy, in front of it) accept."""
    grant = form.get("grant_type")
    if grant == "refresh_token":
        return state.refresh(form.get("refresh_token"), form.get("client_id"))
    if grant == "authorization_code":
        return state.redeem_code(
            form.get("code"), form.get("client_id"), form.get("redirect_uri"), form.get("code_verifier")
        )
    if grant == "password":
        user = form.get("username", "")
        if user not in USERS or form.get("password") != user:
            raise OAuthError(401, "invalid_grant", "Invalid user credentials")
        return state.issue_tokens(user)
    raise OAuthError(400, "unsupported_grant_type", "Unsupported grant_type")


async def userinfo(request: Request) -> Response:
    state = _state(request)
    try:
        principal = state.authenticate(request.headers.get("authorization"))
    except ApiFailure:
        return JSONResponse({"error": "invalid_token", "error_description": "Token verification failed"}, 401)
    return JSONResponse({"sub": state.subject(principal.user), "preferred_username": principal.user})


def oidc_routes() -> list[BaseRoute]:
    base = "/realms/{realm}"
    connect = f"{base}/protocol/openid-connect"
    return [
        Route(f"{base}/.well-known/openid-configuration", configuration),
        Route(f"{connect}/auth", authorize, methods=["GET", "POST"]),
        Route(f"{connect}/token", token, methods=["POST"]),
        Route(f"{connect}/userinfo", userinfo, methods=["GET", "POST"]),
        Route(f"{connect}/certs", certs),
    ]
