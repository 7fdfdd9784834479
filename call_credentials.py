"""Which credentials a Flight Control call uses: the server's own, or the HTTP caller's.

``token_source_from_settings`` builds the server's own ``TokenSource`` once, from the settings, and
``token_store_for`` says where that source keeps its rotated tokens. ``token_source_for_request`` picks,
per call, the token a pass-through HTTP caller brought (with the organization its ``Flightctl-Org-Id``
header names), else the server's own.
"""

from __future__ import annotations

import re

from auth import PassThroughTokenSource, RefreshingTokenSource, StaticTokenSource, TokenSource
from config import AuthSettings, Secret, Settings
from errors import AuthenticationError, InvalidRequest
from token_store import ClientYamlStore, StateFileStore, TokenStore, state_file_for

__all__ = [
    "NO_CREDENTIALS",
    "ORG_HEADER",
    "token_source_for_request",
    "token_source_from_settings",
    "token_store_for",
]


#: Request header in which a pass-through HTTP caller names its Flight Control organization (a UUID).
ORG_HEADER = "flightctl-org-id"
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

NO_CREDENTIALS = (
    "No Flight Control credentials are configured. Set REFRESH_TOKEN (with OIDC_TOKEN_URL) or "
    "ACCESS_TOKEN, or run `flightctl login` so client.yaml holds a session. Over HTTP with "
    "MCP_AUTH_MODE=passthrough, send your own Flight Control token as the bearer instead."
)


def token_source_from_settings(settings: Settings) -> TokenSource | None:
    """The server's own token source as configured, or None when no credentials are configured."""
    auth = settings.auth
    if auth.method in ("oidc", "proxy"):
        return _refreshing(auth, settings.request_timeout)
    if auth.method == "static":
        token = _preferred_token(auth)
        if token is None:
            return None
        return StaticTokenSource(token, expiry=auth.access_token_expiry)
    return None


def _preferred_token(auth: AuthSettings) -> Secret | None:
    if auth.token_to_use == "id" and auth.id_token:
        return auth.id_token
    return auth.access_token or auth.id_token


def token_store_for(auth: AuthSettings) -> TokenStore | None:
    """Where this configuration keeps rotated tokens: its client.yaml, else a state file of its own."""
    if auth.refresh_token is None:
        return None
    if auth.token_file is not None:
        return ClientYamlStore(auth.token_file, legacy=auth.token_file_legacy)
    if auth.state_dir is not None:
        return StateFileStore(state_file_for(auth.state_dir, auth.refresh_token.reveal()))
    return None


def _refreshing(auth: AuthSettings, timeout: float) -> RefreshingTokenSource:
    if auth.token_url is None or auth.refresh_token is None:
        raise AuthenticationError(NO_CREDENTIALS)
    return RefreshingTokenSource(
        token_url=auth.token_url,
        client_id=auth.client_id,
        refresh_token=auth.refresh_token,
        tls=auth.tls,
        timeout=timeout,
        token_to_use=auth.token_to_use,
        initial_token=_preferred_token(auth),
        initial_expiry=auth.access_token_expiry,
        via_proxy=auth.method == "proxy",
        store=token_store_for(auth),
    )


def token_source_for_request(default: TokenSource | None) -> TokenSource:
    """The caller's own token when the HTTP layer let a pass-through caller in, else the server's own."""
    from fastmcp.server.dependencies import get_access_token, get_http_headers

    access = get_access_token()
    if access is not None and access.claims.get("flightctl_passthrough"):
        organization = get_http_headers(include={ORG_HEADER}).get(ORG_HEADER) or None
        if organization is not None and not _UUID.fullmatch(organization):
            raise InvalidRequest(
                f"The {ORG_HEADER} header must be an organization UUID, not {organization[:60]!r}. "
                "List your organizations with `flightctl get organizations`, or leave the header out to use "
                "your only one."
            )
        return PassThroughTokenSource(access.token, organization)
    if default is None:
        raise AuthenticationError(NO_CREDENTIALS)
    return default
