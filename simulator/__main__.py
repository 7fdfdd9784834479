"""``python -m simulator``: a Flight Control stand-in on a loopback port.

When ready it prints exactly one line to stdout, its base URL (``https://127.0.0.1:40123``); everything
else goes to stderr. SIGTERM and SIGINT stop it cleanly.
"""

from __future__ import annotations

import argparse
import base64
import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
import yaml

from simulator.accounts import DEFAULT_ORG, USERS
from simulator.app import create_app
from simulator.credentials import PROVIDER_NAME
from simulator.loader import LoadError
from simulator.resources import rfc3339
from simulator.server import bind_socket, make_server
from simulator.state import SimulatorState

log = logging.getLogger("simulator")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simulator",
        description="Serve a simulated Flight Control API (v1beta1) with a generated fleet.",
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    add("--port", type=int, default=0, help="port to listen on; 0 picks a free port (default: 0)")
    add(
        "--devices",
        type=int,
        default=200,
        help="devices to generate in the default organization (default: 200)",
    )
    add("--seed", type=int, default=1, help="seed of the generated data (default: 1)")
    add(
        "--anchor",
        type=float,
        default=None,
        help="epoch seconds the generated timestamps are relative to (default: now, floored to the hour)",
    )
    add(
        "--load",
        action="append",
        default=[],
        metavar="FILE",
        help="YAML file or directory of resources, as `flightctl apply -f` takes (repeatable)",
    )
    add("--tls-cert", help="PEM certificate: serve HTTPS (needs --tls-key); plain HTTP without")
    add("--tls-key", help="PEM private key of --tls-cert")
    add("--tls-ca", help="CA certificate to put in --write-client-config (default: --tls-cert itself)")
    add("--latency-ms", type=float, default=0.0, help="latency added to every request (default: 0)")
    add(
        "--full-devices",
        action="store_true",
        help="devices as large as production ones (about 4 KB of JSON each: monitors, update policy, "
        "more applications and units), for benchmarks",
    )
    add("--user", default="admin", choices=sorted(USERS), help="user of the pre-issued credentials")
    add("--refresh-token", help="pre-issue this refresh token for --user")
    add("--access-token", help="pre-issue this static access token for --user (never expires)")
    add(
        "--access-token-scope",
        default=None,
        help='comma-separated permissions of --access-token, e.g. "devices:list,devices:get" '
        "(default: all of the user's rights)",
    )
    add(
        "--access-token-ttl",
        type=float,
        default=300.0,
        help="lifetime of issued access tokens, s (default: 300)",
    )
    add(
        "--refresh-token-ttl",
        type=float,
        default=1800.0,
        help="lifetime of issued refresh tokens, s (default: 1800)",
    )
    add(
        "--login-as",
        choices=sorted(USERS),
        default=None,
        help="log this user in at the OIDC authorization endpoint without a form (non-interactive "
        "authorization-code logins, e.g. for MCP clients' OAuth); default: show a login form",
    )
    add(
        "--no-refresh-token-rotation",
        dest="refresh_token_rotation",
        action="store_false",
        help="let a refresh token be used again (default: each works once; reuse is refused with "
        'invalid_grant, as Keycloak does with "Revoke Refresh Token" on)',
    )
    add(
        "--auth-rate-limit",
        type=int,
        default=None,
        metavar="N",
        help="turn on Flight Control's /api/v1/auth/validate limit: N per client address per hour "
        "(its default when rate limiting is on is 20); default: off",
    )
    add(
        "--console-wait-seconds",
        type=float,
        default=60.0,
        help="how long an offline device's console waits before 504 (default: 60)",
    )
    add(
        "--write-client-config",
        metavar="PATH",
        help="write a flightctl client.yaml pointing at this simulator, logged in as --user (with the "
        "pre-issued tokens when given, else freshly issued ones)",
    )
    add("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    return parser


def client_config(
    state: SimulatorState,
    *,
    user: str,
    access_token: str | None,
    refresh: Any,
    ca_file: str | None,
) -> dict[str, Any]:
    """A current-format (v1.x) client.yaml as ``flightctl login`` writes it."""
    authentication: dict[str, Any] = {"organizations-enabled": True, "token-to-use": "access"}
    if refresh is not None:
        provider = {
            "apiVersion": "v1beta1",
            "kind": "AuthProvider",
            "metadata": {"name": PROVIDER_NAME},
            "spec": {
                "providerType": "oidc",
                "issuer": state.issuer,
                "clientId": "flightctl",
                "clientSecret": "*****",
                "enabled": True,
                "scopes": ["openid", "profile", "email", "offline_access"],
                "organizationAssignment": {"type": "static", "organizationName": "default"},
                "roleAssignment": {"type": "static", "roles": ["flightctl-admin"]},
            },
        }
        authentication.update(
            {
                "access-token": refresh.access_token,
                "access-token-expiry": rfc3339(int((state.clock.now() + refresh.expires_in) * 1_000_000)),
                "id-token": refresh.id_token,
                "refresh-token": refresh.refresh_token,
                "auth-provider": {"auth-provider": provider},
            }
        )
    if access_token is not None:
        # A static token never expires: no expiry, so a client with a refresh token refreshes at once.
        authentication["access-token"] = access_token
        authentication.pop("access-token-expiry", None)
    service: dict[str, Any] = {"server": state.base_url}
    if ca_file:
        service["certificate-authority-data"] = base64.b64encode(Path(ca_file).read_bytes()).decode()
    orgs = USERS[user].orgs
    config: dict[str, Any] = {"authentication": authentication, "service": service}
    if orgs:
        config["organization"] = orgs[0] if DEFAULT_ORG not in orgs else DEFAULT_ORG
    return config


def write_client_config(path: Path, config: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        yaml.safe_dump(config, handle, sort_keys=True)
    os.chmod(path, 0o600)


class _AnnouncingServer(uvicorn.Server):
    """Prints the base URL on stdout once uvicorn is accepting connections."""

    base_url = ""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Stop gracefully and exit 0; uvicorn would re-raise the signal after shutdown (exit -15).
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets=sockets)
        if not self.should_exit:
            print(self.base_url, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=args.log_level.upper(), format="simulator: %(levelname)s %(message)s"
    )
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together: give both for HTTPS, neither for HTTP")
    if args.devices < 0:
        parser.error("--devices must be 0 or more")
    try:
        state = SimulatorState(
            devices=args.devices,
            seed=args.seed,
            load=args.load,
            anchor=args.anchor,
            access_token_ttl=args.access_token_ttl,
            refresh_token_ttl=args.refresh_token_ttl,
            refresh_token_rotation=args.refresh_token_rotation,
            console_wait_seconds=args.console_wait_seconds,
            latency_ms=args.latency_ms,
            full_devices=args.full_devices,
            login_user=args.login_as,
            auth_rate_limit=(args.auth_rate_limit, 3600.0) if args.auth_rate_limit else None,
        )
    except (LoadError, OSError) as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 2
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as exc:
        print(f"simulator: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2
    host, port = sock.getsockname()[:2]
    scheme = "https" if args.tls_cert else "http"
    state.base_url = f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"
    scopes = (
        [s.strip() for s in args.access_token_scope.split(",") if s.strip()]
        if args.access_token_scope
        else None
    )
    refreshed = None
    if args.refresh_token or (args.write_client_config and not args.access_token):
        # A client config is only useful with a login in it: without given tokens, log --user in.
        refreshed = state.issue_tokens(args.user, refresh_token=args.refresh_token or None)
    if args.access_token:
        state.add_static_token(args.access_token, args.user, scopes)
    if args.write_client_config:
        config = client_config(
            state,
            user=args.user,
            access_token=args.access_token,
            refresh=refreshed,
            ca_file=(args.tls_ca or args.tls_cert) if args.tls_cert else None,
        )
        write_client_config(Path(args.write_client_config), config)
    base = make_server(
        create_app(state), tls_cert=args.tls_cert, tls_key=args.tls_key, log_level=args.log_level
    )
    server = _AnnouncingServer(base.config)
    server.base_url = state.base_url
    log.info("serving %d devices at %s", len(state.org(DEFAULT_ORG).devices), state.base_url)
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
