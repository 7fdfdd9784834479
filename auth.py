"""Bearer tokens for Flight Control, from every source a user has.

A ``TokenSource`` hands out a valid bearer token (``bearer()``), a fresh one after Flight Control rejected
the last (``refresh_after_rejection()``), and who it acts for (``identity``, for audit lines).

- ``RefreshingTokenSource`` exchanges a refresh token at the identity provider's token URL ("oidc",
  OIDC_TOKEN_URL) or through Flight Control's ``/api/v1/auth/<provider>/token`` proxy ("proxy", what
  `flightctl login` sets up). It caches the token, refreshes ahead of expiry, lets one refresh run at a
  time however many callers wait, and keeps rotated tokens where the next user of the session looks for
  them (``token_store``): back in the client.yaml they came from, shared with the `flightctl` CLI, or in
  a private state file when the refresh token came from the environment.
- ``StaticTokenSource``: an access token as it is (`flightctl login --token`, ACCESS_TOKEN).
- ``PassThroughTokenSource``: the token an HTTP caller brought; it is theirs, so it is never refreshed.

Which source serves a call (the server's own, built from the settings, or the caller's) is decided in
call_credentials.py.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from config import Secret, TLSSettings
from errors import AuthenticationError
from token_store import LockTimeout, StoredTokens, TokenStore
from unverified_jwt import identity_of, jwt_claims, jwt_expiry

if TYPE_CHECKING:
    import httpx

__all__ = [
    "OrganizationScoped",
    "PassThroughTokenSource",
    "RefreshingTokenSource",
    "StaticTokenSource",
    "TokenSource",
    "organization_for",
]

log = logging.getLogger(__name__)

#: Lifetime assumed for a refreshed token whose expiry nobody tells us.
DEFAULT_LIFETIME = 300.0
#: Refresh this many seconds before expiry (at most half the token's lifetime).
DEFAULT_REFRESH_MARGIN = 60.0


@runtime_checkable
class TokenSource(Protocol):
    """Where the bearer token of a Flight Control call comes from."""

    @property
    def identity(self) -> str | None:
        """Who the token acts for (preferred_username or sub), for audit lines; None if unknown."""
        ...

    async def bearer(self) -> str:
        """A token valid now, refreshed ahead of expiry; raises AuthenticationError when none can be had."""
        ...

    async def refresh_after_rejection(self, rejected: str) -> str | None:
        """A fresh token after Flight Control answered 401 to ``rejected``; None if this source cannot."""
        ...


class PassThroughTokenSource:
    """The HTTP caller's own Flight Control token: used as it is, never refreshed, never stored.

    ``organization`` is the caller's own choice (the ``Flightctl-Org-Id`` request header), never the
    server's ORG_ID: without it Flight Control uses the caller's only organization, or says to pick one.
    """

    #: What the caller should do when Flight Control refuses the token: it is theirs, not the server's.
    rejection_advice = (
        "The token is the one your MCP client sent this server, and it has expired or was revoked "
        "(Flight Control access tokens last minutes): log in again (your client's OAuth login, or "
        "`flightctl login` and the new access token), then retry."
    )

    def __init__(self, token: str, organization: str | None = None) -> None:
        self._token = Secret(token)
        self._identity = identity_of(token)
        self.organization = organization

    @property
    def identity(self) -> str | None:
        return self._identity

    async def bearer(self) -> str:
        return self._token.reveal()

    async def refresh_after_rejection(self, rejected: str) -> str | None:
        return None

    def __repr__(self) -> str:
        return f"PassThroughTokenSource(identity={self._identity!r})"


class StaticTokenSource:
    """A fixed access token (ACCESS_TOKEN, `flightctl login --token`); it cannot be refreshed."""

    def __init__(self, token: Secret, *, expiry: datetime | None = None) -> None:
        self._token = token
        self._identity = identity_of(token.reveal())
        self._expires_at = jwt_expiry(token.reveal()) or (expiry.timestamp() if expiry else None)

    @property
    def identity(self) -> str | None:
        return self._identity

    async def bearer(self) -> str:
        if self._expires_at is not None and time.time() >= self._expires_at:
            when = datetime.fromtimestamp(self._expires_at).astimezone().isoformat(timespec="seconds")
            raise AuthenticationError(
                f"The configured access token expired at {when} and cannot be refreshed. "
                "Run `flightctl login` again, or set a fresh ACCESS_TOKEN (or a REFRESH_TOKEN with "
                "OIDC_TOKEN_URL so the server can renew its own tokens)."
            )
        return self._token.reveal()

    async def refresh_after_rejection(self, rejected: str) -> str | None:
        return None

    def __repr__(self) -> str:
        return f"StaticTokenSource(identity={self._identity!r})"


class _LoopLock:
    """An asyncio.Lock for the running loop (a source may outlive one loop, e.g. across tests)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = asyncio.Lock()

    def get(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._lock = loop, asyncio.Lock()
        return self._lock


class RefreshingTokenSource:
    """Exchanges a refresh token for access tokens, at an OIDC token URL or the Flight Control proxy.

    With a ``store`` (the client.yaml the session came from, or the state file of a session from the
    environment) every refresh runs under the store's lock: re-read the stored tokens (another process may
    have rotated them meanwhile, and then they are the live ones), exchange, write the new ones back. The
    whole of it runs in a worker thread, so neither the lock nor the file touches the event loop, and a
    refresh whose caller gave up still finishes and stores what it got.
    """

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        refresh_token: Secret,
        tls: TLSSettings,
        timeout: float,
        token_to_use: str = "access",
        initial_token: Secret | None = None,
        initial_expiry: datetime | None = None,
        refresh_margin: float = DEFAULT_REFRESH_MARGIN,
        via_proxy: bool = False,
        store: TokenStore | None = None,
    ) -> None:
        self._token_url = token_url
        self._client_id = client_id
        self._refresh_token = refresh_token
        self._tls = tls
        self._timeout = timeout
        self._use_id_token = token_to_use == "id"
        self._margin = refresh_margin
        self._via_proxy = via_proxy
        self._store_at = store
        self._store_failed = False
        # The refresh token the store held when we last read or wrote it: a different one there now was
        # rotated by someone else (the CLI, another server) and is the live one.
        self._seen_stored = refresh_token.reveal() if store and store.holds_configured_token else None
        self._lock = _LoopLock()
        self._thread_lock = threading.Lock()
        self._current: tuple[Secret, float] | None = None  # bearer, when to refresh it
        self._identity: str | None = None
        if initial_token:
            known = jwt_expiry(initial_token.reveal()) or (
                initial_expiry.timestamp() if initial_expiry else None
            )
            if known is not None:  # the CLI refreshes at once when the expiry is unknown; so do we
                self._store(initial_token, known)

    @property
    def identity(self) -> str | None:
        return self._identity

    @property
    def refresh_token(self) -> Secret:
        """The refresh token in use now: the configured one, or the latest the server rotated to."""
        return self._refresh_token

    @property
    def store(self) -> TokenStore | None:
        """Where rotated tokens are kept beyond this process, if anywhere."""
        return self._store_at

    def __repr__(self) -> str:
        return f"RefreshingTokenSource(token_url={self._token_url!r}, identity={self._identity!r})"

    async def bearer(self) -> str:
        token = self._fresh_token()
        if token is not None:
            return token
        async with self._lock.get():
            token = self._fresh_token()  # another caller may have refreshed while we waited
            if token is not None:
                return token
            return await asyncio.to_thread(self._refresh, None)

    async def refresh_after_rejection(self, rejected: str) -> str | None:
        async with self._lock.get():
            current = self._current[0].reveal() if self._current else None
            if current is not None and current != rejected and self._fresh_token() is not None:
                return current  # someone already replaced the rejected token
            return await asyncio.to_thread(self._refresh, rejected)

    def _fresh_token(self) -> str | None:
        current = self._current
        if current is not None and time.time() < current[1]:
            return current[0].reveal()
        return None

    def _refresh_time(self, token: str, expires_at: float) -> float:
        issued = jwt_claims(token).get("iat")
        start = float(issued) if isinstance(issued, int | float) and issued < expires_at else time.time()
        return expires_at - min(self._margin, max(0.0, expires_at - start) / 2)

    def _store(self, token: Secret, expires_at: float) -> None:
        self._current = (token, self._refresh_time(token.reveal(), expires_at))
        self._identity = identity_of(token.reveal()) or self._identity

    # -- in the worker thread ------------------------------------------------------------------------

    def _refresh(self, rejected: str | None) -> str:
        """Blocking: one refresh at a time in this process, and under the store's lock across processes."""
        with self._thread_lock:
            if self._store_at is None:
                return self._exchange()[0]
            wait = 2 * self._timeout + 5
            try:
                with self._store_at.locked(wait):
                    adopted = self._adopt_stored(self._store_at, rejected)
                    if adopted is not None:
                        return adopted
                    bearer, tokens = self._exchange()
                    self._save(self._store_at, tokens)
                    return bearer
            except LockTimeout as exc:
                raise AuthenticationError(
                    f"Could not refresh the access token: {exc}. If no other flightctl-mcp is refreshing "
                    "right now, delete that lock file."
                ) from None

    def _adopt_stored(self, store: TokenStore, rejected: str | None) -> str | None:
        """Take up tokens another process stored meanwhile; their bearer when it is still good."""
        try:
            stored = store.load()
        except OSError as exc:
            log.warning("Cannot read the stored tokens in %s (%s)", store.path, exc.strerror or exc)
            return None
        if stored is None or stored.refresh_token == self._seen_stored:
            return None  # nothing new there (a read-only file keeps showing the token we started with)
        self._seen_stored = stored.refresh_token
        if stored.refresh_token != self._refresh_token.reveal():
            log.info("Using the refresh token rotated meanwhile by another process (%s)", store.path)
            self._refresh_token = Secret(stored.refresh_token)
        bearer = (stored.id_token if self._use_id_token else None) or stored.access_token
        if not bearer or bearer == rejected:
            return None
        expires_at = jwt_expiry(bearer) or stored.expires_at
        if expires_at is None or time.time() >= self._refresh_time(bearer, expires_at):
            return None
        self._store(Secret(bearer), expires_at)
        return bearer

    def _save(self, store: TokenStore, tokens: StoredTokens) -> None:
        try:
            store.save(tokens)
        except OSError as exc:
            if not self._store_failed:
                self._store_failed = True
                log.warning(
                    "Cannot write the rotated tokens to %s (%s); keeping them in memory only. After this "
                    "process stops, the session may need `flightctl login` again.",
                    store.path,
                    exc.strerror or exc,
                )
            return
        self._seen_stored = tokens.refresh_token
        if self._store_failed:
            self._store_failed = False
            log.info("Rotated tokens are written to %s again", store.path)

    def _exchange(self) -> tuple[str, StoredTokens]:
        """The refresh grant at the token URL; stores and returns the new bearer and token set."""
        import httpx  # here, not at import: its import costs a start that never refreshes ~0.1 s

        form = {
            "grant_type": "refresh_token",
            "refresh_token": self._refresh_token.reveal(),
            "client_id": self._client_id,
        }
        try:
            with httpx.Client(
                verify=self._tls.ssl_context(), timeout=self._timeout, trust_env=False
            ) as client:
                response = client.post(self._token_url, data=form, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise AuthenticationError(
                f"Could not reach the token endpoint {self._token_url} to refresh the access token "
                f"({type(exc).__name__}: {exc or 'no detail'}). {self._reach_advice()}"
            ) from exc
        body = _json_object(response)
        if response.status_code != 200 or not isinstance(body.get("access_token"), str):
            raise AuthenticationError(self._refusal_message(response.status_code, body))
        result = self._accept(body)
        log.info(
            "Refreshed the access token at %s for %s (%s)",
            self._token_url,
            self._identity or "unknown user",
            "refresh token rotated" if body.get("refresh_token") else "same refresh token",
        )
        return result

    def _accept(self, body: dict[str, Any]) -> tuple[str, StoredTokens]:
        """Keep the new token set; keep a rotated refresh token, since the old one may now be dead."""
        access = str(body["access_token"])
        id_token = body.get("id_token") if isinstance(body.get("id_token"), str) else None
        bearer = access
        if self._use_id_token:
            if id_token:
                bearer = id_token
            else:
                log.warning(
                    "token-to-use is 'id' but the token endpoint sent no id_token; using access_token"
                )
        rotated = body.get("refresh_token")
        if isinstance(rotated, str) and rotated:
            self._refresh_token = Secret(rotated)
        expires_at = (
            jwt_expiry(bearer) or _expires_in(body.get("expires_in")) or time.time() + DEFAULT_LIFETIME
        )
        self._store(Secret(bearer), expires_at)
        return bearer, StoredTokens(self._refresh_token.reveal(), access, id_token or None, expires_at)

    def _reach_advice(self) -> str:
        name = "API_BASE_URL (or service.server in client.yaml)" if self._via_proxy else "OIDC_TOKEN_URL"
        return f"Check {name}, the network, and the CA settings (CA_CERT_PATH) for that server."

    def _refusal_message(self, status: int, body: dict[str, Any]) -> str:
        error = str(body.get("error") or f"HTTP {status}")
        detail = body.get("error_description") or body.get("message") or ""
        what = f"The token endpoint {self._token_url} refused to refresh the access token ({error}"
        what += f": {detail})." if detail else ")."
        if error == "invalid_grant":
            return (
                f"{what} The session has expired or was revoked: run `flightctl login` again "
                "(or set a fresh REFRESH_TOKEN)."
            )
        if error in {"invalid_client", "unauthorized_client"}:
            return f"{what} Check OIDC_CLIENT_ID (now {self._client_id!r}) against the identity provider."
        if status == 404:
            return f"{what} The URL is not a token endpoint; check OIDC_TOKEN_URL or the auth provider name."
        return f"{what} Try again later; if it persists, run `flightctl login` again."


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _expires_in(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    if seconds > 10**9:  # AAP sends nanoseconds (see flightctl's CLI)
        seconds /= 1e9
    return time.time() + seconds if seconds > 0 else None


class OrganizationScoped:
    """Another source's tokens, for a call in the organization it names (its ``organization`` argument).

    It only narrows: Flight Control refuses (403) an organization the token's user does not belong to.
    """

    def __init__(self, inner: TokenSource, organization: str) -> None:
        self.inner = inner
        self.organization = organization

    @property
    def identity(self) -> str | None:
        return self.inner.identity

    async def bearer(self) -> str:
        return await self.inner.bearer()

    async def refresh_after_rejection(self, rejected: str) -> str | None:
        return await self.inner.refresh_after_rejection(rejected)

    def __repr__(self) -> str:
        return f"OrganizationScoped({self.inner!r}, {self.organization!r})"


def organization_for(tokens: object, configured: str | None) -> str | None:
    """The org_id a call carries: its own ``organization``, a pass-through caller's, else ORG_ID."""
    if isinstance(tokens, OrganizationScoped):
        return tokens.organization
    if isinstance(tokens, PassThroughTokenSource):
        return tokens.organization
    return configured
