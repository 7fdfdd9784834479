"""logging_setup.py: a private rotating log file, masked secrets, and never a byte on stdout."""

from __future__ import annotations

import logging
import logging.handlers
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from audit import AUDIT_LOGGER
from config import Settings, load_settings
from logging_setup import (
    BACKUP_COUNT,
    LIBRARY_LOGGERS,
    MAX_BYTES,
    PAYLOAD_LOGGERS,
    configure_logging,
    redact,
)

#: Every logger configure_logging touches, restored after each test.
TOUCHED = (*LIBRARY_LOGGERS, *PAYLOAD_LOGGERS, AUDIT_LOGGER)

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiIsImV4cCI6MTl9.c2lnbmF0dXJlLXBhcnQ"
LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} (\w+)\s+\[([\w.]+)\] (.*)$")


@pytest.fixture(autouse=True)
def restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """configure_logging changes process-wide state; put it back so other tests are unaffected."""
    import fastmcp

    for name in ("FASTMCP_LOG_ENABLED", "FASTMCP_CHECK_FOR_UPDATES"):
        monkeypatch.setenv(name, "restore-me")
        monkeypatch.delenv(name)
    monkeypatch.setattr(fastmcp.settings, "log_enabled", fastmcp.settings.log_enabled)
    root = logging.getLogger()
    saved_root = (list(root.handlers), root.level)
    saved = {n: (list(logging.getLogger(n).handlers), logging.getLogger(n).level) for n in TOUCHED}
    saved_propagate = {n: logging.getLogger(n).propagate for n in TOUCHED}
    yield
    for handler in root.handlers:
        if handler not in saved_root[0]:
            handler.close()
    root.handlers[:], root.level = saved_root
    for name, (handlers, level) in saved.items():
        logger = logging.getLogger(name)
        for handler in logger.handlers:
            if handler not in handlers:
                handler.close()
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = saved_propagate[name]


def settings_for(tmp_path: Path, **env: str) -> Settings:
    return load_settings({}, {"HOME": str(tmp_path), **env})


def test_log_file_is_private_and_lines_are_structured(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    assert configure_logging(settings) == settings.log_file
    logging.getLogger("resource_queries").info("listed %d devices", 3)
    logging.getLogger("auth").debug("not shown at INFO")
    assert stat.S_IMODE(settings.log_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(settings.log_file.parent.stat().st_mode) == 0o700
    lines = settings.log_file.read_text().splitlines()
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), lines
    assert ("INFO", "resource_queries", "listed 3 devices") in [m.groups() for m in parsed if m]
    assert "not shown" not in "\n".join(lines)


def test_log_level_debug_is_honoured(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, LOG_LEVEL="debug")
    configure_logging(settings)
    logging.getLogger("auth").debug("refresh scheduled")
    assert "DEBUG    [auth] refresh scheduled" in settings.log_file.read_text()


def test_rotation_keeps_five_private_backups_of_ten_megabytes(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    configure_logging(settings)
    handlers = [
        h for h in logging.getLogger().handlers if isinstance(h, logging.handlers.RotatingFileHandler)
    ]
    assert len(handlers) == 1
    handler = handlers[0]
    assert (handler.maxBytes, handler.backupCount) == (MAX_BYTES, BACKUP_COUNT) == (10 * 1024 * 1024, 5)
    log = logging.getLogger("rotation")
    for round_ in range(7):
        log.info("round %d", round_)
        handler.doRollover()
    log.info("after rotation")
    files = sorted(p.name for p in settings.log_file.parent.iterdir() if "audit" not in p.name)
    assert files == ["flightctl-mcp.log"] + [f"flightctl-mcp.log.{i}" for i in range(1, 6)]
    assert (settings.log_file.parent / "flightctl-mcp-audit.log").read_text() == "", (
        "not rotated with the log"
    )
    for path in settings.log_file.parent.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert "after rotation" in settings.log_file.read_text()


def test_credentials_never_reach_the_log_file(tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path,
        ACCESS_TOKEN="opaque-static-token-123",
        MCP_SHARED_SECRET="shared-secret-456",
    )
    configure_logging(settings)
    log = logging.getLogger("resource_queries")
    log.info("GET /api/v1/devices headers={'Authorization': 'Bearer %s'}", "opaque-bearer-789")
    log.info("token response: %s", {"access_token": JWT, "refresh_token": "rt-abcdef", "expires_in": 300})
    log.info("form: grant_type=refresh_token&refresh_token=rt-ghijkl&client_id=flightctl")
    log.warning("caller sent %s and %s", "opaque-static-token-123", "shared-secret-456")
    try:
        raise ValueError(f"server said: invalid token {JWT}")
    except ValueError:
        log.exception("call failed")
    text = settings.log_file.read_text()
    for secret in (
        JWT,
        "opaque-bearer-789",
        "rt-abcdef",
        "rt-ghijkl",
        "opaque-static-token-123",
        "shared-secret",
    ):
        assert secret not in text
    assert "Bearer ***" in text
    assert "grant_type=refresh_token&refresh_token=***&client_id=flightctl" in text
    assert "expires_in': 300" in text  # the rest of the line survives


def test_redact_keeps_ordinary_text() -> None:
    text = "listed fleet eyeglass-factory with 3 devices; token_url=https://sso/token"
    assert redact(text) == text


def test_nothing_is_written_to_stdout(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    settings = settings_for(tmp_path, LOG_TO_STDERR="true", MCP_LOG_LEVEL="debug")
    configure_logging(settings)
    logging.getLogger("fastmcp.server").warning("from fastmcp Bearer %s", "abc123def")
    logging.getLogger("uvicorn.access").info("GET /mcp 200")
    logging.getLogger("cli").error("from us")
    out, err = capfd.readouterr()
    assert out == ""
    assert "[fastmcp.server] from fastmcp Bearer ***" in err
    assert "abc123def" not in err
    text = settings.log_file.read_text()
    assert "[fastmcp.server] from fastmcp" in text
    assert "[uvicorn.access] GET /mcp 200" in text


def test_mcp_log_level_governs_library_loggers(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, LOG_LEVEL="DEBUG", MCP_LOG_LEVEL="warning")
    configure_logging(settings)
    logging.getLogger("fastmcp").info("library chatter")
    logging.getLogger("uvicorn.error").warning("library warning")
    logging.getLogger("auth").debug("our own detail")
    text = settings.log_file.read_text()
    assert "library chatter" not in text
    assert "library warning" in text
    assert "our own detail" in text


@pytest.mark.parametrize(
    "library", ["mcp.server.sse", "fastmcp.server.server", "sse_starlette.sse", "httpcore"]
)
def test_library_debug_lines_never_reach_a_log_even_at_debug(tmp_path: Path, library: str) -> None:
    settings = settings_for(tmp_path, LOG_LEVEL="DEBUG", MCP_LOG_LEVEL="debug")
    configure_logging(settings)
    logging.getLogger(library).setLevel(logging.DEBUG)  # as a library might do itself
    logging.getLogger(library).debug("Sending message via SSE: the answer")
    logging.getLogger(library).info("library info")
    logging.getLogger("auth").debug("our own detail")
    text = settings.log_file.read_text()
    assert "the answer" not in text
    assert "library info" in text
    assert "our own detail" in text


def test_the_audit_has_its_own_file_at_any_log_level(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, LOG_LEVEL="ERROR")
    configure_logging(settings)
    logging.getLogger(AUDIT_LOGGER).info('run_command_on_device outcome="refused"')
    logging.getLogger("cli").error("an ordinary error")
    audit_file = settings.log_file.with_name("flightctl-mcp-audit.log")
    assert stat.S_IMODE(audit_file.stat().st_mode) == 0o600
    assert 'outcome="refused"' in audit_file.read_text()
    assert "an ordinary error" not in audit_file.read_text()
    assert "run_command_on_device" not in settings.log_file.read_text()


def test_unwritable_log_file_falls_back_to_stderr(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    settings = settings_for(tmp_path, LOG_FILE=str(blocker / "flightctl-mcp.log"))
    assert configure_logging(settings) is None
    logging.getLogger("cli").info("still logged")
    out, err = capfd.readouterr()
    assert out == ""
    assert "Cannot write the log file" in err
    assert "LOG_FILE" in err
    assert "still logged" in err


def test_configuring_twice_does_not_duplicate_lines(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    configure_logging(settings)
    configure_logging(settings)
    logging.getLogger("cli").info("once")
    assert settings.log_file.read_text().count("once") == 1
