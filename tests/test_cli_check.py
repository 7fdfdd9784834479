"""`flightctl-mcp check` tells what is wrong: the token, the URL and where it comes from, TLS, the client
file and context it read (as `flightctl --context` finds them) and whether rotated tokens can be kept.

The CLI reads the real process environment, so every test runs in ``clean_environment`` (conftest.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import cli
from simulator.harness import SimulatorServer

REPO_ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.usefixtures("clean_environment")


def test_check_without_api_url_says_what_to_set(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check"]) == 1
    out = capsys.readouterr().out
    assert "FAIL api" in out
    assert "API_BASE_URL" in out
    assert "flightctl login" in out


# --------------------------------------------------------------------------------------------------
# Against the simulator
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(devices=3, lab_devices=1) as server:
        yield server


def test_check_reports_a_working_setup(
    sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tokens = sim.issue_tokens(user="viewer")
    monkeypatch.setenv("API_BASE_URL", sim.base_url)
    monkeypatch.setenv("OIDC_TOKEN_URL", sim.oidc_token_url)
    monkeypatch.setenv("REFRESH_TOKEN", tokens.refresh_token)
    assert cli.main(["check"]) == 0
    out = capsys.readouterr().out
    assert "ok   auth           token accepted by Flight Control (user: viewer)" in out
    assert "ok   api            reachable, Flight Control version" in out
    assert "3 device(s) visible" in out
    assert "result: all good" in out
    assert tokens.refresh_token not in out


def test_check_reports_a_revoked_session(
    sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tokens = sim.issue_tokens(user="viewer")
    sim.revoke(tokens.refresh_token)
    monkeypatch.setenv("API_BASE_URL", sim.base_url)
    assert (
        cli.main(["check", "--oidc-token-url", sim.oidc_token_url, "--refresh-token", tokens.refresh_token])
        == 1
    )
    out = capsys.readouterr().out
    assert "FAIL auth" in out
    assert "flightctl login" in out


def test_check_reports_missing_permissions(
    sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("API_BASE_URL", sim.base_url)
    monkeypatch.setenv("ACCESS_TOKEN", sim.issue_access_token("nobody"))
    assert cli.main(["check"]) == 1
    out = capsys.readouterr().out
    assert "ok   auth" in out
    assert "FAIL api" in out


# --------------------------------------------------------------------------------------------------
# Contexts and client files, as `flightctl --context` finds them
# --------------------------------------------------------------------------------------------------


def _login(server: SimulatorServer, path: Path, user: str) -> None:
    from simulator.__main__ import client_config, write_client_config

    tokens = server.issue_tokens(user=user)
    write_client_config(
        path, client_config(server.state, user=user, access_token=None, refresh=tokens, ca_file=None)
    )


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_context_prod_talks_to_the_server_in_client_prod_yaml(
    sim: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    clean_environment: Path,
    how: str,
) -> None:
    config_dir = clean_environment / "flightctl-configs"
    with SimulatorServer(devices=2, lab_devices=1) as prod:
        _login(sim, config_dir / "client.yaml", "viewer")
        _login(prod, config_dir / "client_prod.yaml", "admin")
        sim.state.clear_requests()
        if how == "flag":
            args = ["check", "--context", "prod", "--config-dir", str(config_dir)]
        else:
            monkeypatch.setenv("FLIGHTCTL_CONTEXT", "prod")
            monkeypatch.setenv("FLIGHTCTL_CONFIG_DIR", str(config_dir))
            args = ["check"]
        assert cli.main(args) == 0
        out = capsys.readouterr().out
        assert f"client file {config_dir / 'client_prod.yaml'}, context prod" in out
        assert prod.base_url in out
        assert "2 device(s) visible" in out
        assert any(r["path"] == "/api/v1/devices" for r in prod.state.requests())
        assert sim.state.requests() == []


def test_default_context_is_client_yaml_under_xdg_config_home(
    sim: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    clean_environment: Path,
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(clean_environment / "xdg"))
    path = clean_environment / "xdg" / "flightctl" / "client.yaml"
    _login(sim, path, "viewer")
    assert cli.main(["check", "--context", "default"]) == 0
    assert f"client file {path}, context default" in capsys.readouterr().out


def test_missing_context_names_the_file_it_looked_for(
    sim: SimulatorServer, capsys: pytest.CaptureFixture[str], clean_environment: Path
) -> None:
    config_dir = clean_environment / ".config" / "flightctl"
    _login(sim, config_dir / "client.yaml", "viewer")
    _login(sim, config_dir / "client_prod.yaml", "viewer")
    assert cli.main(["check", "--context", "staging"]) == 2
    out = capsys.readouterr().out
    assert str(config_dir / "client_staging.yaml") in out
    assert "contexts found in" in out
    assert "default, prod" in out
    assert "flightctl login <API URL> --context staging" in out
    assert cli.main(["serve", "--context", "staging"]) == 2
    assert str(config_dir / "client_staging.yaml") in capsys.readouterr().err


def test_context_and_an_explicit_client_file_cannot_both_be_given(
    capsys: pytest.CaptureFixture[str], clean_environment: Path
) -> None:
    path = clean_environment / "client.yaml"
    path.write_text("{}\n")
    assert cli.main(["serve", "--client-config", str(path), "--context", "prod"]) == 2
    assert "set only one of them" in capsys.readouterr().err


def test_client_yaml_that_is_not_utf8_is_a_configuration_error(
    capsys: pytest.CaptureFixture[str], clean_environment: Path
) -> None:
    path = clean_environment / ".config" / "flightctl" / "client.yaml"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"service:\n  server: https://api.example.com\n# \xff\xfe latin-1 caf\xe9\n")
    assert cli.main(["serve"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("flightctl-mcp: configuration error:")
    assert f"{path} is not UTF-8 text" in err
    assert "Traceback" not in err
    assert cli.main(["check"]) == 2
    assert "is not UTF-8 text" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------------
# check tells the truth about tokens, URLs and TLS
# --------------------------------------------------------------------------------------------------


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_check_says_token_accepted_only_when_flight_control_accepted_it(
    sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("API_BASE_URL", sim.base_url)
    monkeypatch.setenv("ACCESS_TOKEN", "a-token-flight-control-never-issued")
    assert cli.main(["check"]) == 1
    out = capsys.readouterr().out
    assert "FAIL auth" in out
    assert "refused the credentials (401: failed to validate token)" in out
    assert "token accepted" not in out
    assert "token obtained" not in out


def test_check_names_the_environment_as_the_source_of_an_unreachable_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("API_BASE_URL", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("ACCESS_TOKEN", "t")
    monkeypatch.setenv("REQUEST_TIMEOUT", "3")
    assert cli.main(["check"]) == 1
    out = capsys.readouterr().out
    assert "Could not reach Flight Control" in out
    assert "The URL comes from environment variable API_BASE_URL" in out
    assert "a token is at hand, but Flight Control could not be asked to accept it" in out
    assert "token accepted" not in out


def test_check_names_client_yaml_as_the_source_of_an_unreachable_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], clean_environment: Path
) -> None:
    path = clean_environment / ".config" / "flightctl" / "client.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(
        f"service:\n  server: http://127.0.0.1:{_closed_port()}\nauthentication:\n  access-token: t\n"
    )
    monkeypatch.setenv("REQUEST_TIMEOUT", "3")
    assert cli.main(["check"]) == 1
    out = capsys.readouterr().out
    assert f"The URL comes from key service.server of {path}" in out


def test_check_tells_plain_http_from_a_ca_problem(
    sim: SimulatorServer,
    simulator: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("REQUEST_TIMEOUT", "5")
    # https:// to a server that speaks plain HTTP
    monkeypatch.setenv("API_BASE_URL", sim.base_url.replace("http://", "https://"))
    monkeypatch.setenv("ACCESS_TOKEN", sim.issue_access_token("viewer"))
    assert cli.main(["check"]) == 1
    plain = capsys.readouterr().out
    assert "answered in plain HTTP, not TLS" in plain
    assert "environment variable API_BASE_URL" in plain
    assert "CA_CERT_PATH" not in plain
    # https:// to a TLS server whose CA is not trusted
    monkeypatch.setenv("API_BASE_URL", simulator.base_url)
    monkeypatch.setenv("ACCESS_TOKEN", simulator.issue_access_token("viewer"))
    assert cli.main(["check"]) == 1
    untrusted = capsys.readouterr().out
    assert "certificate" in untrusted.lower()
    assert "checked against system CA bundle" in untrusted
    assert "CA_CERT_PATH" in untrusted
    assert "plain HTTP" not in untrusted
    # http:// to a TLS server
    monkeypatch.setenv("API_BASE_URL", simulator.base_url.replace("https://", "http://"))
    assert cli.main(["check"]) == 1
    assert "if the server speaks TLS, write https:// there" in capsys.readouterr().out


def test_check_says_where_rotated_tokens_go(
    sim: SimulatorServer, capsys: pytest.CaptureFixture[str], clean_environment: Path
) -> None:
    path = clean_environment / ".config" / "flightctl" / "client.yaml"
    _login(sim, path, "viewer")
    assert cli.main(["check"]) == 0
    assert f"rotated tokens are kept in {path}" in capsys.readouterr().out


def test_check_warns_when_client_yaml_is_read_only(sim: SimulatorServer, clean_environment: Path) -> None:
    """A real read-only mount (as root, in a private mount namespace) or, for other users, file modes."""
    import shutil

    config_dir = clean_environment / ".config" / "flightctl"
    _login(sim, config_dir / "client.yaml", "viewer")
    env = {"HOME": str(clean_environment), "PATH": os.environ.get("PATH", "")}
    check = [sys.executable, str(REPO_ROOT / "main.py"), "check"]
    if os.geteuid() == 0:
        if shutil.which("unshare") is None:
            pytest.skip("root without unshare: no way to make a read-only mount here")
        command = [
            "unshare",
            "--mount",
            "sh",
            "-c",
            f'mount --bind "{config_dir}" "{config_dir}" && mount -o remount,bind,ro "{config_dir}" && '
            'exec "$@"',
            "sh",
            *check,
        ]
    else:
        (config_dir / "client.yaml").chmod(0o400)
        config_dir.chmod(0o500)
        command = check
    try:
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    finally:
        config_dir.chmod(0o700)
    if os.geteuid() == 0 and "mount" in result.stderr and result.returncode not in (0, 1):
        pytest.skip(f"no private read-only mount possible here: {result.stderr.strip()[:200]}")
    assert "WARN tokens" in result.stdout, result.stdout + result.stderr
    assert "cannot be written" in result.stdout
    assert "flightctl login" in result.stdout
    assert result.returncode == 0  # a warning, not a failure: the server still works from memory
