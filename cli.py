"""The command line behind ``flightctl-mcp`` and ``python main.py`` [serve|check|demo|config-doc].

Every flag comes from ``config.OPTIONS``, so the command line, the environment and
``docs/configuration.md`` always agree. ``serve`` keeps stdout for the MCP protocol; ``check`` and
``config-doc`` print their reports to stdout; ``demo`` prints its instructions to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import errno
import json
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from config import (
    HTTP_TRANSPORTS,
    OPTIONS,
    Settings,
    check_http_exposure,
    command_exposure_warning,
    load_settings,
)
from errors import APIError, AuthenticationError, ConfigurationError, FlightControlError, user_error
from version import __version__

__all__ = ["build_parser", "flags_from_args", "main"]

COMMANDS = {
    "serve": "run the MCP server (default)",
    "check": "load the configuration, authenticate, call Flight Control once and report",
    "demo": "serve the MCP server against a built-in simulated fleet (no Flight Control needed)",
    "config-doc": "print docs/configuration.md (the configuration reference)",
}
EXIT_CONFIG = 2
DEMO_DEVICES = 200
DEMO_USER = "admin"
DEMO_TOKEN_TTL = 7 * 24 * 3600  # a caller token printed for pass-through demos outlives any session
#: What the demo serves unless a flag or the environment says otherwise.
DEMO_DEFAULTS = {"MCP_TRANSPORT": "streamable-http", "MCP_HOST": "127.0.0.1", "MCP_PORT": "8000"}
#: Settings the demo replaces with the simulator's, so a real session can never reach the simulator.
DEMO_OWNED = (
    "API_BASE_URL",
    "ORG_ID",
    "CLIENT_CONFIG_PATH",
    "FLIGHTCTL_CONTEXT",
    "FLIGHTCTL_CONFIG_DIR",
    "OIDC_TOKEN_URL",
    "OIDC_CLIENT_ID",
    "REFRESH_TOKEN",
    "ACCESS_TOKEN",
    "CA_CERT_PATH",
    "INSECURE_SKIP_VERIFY",
)


def build_parser() -> argparse.ArgumentParser:
    """argparse from OPTIONS: one flag per setting, grouped as in the configuration reference."""
    parser = argparse.ArgumentParser(
        prog=_program_name(),
        usage="%(prog)s [serve|check|demo|config-doc] [--flag VALUE ...]",
        description="MCP server for Flight Control. Every flag can also be set through the environment "
        "variable named in its help; flags win over the environment, which wins over client.yaml.",
        epilog="Commands: " + "; ".join(f"{name}: {text}" for name, text in COMMANDS.items()),
    )
    parser.add_argument("command", nargs="?", choices=tuple(COMMANDS), default="serve", help="what to do")
    parser.add_argument("--version", action="version", version=f"flightctl-mcp {__version__}")
    groups: dict[str, argparse._ArgumentGroup] = {}
    for opt in OPTIONS:
        group = groups.get(opt.group) or groups.setdefault(opt.group, parser.add_argument_group(opt.group))
        help_text = f"{opt.help} [env {opt.env}; default: {opt.shown_default}]".replace("%", "%%")
        if opt.is_bool:
            group.add_argument(opt.flag, dest=opt.env, action=argparse.BooleanOptionalAction, help=help_text)
        else:
            group.add_argument(opt.flag, dest=opt.env, metavar=opt.env, help=help_text)
    return parser


def _program_name() -> str:
    """How the user started us, for usage lines: the installed command or ``python main.py``."""
    return "python main.py" if Path(sys.argv[0]).name == "main.py" else "flightctl-mcp"


def flags_from_args(args: argparse.Namespace) -> dict[str, str]:
    """The flags given on the command line, keyed by environment-variable name, as load_settings wants."""
    flags: dict[str, str] = {}
    for opt in OPTIONS:
        value = getattr(args, opt.env, None)
        if value is None:
            continue
        flags[opt.env] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return flags


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code (2 for a configuration error)."""
    args = build_parser().parse_args(argv)
    flags = flags_from_args(args)
    command: str = args.command
    if command == "config-doc":
        from config_doc import render_configuration_doc  # documentation only: not on the serving path

        sys.stdout.write(render_configuration_doc())
        return 0
    try:
        if command == "check":
            return asyncio.run(_check(flags, os.environ, sys.stdout))
        if command == "demo":
            return _demo(flags, os.environ)
        return _serve(load_settings(flags, os.environ), flags=flags)
    except ConfigurationError as exc:
        print(f"flightctl-mcp: configuration error: {user_error(exc, 'cli').message}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


# --- serve --------------------------------------------------------------------------------------------


def _quiet_fastmcp() -> None:
    """No banner, no PyPI update check, and fastmcp's records into our log handlers (set before import)."""
    os.environ["FASTMCP_SHOW_SERVER_BANNER"] = "false"
    os.environ["FASTMCP_CHECK_FOR_UPDATES"] = "off"
    os.environ["FASTMCP_LOG_ENABLED"] = "false"
    fastmcp = sys.modules.get("fastmcp")  # already imported when started as `python main.py`
    if fastmcp is not None:
        fastmcp.settings.show_server_banner = False
        fastmcp.settings.check_for_updates = "off"


def _serve(
    settings: Settings,
    on_ready: Callable[[int], None] | None = None,
    flags: Mapping[str, str] | None = None,
    *,
    demo: bool = False,
) -> int:
    import logging

    from logging_setup import configure_logging

    check_http_exposure(settings)
    if settings.transport in HTTP_TRANSPORTS and settings.listen_fd is None:
        # Bound before anything is logged or printed: a busy port is reported, not a running server.
        # The descriptor is handed over as MCP_LISTEN_FD would be: uvicorn owns and closes it.
        settings = dataclasses.replace(settings, listen_fd=_listen(settings, demo=demo))
    _quiet_fastmcp()
    log_file = configure_logging(settings)
    log = logging.getLogger("cli")
    log.info(
        "Starting flightctl-mcp: transport=%s api=%s auth=%s log=%s",
        settings.transport,
        settings.api_base_url,
        settings.auth.method,
        log_file or "stderr",
    )
    warning = command_exposure_warning(settings)
    if warning:
        log.warning("%s", warning)
        if log_file is not None and not settings.log_to_stderr:  # else the log line is on stderr already
            print(f"flightctl-mcp: warning: {warning}", file=sys.stderr)
    if settings.transport in HTTP_TRANSPORTS:
        # fastmcp-notes §0 #2: without this, SIGTERM (podman stop) skips the lifespan teardown.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    if settings.http.workers > 1:
        from http_workers import serve_workers

        return serve_workers(settings, flags or {})
    import main as server  # imported only to serve; main.py imports cli only when it is the program

    try:
        asyncio.run(server.serve(settings, on_ready=on_ready))
    except KeyboardInterrupt:
        log.info("Stopped by signal")
    return 0


def _listen(settings: Settings, *, demo: bool) -> int:
    """A listening socket's descriptor on MCP_HOST:MCP_PORT; a ConfigurationError saying why not."""
    from http_workers import listen

    host, port = settings.host, settings.port
    try:
        sock = listen(host, port)
    except OSError as exc:
        other = port + 1 if 0 < port < 65535 else 8001
        how = f"--port {other} or MCP_PORT={other}" + (f" (`MCP_PORT={other} make demo`)" if demo else "")
        if exc.errno == errno.EADDRINUSE:
            reason = f"port {port} on {host} is already in use by another program"
            advice = f"Stop that program, or choose another port: {how}."
        elif exc.errno == errno.EACCES:
            reason = f"port {port} needs privileges this process does not have"
            advice = f"Choose a port above 1023: {how}."
        else:
            reason = f"{host}:{port} cannot be used ({exc.strerror or exc})"
            advice = f"Check MCP_HOST (an address of this machine, such as 127.0.0.1 or 0.0.0.0), or {how}."
        raise ConfigurationError(f"Cannot listen for MCP clients: {reason}. {advice}") from None
    return sock.detach()


# --- check --------------------------------------------------------------------------------------------


class _Report:
    """Lines of the check report: what works, what is wrong and what to do about it."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self.failed = False

    def info(self, label: str, text: str) -> None:
        self._out.write(f"       {label:<14} {text}\n")

    def ok(self, label: str, text: str) -> None:
        self._out.write(f"  ok   {label:<14} {text}\n")

    def warn(self, label: str, text: str) -> None:
        self._out.write(f"  WARN {label:<14} {text}\n")

    def fail(self, label: str, text: str) -> None:
        self.failed = True
        self._out.write(f"  FAIL {label:<14} {text}\n")


async def _check(flags: Mapping[str, str], environ: Mapping[str, str], out: TextIO) -> int:
    """Load, authenticate, call Flight Control once; print the report, exit 1 if anything failed."""
    report = _Report(out)
    out.write("flightctl-mcp check\n")
    try:
        settings = load_settings(flags, environ)
    except ConfigurationError as exc:
        report.fail("configuration", user_error(exc, "cli").message)
        return EXIT_CONFIG
    report.ok("configuration", f"loaded ({_describe_client_file(settings)})")
    report.info("api", settings.api_base_url or "(not set)")
    report.info("organization", settings.organization or "(default)")
    report.info("tls", settings.tls.source)
    report.info("credentials", _describe_auth(settings))
    _token_store_line(settings, report)
    report.info("transport", _describe_transport(settings))
    try:
        check_http_exposure(settings)
    except ConfigurationError as exc:
        report.fail("exposure", user_error(exc, "cli").message)
    if settings.api_base_url is None:
        report.fail("api", "no API URL: set API_BASE_URL, or run `flightctl login` to write client.yaml")
        return 1
    await _check_api(settings, report)
    out.write("result: " + ("problems found, see FAIL lines above\n" if report.failed else "all good\n"))
    return 1 if report.failed else 0


def _describe_client_file(settings: Settings) -> str:
    if settings.client_config_path is None:
        return "no client.yaml found; settings from the environment and flags"
    return f"client file {settings.client_config_path}, context {settings.client_context}"


def _describe_auth(settings: Settings) -> str:
    auth = settings.auth
    described = {
        "oidc": f"refresh token, exchanged at {auth.token_url}",
        "proxy": f"refresh token, exchanged through the API proxy ({auth.provider_name})",
        "static": "static access token (cannot be refreshed)",
        "none": "none configured",
    }[auth.method]
    return described + (" (id token as bearer)" if auth.token_to_use == "id" else "")


def _describe_transport(settings: Settings) -> str:
    if settings.transport == "stdio":
        return "stdio"
    path = "/sse" if settings.transport == "sse" else settings.path
    scheme = "https" if settings.http.tls_cert else "http"
    where = f"{scheme}://{settings.host}:{settings.port}{path}"
    return f"{settings.transport} on {where} (callers: {settings.http.auth_mode})"


async def _check_api(settings: Settings, report: _Report) -> None:
    from call_credentials import token_source_from_settings
    from flightctl_api import FlightControlAPI
    from organizations import run_in_organization

    try:
        tokens = token_source_from_settings(settings)
        if tokens is None:
            report.fail("auth", "no credentials: set REFRESH_TOKEN or ACCESS_TOKEN, or run `flightctl login`")
            return
        await tokens.bearer()
    except FlightControlError as exc:
        report.fail("auth", user_error(exc, "cli").message)
        return
    api = FlightControlAPI(settings)
    accepted = f"token accepted by Flight Control (user: {tokens.identity or 'unknown'})"
    try:
        await run_in_organization(
            api, tokens, None, lambda scoped: _check_reads(api, scoped, report, accepted)
        )
    except AuthenticationError as exc:
        report.fail("auth", user_error(exc, "cli").message)
    except APIError as exc:
        if exc.status_code in (400, 403):  # refused after authentication: the token itself was good
            report.ok("auth", accepted)
        report.fail("api", user_error(exc, "cli").message)
    except FlightControlError as exc:
        report.info("auth", "a token is at hand, but Flight Control could not be asked to accept it")
        report.fail("api", user_error(exc, "cli").message)
    finally:
        await asyncio.to_thread(api.close)


async def _check_reads(api: Any, tokens: Any, report: _Report, accepted: str) -> None:
    version = await api.get_path("VersionApi", "get_version_without_preload_content", tokens)
    report.ok("auth", accepted)
    shown = version.get("version", version) if isinstance(version, dict) else version
    report.ok("api", f"reachable, Flight Control version {shown}")
    devices = await api.get_path("DeviceApi", "list_devices_without_preload_content", tokens, limit=1)
    items = devices.get("items") if isinstance(devices, dict) else None
    remaining = devices.get("metadata", {}).get("remainingItemCount") if isinstance(devices, dict) else None
    total = len(items or []) + int(remaining or 0)
    report.ok("devices", f"listing works ({total} device(s) visible)")


def _token_store_line(settings: Settings, report: _Report) -> None:
    """Where rotated tokens go, and a warning when they cannot go there (a read-only mount)."""
    from call_credentials import token_store_for
    from token_store import unwritable_reason

    if settings.auth.method not in ("oidc", "proxy"):
        return
    store = token_store_for(settings.auth)
    if store is None:
        return
    problem = unwritable_reason(store.path)
    if problem is None:
        report.info("tokens", f"rotated tokens are kept in {store.path}")
        return
    report.warn(
        "tokens",
        f"rotated tokens cannot be written to {store.path} ({problem}): they stay in memory, so after a "
        "restart the session may need `flightctl login` again (and the flightctl CLI sharing the file too). "
        "Make the file writable, or mount it read-write.",
    )


# --- demo ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _demo_simulator() -> Iterator[tuple[Any, dict[str, str]]]:
    """The simulator in-process with a generated fleet, and the settings that point the server at it.

    It serves plain HTTP on loopback (no CA to hand around) and the server signs in as the simulator's
    admin with a refresh token, so the demo exercises the same refresh path as a real deployment.
    """
    from simulator.harness import SimulatorServer

    with (
        tempfile.TemporaryDirectory(prefix="flightctl-mcp-demo-") as tmp,
        SimulatorServer(devices=DEMO_DEVICES) as sim,
    ):
        tokens = sim.issue_tokens(user=DEMO_USER)
        no_client_yaml = Path(tmp) / "client.yaml"  # never read the user's real flightctl session
        no_client_yaml.write_text("{}\n")
        yield (
            sim,
            {
                "API_BASE_URL": sim.base_url,
                "OIDC_TOKEN_URL": sim.oidc_token_url,
                "REFRESH_TOKEN": tokens.refresh_token,
                "CLIENT_CONFIG_PATH": str(no_client_yaml),
                "XDG_STATE_HOME": tmp,  # the demo session's rotated tokens die with the demo
            },
        )


def _demo(flags: Mapping[str, str], environ: Mapping[str, str]) -> int:
    base = {k: v for k, v in environ.items() if k not in DEMO_OWNED}
    for key, value in DEMO_DEFAULTS.items():
        base.setdefault(key, value)
    demo_flags = {k: v for k, v in flags.items() if k not in DEMO_OWNED}
    with _demo_simulator() as (sim, simulator_env):
        settings = load_settings(demo_flags, base | simulator_env)
        # Say how to connect only once the server listens: a caller may act on it at once.
        return _serve(
            settings, on_ready=lambda port: _print_demo_help(settings, port, sim, sys.stderr), demo=True
        )


def _demo_over_stdio() -> dict[str, Any]:
    """The client entry that starts this same program's demo over stdio, installed or from a clone."""
    if _program_name() == "flightctl-mcp":
        program = shutil.which(sys.argv[0]) or sys.argv[0]
        return {"command": str(Path(program).resolve()), "args": ["demo", "--transport", "stdio"]}
    main_py = str(Path(__file__).resolve().parent / "main.py")
    return {"command": sys.executable, "args": [main_py, "demo", "--transport", "stdio"]}


def _print_demo_help(settings: Settings, port: int, sim: Any, err: TextIO) -> None:
    err.write(
        f"\nflightctl-mcp demo: a simulated Flight Control with {DEMO_DEVICES} devices at {sim.base_url}\n"
    )
    if settings.transport == "stdio":
        desktop = _demo_over_stdio()
        err.write("Serving MCP over stdio. Claude Desktop (claude_desktop_config.json):\n")
        err.write(json.dumps({"mcpServers": {"flightctl-demo": desktop}}, indent=2) + "\n\n")
        return
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    url = f"http://{host}:{port}" + ("/sse" if settings.transport == "sse" else settings.path)
    err.write(f"MCP endpoint ({settings.transport}): {url}\n\n")
    auth = ""
    if settings.http.auth_mode == "passthrough":
        # Callers bring their own Flight Control token; here that is a token of the simulated one.
        token = sim.issue_access_token(DEMO_USER, ttl=DEMO_TOKEN_TTL)
        err.write("Pass-through mode: each caller sends its own Flight Control token. A simulator token:\n")
        err.write(f"    {token}\n\n")
        auth = f", auth={token!r}"
    elif settings.http.auth_mode == "shared-secret":
        auth = ", auth='<MCP_SHARED_SECRET>'"
    err.write("From Python (fastmcp):\n")
    err.write(
        "    import asyncio\n    from fastmcp import Client\n\n    async def main():\n"
        f"        async with Client({url!r}{auth}) as client:\n"
        "            print(await client.call_tool('query_devices', {'limit': 5}))\n\n"
        "    asyncio.run(main())\n\n"
    )
    desktop = _demo_over_stdio()
    err.write("Claude Desktop (runs its own demo over stdio; claude_desktop_config.json):\n")
    err.write(json.dumps({"mcpServers": {"flightctl-demo": desktop}}, indent=2) + "\n")
    err.write("Press Ctrl+C to stop.\n\n")
    err.flush()
