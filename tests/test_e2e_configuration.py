"""Configured as users configure it: each client.yaml format and the environment alone, the environment
overriding the file; TLS from CA_CERT_PATH, INSECURE_SKIP_VERIFY, the client.yaml CA, in that order, and a
wrong CA refused.

Part of the end-to-end specification that test_flightctl_mcp.py opens; helpers in tests/e2e_harness.py,
fixtures (``sim``, ``ca_file``) in conftest.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trustme

from simulator.harness import SimulatorServer
from simulator.state import DEFAULT_ORG, LAB_ORG, PROVIDER_NAME
from test_live_instance import answer_of, error_of, walk
from tests.e2e_harness import (
    OIDC_TOKEN_PATH,
    base_env,
    ca_data,
    current_client_yaml,
    env_only,
    in_memory,
    requests_to,
    truth,
    write_yaml,
)
from tests.http_harness import refused_port

PROXY_TOKEN_PATH = f"/api/v1/auth/{PROVIDER_NAME}/token"

pytestmark = pytest.mark.usefixtures("no_faults_left_behind")


@pytest.fixture(scope="module")
def wrong_ca_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA that did not sign the simulator's certificate."""
    path = tmp_path_factory.mktemp("wrong-ca") / "wrong-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


def legacy_client_yaml(sim: SimulatorServer, ca_file: Path, *, user: str = "admin") -> dict[str, Any]:
    """A pre-1.0 flightctl client.yaml: auth-provider.config with server/client-id/refresh-token."""
    return {
        "service": {"server": sim.base_url, "certificate-authority": str(ca_file)},
        "authentication": {
            "auth-provider": {
                "name": "oidc",
                "config": {
                    "server": sim.oidc_issuer,
                    "client-id": "flightctl",
                    "refresh-token": sim.issue_tokens(user).refresh_token,
                },
            }
        },
    }


# --- configuration ------------------------------------------------------------------------------------

CONFIG_SOURCES = ("environment only", "current client.yaml", "legacy client.yaml")


@pytest.mark.parametrize("source", CONFIG_SOURCES)
async def test_configuration_from_each_source(
    source: str, sim: SimulatorServer, ca_file: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    expected_org = DEFAULT_ORG
    if source == "environment only":
        env = env_only(sim, ca_file, home)
        token_path = OIDC_TOKEN_PATH
    elif source == "current client.yaml":
        # at the default location, for a user of two organizations who chose the lab one; the token in
        # the file has expired, so the server must refresh it through Flight Control's token proxy
        expected_org = LAB_ORG
        write_yaml(
            home / ".config" / "flightctl" / "client.yaml",
            current_client_yaml(sim, ca_file, user="multi", organization=LAB_ORG, expired_access_token=True),
        )
        env = base_env(home)
        token_path = PROXY_TOKEN_PATH
    else:
        config = write_yaml(tmp_path / "legacy.yaml", legacy_client_yaml(sim, ca_file))
        env = base_env(home, CLIENT_CONFIG_PATH=str(config))
        token_path = OIDC_TOKEN_PATH
    user = "multi" if expected_org == LAB_ORG else "admin"
    sim.state.clear_requests()

    async with in_memory(env) as client:
        names, _ = await walk(client, "query_devices", {"limit": 20})
    refreshes = [r for r in sim.state.requests() if r["method"] == "POST" and "token" in r["path"]]
    listed = requests_to(sim, "/api/v1/devices")

    assert names == truth(sim, ca_file, "devices", user=user, org_id=expected_org)
    assert refreshes, "the server never refreshed its token"
    assert {r["path"] for r in refreshes} == {token_path}
    assert all(r["status"] == 200 for r in refreshes), refreshes
    assert listed
    assert all(r["params"].get("org_id", [DEFAULT_ORG]) == [expected_org] for r in listed), listed
    assert all(r["headers"].get("flightctl-api-version") == "v1beta1" for r in listed), listed


async def test_environment_overrides_client_yaml(sim: SimulatorServer, ca_file: Path, tmp_path: Path) -> None:
    """client.yaml names a server that is gone and the lab organization; the environment fixes the
    server and picks the default organization, while the file still supplies the session and the CA."""
    home = tmp_path / "home"
    with refused_port() as port:
        dead = f"https://127.0.0.1:{port}"
        write_yaml(
            home / ".config" / "flightctl" / "client.yaml",
            current_client_yaml(sim, ca_file, user="multi", organization=LAB_ORG, server=dead),
        )
        async with in_memory(base_env(home)) as client:
            message = await error_of(client, "query_devices", {"limit": 5})
    assert dead in message, message

    async with in_memory(base_env(home, API_BASE_URL=sim.base_url, ORG_ID=DEFAULT_ORG)) as client:
        names, _ = await walk(client, "query_devices", {"limit": 50})
    assert names == truth(sim, ca_file, "devices", user="multi", org_id=DEFAULT_ORG)
    assert not set(names) & set(truth(sim, ca_file, "devices", user="multi", org_id=LAB_ORG))


# --- TLS ----------------------------------------------------------------------------------------------

# (id, environment TLS settings, client.yaml service TLS keys, refused?) with "{ca}" / "{wrong}" for files
TLS_CASES: list[tuple[str, dict[str, str], dict[str, str] | None, bool]] = [
    ("CA_CERT_PATH", {"CA_CERT_PATH": "{ca}"}, None, False),
    ("INSECURE_SKIP_VERIFY", {"INSECURE_SKIP_VERIFY": "true"}, None, False),
    ("client.yaml certificate-authority-data", {}, {"certificate-authority-data": "{ca-data}"}, False),
    ("client.yaml certificate-authority", {}, {"certificate-authority": "{ca}"}, False),
    ("client.yaml insecureSkipVerify", {}, {"insecureSkipVerify": "true"}, False),
    (
        "CA_CERT_PATH wins over client.yaml",
        {"CA_CERT_PATH": "{wrong}"},
        {"certificate-authority": "{ca}"},
        True,
    ),
    (
        "INSECURE_SKIP_VERIFY wins over client.yaml",
        {"INSECURE_SKIP_VERIFY": "true"},
        {"certificate-authority": "{wrong}"},
        False,
    ),
    (
        "CA_CERT_PATH wins over INSECURE_SKIP_VERIFY",
        {"CA_CERT_PATH": "{wrong}", "INSECURE_SKIP_VERIFY": "true"},
        None,
        True,
    ),
    ("wrong CA", {"CA_CERT_PATH": "{wrong}"}, None, True),
    ("system bundle", {}, None, True),
]


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
@pytest.mark.parametrize(
    ("env_tls", "yaml_tls", "refused"), [c[1:] for c in TLS_CASES], ids=[c[0] for c in TLS_CASES]
)
async def test_each_tls_mode(
    env_tls: dict[str, str],
    yaml_tls: dict[str, str] | None,
    refused: bool,
    sim: SimulatorServer,
    ca_file: Path,
    wrong_ca_file: Path,
    tmp_path: Path,
) -> None:
    values = {
        "{ca}": str(ca_file),
        "{wrong}": str(wrong_ca_file),
        "{ca-data}": ca_data(ca_file),
    }
    env = base_env(tmp_path / "home", ACCESS_TOKEN=sim.issue_access_token("admin", ttl=600))
    env.update({key: values.get(value, value) for key, value in env_tls.items()})
    if yaml_tls is None:
        env["API_BASE_URL"] = sim.base_url
    else:
        service: dict[str, Any] = {"server": sim.base_url}
        service.update({k: True if v == "true" else values.get(v, v) for k, v in yaml_tls.items()})
        env["CLIENT_CONFIG_PATH"] = str(write_yaml(tmp_path / "client.yaml", {"service": service}))

    async with in_memory(env) as client:
        if refused:
            message = await error_of(client, "query_fleets", {"limit": 5})
            assert "TLS" in message, message
            assert "CERTIFICATE_VERIFY_FAILED" in message.upper().replace(" ", "_"), message
            assert "CA_CERT_PATH" in message, message
        else:
            answer = await answer_of(client, "query_fleets", {"limit": 5})
            assert [i["metadata"]["name"] for i in answer["data"]] == truth(sim, ca_file, "fleets")
