"""The API's auth endpoints (``/api/v1/auth/...``): the provider config, token validation behind its
own rate limit, userinfo, the caller's permissions, and the token proxy to the issuer's grants.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response

from simulator.accounts import READ_RESOURCES, USERS
from simulator.credentials import CLIENT_ID, PROVIDER_NAME, OAuthError, token_response
from simulator.endpoints import JSON, Context, Endpoint
from simulator.errors import status_body
from simulator.oidc import grant_tokens
from simulator.resource_handlers import organization_resource
from simulator.state import SimulatorState

__all__ = [
    "auth_config",
    "auth_permissions",
    "auth_rate_limited",
    "auth_token_proxy",
    "auth_userinfo",
    "auth_validate",
]


def _auth_provider(state: SimulatorState) -> dict[str, Any]:
    return {
        "apiVersion": "v1beta1",
        "kind": "AuthProvider",
        "metadata": {"name": PROVIDER_NAME},
        "spec": {
            "providerType": "oidc",
            "displayName": "Flight Control simulator",
            "issuer": state.issuer,
            "clientId": CLIENT_ID,
            "clientSecret": "*****",
            "enabled": True,
            "scopes": ["openid", "profile", "email", "offline_access"],
            "usernameClaim": ["preferred_username"],
            "organizationAssignment": {"type": "static", "organizationName": "default"},
            "roleAssignment": {"type": "static", "roles": ["flightctl-admin"]},
        },
    }


async def auth_config(request: Request, ctx: Context) -> Response:
    return JSON(
        {
            "apiVersion": "v1beta1",
            "providers": [_auth_provider(ctx.state)],
            "defaultProvider": PROVIDER_NAME,
            "organizationsEnabled": True,
        }
    )


async def auth_validate(request: Request, ctx: Context) -> Response:
    return JSON(status_body(200, ""))


def auth_rate_limited(endpoint: Endpoint) -> Endpoint:
    """Flight Control's stricter limiter on /auth/validate (rateLimit.authRequests per authWindow, per
    client IP), which answers before authentication."""

    async def limited(request: Request) -> Response:
        state: SimulatorState = request.app.state.simulator
        window = state.auth_check_allowed(request.client.host if request.client else "")
        if not window:
            return await endpoint(request)
        body = {"apiVersion": "", "code": 429, "kind": "", "reason": "TooManyRequests", "status": ""}
        body["message"] = "Login rate limit exceeded, please try again later"
        return JSON(body, 429, headers={"Retry-After": str(int(window))})

    return limited


async def auth_userinfo(request: Request, ctx: Context) -> Response:
    assert ctx.principal is not None
    user = USERS[ctx.principal.user]
    return JSON(
        {
            "sub": ctx.state.subject(user.name),
            "preferred_username": user.name,
            "name": user.display_name,
            "organizations": [organization_resource(o) for o in user.orgs],
        }
    )


async def auth_permissions(request: Request, ctx: Context) -> Response:
    """The caller's roles in the organization as upstream's StaticAuthZ lists them: a resource ``*``
    wildcard, specific entries that override it, and an empty list for an explicit denial. A token
    narrowed by scopes lists exactly what it may still do."""
    assert ctx.principal is not None
    principal = ctx.principal
    if principal.scopes is None:
        permissions = [
            {"resource": resource, "operations": sorted(principal.permissions[resource])}
            for resource in sorted(principal.permissions)
        ]
        return JSON({"permissions": permissions})
    listed = []
    for resource in (*READ_RESOURCES, "devices/console"):
        operations = [verb for verb in ("get", "list") if principal.can(resource, verb)]
        if operations:
            listed.append({"resource": resource, "operations": operations})
    return JSON({"permissions": listed})


async def _form_or_json(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "")
    body = await request.body()
    if "application/json" in content_type:
        try:
            data = json.loads(body or b"{}")
        except json.JSONDecodeError:
            return {}
        return data if isinstance(data, dict) else {}
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}


async def auth_token_proxy(request: Request, ctx: Context) -> Response:
    """``POST /api/v1/auth/{providername}/token``: TokenRequest in, TokenResponse out (400 on error)."""
    provider = request.path_params["providername"]
    form = await _form_or_json(request)
    if provider != PROVIDER_NAME:
        return JSON({"error": "invalid_request", "error_description": f"provider {provider} not found"}, 400)
    grant = form.get("grant_type")
    if grant not in ("refresh_token", "authorization_code"):
        return JSON({"error": "unsupported_grant_type", "error_description": "Unsupported grant_type"}, 400)
    if not form.get("client_id"):
        return JSON({"error": "invalid_request", "error_description": "client_id is required"}, 400)
    try:
        tokens = grant_tokens(ctx.state, form)
    except OAuthError as exc:
        return JSON(exc.body(), 400)
    return JSON(token_response(tokens))
