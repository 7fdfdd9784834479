"""Logging: a private rotating file (and optionally stderr), with secrets masked; never stdout.

The device-command audit (audit.py) gets a stream of its own: its own rotating file (10 MB x 20), also on
stderr with LOG_TO_STDERR, at INFO whatever LOG_LEVEL says, and never through the ordinary handlers, so
ordinary lines can neither silence it nor rotate it away.

Payloads never reach a log, at any level: the transport libraries (mcp, fastmcp, sse_starlette, uvicorn,
websockets, httpx/httpcore, urllib3) log whole JSON-RPC messages, SSE chunks or frame bytes (answers,
command output, tokens) at DEBUG, so their records below INFO are dropped by every handler here and their
loggers never go below INFO. Our own code never logs an answer or an output.

stdout carries the MCP protocol in stdio mode, so no handler here ever writes to it. The file is created
0600 in a 0700 directory because, even redacted, log lines name devices and users. Every line passes a
redaction filter that masks bearer tokens, JWT-looking strings, ``*_token=`` values and the literal
secrets of the settings, so a careless ``log.debug(headers)`` elsewhere cannot leak a credential.
"""

from __future__ import annotations

import io
import logging
import logging.handlers
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from audit import AUDIT_LOGGER
from config import Secret, Settings, default_audit_log_file

__all__ = [
    "AUDIT_BACKUP_COUNT",
    "BACKUP_COUNT",
    "MAX_BYTES",
    "RedactionFilter",
    "configure_logging",
    "redact",
]

MAX_BYTES = 10 * 1024 * 1024
BACKUP_COUNT = 5
AUDIT_BACKUP_COUNT = 20
LINE_FORMAT = "%(asctime)s %(levelname)-8s [%(name)s] %(message)s"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"
MASK = "***"

#: Loggers of the libraries under us; MCP_LOG_LEVEL sets their level.
LIBRARY_LOGGERS = (
    "fastmcp",
    "mcp",
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "sse_starlette",
    "httpx",
    "httpx2",
    "httpcore",
    "websockets",
    "urllib3",
)

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/]+=*"), rf"\1 {MASK}"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), MASK),
    (
        re.compile(
            r"(?i)\b((?:refresh|access|id)[_-]token|client[_-]secret|password|shared[_-]secret)"
            r"(['\"]?\s*[:=]\s*['\"]?)([^\s&'\",;}]+)"
        ),
        rf"\1\2{MASK}",
    ),
)

_OURS = "_flightctl_mcp_handler"
#: Library families whose DEBUG (and TRACE) records carry message payloads: never below INFO.
PAYLOAD_LOGGERS = (
    "mcp",
    "fastmcp",
    "sse_starlette",
    "uvicorn",
    "websockets",
    "httpx",
    "httpx2",
    "httpcore",
    "hpack",
    "urllib3",
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask every credential-looking part of ``text`` and every literal secret given."""
    for secret in secrets:
        if len(secret) >= 6:  # masking a 2-letter "secret" would shred ordinary words
            text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactionFilter(logging.Filter):
    """Rewrites each record's message (and traceback text) with credentials masked."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = tuple(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad %-format elsewhere must not drop the line
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = redact(message, self._secrets), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self._secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self._secrets)
        return True


class PayloadFilter(logging.Filter):
    """Drops the transport libraries' records below INFO: they carry answers, output and tokens."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.INFO or record.name.partition(".")[0] not in PAYLOAD_LOGGERS


class _PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A RotatingFileHandler whose every file (also after rollover) is created with mode 0600."""

    def _open(self) -> io.TextIOWrapper:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(fd, 0o600)
        return io.TextIOWrapper(
            io.FileIO(fd, "a"), encoding=self.encoding or "utf-8", errors=self.errors, write_through=True
        )


def _settings_secrets(settings: Settings) -> list[str]:
    candidates: list[Secret | None] = [
        settings.auth.refresh_token,
        settings.auth.access_token,
        settings.auth.id_token,
        settings.http.shared_secret,
    ]
    return [s.reveal() for s in candidates if s]


def _open_file_handler(path: Path, backups: int = BACKUP_COUNT) -> logging.Handler:
    directory = path.parent
    if not directory.exists():
        directory.mkdir(parents=True, mode=0o700)
        directory.chmod(0o700)  # mkdir's mode is filtered by the umask
    return _PrivateRotatingFileHandler(
        path, maxBytes=MAX_BYTES, backupCount=backups, encoding="utf-8", delay=False
    )


def _remove_our_handlers(logger: logging.Logger) -> None:
    for handler in list(logger.handlers):
        if getattr(handler, _OURS, False):
            logger.removeHandler(handler)
            handler.close()


def _install(logger: logging.Logger, handler: logging.Handler, secrets: list[str]) -> None:
    handler.setFormatter(logging.Formatter(LINE_FORMAT, DATE_FORMAT))
    handler.addFilter(PayloadFilter())
    handler.addFilter(RedactionFilter(secrets))
    setattr(handler, _OURS, True)
    logger.addHandler(handler)


def _configure_audit(settings: Settings, secrets: list[str]) -> Path | None:
    """The audit's own stream: its file (stderr when that cannot be written) and stderr in containers."""
    audit = logging.getLogger(AUDIT_LOGGER)
    _remove_our_handlers(audit)
    audit.setLevel(logging.INFO)
    audit.propagate = False
    path = (settings.audit_log_file or default_audit_log_file(settings.log_file)).expanduser()
    try:
        _install(audit, _open_file_handler(path, AUDIT_BACKUP_COUNT), secrets)
    except OSError as exc:
        _install(audit, logging.StreamHandler(sys.stderr), secrets)
        logging.getLogger(__name__).warning(
            "Cannot write the audit file %s (%s); the command audit goes to stderr. Set AUDIT_LOG_FILE.",
            path,
            exc.strerror or exc,
        )
        return None
    if settings.log_to_stderr:
        _install(audit, logging.StreamHandler(sys.stderr), secrets)
    return path


def _route_library_loggers(level: str) -> None:
    """fastmcp keeps its own Rich handler and does not propagate: hand its records to ours instead."""
    os.environ["FASTMCP_LOG_ENABLED"] = "false"  # for fastmcp imported later and for child processes
    os.environ.setdefault("FASTMCP_CHECK_FOR_UPDATES", "off")
    fastmcp = sys.modules.get("fastmcp")
    settings = getattr(fastmcp, "settings", None)
    if settings is not None:
        settings.log_enabled = False  # fastmcp re-checks this whenever it reconfigures its logger
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True
        logger.setLevel(level.upper())
    for name in PAYLOAD_LOGGERS:  # their DEBUG lines are payloads (PayloadFilter drops any that slip by)
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.getEffectiveLevel(), logging.INFO))


def configure_logging(settings: Settings) -> Path | None:
    """Set up the root logger once at start-up; returns the log file in use (None: stderr only)."""
    root = logging.getLogger()
    _remove_our_handlers(root)
    root.setLevel(settings.log_level)
    secrets = _settings_secrets(settings)
    log_file: Path | None = settings.log_file.expanduser()
    file_error: OSError | None = None
    try:
        _install(root, _open_file_handler(settings.log_file.expanduser()), secrets)
    except OSError as exc:
        file_error, log_file = exc, None
    if settings.log_to_stderr or file_error is not None:
        _install(root, logging.StreamHandler(sys.stderr), secrets)
    _route_library_loggers(settings.mcp_log_level)
    _configure_audit(settings, secrets)
    if file_error is not None:
        root.warning(
            "Cannot write the log file %s (%s); logging to stderr instead. Set LOG_FILE to a writable path.",
            settings.log_file,
            file_error.strerror or file_error,
        )
    return log_file
