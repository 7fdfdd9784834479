"""Load resources from YAML files in the multi-document form ``flightctl apply -f`` takes.

Devices get a synthesized, healthy status (the examples carry none) and an owner when a fleet's
``matchLabels`` selects them. Documents the real server would reject (an apiVersion outside the
``ApiVersion`` enum, an unknown kind) are skipped with a warning on stderr, so the upstream examples
directory loads as it is.
"""

from __future__ import annotations

import copy
import hashlib
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from simulator.errors import API_VERSION
from simulator.generator import (
    DeviceRecord,
    enrollment_record,
    event_record,
    fleet_record,
    repository_record,
    resourcesync_record,
)
from simulator.kinds import KINDS
from simulator.resources import DocRecord, rfc3339

if TYPE_CHECKING:
    from simulator.state import SimulatorState

__all__ = ["LoadError", "load_documents", "load_files"]

log = logging.getLogger("simulator")

_ACCEPTED_API_VERSIONS = ("flightctl.io/v1beta1", "v1beta1", "")
_PLURALS = {spec.kind: plural for plural, spec in KINDS.items()}
_MASKED = ("password", "token", "tls.key", "sshPrivateKey", "privateKeyPassphrase")


class LoadError(ValueError):
    """A file could not be read as Flight Control resources."""


def load_documents(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise LoadError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise LoadError(f"{path} is not valid YAML: {exc}") from exc
    out: list[dict[str, Any]] = []
    for number, document in enumerate(documents, 1):
        if not isinstance(document, dict):
            raise LoadError(f"{path}: document {number} is not a mapping")
        if document.get("kind", "").endswith("List") and isinstance(document.get("items"), list):
            out.extend(item for item in document["items"] if isinstance(item, dict))
        else:
            out.append(document)
    return out


def _mask(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("*****" if k in _MASKED and isinstance(v, str) else _mask(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return value


def _condition(kind: str, status: str, reason: str, when: str) -> dict[str, Any]:
    return {"type": kind, "status": status, "reason": reason, "message": "", "lastTransitionTime": when}


def _device_record(doc: dict[str, Any], fleets: list[dict[str, Any]], now: int) -> DeviceRecord:
    metadata = doc["metadata"]
    labels = {str(k): str(v) for k, v in (metadata.get("labels") or {}).items()}
    owner = metadata.get("owner")
    if not owner:
        for fleet in fleets:
            match = ((fleet.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            if match and all(labels.get(k) == str(v) for k, v in match.items()):
                owner = f"Fleet/{fleet['metadata']['name']}"
                break
    if "spec" not in doc and owner:
        # As the fleet controller would: an owned device gets its fleet's template spec.
        fleet = next(f for f in fleets if f"Fleet/{f['metadata']['name']}" == owner)
        doc["spec"] = copy.deepcopy(((fleet.get("spec") or {}).get("template") or {}).get("spec") or {})
    spec = doc.get("spec") or {}
    apps = spec.get("applications") or []
    when = rfc3339(now)
    image = (spec.get("os") or {}).get("image", "quay.io/flightctl/rhel:9.6")
    status = doc.get("status") or {
        "conditions": [
            _condition("Updating", "False", "Updated", when),
            _condition("SpecValid", "True", "Valid", when),
        ],
        "systemInfo": {
            "architecture": "amd64",
            "bootID": "3c6f2d9e-5b1a-4f7e-8d2c-" + hashlib.sha256(metadata["name"].encode()).hexdigest()[:12],
            "operatingSystem": "linux",
            "agentVersion": "v1.3.0",
            "hostname": metadata["name"][:40],
        },
        "applications": [
            {
                "name": app.get("name", f"app-{i}"),
                "ready": "1/1",
                "restarts": 0,
                "status": "Running",
                "embedded": False,
                "appType": app.get("appType", "compose"),
            }
            for i, app in enumerate(apps)
        ],
        "applicationsSummary": {
            "status": "Healthy" if apps else "NoApplications",
            "info": "All application workloads are healthy."
            if apps
            else "No application workloads are defined.",
        },
        "resources": {"cpu": "Healthy", "memory": "Healthy", "disk": "Healthy"},
        "integrity": {"status": "Unsupported"},
        "config": {"renderedVersion": "1"},
        "os": {"image": image, "imageDigest": "sha256:" + hashlib.sha256(image.encode()).hexdigest()},
        "updated": {"status": "UpToDate", "info": "The device has been updated to the latest device spec."},
        "summary": {"status": "Online", "info": "All system resources healthy."},
        "lifecycle": {"status": "Enrolled"},
        "capabilities": {"osMode": "image"},
    }
    metadata.setdefault("creationTimestamp", when)
    metadata.setdefault("generation", 1)
    metadata.setdefault("resourceVersion", "1")
    if owner:
        metadata["owner"] = owner
    doc["status"] = status
    created = DocRecord(doc).created
    capabilities = status.get("capabilities") or {}
    resources = status.get("resources") or {}
    return DeviceRecord(
        name=metadata["name"],
        index=-1,
        labels=labels,
        owner=owner,
        fleet=-1,
        created=created,
        summary=(status.get("summary") or {}).get("status", "Unknown"),
        apps=(status.get("applicationsSummary") or {}).get("status", "Unknown"),
        updated=(status.get("updated") or {}).get("status", "Unknown"),
        lifecycle=(status.get("lifecycle") or {}).get("status", "Unknown"),
        os_mode=capabilities.get("osMode"),
        cpu=resources.get("cpu", "Unknown"),
        memory=resources.get("memory", "Unknown"),
        disk=resources.get("disk", "Unknown"),
        seen=-5,
        doc=doc,
    )


def _normalize(doc: dict[str, Any], now: int) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    doc["apiVersion"] = API_VERSION
    metadata = doc.setdefault("metadata", {})
    metadata.setdefault("creationTimestamp", rfc3339(now))
    metadata.setdefault("resourceVersion", "1")
    return doc


def _record(plural: str, doc: dict[str, Any], now: int) -> DocRecord:
    when = rfc3339(now)
    if plural == "fleets":
        doc.setdefault("status", {"conditions": [_condition("Valid", "True", "Valid", when)]})
        metadata = doc["metadata"]
        metadata.setdefault("generation", 1)
        return fleet_record(doc)
    if plural == "repositories":
        doc["spec"] = _mask(doc.get("spec") or {})
        doc.setdefault("status", {"conditions": [_condition("Accessible", "True", "Accessible", when)]})
        return repository_record(doc)
    if plural == "resourcesyncs":
        doc.setdefault(
            "status",
            {
                "conditions": [
                    _condition("Accessible", "True", "accessible", when),
                    _condition("ResourceParsed", "True", "Success", when),
                    _condition("Synced", "True", "Success", when),
                ],
                "observedGeneration": 1,
            },
        )
        return resourcesync_record(doc)
    if plural == "enrollmentrequests":
        doc.setdefault("status", {"conditions": []})
        return enrollment_record(doc)
    if plural == "events":
        return event_record(doc)
    doc.setdefault("status", {"conditions": []})
    return KINDS[plural].record(doc)


def load_files(state: SimulatorState, paths: Iterable[Path], org_id: str) -> int:
    """Load every resource of ``paths`` into ``org_id``; returns how many were loaded."""
    documents: list[tuple[Path, dict[str, Any]]] = []
    for path in paths:
        files = (
            sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")) if path.is_dir() else [path]
        )
        for file in files:
            documents.extend((file, d) for d in load_documents(file))
    now = state.anchor_micros
    accepted: list[tuple[str, dict[str, Any]]] = []
    for file, doc in documents:
        kind = doc.get("kind")
        api_version = doc.get("apiVersion", "")
        name = (doc.get("metadata") or {}).get("name")
        if api_version not in _ACCEPTED_API_VERSIONS:
            log.warning(
                "%s: skipped %s %r: apiVersion %r is not one of %s",
                file,
                kind,
                name,
                api_version,
                ", ".join(repr(v) for v in _ACCEPTED_API_VERSIONS),
            )
            continue
        if kind not in _PLURALS:
            log.warning("%s: skipped %r: the simulator serves no kind %r", file, name, kind)
            continue
        if not isinstance(name, str) or not name:
            raise LoadError(f"{file}: a {kind} has no metadata.name")
        accepted.append((_PLURALS[kind], _normalize(doc, now)))
    org = state.org(org_id)
    fleets = [doc for plural, doc in accepted if plural == "fleets"]
    for plural, doc in accepted:
        if plural == "devices":
            org.collections["devices"].put(_device_record(doc, fleets, now))
        else:
            org.collections[plural].put(_record(plural, doc, now))
    return len(accepted)
