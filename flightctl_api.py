"""The Flight Control API client: flightctl-client calls off the event loop, with auth, retries and errors.

``FlightControlAPI`` runs flightctl-client's synchronous urllib3 calls in worker threads, adds what the
generated client never sends (``Authorization``, ``org_id``, ``Flightctl-API-Version``), parses JSON itself
so fields and enum values newer than the client survive, retries 429/503 and one 401, and translates
every foreign failure into errors.py's tree at one boundary (``_send_blocking``). What to call for each
kind comes from resource_queries.KINDS.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import orjson
import urllib3

from auth import TokenSource, organization_for
from errors import APIConnectionError, APIError, AuthenticationError, ConfigurationError, InvalidRequest
from resource_queries import API_VERSION, ResourceKind

if TYPE_CHECKING:
    from config import Settings

__all__ = ["FlightControlAPI", "ListPage"]

_log = logging.getLogger("flightctl_mcp.api")

_MAX_RETRY_AFTER = 3600.0
_CONCURRENT_CALLS = 64


@dataclass(frozen=True)
class ListPage:
    """One page of a list answer, parsed as plain JSON."""

    items: list[dict[str, Any]]
    continue_token: str | None
    remaining: int | None
    summary: dict[str, Any] | None = None


@dataclass
class _Response:
    """One HTTP answer; the body is parsed in the worker thread, never on the event loop."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    data: Any = None
    is_json: bool = False

    @classmethod
    def read(cls, status: int, headers: Mapping[str, str], body: bytes) -> _Response:
        try:
            return cls(status, headers, body, _loads(body) if body else None, True)
        except ValueError:
            return cls(status, headers, body)


def _loads(body: bytes) -> Any:
    """Parse a body with orjson (the largest cost of a list call with the json module); what orjson refuses
    but the json module takes (NaN, lone surrogates) still parses. Integers over 64 bits become floats."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


_Call = Callable[[dict[str, str]], Any]
_DROP_ATTEMPTS = 3  # sends of one request whose connection drops without an answer


def _is_read(method: str) -> bool:
    """flightctl-client's list_*/get_* operations are HTTP GETs: safe to send again."""
    return method.startswith(("list_", "get_"))


class _Dropped(APIConnectionError):
    """The connection closed or reset before a whole answer arrived; ``_send`` may send again."""

    def __init__(self, base: str | None, reason: str, source: str = "API_BASE_URL") -> None:
        super().__init__(reason)
        self.base = base
        self.reason = reason
        self.source = source

    def after(self, attempts: str) -> APIConnectionError:
        """The error the caller sees once sending again is over (``attempts`` says how often and why)."""
        plain = (
            f" The URL (from {self.source}) is plain http://: if the server speaks TLS, write https:// there."
            if (self.base or "").startswith("http://")
            else ""
        )
        return APIConnectionError(
            f"Flight Control at {self.base} closed the connection without answering, {attempts} "
            f"({self.reason}).{plain} Retry in a moment; if it keeps happening check the API server and any "
            "proxy or load balancer between here and it (idle timeouts, restarts)."
        )


def _reason(exc: BaseException) -> str:
    """The innermost cause urllib3 wraps ("Remote end closed connection without response")."""
    inner = exc.args[-1] if isinstance(exc, urllib3.exceptions.ProtocolError) and exc.args else exc
    text = str(inner) if isinstance(inner, BaseException) else str(exc)
    return " ".join((text or type(inner).__name__).split())[:300]


class FlightControlAPI:
    """Flight Control's REST API through flightctl-client, shared by every caller of one server.

    One urllib3 pool serves all callers; each call carries the bearer of the ``tokens`` passed to it,
    so callers with different identities never see each other's token.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        max_attempts: int = 4,
        max_retry_wait: float = 15.0,
        backoff: float = 0.5,
    ) -> None:
        self._settings = settings
        self._max_attempts = max_attempts
        self._max_retry_wait = max_retry_wait
        self._backoff = backoff
        self._client: Any = None
        self._limiters: dict[int, anyio.CapacityLimiter] = {}
        self._build_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FlightControlAPI({self._settings.api_base_url!r})"

    # --- public reads -------------------------------------------------------------------------------

    async def list_page(
        self,
        kind: ResourceKind,
        tokens: TokenSource | None,
        *,
        limit: int,
        continue_token: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        order: str | None = None,
        parent: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> ListPage:
        """Read one page of ``kind`` (of ``parent`` for a nested kind); selectors are resent on every
        page (the token does not bind them)."""
        query: dict[str, Any] = {"limit": limit, "field_selector": field_selector, **_parent(kind, parent)}
        if continue_token:
            query["var_continue"] = continue_token
        if kind.label_selector:
            query["label_selector"] = label_selector
        if kind.order:
            query["order"] = order
        query.update(extra or {})
        body = await self.call(kind.api_class, kind.list_method, tokens, hint_tool=kind.tool, **query)
        return _parse_list(body)

    async def summary(
        self,
        tokens: TokenSource | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> dict[str, Any]:
        """Device counts over the whole selection (``summaryOnly``: no ``limit``/``continue`` allowed)."""
        body = await self.call(
            "DeviceApi",
            "list_devices_without_preload_content",
            tokens,
            hint_tool="count_devices",
            summary_only=True,
            label_selector=label_selector,
            field_selector=field_selector,
        )
        summary = body.get("summary") if isinstance(body, dict) else None
        return summary if isinstance(summary, dict) else {}

    async def get(
        self, kind: ResourceKind, name: str, tokens: TokenSource | None, *, parent: str | None = None
    ) -> dict[str, Any]:
        """One object by name (a fleet comes with its devices summary; a nested kind's, of ``parent``)."""
        if not kind.get_method:
            raise APIError(
                400,
                f"{kind.kind} objects cannot be fetched by name.",
                tool_hint=f"Use {kind.tool} with field_selector 'metadata.name={name}'.",
            )
        body = await self.call(
            kind.api_class,
            kind.get_method,
            tokens,
            hint_tool=kind.tool,
            name=name,
            **_parent(kind, parent),
            **kind.get_query,
        )
        return body if isinstance(body, dict) else {}

    async def get_path(self, api_class: str, method: str, tokens: TokenSource | None, **query: Any) -> Any:
        """Any other read (rendered, lastseen, labels, organizations, version); None for a 204."""
        return await self.call(api_class, method, tokens, **query)

    # --- the one call path --------------------------------------------------------------------------

    async def call(
        self,
        api_class: str,
        method: str,
        tokens: TokenSource | None,
        *,
        hint_tool: str | None = None,
        **query: Any,
    ) -> Any:
        """Run one flightctl-client operation with auth, retries and error mapping; return parsed JSON."""
        args = {k: v for k, v in query.items() if v is not None}
        timeout = float(self._settings.request_timeout)

        organization = organization_for(tokens, self._settings.organization)

        def run(headers: dict[str, str]) -> Any:  # runs in a worker thread, client built there too
            operation = getattr(self._api(api_class, organization), method)
            return operation(**args, _headers=headers, _request_timeout=timeout)

        response = await self._with_auth(run, tokens, idempotent=_is_read(method))
        if response.status == 204:
            return None
        if response.status >= 400:
            raise _status_error(response, hint_tool)
        if response.is_json:
            return response.data
        raise APIConnectionError(
            f"Flight Control answered {method.removesuffix('_without_preload_content')} with a body that "
            f"is not JSON (HTTP {response.status}). Check that API_BASE_URL points at the Flight Control "
            "API (the part before /api/v1)."
        )

    async def _with_auth(self, run: _Call, tokens: TokenSource | None, *, idempotent: bool) -> _Response:
        """Send with the current bearer; after a 401, retry once with a refreshed one."""
        bearer = await tokens.bearer() if tokens is not None else None
        response = await self._with_retries(run, bearer, idempotent)
        if response.status == 401 and tokens is not None and bearer is not None:
            fresh = await tokens.refresh_after_rejection(bearer)
            if fresh is not None:
                response = await self._with_retries(run, fresh, idempotent)
        if response.status == 401:
            raise _auth_error(response, getattr(tokens, "rejection_advice", None))
        return response

    async def _with_retries(self, run: _Call, bearer: str | None, idempotent: bool) -> _Response:
        """Retry 429/503 with backoff honouring ``Retry-After``, capped in attempts and total wait."""
        headers = {"Flightctl-API-Version": API_VERSION}
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        waited = 0.0
        for attempt in range(1, self._max_attempts + 1):
            response = await self._send(run, headers, idempotent)
            if response.status not in (429, 503):
                return response
            delay = _retry_after(response.headers) or self._backoff * 2 ** (attempt - 1) * (
                1 + random.random() / 4
            )
            if attempt == self._max_attempts or waited + delay > self._max_retry_wait:
                break
            _log.info("Flight Control answered %s; retrying in %.1f s", response.status, delay)
            await asyncio.sleep(delay)
            waited += delay
        response.headers = {**response.headers, "x-mcp-retried": f"{attempt - 1} times over {waited:.1f} s"}
        return response

    async def _send(self, run: _Call, headers: dict[str, str], idempotent: bool) -> _Response:
        """One HTTP exchange in a worker thread, sent again when the connection drops without a whole answer.

        A connection the API or a proxy closes without answering (a stale pooled keep-alive connection, a
        restarted load balancer), or resets mid-answer, is retried up to ``_DROP_ATTEMPTS`` times with a
        short backoff, within the request timeout, on every page of a list alike. Only idempotent requests
        are: every request this client sends today is a GET (``_is_read``), so sending it again cannot do
        anything twice. A request that is not idempotent must never be sent again once it may have reached
        the API, least of all after a response started arriving; there are none today.
        """
        deadline = time.monotonic() + self._settings.request_timeout
        for attempt in range(1, _DROP_ATTEMPTS + 1):
            try:
                return await anyio.to_thread.run_sync(
                    self._send_blocking, run, headers, limiter=self._limiter()
                )
            except _Dropped as exc:
                delay = self._backoff / 5 * 2 ** (attempt - 1) * (1 + random.random() / 4)
                if not idempotent:
                    raise exc.after("and the request is not safe to send again") from exc
                if attempt == _DROP_ATTEMPTS:
                    raise exc.after(f"{attempt} times in a row") from exc
                if time.monotonic() + delay >= deadline:
                    raise exc.after(
                        f"{attempt} time{'s' if attempt > 1 else ''}, with no time left to send it again "
                        f"within the {self._settings.request_timeout:g} s request timeout"
                    ) from exc
                _log.info("Flight Control dropped the connection (%s); sending again in %.2f s", exc, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _limiter(self) -> anyio.CapacityLimiter:
        """One limiter per event loop (tests and the CLI may run several loops over one instance)."""
        loop = id(asyncio.get_running_loop())
        limiter = self._limiters.get(loop)
        if limiter is None:
            self._limiters = {loop: anyio.CapacityLimiter(_CONCURRENT_CALLS)}
            limiter = self._limiters[loop]
        return limiter

    def _send_blocking(self, run: _Call, headers: dict[str, str]) -> _Response:
        from flightctl.exceptions import ApiException

        base = self._settings.api_base_url
        timeout = self._settings.request_timeout
        started = time.monotonic()
        try:
            raw = run(dict(headers))
            try:
                body = raw.read()
            finally:
                raw.release_conn()
        except ApiException as exc:  # flightctl-client wraps TLS failures as status 0
            raise _connection_error(self._settings, str(exc.reason or exc), tls=True) from exc
        except urllib3.exceptions.SSLError as exc:
            raise _connection_error(self._settings, str(exc), tls=True) from exc
        except urllib3.exceptions.NewConnectionError as exc:  # a TimeoutError subclass, but not a timeout
            raise _connection_error(self._settings, str(exc), tls=False) from exc
        except (urllib3.exceptions.ProtocolError, ConnectionResetError, ConnectionAbortedError) as exc:
            # Closed or reset without a (whole) answer: "Remote end closed connection without response".
            raise _Dropped(base, _reason(exc), self._settings.api_base_url_source) from exc
        except (urllib3.exceptions.TimeoutError, TimeoutError) as exc:
            raise APIConnectionError(
                f"Flight Control at {base} did not answer within {timeout:g} s "
                f"(gave up after {time.monotonic() - started:.1f} s). Retry; if it keeps happening raise "
                "the request timeout or check the API server's health."
            ) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _connection_error(self._settings, str(exc), tls=False) from exc
        return _Response.read(raw.status, {k.lower(): v for k, v in raw.headers.items()}, body)

    # --- client construction ------------------------------------------------------------------------

    def _api(self, api_class: str, organization: str | None) -> Any:
        """The flightctl-client API object for one call in ``organization`` (the shared ApiClient is built
        on first use, in a worker thread: it reads CA files)."""
        import flightctl.api

        with self._build_lock:
            if self._client is None:
                self._client = _build_api_client(self._settings)
        return getattr(flightctl.api, api_class)(_InOrganization(self._client, organization))

    def close(self) -> None:
        """Release pooled connections (the pool is rebuilt on the next call)."""
        if self._client is not None:
            self._client.rest_client.pool_manager.clear()


def _build_api_client(settings: Settings) -> Any:
    """One ApiClient for the process: host, TLS and pool from settings (org_id is added per call)."""
    from flightctl.api_client import ApiClient
    from flightctl.configuration import Configuration

    if not settings.api_base_url:
        raise ConfigurationError(
            "API_BASE_URL is not set and no client.yaml names a server. Set API_BASE_URL to the Flight "
            "Control API address (for example https://api.flightctl.example.com:3443) or run "
            "`flightctl login`."
        )
    client = ApiClient(Configuration(host=settings.api_base_url.rstrip("/") + "/api/v1"))
    # One TLS truth: config.py's SSLContext (CA order, verify, tls-server-name). cert_reqs must match the
    # context's mode, or urllib3 overwrites verify_mode on the shared context. Retries are ours.
    context = settings.tls.ssl_context()
    client.rest_client.pool_manager = urllib3.PoolManager(
        num_pools=4,
        maxsize=_CONCURRENT_CALLS,
        ssl_context=context,
        cert_reqs=context.verify_mode,
        retries=False,
    )
    return client


class _InOrganization:
    """The shared ApiClient as one call sees it: every query it serializes carries that call's org_id.

    flightctl-client never sends org_id (the spec's orgId scheme is referenced by no operation), so it
    is added here, explicitly per call; everything else is the shared client itself.
    """

    def __init__(self, client: Any, organization: str | None) -> None:
        self._client = client
        self._organization = organization

    def param_serialize(self, *args: Any, **kwargs: Any) -> Any:
        if self._organization:
            kwargs["query_params"] = [*(kwargs.get("query_params") or []), ("org_id", self._organization)]
        return self._client.param_serialize(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def _parent(kind: ResourceKind, parent: str | None) -> dict[str, str]:
    """The path argument of a nested kind (``fleet=...``); a nested kind needs one, a flat one has none."""
    if kind.parent_arg is None:
        return {}
    if not parent:
        raise InvalidRequest(
            f"{kind.tool} lists the {kind.plural} of one {kind.parent_arg}: pass {kind.parent_arg}."
        )
    return {kind.parent_arg: parent}


def _parse_list(body: Any) -> ListPage:
    if not isinstance(body, dict):
        return ListPage([], None, None)
    meta = body.get("metadata") or {}
    items = [i for i in body.get("items") or [] if isinstance(i, dict)]
    remaining = meta.get("remainingItemCount")
    return ListPage(
        items=items,
        continue_token=meta.get("continue") or None,
        remaining=remaining if isinstance(remaining, int) else None,
        summary=body.get("summary") if isinstance(body.get("summary"), dict) else None,
    )


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    # A finite, non-negative number of seconds, at most an hour, whatever the header said.
    return min(max(0.0, seconds), _MAX_RETRY_AFTER) if math.isfinite(seconds) else None


def _server_message(response: _Response) -> str:
    """The Status.message of an error body, or its text when the body is not a Status."""
    body = response.data
    if isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"]:
        return str(body["message"])
    text = response.body.decode("utf-8", "replace").strip()
    return text[:500] or f"HTTP {response.status} with an empty body"


_ADVICE: Mapping[int, str] = {
    400: "Fix the argument the message names, then call again.",
    403: "This account may not read this resource in this organization: ask a Flight Control "
    "administrator for access, or check the organization setting.",
    404: "Check the name.",
    406: "This Flight Control does not serve API version v1beta1; upgrade it or use a matching "
    "flightctl-mcp.",
    409: "The object is changing; retry in a moment.",
    429: "Flight Control is rate limiting this client{retried}; wait {wait} and try again, with fewer calls.",
    503: "Flight Control is unavailable{retried}; wait {wait} and try again; if it persists check its "
    "health.",
}
#: Advice only an assistant calling tools can follow (errors.user_error adds it for that audience only).
_TOOL_HINTS: Mapping[int, str] = {
    400: "Selector grammar and fields are in the server instructions and each tool's description.",
    404: "List existing names with {tool}.",
}


#: Beginnings of the 400 messages Flight Control gives for a bad argument (selector, limit, cursor); other
#: 400s (organization, missing token) are not the arguments' fault and get their own advice.
_ARGUMENT_FAULTS = (
    "failed to parse",
    "unknown or unsupported selector",
    "API Error: parameter",
    "limit cannot",
    "parameters such as",
)
_NOT_ARGUMENT_400: Mapping[str, str] = {
    "invalid organization ID format": "The organization must be a UUID: check ORG_ID or `organization` in "
    "client.yaml.",
    "user belongs to multiple organizations": "Choose an organization: set ORG_ID, or `organization` in "
    "client.yaml (`flightctl config set-organization <id>`).",
    "failed to get auth token": "No bearer token reached Flight Control; check the credentials settings.",
}


def _status_error(response: _Response, hint_tool: str | None) -> APIError:
    status = response.status
    message = _server_message(response)
    retry_after = _retry_after(response.headers)
    retried = response.headers.get("x-mcp-retried")
    if status == 400 and not message.startswith(_ARGUMENT_FAULTS):
        advice = next(
            (text for start, text in _NOT_ARGUMENT_400.items() if message.startswith(start)),
            "Flight Control refused the request; its message above says why.",
        )
        return APIError(status, f"Flight Control answered 400: {message}. {advice}", retry_after=retry_after)
    advice = _ADVICE.get(status) or (
        "Flight Control failed on its side; retry later, and check the API server's logs if it persists."
        if status >= 500
        else "Check the arguments and the server's message above."
    )
    advice = advice.format(
        retried=f" (retried {retried})" if retried else "",
        wait=f"{retry_after:g} s" if retry_after is not None else "a little",
    )
    hint = _TOOL_HINTS.get(status)
    return APIError(
        status,
        f"Flight Control answered {status}: {message}. {advice}",
        retry_after=retry_after,
        tool_hint=hint.format(tool=hint_tool or "the matching query tool") if hint else None,
    )


_REFUSED_SERVER_CREDENTIALS = (
    "Run `flightctl login` again, or set a fresh REFRESH_TOKEN (or access token) for this server, then retry."
)


def _auth_error(response: _Response, advice: str | None) -> AuthenticationError:
    """What to do depends on whose token it was (the server's own, or the HTTP caller's)."""
    return AuthenticationError(
        f"Flight Control refused the credentials (401: {_server_message(response)}). "
        + (advice or _REFUSED_SERVER_CREDENTIALS)
    )


#: What OpenSSL says when the other end answered a TLS handshake in plain HTTP.
_PLAIN_HTTP_SIGNS = (
    "WRONG_VERSION_NUMBER",
    "RECORD LAYER FAILURE",
    "UNKNOWN PROTOCOL",
    "PACKET LENGTH TOO LONG",
)


def _connection_error(settings: Settings, reason: str, *, tls: bool) -> APIConnectionError:
    """What went wrong reaching Flight Control, naming where the URL (and the CA) were configured."""
    base, source = settings.api_base_url, settings.api_base_url_source
    reason = " ".join(reason.split())[:300]
    upper = reason.upper()
    if any(sign in upper for sign in _PLAIN_HTTP_SIGNS):
        return APIConnectionError(
            f"Flight Control at {base} answered in plain HTTP, not TLS ({reason}). The URL comes from "
            f"{source}: if that server really serves plain HTTP write http:// there; otherwise check the "
            "port (the API serves TLS on 3443 by default)."
        )
    if tls or "CERTIFICATE" in upper or "SSL" in upper:
        return APIConnectionError(
            f"TLS with Flight Control at {base} (from {source}) failed: {reason}. The server's certificate "
            f"was checked against {settings.tls.source}: set CA_CERT_PATH to the CA that signed it (or fix "
            "certificate-authority in client.yaml); INSECURE_SKIP_VERIFY=true only for testing."
        )
    return APIConnectionError(
        f"Could not reach Flight Control at {base}: {reason}. The URL comes from {source}: check it, that "
        "the API server is running, and the network between here and it."
    )
