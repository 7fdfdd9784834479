"""MCP authorization for clients that log in by themselves (RFC 9728, as the MCP specification asks).

In pass-through mode this server is an OAuth protected resource whose authorization server is Flight
Control's own identity provider (from ``/api/v1/auth/config``):

- ``/.well-known/oauth-protected-resource`` (the server) and ``/.well-known/oauth-protected-resource<mcp
  path>`` (the MCP endpoint) name that issuer and its scopes;
- every 401 carries ``WWW-Authenticate: Bearer resource_metadata="...", scope="..."``, so a client
  (Inspector, Claude Code, VS Code, fastmcp, the MCP SDK) finds the issuer, runs the
  authorization-code + PKCE login there, and comes back with a token this server accepts;
- 401 bodies say what to do in the server's auth mode (pass-through or shared secret).

Unauthenticated answers carry no configuration beyond what Flight Control itself publishes.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.shared.auth import ProtectedResourceMetadata
from pydantic import AnyHttpUrl
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from http_limits import json_error

if TYPE_CHECKING:
    from identity_provider import IdentityProvider

__all__ = ["METADATA_PATH", "ChallengeMiddleware", "metadata_routes"]

METADATA_PATH = "/.well-known/oauth-protected-resource"
#: A Host header that can go into a URL and a quoted header parameter as it is.
_NETLOC = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")

_PASSTHROUGH_MISSING = (
    "This MCP server needs your own Flight Control access token: send 'Authorization: Bearer <token>'. "
    "MCP clients with OAuth support log in through Flight Control's identity provider by themselves "
    "(see resource_metadata in the WWW-Authenticate header). Otherwise run `flightctl login` and send the "
    "access token it stored (authentication.access-token in client.yaml, shown by `flightctl config "
    "view`); it expires within minutes, so send a fresh one when it does."
)
_PASSTHROUGH_REFUSED = (
    "This bearer token was refused: it is not a valid Flight Control token, or it has expired (access "
    "tokens last minutes). Log in again (your client's OAuth login, or `flightctl login`) and send the "
    "new access token."
)
_NO_OAUTH = (
    "Flight Control's login provider names no OAuth issuer that MCP clients could log in at; send the "
    "token `flightctl login` stored as 'Authorization: Bearer <token>' instead."
)
_SECRET_MISSING = (
    "This MCP server needs the shared secret its operator set: send 'Authorization: Bearer <secret>'."
)
_SECRET_REFUSED = "This bearer token is not the server's shared secret; ask the operator for the current one."


def _base_url(request_scope: Scope, public_url: str | None) -> str:
    """Where clients reach this server: the configured public URL, else what the request was sent to."""
    if public_url:
        return public_url.rstrip("/")
    url = Request(request_scope).url
    netloc = url.netloc if _NETLOC.fullmatch(url.netloc) else "{}:{}".format(*request_scope["server"])
    return f"{url.scheme}://{netloc}"


def metadata_routes(identity: IdentityProvider, mcp_path: str, public_url: str | None) -> list[BaseRoute]:
    """RFC 9728 documents for the whole server and for the MCP endpoint (path-suffixed form)."""

    async def metadata(request: Request) -> Response:
        login = await identity.login()
        if login is None:
            return json_error(
                "Flight Control's login configuration cannot be read right now; retry shortly.",
                503,
                {"Retry-After": "30"},
            )
        if not login.issuer:
            return json_error(_NO_OAUTH, 404)
        base = _base_url(request.scope, public_url)
        resource = base + (mcp_path if request.url.path != METADATA_PATH else "")
        document = ProtectedResourceMetadata(
            resource=AnyHttpUrl(resource),
            authorization_servers=[AnyHttpUrl(login.issuer)],
            scopes_supported=list(login.scopes) or None,
            bearer_methods_supported=["header"],
            resource_name="Flight Control MCP server",
        )
        return JSONResponse(
            document.model_dump(mode="json", exclude_none=True), headers={"Cache-Control": "max-age=300"}
        )

    return [
        Route(METADATA_PATH, metadata, methods=["GET"]),
        Route(METADATA_PATH + mcp_path, metadata, methods=["GET"]),
    ]


class ChallengeMiddleware:
    """Rewrites every 401 the app gives (MCP endpoint and REST) into the challenge and advice that fit
    the auth mode: ``identity`` set means pass-through (OAuth discovery), None a shared secret."""

    def __init__(
        self, app: ASGIApp, identity: IdentityProvider | None, mcp_path: str, public_url: str | None
    ) -> None:
        self.app = app
        self._identity = identity
        self._mcp_path = mcp_path
        self._public_url = public_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        replaced = False

        async def challenged(message: Message) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start" and message["status"] == 401:
                if isinstance(scope.get("user"), AuthenticatedUser):
                    # The token got in, then Flight Control refused it: keep the app's own advice.
                    await send(await self._rechallenged(scope, message))
                    return
                replaced = True
                refused = (
                    b'error="invalid_token"'
                    in Headers(raw=message.get("headers", [])).get("www-authenticate", "").encode()
                )
                await (await self._challenge(scope, refused))(scope, receive, send)
                return
            if not replaced:
                await send(message)

        await self.app(scope, receive, challenged)

    async def _rechallenged(self, scope: Scope, message: Message) -> Message:
        if self._identity is None:
            return message
        headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"www-authenticate"]
        challenge = (await self._challenge(scope, True)).headers["www-authenticate"]
        return {**message, "headers": [*headers, (b"www-authenticate", challenge.encode())]}

    async def _challenge(self, scope: Scope, refused: bool) -> Response:
        if self._identity is None:
            header = 'Bearer error="invalid_token"' if refused else "Bearer"
            return json_error(
                _SECRET_REFUSED if refused else _SECRET_MISSING, 401, {"WWW-Authenticate": header}
            )
        parts = ['error="invalid_token"'] if refused else []
        login = await self._identity.login()
        if login is not None and login.issuer:  # only where the metadata document can name it
            base = _base_url(scope, self._public_url)
            parts.append(f'resource_metadata="{base}{METADATA_PATH}{self._mcp_path}"')
            if login.scopes:
                parts.append(f'scope="{" ".join(login.scopes)}"')
        message = _PASSTHROUGH_REFUSED if refused else _PASSTHROUGH_MISSING
        return json_error(message, 401, {"WWW-Authenticate": " ".join(["Bearer", ", ".join(parts)]).strip()})
