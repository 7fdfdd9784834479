"""deploy/: the Kubernetes manifests run stateless pass-through replicas, non-root, with a read-only root
and read-only credentials, probed on the port the server serves.

kubectl never runs in the test suite, so a typo here would show up only after a merge: these checks parse
the manifests and load their settings as the server would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from fastmcp.server.http import DEFAULT_HOSTS

import config
from tests.containerfile import image_env

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


# --- deploy/ ------------------------------------------------------------------------------------------


def _manifests() -> dict[str, dict[str, Any]]:
    """Every object in deploy/, keyed by kind (one object of each kind is expected)."""
    objects: dict[str, dict[str, Any]] = {}
    for path in sorted(DEPLOY.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document is not None and path.name != "kustomization.yaml":
                assert document["kind"] not in objects, f"two {document['kind']} objects in deploy/"
                objects[document["kind"]] = document
    return objects


def _container() -> dict[str, Any]:
    containers: list[dict[str, Any]] = _manifests()["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def test_kustomization_lists_existing_files_and_leaves_credentials_out() -> None:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text(encoding="utf-8"))
    for resource in kustomization["resources"]:
        assert (DEPLOY / resource).is_file(), resource
    assert "secret.example.yaml" not in kustomization["resources"]


def test_configmap_settings_load_as_stateless_passthrough(tmp_path: Path) -> None:
    data = _manifests()["ConfigMap"]["data"]
    assert all(isinstance(value, str) for value in data.values()), "ConfigMap values must be strings"
    settings = config.load_settings({}, {**data, "HOME": str(tmp_path)})
    assert settings.http.stateless is True
    assert settings.http.auth_mode == "passthrough"
    assert settings.transport == "streamable-http"
    config.check_http_exposure(settings)


def test_deployment_runs_replicas_with_probes_on_the_served_port(tmp_path: Path) -> None:
    deployment = _manifests()["Deployment"]
    assert deployment["spec"]["replicas"] >= 2
    container = _container()
    settings = config.load_settings({}, {**_manifests()["ConfigMap"]["data"], "HOME": str(tmp_path)})
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert ports[container[probe]["httpGet"]["port"]] == settings.port, probe
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        # The Host guard checks every request once MCP_ALLOWED_HOSTS is set; the pod IP is not on it.
        headers = {h["name"].lower(): h["value"] for h in container[probe]["httpGet"].get("httpHeaders", [])}
        assert headers.get("host") in DEFAULT_HOSTS, f"{probe} must send a Host the guard always accepts"
    service_port = _manifests()["Service"]["spec"]["ports"][0]
    assert ports[service_port["targetPort"]] == settings.port
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]["memory"]


def test_deployment_is_non_root_with_a_read_only_root_and_read_only_credentials() -> None:
    pod = _manifests()["Deployment"]["spec"]["template"]["spec"]
    container = _container()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
    for mount in mounts.values():
        volume = volumes[mount["name"]]
        if "secret" in volume or "configMap" in volume:
            assert mount.get("readOnly") is True, f"{mount['mountPath']} must be mounted read-only"
    home = image_env()["HOME"]
    client_dir = str(config.default_client_config_path({"HOME": home}).parent)
    assert "secret" in volumes[mounts[client_dir]["name"]], "client.yaml comes from a Secret"
    log_dir = str(config.default_log_file({"HOME": home}).parent)
    assert log_dir in mounts, "the log directory must be writable on a read-only root"
    assert "emptyDir" in volumes[mounts[log_dir]["name"]]


def test_secret_example_holds_placeholders_only() -> None:
    secret = _manifests()["Secret"]
    client_yaml = yaml.safe_load(secret["stringData"]["client.yaml"])
    assert "REPLACE_ME" in client_yaml["authentication"]["refresh-token"]
    assert "REPLACE_ME" in secret["stringData"]["shared-secret"]
    text = (DEPLOY / "secret.example.yaml").read_text(encoding="utf-8")
    assert "eyJ" not in text, "looks like a real JWT"


def test_openshift_route_targets_the_service_over_tls() -> None:
    route = _manifests()["Route"]
    assert route["spec"]["to"]["name"] == _manifests()["Service"]["metadata"]["name"]
    assert route["spec"]["tls"]["termination"] == "edge"
