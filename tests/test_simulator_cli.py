"""``python -m simulator`` as people and other tests run it: one line on stdout, flags, clean exit."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from simulator.state import DEFAULT_ORG
from tests.reference import reference_file

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = reference_file("flightctl", "examples")


class Running:
    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process = process
        self.url = url

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str, str]:
        self.process.send_signal(sig)
        out, err = self.process.communicate(timeout=15)
        return self.process.returncode, out, err


def start(*args: str) -> Running:
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        _, err = process.communicate(timeout=10)
        raise AssertionError(f"the simulator did not start: {err}")
    return Running(process, line.strip())


@pytest.fixture
def running() -> Iterator[list[Running]]:
    started: list[Running] = []
    yield started
    for item in started:
        if item.process.poll() is None:
            item.process.kill()
            item.process.communicate()


def test_prints_one_line_and_stops_on_sigterm(running: list[Running]) -> None:
    sim = start("--devices", "12", "--access-token", "tok")
    running.append(sim)
    assert sim.url.startswith("http://127.0.0.1:")
    response = httpx.get(f"{sim.url}/api/v1/devices", headers={"Authorization": "Bearer tok"})
    assert len(response.json()["items"]) == 12
    code, out, _ = sim.stop(signal.SIGTERM)
    assert code == 0
    assert out == ""  # the URL was the only line


def test_stops_on_sigint(running: list[Running]) -> None:
    sim = start("--devices", "1")
    running.append(sim)
    code, _, _ = sim.stop(signal.SIGINT)
    assert code == 0


def test_fixed_port(running: list[Running]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sim = start("--devices", "1", "--port", str(port))
    running.append(sim)
    assert sim.url == f"http://127.0.0.1:{port}"


def test_https_and_client_config(running: list[Running], simulator_tls_files: Any, tmp_path: Path) -> None:
    config_path = tmp_path / "flightctl" / "client.yaml"
    sim = start(
        "--devices",
        "5",
        "--tls-cert",
        str(simulator_tls_files.cert),
        "--tls-key",
        str(simulator_tls_files.key),
        "--tls-ca",
        str(simulator_tls_files.ca),
        "--user",
        "viewer",
        "--refresh-token",
        "refresh-me",
        "--access-token-ttl",
        "120",
        "--write-client-config",
        str(config_path),
    )
    running.append(sim)
    assert sim.url.startswith("https://127.0.0.1:")
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600
    config = yaml.safe_load(config_path.read_text())
    assert config["service"]["server"] == sim.url
    assert config["organization"] == DEFAULT_ORG
    auth = config["authentication"]
    assert auth["refresh-token"] == "refresh-me"
    assert auth["token-to-use"] == "access"
    assert auth["auth-provider"]["auth-provider"]["spec"]["issuer"] == f"{sim.url}/realms/flightctl"
    assert "access-token-expiry" in auth
    with httpx.Client(verify=ssl.create_default_context(cafile=str(simulator_tls_files.ca))) as client:
        assert (
            client.get(
                f"{sim.url}/api/v1/devices", headers={"Authorization": f"Bearer {auth['access-token']}"}
            ).status_code
            == 200
        )
        refreshed = client.post(
            f"{sim.url}/realms/flightctl/protocol/openid-connect/token",
            data={"grant_type": "refresh_token", "refresh_token": "refresh-me", "client_id": "flightctl"},
        )
        assert refreshed.status_code == 200
        assert refreshed.json()["expires_in"] == 120
        again = client.post(
            f"{sim.url}/api/v1/auth/flightctl-sim/token",
            data={"grant_type": "refresh_token", "refresh_token": "refresh-me", "client_id": "flightctl"},
        )
        assert again.json()["error"] == "invalid_grant"


def test_scoped_static_access_token(running: list[Running]) -> None:
    sim = start(
        "--devices", "3", "--access-token", "scoped", "--access-token-scope", "devices:list,devices:get"
    )
    running.append(sim)
    headers = {"Authorization": "Bearer scoped"}
    assert httpx.get(f"{sim.url}/api/v1/devices", headers=headers).status_code == 200
    assert httpx.get(f"{sim.url}/api/v1/events", headers=headers).status_code == 403


def test_load_examples(running: list[Running]) -> None:
    if not EXAMPLES.is_dir():
        pytest.skip(f"the upstream examples are not here ({EXAMPLES})")
    files = sorted(EXAMPLES.glob("*.y*ml"))
    args = [arg for path in files for arg in ("--load", str(path))]
    sim = start("--devices", "0", "--access-token", "tok", *args)
    running.append(sim)
    headers = {"Authorization": "Bearer tok"}
    names = [
        d["metadata"]["name"] for d in httpx.get(f"{sim.url}/api/v1/devices", headers=headers).json()["items"]
    ]
    assert "444qgdhc7ht92g5k2mi9q926eld9nf25dvusrg9pqmkku75oqing" in names
    assert len(names) == 5
    code, _, err = sim.stop()
    assert code == 0
    assert "csr-waiting.yml" in err  # the one document with an apiVersion the server rejects is skipped


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tls-cert", "x.pem"], "--tls-cert and --tls-key go together"),
        (["--load", "/nonexistent/file.yaml"], "cannot read /nonexistent/file.yaml"),
        (["--devices", "-1"], "--devices must be 0 or more"),
    ],
)
def test_bad_arguments(args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "simulator", *args], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert message in result.stderr


def test_help_lists_the_flags() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "simulator", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    for flag in (
        "--host",
        "--port",
        "--devices",
        "--seed",
        "--load",
        "--tls-cert",
        "--tls-key",
        "--latency-ms",
        "--refresh-token",
        "--access-token",
        "--access-token-scope",
        "--write-client-config",
    ):
        assert flag in result.stdout


def _can_bind(host: str) -> bool:
    try:
        with socket.socket() as probe:
            probe.bind((host, 0))
    except OSError:
        return False
    return True


def test_seed_host_and_latency_flags(running: list[Running]) -> None:
    headers = {"Authorization": "Bearer tok"}

    def device_names(sim: Running) -> list[str]:
        response = httpx.get(f"{sim.url}/api/v1/devices", headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        return [item["metadata"]["name"] for item in response.json()["items"]]

    common = ("--devices", "6", "--access-token", "tok")
    first = start(*common, "--seed", "7", "--host", "127.0.0.1", "--latency-ms", "200")
    running.append(first)
    again = start(*common, "--seed", "7")
    running.append(again)
    # A second loopback address shows --host is obeyed, not just the default (Linux routes 127/8).
    other_host = "127.0.0.2" if _can_bind("127.0.0.2") else "127.0.0.1"
    other = start(*common, "--seed", "8", "--host", other_host)
    running.append(other)

    assert first.url.startswith("http://127.0.0.1:")
    assert httpx.URL(first.url).host == "127.0.0.1"
    assert httpx.URL(other.url).host == other_host

    same = device_names(again)
    slow_started = time.monotonic()
    seven = device_names(first)
    slow = time.monotonic() - slow_started
    assert len(seven) == 6
    assert seven == same
    different = device_names(other)
    assert len(different) == 6
    assert set(different).isdisjoint(seven)
    assert slow >= 0.2, slow  # every request waits the added latency
    latency = {
        sim.url: httpx.get(f"{sim.url}/_sim/faults", timeout=10).json()["latency_ms"]
        for sim in (first, again)
    }
    assert latency == {first.url: 200, again.url: 0}
