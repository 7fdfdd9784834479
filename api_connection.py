"""The connection to Flight Control: one urllib3 pool, the generated client on top, one exchange at a time.

The pool carries config's TLS (CA order, verification, server name); flightctl-client's ApiClient is
built over the same pool for the generated operations, and reads by path use the pool directly. Each
exchange runs in a worker thread (``send_blocking``), where the foreign failures are translated.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import urllib3

from api_responses import Decode, Response
from errors import APIConnectionError, ConfigurationError

if TYPE_CHECKING:
    from config import Settings

__all__ = [
    "CONCURRENT_CALLS",
    "Call",
    "Dropped",
    "InOrganization",
    "api_root",
    "build_api_client",
    "build_pool",
    "connection_error",
    "send_blocking",
]

CONCURRENT_CALLS = 64  # worker threads and pooled connections per host
Call = Callable[[dict[str, str]], Any]  # sends one request with these headers; returns urllib3's response


class Dropped(APIConnectionError):
    """The connection closed or reset before a whole answer arrived; `FlightControlAPI` may send again."""

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


def api_root(settings: Settings) -> str:
    """The API's ``.../api/v1`` address, or the error that says how to name a server."""
    if not settings.api_base_url:
        raise ConfigurationError(
            "API_BASE_URL is not set and no client.yaml names a server. Set API_BASE_URL to the Flight "
            "Control API address (for example https://api.flightctl.example.com:3443) or run "
            "`flightctl login`."
        )
    return settings.api_base_url.rstrip("/") + "/api/v1"


def build_pool(settings: Settings) -> urllib3.PoolManager:
    """The process's one urllib3 pool: TLS from settings, no retries (ours are in FlightControlAPI)."""
    api_root(settings)  # no pool for a server that is not named
    # One TLS truth: config.py's SSLContext (CA order, verify, tls-server-name). cert_reqs must match the
    # context's mode, or urllib3 overwrites verify_mode on the shared context.
    context = settings.tls.ssl_context()
    return urllib3.PoolManager(
        num_pools=4,
        maxsize=CONCURRENT_CALLS,
        ssl_context=context,
        cert_reqs=context.verify_mode,
        retries=False,
    )


def build_api_client(settings: Settings, pool: urllib3.PoolManager) -> Any:
    """flightctl-client's ApiClient over the shared pool (org_id is added per call by InOrganization)."""
    from flightctl.api_client import ApiClient
    from flightctl.configuration import Configuration

    client = ApiClient(Configuration(host=api_root(settings)))
    client.rest_client.pool_manager = pool
    return client


class InOrganization:
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


#: What OpenSSL says when the other end answered a TLS handshake in plain HTTP.
_PLAIN_HTTP_SIGNS = (
    "WRONG_VERSION_NUMBER",
    "RECORD LAYER FAILURE",
    "UNKNOWN PROTOCOL",
    "PACKET LENGTH TOO LONG",
)


def connection_error(settings: Settings, reason: str, *, tls: bool) -> APIConnectionError:
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


def send_blocking(
    settings: Settings, run: Call, headers: dict[str, str], decode: Decode | None = None
) -> Response:
    """One exchange in a worker thread: ``run`` sends on the shared pool; every foreign failure (urllib3,
    OpenSSL, flightctl-client) becomes an errors.py error here, and only here. The body is parsed here too
    (with ``decode`` when it is a success), so the event loop never spends its time on it."""
    from flightctl.exceptions import ApiException

    base = settings.api_base_url
    timeout = settings.request_timeout
    started = time.monotonic()
    try:
        raw = run(dict(headers))
        try:
            body = raw.read()
        finally:
            raw.release_conn()
    except ApiException as exc:  # flightctl-client wraps TLS failures as status 0
        raise connection_error(settings, str(exc.reason or exc), tls=True) from exc
    except urllib3.exceptions.SSLError as exc:
        raise connection_error(settings, str(exc), tls=True) from exc
    except urllib3.exceptions.NewConnectionError as exc:  # a TimeoutError subclass, but not a timeout
        raise connection_error(settings, str(exc), tls=False) from exc
    except (urllib3.exceptions.ProtocolError, ConnectionResetError, ConnectionAbortedError) as exc:
        # Closed or reset without a (whole) answer: "Remote end closed connection without response".
        raise Dropped(base, _reason(exc), settings.api_base_url_source) from exc
    except (urllib3.exceptions.TimeoutError, TimeoutError) as exc:
        raise APIConnectionError(
            f"Flight Control at {base} did not answer within {timeout:g} s "
            f"(gave up after {time.monotonic() - started:.1f} s). Retry; if it keeps happening raise "
            "the request timeout or check the API server's health."
        ) from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise connection_error(settings, str(exc), tls=False) from exc
    return Response.read(raw.status, {k.lower(): v for k, v in raw.headers.items()}, body, decode)
