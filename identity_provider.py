"""What Flight Control says about logging in, read over HTTP with bounds on every fetch.

``FlightControlProbe`` asks Flight Control's public auth endpoints (``/api/v1/auth/validate`` for one
bearer token, ``/api/v1/auth/config`` for the login providers) and its identity provider's discovery
documents; ``IdentityProvider`` caches what they say (the default login provider, the issuer's signing
keys) so caller_auth can check tokens locally and oauth_metadata can point MCP clients at the login.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import jwt

from errors import APIConnectionError, ConfigurationError

if TYPE_CHECKING:
    from config import Settings

__all__ = ["FlightControlProbe", "IdentityProvider", "LoginConfig", "default_provider"]

logger = logging.getLogger(__name__)

_VALIDATE_PATH = "/api/v1/auth/validate"
_AUTH_CONFIG_PATH = "/api/v1/auth/config"


class FlightControlProbe:
    """Flight Control's public auth endpoints and its identity provider's discovery documents.

    A client per call keeps it free of event-loop ownership; the SSL contexts (shared, honouring
    tls-server-name) are the expensive part, and answers are cached by the callers.
    """

    def __init__(self, settings: Settings) -> None:
        if not settings.api_base_url:
            raise ConfigurationError(
                "No Flight Control API URL is configured, so HTTP callers cannot be authenticated. "
                "Set the API URL (environment or client.yaml) before serving over HTTP."
            )
        self._base = settings.api_base_url.rstrip("/")
        self.url = self._base + _VALIDATE_PATH
        self._verify = settings.tls.ssl_context()
        self._issuer_verify = settings.auth.tls.ssl_context()
        self._timeout = settings.request_timeout

    async def status_for(self, token: str) -> tuple[int, float | None]:
        """The HTTP status Flight Control gives this bearer token at /auth/validate, and its Retry-After."""
        response = await self._get(self.url, {"Authorization": f"Bearer {token}"}, self._verify)
        return response.status_code, _seconds(response.headers.get("retry-after"))

    async def auth_config(self) -> dict[str, Any]:
        """Flight Control's public /auth/config (raises APIConnectionError when it does not answer)."""
        return await self._json(self._base + _AUTH_CONFIG_PATH, self._verify)

    async def issuer_document(self, url: str) -> dict[str, Any]:
        """A discovery document or JWKS of the identity provider."""
        same_host = httpx.URL(url).host == httpx.URL(self._base).host
        return await self._json(url, self._verify if same_host else self._issuer_verify)

    async def _json(self, url: str, verify: Any) -> dict[str, Any]:
        response = await self._get(url, {}, verify)
        try:
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning("%s answered HTTP %s without the expected JSON", url, response.status_code)
            raise APIConnectionError(
                f"Flight Control's login configuration could not be read (HTTP {response.status_code})."
            ) from exc
        if not isinstance(body, dict):
            raise APIConnectionError("Flight Control's login configuration is not a JSON object.")
        return body

    async def _get(self, url: str, headers: dict[str, str], verify: Any) -> httpx.Response:
        try:
            # trust_env=False: no proxy from the environment, exactly like every other call to Flight Control
            async with httpx.AsyncClient(verify=verify, timeout=self._timeout, trust_env=False) as client:
                return await client.get(url, headers=headers)
        except httpx.HTTPError as exc:
            # The URL goes to the log only: this text can reach unauthenticated callers.
            logger.warning("%s did not answer: %s: %s", url, type(exc).__name__, exc)
            raise APIConnectionError(
                f"Flight Control did not answer ({type(exc).__name__}). Check the API URL, the network path "
                "and the TLS settings; the server log names the URL."
            ) from exc


def _seconds(value: str | None) -> float | None:
    """A Retry-After in seconds (finite, capped at an hour), or None."""
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return min(seconds, 3600.0) if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None


@dataclass(frozen=True)
class LoginConfig:
    """Flight Control's default login provider: the authorization server MCP clients log in at."""

    issuer: str | None
    client_id: str | None
    scopes: tuple[str, ...]
    provider_type: str


class IdentityProvider:
    """What Flight Control's /auth/config names (cached), and the issuer's signing keys (JWKS).

    Every fetch is bounded: one at a time, results kept for ``ttl``, failures for ``retry`` seconds,
    and an unknown key id refreshes the JWKS at most once per ``refresh_interval``, so tokens with
    made-up key ids cannot turn this server into a JWKS hammer.
    """

    def __init__(
        self,
        probe: FlightControlProbe,
        *,
        ttl: float = 300.0,
        retry: float = 30.0,
        refresh_interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._probe = probe
        self._ttl = ttl
        self._retry = retry
        self._refresh_interval = refresh_interval
        self._clock = clock
        self._lock = asyncio.Lock()
        self._config: tuple[float, LoginConfig | None] | None = None
        self._jwks_uri: str | None = None
        self._keys: dict[str, jwt.PyJWK] = {}
        self._keys_fetched = -math.inf

    async def login(self) -> LoginConfig | None:
        """The default provider, or None when Flight Control cannot tell right now."""
        async with self._lock:
            if self._config is None or self._config[0] <= self._clock():
                self._config = await self._fetch_config()
            return self._config[1]

    async def _fetch_config(self) -> tuple[float, LoginConfig | None]:
        try:
            body = await self._probe.auth_config()
        except APIConnectionError:
            return self._clock() + self._retry, None
        login = default_provider(body)
        if login is not None and login.issuer and login.provider_type == "oidc":
            try:
                discovery = await self._probe.issuer_document(
                    login.issuer.rstrip("/") + "/.well-known/openid-configuration"
                )
            except APIConnectionError:
                discovery = {}
            jwks_uri = discovery.get("jwks_uri")
            usable = isinstance(jwks_uri, str) and discovery.get("issuer") == login.issuer
            if usable and jwks_uri != self._jwks_uri:
                self._jwks_uri, self._keys, self._keys_fetched = jwks_uri, {}, -math.inf
        return self._clock() + self._ttl, login

    async def key(self, kid: str) -> jwt.PyJWK | None:
        """The issuer's public key ``kid``; None when it is not published (or cannot be read now)."""
        if kid in self._keys:
            return self._keys[kid]
        async with self._lock:
            if (
                kid not in self._keys
                and self._jwks_uri
                and self._clock() - self._keys_fetched >= self._refresh_interval
            ):
                self._keys_fetched = self._clock()
                self._keys = await self._fetch_keys(self._jwks_uri)
        return self._keys.get(kid)

    async def _fetch_keys(self, uri: str) -> dict[str, jwt.PyJWK]:
        try:
            body = await self._probe.issuer_document(uri)
        except APIConnectionError:
            return self._keys
        keys: dict[str, jwt.PyJWK] = {}
        published = body.get("keys")
        for entry in published[:50] if isinstance(published, list) else []:
            if (
                not isinstance(entry, dict)
                or not isinstance(entry.get("kid"), str)
                or entry.get("use", "sig") != "sig"
            ):
                continue
            try:
                keys[entry["kid"]] = jwt.PyJWK(entry)
            except (jwt.PyJWTError, ValueError, TypeError, KeyError):
                continue  # a key this library cannot use: tokens signed with it go to Flight Control
        return keys


def default_provider(body: dict[str, Any]) -> LoginConfig | None:
    """The provider `flightctl login` would pick: defaultProvider, else the first."""
    listed = body.get("providers")
    providers = [p for p in listed if isinstance(p, dict)] if isinstance(listed, list) else []
    if not providers:
        return None
    default = body.get("defaultProvider")
    chosen = next((p for p in providers if _field(p, "metadata").get("name") == default), providers[0])
    spec = _field(chosen, "spec")
    scopes = spec.get("scopes")
    return LoginConfig(
        issuer=spec.get("issuer") if isinstance(spec.get("issuer"), str) else None,
        client_id=spec.get("clientId") if isinstance(spec.get("clientId"), str) else None,
        scopes=tuple(s for s in scopes if isinstance(s, str)) if isinstance(scopes, list) else (),
        provider_type=str(spec.get("providerType", "")),
    )


def _field(document: dict[str, Any], name: str) -> dict[str, Any]:
    """A nested object of an answer, or {} when it is missing or not an object."""
    value = document.get(name)
    return value if isinstance(value, dict) else {}
