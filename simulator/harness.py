"""``SimulatorServer``: the simulator on a loopback port in a background thread, for tests and benchmarks.

    with SimulatorServer(devices=60, tls_cert=cert, tls_key=key) as sim:
        token = sim.issue_access_token("viewer")
        httpx.get(f"{sim.base_url}/api/v1/devices", headers={"Authorization": f"Bearer {token}"})
        sim.faults.rate_limit(2, retry_after=1)

Start-up for small fleets takes well under a second; every instance has its own state and port.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from simulator.app import create_app
from simulator.faults import Faults
from simulator.server import bind_socket, make_server
from simulator.state import SimulatorState
from simulator.tokens import TokenSet

__all__ = ["SimulatorServer", "TokenSet"]


class SimulatorServer:
    """A running simulator. Keywords mirror the command line (see ``python -m simulator --help``)."""

    def __init__(
        self,
        *,
        devices: int = 60,
        seed: int = 1,
        load: Iterable[str | Path] = (),
        tls_cert: str | Path | None = None,
        tls_key: str | Path | None = None,
        latency_ms: float = 0.0,
        full_devices: bool = False,
        access_token_ttl: float = 300.0,
        refresh_token_ttl: float = 1800.0,
        refresh_token_rotation: bool = True,
        console_wait_seconds: float = 60.0,
        anchor: float | None = None,
        lab_devices: int = 5,
        host: str = "127.0.0.1",
        port: int = 0,
        start: bool = True,
        startup_timeout: float = 30.0,
        login_user: str | None = None,
        auth_rate_limit: tuple[int, float] | None = None,
    ) -> None:
        if bool(tls_cert) != bool(tls_key):
            raise ValueError("tls_cert and tls_key go together: give both for HTTPS, neither for HTTP")
        self.state = SimulatorState(
            devices=devices,
            seed=seed,
            load=load,
            anchor=anchor,
            lab_devices=lab_devices,
            access_token_ttl=access_token_ttl,
            refresh_token_ttl=refresh_token_ttl,
            refresh_token_rotation=refresh_token_rotation,
            console_wait_seconds=console_wait_seconds,
            latency_ms=latency_ms,
            full_devices=full_devices,
            login_user=login_user,
            auth_rate_limit=auth_rate_limit,
        )
        self._tls = (tls_cert, tls_key) if tls_cert and tls_key else None
        self._host = host
        self._port = port
        self._startup_timeout = startup_timeout
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self._error: BaseException | None = None
        self.base_url = ""
        if start:
            self.start()

    # ---------------------------------------------------------------------------------- lifecycle

    def start(self) -> SimulatorServer:
        if self._thread is not None:
            return self
        sock = bind_socket(self._host, self._port)
        host, port = sock.getsockname()[:2]
        scheme = "https" if self._tls else "http"
        shown = f"[{host}]" if ":" in host else host
        self.base_url = f"{scheme}://{shown}:{port}"
        self.state.base_url = self.base_url
        app = create_app(self.state)
        self._server = make_server(
            app, tls_cert=self._tls[0] if self._tls else None, tls_key=self._tls[1] if self._tls else None
        )

        def run() -> None:
            try:
                self._server.run(sockets=[sock])
            except BaseException as exc:  # reported by start()
                self._error = exc
            finally:
                sock.close()

        self._thread = threading.Thread(target=run, name=f"simulator:{port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self._startup_timeout
        while not self._server.started:
            if self._error is not None or not self._thread.is_alive():
                raise RuntimeError(f"the simulator did not start: {self._error!r}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the simulator did not start within {self._startup_timeout} s")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=10)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout=5)
        stuck, self._thread = self._thread.is_alive(), None
        if stuck:  # said, not left behind: its loop and sockets would stay open
            raise RuntimeError("the simulator's server thread did not stop within 15 s")

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------------------------ helpers

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/v1"

    @property
    def oidc_issuer(self) -> str:
        return self.state.issuer

    @property
    def oidc_token_url(self) -> str:
        return f"{self.state.issuer}/protocol/openid-connect/token"

    @property
    def token_proxy_url(self) -> str:
        from simulator.credentials import PROVIDER_NAME

        return f"{self.api_url}/auth/{PROVIDER_NAME}/token"

    @property
    def faults(self) -> Faults:
        return self.state.faults

    def issue_tokens(
        self, user: str = "admin", scopes: Iterable[str] | None = None, access_ttl: float | None = None
    ) -> TokenSet:
        return self.state.issue_tokens(user, scopes, access_ttl)

    def issue_access_token(
        self, user: str = "admin", scopes: Iterable[str] | None = None, ttl: float | None = None
    ) -> str:
        return self.state.issue_access_token(user, scopes, ttl)

    def revoke(self, token: str) -> bool:
        return self.state.revoke(token)

    def expire(self, token: str) -> bool:
        return self.state.expire(token)

    def auth_headers(self, user: str = "admin", scopes: Iterable[str] | None = None) -> dict[str, str]:
        """``{"Authorization": "Bearer <fresh token>"}`` for quick requests."""
        return {"Authorization": f"Bearer {self.issue_access_token(user, scopes)}"}
