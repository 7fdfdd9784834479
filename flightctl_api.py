"""The Flight Control API client: flightctl-client calls off the event loop, with auth, retries and errors.

``FlightControlAPI`` runs flightctl-client's synchronous urllib3 calls in worker threads, adds what the
generated client never sends (``Authorization``, ``org_id``, ``Flightctl-API-Version``), parses JSON itself
so fields and enum values newer than the client survive, and retries 429/503, dropped connections and one
401. Foreign failures become errors.py's at one boundary (api_connection.send_blocking), failed answers in
api_responses. What to call for each kind comes from resource_queries.KINDS.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import anyio
import urllib3

from api_connection import (
    CONCURRENT_CALLS,
    Call,
    Dropped,
    InOrganization,
    api_root,
    build_api_client,
    build_pool,
    send_blocking,
)
from api_responses import Decode, Response, auth_error, retry_after_seconds, status_error
from auth import TokenSource, organization_for
from errors import APIConnectionError, APIError, InvalidRequest
from page_decoding import page_decoder
from resource_queries import API_VERSION, ResourceKind

if TYPE_CHECKING:
    from config import Settings

__all__ = ["FlightControlAPI", "ListPage"]

_log = logging.getLogger("flightctl_mcp.api")


@dataclass(frozen=True)
class ListPage:
    """One page of a list answer, parsed as plain JSON."""

    items: list[dict[str, Any]]
    continue_token: str | None
    remaining: int | None
    summary: dict[str, Any] | None = None


_DROP_ATTEMPTS = 3  # sends of one request whose connection drops without an answer


@dataclass(frozen=True)
class _Exchange:
    """One request as the retry layers see it: how to send it, whether sending it again is safe, and how
    to read a successful body (None: parsed in full)."""

    run: Call
    idempotent: bool
    decode: Decode | None = None


def _is_read(method: str) -> bool:
    """flightctl-client's list_*/get_* operations are HTTP GETs: safe to send again."""
    return method.startswith(("list_", "get_"))


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
        self._pool: urllib3.PoolManager | None = None
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
        view: tuple[str, ...] | None = None,
    ) -> ListPage:
        """Read one page of ``kind`` (of ``parent`` for a nested kind); selectors are resent on every
        page (the token does not bind them). With ``view`` (dotted paths) the items are read with only
        what ``views.project(item, view)`` keeps: for callers that show nothing else."""
        query: dict[str, Any] = {"limit": limit, "field_selector": field_selector, **_parent(kind, parent)}
        if continue_token:
            query["var_continue"] = continue_token
        if kind.label_selector:
            query["label_selector"] = label_selector
        if kind.order:
            query["order"] = order
        query.update(extra or {})
        decode = page_decoder(view) if view else None
        body = await self._call(kind.api_class, kind.list_method, tokens, kind.tool, decode, query)
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
        return await self._call(api_class, method, tokens, hint_tool, None, query)

    async def _call(
        self,
        api_class: str,
        method: str,
        tokens: TokenSource | None,
        hint_tool: str | None,
        decode: Decode | None,
        query: Mapping[str, Any],
    ) -> Any:
        """``call``, with a successful body read by ``decode`` when given (page_decoding)."""
        args = {k: v for k, v in query.items() if v is not None}
        timeout = float(self._settings.request_timeout)
        organization = organization_for(tokens, self._settings.organization)

        def run(headers: dict[str, str]) -> Any:  # runs in a worker thread, client built there too
            operation = getattr(self._api(api_class, organization), method)
            return operation(**args, _headers=headers, _request_timeout=timeout)

        what = method.removesuffix("_without_preload_content")
        return await self._exchange(_Exchange(run, _is_read(method), decode), tokens, what, hint_tool)

    async def read_path(
        self, path: str, tokens: TokenSource | None, *, hint_tool: str | None = None, **query: str
    ) -> Any:
        """GET ``/api/v1<path>`` on the shared pool, without flightctl-client's generated classes.

        For the reads that must be quick before any tool runs: tools/list asks for the caller's
        permissions, and importing every generated API class first would hold the first tools/list up by
        longer than the whole rest of it (bench/startup.py). Same auth, retries and errors as ``call``.
        """
        organization = organization_for(tokens, self._settings.organization)
        arguments = {**query, **({"org_id": organization} if organization else {})}
        url = api_root(self._settings) + quote(path) + (f"?{urlencode(arguments)}" if arguments else "")
        timeout = urllib3.Timeout(total=float(self._settings.request_timeout))

        def run(headers: dict[str, str]) -> Any:  # runs in a worker thread, pool built there too
            return self._shared_pool().request(
                "GET", url, headers=headers, timeout=timeout, preload_content=False, retries=False
            )

        return await self._exchange(_Exchange(run, idempotent=True), tokens, f"GET {path}", hint_tool)

    async def _exchange(
        self, exchange: _Exchange, tokens: TokenSource | None, what: str, hint_tool: str | None
    ) -> Any:
        """Send with auth and retries; the parsed JSON body, None for a 204, or the error it means."""
        response = await self._with_auth(exchange, tokens)
        if response.status == 204:
            return None
        if response.status >= 400:
            raise status_error(response, hint_tool)
        if response.is_json:
            return response.data
        raise APIConnectionError(
            f"Flight Control answered {what} with a body that is not JSON (HTTP {response.status}). Check "
            "that API_BASE_URL points at the Flight Control API (the part before /api/v1)."
        )

    async def _with_auth(self, exchange: _Exchange, tokens: TokenSource | None) -> Response:
        """Send with the current bearer; after a 401, retry once with a refreshed one."""
        bearer = await tokens.bearer() if tokens is not None else None
        response = await self._with_retries(exchange, bearer)
        if response.status == 401 and tokens is not None and bearer is not None:
            fresh = await tokens.refresh_after_rejection(bearer)
            if fresh is not None:
                response = await self._with_retries(exchange, fresh)
        if response.status == 401:
            raise auth_error(response, getattr(tokens, "rejection_advice", None))
        return response

    async def _with_retries(self, exchange: _Exchange, bearer: str | None) -> Response:
        """Retry 429/503 with backoff honouring ``Retry-After``, capped in attempts and total wait."""
        headers = {"Flightctl-API-Version": API_VERSION}
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        waited = 0.0
        for attempt in range(1, self._max_attempts + 1):
            response = await self._send(exchange, headers)
            if response.status not in (429, 503):
                return response
            delay = retry_after_seconds(response.headers) or self._backoff * 2 ** (attempt - 1) * (
                1 + random.random() / 4
            )
            if attempt == self._max_attempts or waited + delay > self._max_retry_wait:
                break
            _log.info("Flight Control answered %s; retrying in %.1f s", response.status, delay)
            await asyncio.sleep(delay)
            waited += delay
        response.headers = {**response.headers, "x-mcp-retried": f"{attempt - 1} times over {waited:.1f} s"}
        return response

    async def _send(self, exchange: _Exchange, headers: dict[str, str]) -> Response:
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
                    send_blocking,
                    self._settings,
                    exchange.run,
                    headers,
                    exchange.decode,
                    limiter=self._limiter(),
                )
            except Dropped as exc:
                delay = self._backoff / 5 * 2 ** (attempt - 1) * (1 + random.random() / 4)
                if not exchange.idempotent:
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
            self._limiters = {loop: anyio.CapacityLimiter(CONCURRENT_CALLS)}
            limiter = self._limiters[loop]
        return limiter

    # --- client construction ------------------------------------------------------------------------

    def _api(self, api_class: str, organization: str | None) -> Any:
        """The flightctl-client API object for one call in ``organization`` (the shared ApiClient is built
        on first use, in a worker thread: it reads CA files)."""
        import flightctl.api

        pool = self._shared_pool()
        with self._build_lock:
            if self._client is None:
                self._client = build_api_client(self._settings, pool)
        return getattr(flightctl.api, api_class)(InOrganization(self._client, organization))

    def _shared_pool(self) -> urllib3.PoolManager:
        """The one connection pool (built on first use, in a worker thread: it reads CA files)."""
        with self._build_lock:
            if self._pool is None:
                self._pool = build_pool(self._settings)
            return self._pool

    def close(self) -> None:
        """Close the idle pooled connections now (the pool is rebuilt on the next call).

        ``PoolManager.clear()`` alone only forgets its per-host pools: urllib3 2 closes their connections
        when the garbage collector gets to them, and until then Flight Control sees them open. A
        connection still in use is closed when its exchange gives it back to the closed pool."""
        if self._pool is not None:
            hosts = self._pool.pools
            pools = [hosts.get(key) for key in hosts.keys()]  # noqa: SIM118 (the container cannot iterate)
            self._pool.clear()
            for pool in pools:
                if pool is not None:
                    pool.close()


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
