"""A deterministic, realistic fleet: fleets, devices of every status, events, enrollment requests,
repositories and resource syncs.

Everything is a function of ``(seed, index)`` and the anchor time, so the same seed gives the same
fleet. Devices are kept as compact :class:`DeviceRecord` objects (what selectors, sorting and summaries
need); :func:`render_device` rebuilds the full ``Device`` JSON on demand from the same seed. The first
sixteen devices take fixed profiles so that even a small fleet shows every status value.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import random
import uuid
from dataclasses import dataclass
from typing import Any

from simulator.errors import API_VERSION
from simulator.kinds import KINDS
from simulator.resources import DocRecord, rfc3339
from simulator.selector_parser import parse_rfc3339

__all__ = [
    "APP_STATUSES",
    "LIFECYCLE_STATUSES",
    "RESOURCE_STATUSES",
    "SERVICE_CA_PEM",
    "SUMMARY_STATUSES",
    "UPDATED_STATUSES",
    "DeviceRecord",
    "GeneratedData",
    "device_name",
    "device_spec",
    "generate",
    "render_device",
]

SUMMARY_STATUSES = (
    "Online",
    "Degraded",
    "Error",
    "Rebooting",
    "PoweredOff",
    "Unknown",
    "AwaitingReconnect",
    "ConflictPaused",
)
APP_STATUSES = ("Healthy", "Degraded", "Error", "Unknown", "NoApplications")
UPDATED_STATUSES = ("UpToDate", "OutOfDate", "Updating", "Unknown")
LIFECYCLE_STATUSES = ("Unknown", "Enrolled", "Decommissioning", "Decommissioned")
RESOURCE_STATUSES = ("Healthy", "Warning", "Critical", "Error", "Unknown")
_ONLINE_LIKE = frozenset({"Online", "Degraded", "Error", "Rebooting", "ConflictPaused"})

_SECOND = 1_000_000
_DAY = 86_400 * _SECOND

_REGIONS = ("eu-west-1", "eu-central-1", "us-east-1", "us-west-2", "ap-south-1", "ap-northeast-1")
_SITE_PREFIX = {
    "eu-west-1": "dub",
    "eu-central-1": "fra",
    "us-east-1": "nyc",
    "us-west-2": "sea",
    "ap-south-1": "bom",
    "ap-northeast-1": "tyo",
}


@dataclass(frozen=True)
class _Workload:
    name: str
    tier: str
    hardware: tuple[str, ...]
    apps: tuple[dict[str, Any], ...]


# Like upstream's examples/device-container-app.yaml: a container app with ports, limits and volumes.
_NGINX_APP: dict[str, Any] = {
    "name": "web-frontend",
    "appType": "container",
    "image": "docker.io/library/nginx:1.27-alpine",
    "envVars": {"EXAMPLE": "simple example"},
    "ports": ["8081:80", "8080:8080"],
    "resources": {"limits": {"cpu": "0.5", "memory": "256m"}},
    "volumes": [
        {
            "name": "nginx-config",
            "mount": {"path": "/etc/nginx/conf.d"},
            "image": {"reference": "quay.io/acme/nginx-config-artifact:v1"},
        },
        {"name": "nginx-logs", "mount": {"path": "/var/log/nginx"}},
    ],
}

_WORKLOADS = (
    _Workload(
        "pos",
        "store",
        ("Dell OptiPlex 3000", "HP Engage One"),
        (
            {
                "name": "pos-terminal",
                "appType": "container",
                "image": "quay.io/acme/pos-terminal:3.2.0",
                "ports": ["8443:8443"],
                "envVars": {"STORE_MODE": "production"},
            },
            {"name": "metrics-agent", "appType": "compose", "image": "quay.io/acme/metrics-agent-bundle:1.4"},
        ),
    ),
    _Workload("kiosk", "store", ("Lenovo ThinkEdge SE30",), (_NGINX_APP,)),
    _Workload(
        "camera",
        "edge",
        ("NVIDIA Jetson Orin Nano", "Raspberry Pi 5"),
        (
            {
                "name": "video-ingest",
                "appType": "quadlet",
                "image": "quay.io/acme/video-ingest-quadlet:2.0.3",
                "envVars": {"STREAMS": "4"},
                "volumes": [{"name": "model-data", "image": {"reference": "quay.io/acme/detector-model:v7"}}],
            },
        ),
    ),
    _Workload(
        "gateway",
        "gateway",
        ("Advantech UNO-2484G", "Siemens SIMATIC IPC227G"),
        ({"name": "mqtt-broker", "appType": "compose", "image": "quay.io/acme/mqtt-broker-bundle:5.1.2"},),
    ),
    _Workload("sensor-hub", "edge", ("Raspberry Pi 4 Model B",), ()),
    _Workload(
        "signage",
        "store",
        ("Intel NUC 13 Pro",),
        (
            {
                "name": "signage-player",
                "appType": "container",
                "image": "quay.io/acme/signage-player:1.9.0",
                "ports": ["9000:9000"],
            },
        ),
    ),
)

_STANDALONE_APPS: tuple[dict[str, Any], ...] = (
    {"name": "metrics-agent", "appType": "compose", "image": "quay.io/acme/metrics-agent-bundle:1.4"},
    {"name": "log-forwarder", "appType": "container", "image": "quay.io/acme/log-forwarder:0.9.2"},
)
# The resource monitors of a fleet template (and of every full-size device, which carries its template).
_MONITORS: tuple[dict[str, Any], ...] = (
    {
        "monitorType": "CPU",
        "alertRules": [
            {
                "severity": "Warning",
                "duration": "10m",
                "percentage": 80,
                "description": "CPU load is above 80% for more than 10 minutes",
            },
            {
                "severity": "Critical",
                "duration": "10m",
                "percentage": 95,
                "description": "CPU load is above 95% for more than 10 minutes",
            },
        ],
        "samplingInterval": "30s",
    },
    {
        "monitorType": "Disk",
        "path": "/",
        "alertRules": [
            {
                "severity": "Critical",
                "duration": "5m",
                "percentage": 90,
                "description": "Root filesystem is more than 90% full",
            }
        ],
        "samplingInterval": "1m",
    },
)
# What a full-size device carries on top (``generate(full_devices=True)``, ``--full-devices``): its fleet
# template's monitors and inline config, an update policy, a log forwarder beside its own applications and
# the units a production image runs. Real devices with applications are about 4 KB of JSON; these are too.
_FULL_CONFIG: dict[str, Any] = {
    "name": "motd-update",
    "inline": [{"path": "/etc/motd", "content": "This system is managed by flightctl.", "mode": 420}],
}
_FULL_UPDATE_POLICY: dict[str, Any] = {
    "downloadSchedule": {"at": "* 1-4 * * *", "timeZone": "Etc/UTC", "startGraceDuration": "1h"},
    "updateSchedule": {"at": "30 3 * * 0", "timeZone": "Etc/UTC", "startGraceDuration": "2h"},
}
_FULL_APP: dict[str, Any] = {
    "name": "log-forwarder",
    "appType": "container",
    "image": "quay.io/acme/log-forwarder:0.9.2",
    "envVars": {"LOG_TARGET": "syslog.acme.example:6514", "LOG_LEVEL": "info"},
    "resources": {"limits": {"cpu": "0.2", "memory": "128m"}},
}
_FULL_SYSTEMD_UNITS = ("sshd.service", "podman.service")
_AGENT_VERSIONS = ("v1.3.0", "v1.3.0", "v1.3.0", "v1.2.2", "v1.2.0")
_SYSTEMD_UNITS = ("chronyd.service", "flightctl-agent.service")


def _pick(rng: random.Random, weighted: tuple[tuple[str, int], ...]) -> str:
    total = sum(w for _, w in weighted)
    point = rng.randrange(total)
    for value, weight in weighted:
        if point < weight:
            return value
        point -= weight
    return weighted[-1][0]


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


_B32HEX = "0123456789abcdefghijklmnopqrstuv"


def device_name(seed: int, index: int) -> str:
    """A 52-character name like real enrolled devices get (a base32hex hash of their key)."""
    value = int.from_bytes(hashlib.sha256(f"flightctl-sim/{seed}/{index}".encode()).digest(), "big")
    chars = []
    for _ in range(52):
        chars.append(_B32HEX[value & 31])
        value >>= 5
    return "".join(chars)


class DeviceRecord:
    """What the simulator keeps per device: selectable fields, labels, and how to render the rest."""

    __slots__ = (
        "alias",
        "apps",
        "cpu",
        "created",
        "disk",
        "doc",
        "fleet",
        "index",
        "labels",
        "lifecycle",
        "memory",
        "name",
        "os_mode",
        "owner",
        "seen",
        "summary",
        "updated",
    )

    def __init__(
        self,
        *,
        name: str,
        index: int,
        labels: dict[str, str],
        owner: str | None,
        fleet: int,
        created: int,
        summary: str,
        apps: str,
        updated: str,
        lifecycle: str,
        os_mode: str | None,
        cpu: str,
        memory: str,
        disk: str,
        seen: int | None,
        doc: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.index = index
        self.labels = labels
        self.alias = labels.get("alias")
        self.owner = owner
        self.fleet = fleet
        self.created = created
        self.summary = summary
        self.apps = apps
        self.updated = updated
        self.lifecycle = lifecycle
        self.os_mode = os_mode
        self.cpu = cpu
        self.memory = memory
        self.disk = disk
        # None = never seen; >= 0 = absolute microseconds; < 0 = that many seconds before "now" (live)
        self.seen = seen
        self.doc = doc

    def __repr__(self) -> str:
        return f"DeviceRecord({self.name!r}, summary={self.summary!r}, lifecycle={self.lifecycle!r})"


# ------------------------------------------------------------------------------------------- fleets


@dataclass(frozen=True)
class FleetProfile:
    name: str
    workload: _Workload
    region: str
    image: str
    previous_image: str
    rollout_batch: int | None  # the current batch when a rollout is in progress
    owner: str | None


def _fleet_profiles(count: int) -> list[FleetProfile]:
    profiles = []
    per_round = len(_WORKLOADS) * len(_REGIONS)
    for i in range(count):
        workload = _WORKLOADS[i % len(_WORKLOADS)]
        region = _REGIONS[(i // len(_WORKLOADS)) % len(_REGIONS)]
        round_no = i // per_round
        name = f"{workload.name}-{region}" + (f"-{round_no + 1}" if round_no else "")
        minor = 4 + i % 3
        image = f"quay.io/acme/{workload.name}-os:9.6.{minor}"
        previous = f"quay.io/acme/{workload.name}-os:9.6.{minor - 1}"
        owner = "ResourceSync/edge-fleets" if i % 4 == 1 else None
        profiles.append(
            FleetProfile(name, workload, region, image, previous, 2 if i % 5 == 2 else None, owner)
        )
    return profiles


def _fleet_doc(profile: FleetProfile, index: int, anchor: int) -> dict[str, Any]:
    workload = profile.workload
    spec: dict[str, Any] = {
        "os": {"image": profile.image},
        "config": [
            {
                "name": "base",
                "gitRef": {
                    "repository": "flightctl-demos",
                    "targetRevision": "main",
                    "path": f"/fleets/{workload.name}/configuration/",
                },
            },
            {
                "name": "motd-update",
                "inline": [
                    {"path": "/etc/motd", "content": "This system is managed by flightctl.", "mode": 420}
                ],
            },
        ],
        "resources": copy.deepcopy(list(_MONITORS)),
        "systemd": {"matchPatterns": list(_SYSTEMD_UNITS)},
    }
    if workload.apps:
        spec["applications"] = [dict(app) for app in workload.apps]
    fleet_spec: dict[str, Any] = {
        "selector": {"matchLabels": {"fleet": profile.name}},
        "template": {"metadata": {"labels": {"fleet": profile.name}}, "spec": spec},
    }
    rolling = profile.rollout_batch is not None
    if index % 3 == 0 or rolling:
        fleet_spec["rolloutPolicy"] = {
            "deviceSelection": {
                "strategy": "BatchSequence",
                "sequence": [
                    {"limit": 1, "selector": {"matchLabels": {"canary": ""}}},
                    {"limit": "20%"},
                    {"limit": "100%"},
                ],
            },
            "disruptionBudget": {"groupBy": ["site"], "minAvailable": 1},
            "successThreshold": "90%",
            "defaultUpdateTimeout": "30m",
        }
    created = anchor - (400 - index % 50) * _DAY
    generation = 3 + index % 4
    updated_at = rfc3339(anchor - (index % 9 + 1) * _DAY)
    version = f"{profile.name}-{generation}"
    annotations = {"fleet-controller/templateVersion": version}
    reason, message = "Inactive", ""
    if profile.rollout_batch is not None:
        # Every other rollout (the first included) is stuck: its last batch stayed under the 90% threshold.
        stuck = index % 10 == 2
        reason = "Suspended" if stuck else "Active"
        percent = 60 if stuck else 100
        message = (
            f"Rollout of template version {version} is suspended: batch {profile.rollout_batch - 1} "
            f"reached {percent}%, under the success threshold 90%"
            if stuck
            else f"Rolling out template version {version}"
        )
        report = {"batchName": f"batch {profile.rollout_batch - 1}", "successPercentage": percent}
        report.update(total=5, successful=percent // 20, failed=5 - percent // 20, timedOut=0)
        annotations.update(
            {
                "fleet-controller/deployingTemplateVersion": version,
                "fleet-controller/batchNumber": str(profile.rollout_batch),
                "fleet-controller/rolloutApproved": "false" if stuck else "true",
                "fleet-controller/rolloutApprovalMethod": "automatic",
                "fleet-controller/lastBatchCompletionReport": json.dumps(report, separators=(",", ":")),
            }
        )
    conditions: list[dict[str, Any]] = [
        _condition("Valid", "True", "Valid", "", updated_at),
        _condition("RolloutInProgress", "True" if rolling else "False", reason, message, updated_at),
    ]
    status: dict[str, Any] = {"conditions": conditions}
    if rolling:
        status["rollout"] = {"currentBatch": profile.rollout_batch}
    metadata: dict[str, Any] = {
        "name": profile.name,
        "labels": {"region": profile.region, "workload": profile.workload.name},
        "creationTimestamp": rfc3339(created),
        "generation": generation,
        "resourceVersion": str(1000 + index * 7),
        "annotations": annotations,
    }
    if profile.owner:
        metadata["owner"] = profile.owner
    return {
        "apiVersion": API_VERSION,
        "kind": "Fleet",
        "metadata": metadata,
        "spec": fleet_spec,
        "status": status,
    }


# ------------------------------------------------------------------------------------------ devices

# The first sixteen devices: every status value shows up even in a tiny fleet.
# (summary, apps, updated, lifecycle, osMode, cpu, memory, disk, never seen, unowned)
_FIXED: tuple[tuple[str, str, str, str, str | None, str, str, str, bool, bool], ...] = (
    ("Online", "Healthy", "UpToDate", "Enrolled", "image", "Healthy", "Healthy", "Healthy", False, False),
    (
        "Degraded",
        "Degraded",
        "OutOfDate",
        "Enrolled",
        "package",
        "Warning",
        "Healthy",
        "Healthy",
        False,
        False,
    ),
    ("Error", "Error", "Updating", "Enrolled", "image", "Healthy", "Critical", "Healthy", False, False),
    ("Rebooting", "Unknown", "Updating", "Enrolled", "image", "Unknown", "Unknown", "Unknown", False, False),
    (
        "PoweredOff",
        "NoApplications",
        "Unknown",
        "Enrolled",
        None,
        "Unknown",
        "Unknown",
        "Unknown",
        False,
        True,
    ),
    ("Unknown", "Unknown", "Unknown", "Unknown", None, "Unknown", "Unknown", "Unknown", True, True),
    (
        "AwaitingReconnect",
        "Healthy",
        "UpToDate",
        "Enrolled",
        "image",
        "Healthy",
        "Healthy",
        "Healthy",
        False,
        False,
    ),
    (
        "ConflictPaused",
        "Healthy",
        "OutOfDate",
        "Enrolled",
        "image",
        "Healthy",
        "Warning",
        "Healthy",
        False,
        False,
    ),
    (
        "Online",
        "Healthy",
        "UpToDate",
        "Decommissioning",
        "image",
        "Healthy",
        "Healthy",
        "Healthy",
        False,
        False,
    ),
    (
        "Unknown",
        "Unknown",
        "UpToDate",
        "Decommissioned",
        "image",
        "Unknown",
        "Unknown",
        "Unknown",
        False,
        False,
    ),
    ("Online", "Healthy", "UpToDate", "Enrolled", "image", "Critical", "Healthy", "Error", False, False),
    (
        "Online",
        "NoApplications",
        "UpToDate",
        "Enrolled",
        "package",
        "Healthy",
        "Healthy",
        "Warning",
        False,
        True,
    ),
    # Standalone devices whose applications show the rarer application states (_FIXED_APP_STATES).
    ("Online", "Healthy", "UpToDate", "Enrolled", "image", "Healthy", "Healthy", "Healthy", False, True),
    ("Online", "Degraded", "Updating", "Enrolled", "image", "Healthy", "Healthy", "Healthy", False, True),
    ("Online", "Degraded", "Updating", "Enrolled", "package", "Healthy", "Healthy", "Healthy", False, True),
    ("Degraded", "Degraded", "UpToDate", "Enrolled", "image", "Warning", "Healthy", "Healthy", False, True),
)
_FIXED_APP_STATES = {
    12: ("Running", "Completed"),
    13: ("Starting", "Running"),
    14: ("Preparing", "Running"),
    15: ("Stopping", "Stopped"),
}


def _device_record(seed: int, index: int, fleets: list[FleetProfile], anchor: int) -> DeviceRecord:
    rng = random.Random(f"{seed}/device/{index}")
    fixed = _FIXED[index] if index < len(_FIXED) else None
    unowned = fixed[9] if fixed else rng.random() < 0.08
    fleet_index = -1 if unowned or not fleets else index % len(fleets)
    profile = fleets[fleet_index] if fleet_index >= 0 else None
    region = profile.region if profile else _REGIONS[index % len(_REGIONS)]
    workload = profile.workload if profile else _WORKLOADS[index % len(_WORKLOADS)]
    site = f"{_SITE_PREFIX[region]}-{rng.randrange(1, 120):03d}"
    unit = rng.randrange(1, 9)
    labels: dict[str, str] = {
        "region": region,
        "site": site,
        "env": _pick(rng, (("prod", 85), ("staging", 10), ("dev", 5))),
        "tier": workload.tier,
        "workload": workload.name,
        "hw": workload.hardware[rng.randrange(len(workload.hardware))].lower().replace(" ", "-"),
    }
    if profile:
        labels["fleet"] = profile.name
    if rng.random() < 0.9 or fixed:
        labels["alias"] = f"{workload.name}-{site}-{unit:02d}"
    if rng.random() < 0.03 or index == 0:
        labels["canary"] = ""
    if fixed:
        summary, apps, updated, lifecycle, os_mode, cpu, memory, disk, never_seen, _ = fixed
    else:
        summary = _pick(
            rng,
            (
                ("Online", 720),
                ("Degraded", 60),
                ("Error", 35),
                ("Rebooting", 15),
                ("PoweredOff", 30),
                ("Unknown", 100),
                ("AwaitingReconnect", 25),
                ("ConflictPaused", 15),
            ),
        )
        never_seen = summary == "Unknown" and rng.random() < 0.2
        has_apps = bool(workload.apps) if profile else rng.random() < 0.3
        if not has_apps:
            apps = "NoApplications"
        elif summary in ("Unknown", "PoweredOff", "AwaitingReconnect", "Rebooting"):
            apps = "Unknown"
        else:
            apps = _pick(rng, (("Healthy", 85), ("Degraded", 8), ("Error", 7)))
        if summary == "Unknown":
            updated = "Unknown"
        elif profile and profile.rollout_batch is not None:
            updated = _pick(rng, (("UpToDate", 40), ("Updating", 25), ("OutOfDate", 35)))
        else:
            updated = _pick(rng, (("UpToDate", 92), ("OutOfDate", 6), ("Updating", 2)))
        if never_seen:
            lifecycle = "Unknown"
        else:
            lifecycle = _pick(rng, (("Enrolled", 980), ("Decommissioning", 8), ("Decommissioned", 12)))
        os_mode = None if never_seen else (_pick(rng, (("image", 80), ("package", 12), ("", 8))) or None)
        if summary in ("Unknown", "PoweredOff", "AwaitingReconnect"):
            cpu = memory = disk = "Unknown"
        else:
            cpu = _pick(rng, (("Healthy", 90), ("Warning", 6), ("Critical", 3), ("Error", 1)))
            memory = _pick(rng, (("Healthy", 92), ("Warning", 5), ("Critical", 3)))
            disk = _pick(rng, (("Healthy", 90), ("Warning", 7), ("Critical", 2), ("Error", 1)))
        if summary == "Degraded" and cpu == memory == disk == "Healthy":
            cpu = "Warning"
        if summary == "Error" and apps == "Healthy":
            apps = "Error"
        if lifecycle == "Decommissioned":
            summary, updated, apps = "Unknown", "UpToDate", "Unknown" if has_apps else "NoApplications"
            cpu = memory = disk = "Unknown"
    created = anchor - rng.randrange(2 * _DAY, 700 * _DAY)
    created -= created % _SECOND
    seen: int | None
    if never_seen:
        seen = None
    elif lifecycle == "Decommissioned" or summary in ("Unknown", "PoweredOff", "AwaitingReconnect"):
        seen = anchor - rng.randrange(2 * 3600 * _SECOND, 30 * _DAY)
        seen = max(seen - seen % _SECOND, created + _SECOND)
    else:
        seen = -rng.randrange(1, 90)
    return DeviceRecord(
        name=device_name(seed, index),
        index=index,
        labels=labels,
        owner=f"Fleet/{profile.name}" if profile else None,
        fleet=fleet_index,
        created=created,
        summary=summary,
        apps=apps,
        updated=updated,
        lifecycle=lifecycle,
        os_mode=os_mode,
        cpu=cpu,
        memory=memory,
        disk=disk,
        seen=seen,
    )


_SUMMARY_INFO = {
    "Online": "All system resources healthy.",
    "Degraded": "One or more system resources are above their warning thresholds.",
    "Error": "One or more system resources or applications are in error.",
    "Rebooting": "The device is rebooting.",
    "PoweredOff": "The device is powered off.",
    "Unknown": "The device is disconnected (last seen more than 5m0s ago).",
    "AwaitingReconnect": "Device has not reconnected since restore to confirm its current state.",
    "ConflictPaused": "Device reconciliation is paused due to a state conflict between the service "
    "and the device's agent; manual intervention is required.",
}
_APPS_INFO = {
    "Healthy": "All application workloads are healthy.",
    "Degraded": "Not all application workloads are running.",
    "Error": "One or more application workloads are in error.",
    "Unknown": "The device is disconnected; application status is not known.",
    "NoApplications": "Device has not reported any application workloads yet.",
}
_UPDATED_INFO = {
    "UpToDate": "The device has been updated to the latest device spec.",
    "OutOfDate": "The device has not yet been scheduled for update to the fleet's latest spec.",
    "Updating": "The device is updating to the fleet's latest device spec.",
    "Unknown": "The device is disconnected; update status is not known.",
}
_LIFECYCLE_INFO = {
    "Enrolled": "Device is enrolled.",
    "Decommissioning": "The device has been asked to decommission and is unenrolling.",
    "Decommissioned": "The device has completed decommissioning.",
    "Unknown": "Device has not reported a lifecycle status yet.",
}
_APP_STATES = {
    "Healthy": (("Running",), ("Running",), ("Running", "Completed")),
    "Degraded": (("Running", "Stopped"), ("Starting", "Running"), ("Stopping", "Running")),
    "Error": (("Error", "Running"),),
    "Unknown": (("Unknown",),),
}


def _app_states(record: DeviceRecord) -> tuple[str, ...]:
    """The state of each application (cycled over the device's applications)."""
    if record.index in _FIXED_APP_STATES:
        return _FIXED_APP_STATES[record.index]
    choices = _APP_STATES[record.apps]
    return choices[record.index % len(choices)]


def _condition(kind: str, status: str, reason: str, message: str, when: str) -> dict[str, Any]:
    return {"type": kind, "status": status, "reason": reason, "message": message, "lastTransitionTime": when}


def device_spec(record: DeviceRecord, fleets: list[FleetProfile], *, full: bool = False) -> dict[str, Any]:
    """The spec a generated device has (its fleet's template, or a standalone one); ``full`` adds what a
    production device carries (monitors, update policy, a log forwarder, more units)."""
    profile = fleets[record.fleet] if 0 <= record.fleet < len(fleets) else None
    spec: dict[str, Any] = {}
    if profile:
        image = profile.previous_image if record.updated in ("OutOfDate", "Updating") else profile.image
        spec["os"] = {"image": image}
        spec["config"] = [
            {
                "name": "base",
                "gitRef": {
                    "repository": "flightctl-demos",
                    "targetRevision": "main",
                    "path": f"/fleets/{profile.workload.name}/configuration/",
                },
            }
        ]
        if profile.workload.apps and record.apps != "NoApplications":
            spec["applications"] = [dict(app) for app in profile.workload.apps]
        spec["systemd"] = {"matchPatterns": list(_SYSTEMD_UNITS)}
    else:
        spec["os"] = {"image": "quay.io/acme/standalone-os:9.6.2"}
        if record.apps != "NoApplications":
            spec["applications"] = [dict(app) for app in _STANDALONE_APPS]
    if full:
        spec.setdefault("config", []).append(_FULL_CONFIG)
        if record.apps != "NoApplications":
            spec["applications"] = [*spec.get("applications", []), _FULL_APP]
        spec["resources"] = list(_MONITORS)
        spec["systemd"] = {"matchPatterns": [*_SYSTEMD_UNITS, *_FULL_SYSTEMD_UNITS]}
        spec["updatePolicy"] = _FULL_UPDATE_POLICY
    if record.lifecycle in ("Decommissioning", "Decommissioned"):
        spec["decommissioning"] = {"target": "Unenroll"}
    return spec


def render_device(record: DeviceRecord, ctx: GeneratedData, now: int) -> dict[str, Any]:
    """The full ``Device`` JSON for a record (loaded devices keep their own document)."""
    if record.doc is not None:
        return record.doc
    rng = random.Random(f"{ctx.seed}/device/{record.index}/detail")
    spec = device_spec(record, ctx.fleets, full=ctx.full_devices)
    generation = 1 + rng.randrange(1, 12)
    rendered_version = str(generation + rng.randrange(0, 4))
    seen = record.seen
    seen_at = now + seen * _SECOND if seen is not None and seen < 0 else seen
    # Conditions last changed at a fixed moment: a live device's times must not move on every read.
    last_change = ctx.anchor + seen * _SECOND if seen is not None and seen < 0 else seen_at
    changed = (
        rfc3339(last_change - rng.randrange(60, 3 * 86_400) * _SECOND)
        if last_change
        else rfc3339(record.created)
    )
    hw = record.labels.get("hw", "")
    arch = "arm64" if "pi" in hw or "jetson" in hw else "amd64"
    applications = []
    if record.apps != "NoApplications":
        states = _app_states(record)
        for position, app in enumerate(spec.get("applications", [])):
            state = states[position % len(states)]
            total = 1 if app["appType"] == "container" else 1 + rng.randrange(0, 3)
            entry: dict[str, Any] = {
                "name": app["name"],
                "ready": f"{total if state == 'Running' else 0}/{total}",
                "restarts": rng.randrange(0, 3) if state == "Running" else rng.randrange(3, 40),
                "status": state,
                "embedded": False,
                "appType": app["appType"],
            }
            if app.get("volumes"):
                entry["volumes"] = [
                    {"name": v["name"], "reference": f"{app['name']}-{v['name']}"} for v in app["volumes"]
                ]
            applications.append(entry)
    os_image = spec["os"]["image"]
    updating = record.updated == "Updating"
    conditions = [
        _condition(
            "Updating",
            "True" if updating else "False",
            "Update" if updating else "Updated",
            f"The device is updating to renderedVersion: {rendered_version}"
            if updating
            else f"Updated to desired renderedVersion: {rendered_version}",
            changed,
        ),
        _condition("SpecValid", "True", "Valid", "", changed),
    ]
    if record.lifecycle in ("Decommissioning", "Decommissioned"):
        done = record.lifecycle == "Decommissioned"
        conditions.append(
            _condition(
                "DeviceDecommissioning",
                "True",
                "Completed" if done else "Started",
                "The device has completed decommissioning"
                if done
                else "The device has started decommissioning",
                changed,
            )
        )
    never = seen is None
    system_info: dict[str, Any] = {
        "architecture": "" if never else arch,
        "bootID": "" if never else _uuid(rng),
        "operatingSystem": "" if never else "linux",
        "agentVersion": "" if never else _AGENT_VERSIONS[rng.randrange(len(_AGENT_VERSIONS))],
    }
    if not never:
        system_info.update(
            {
                "hostname": record.labels.get("alias", record.name[:12]),
                "kernel": "5.14.0-570.17.1.el9_6.x86_64" if arch == "amd64" else "6.6.31-v8+",
                "distroName": "Red Hat Enterprise Linux",
                "distroVersion": "9.6 (Plow)",
                "productName": hw or "unknown",
                "productSerial": f"SN{rng.randrange(10**9, 10**10)}",
                "netIpDefault": f"10.{rng.randrange(0, 255)}.{rng.randrange(0, 255)}.{rng.randrange(2, 254)}",
                "netInterfaceDefault": "eth0",
                "customInfo": {"siteContact": f"ops-{record.labels.get('site', 'hq')}@acme.example"},
            }
        )
    draw = rng.random()
    if never:
        integrity = "Unknown"
    elif record.index == 10 or draw < 0.01:
        integrity = "Failed"
    else:
        integrity = "Verified" if draw < 0.7 else "Unsupported"
    status: dict[str, Any] = {
        "conditions": conditions,
        "systemInfo": system_info,
        "applications": applications,
        "applicationsSummary": {"status": record.apps, "info": _APPS_INFO[record.apps]},
        "resources": {"cpu": record.cpu, "memory": record.memory, "disk": record.disk},
        "integrity": {"status": integrity},
        "config": {"renderedVersion": "" if never else rendered_version},
        "os": {"image": "" if never else os_image, "imageDigest": "" if never else _digest(os_image)},
        "updated": {"status": record.updated, "info": _UPDATED_INFO[record.updated]},
        "summary": {"status": record.summary, "info": _SUMMARY_INFO[record.summary]},
        "lifecycle": {"status": record.lifecycle, "info": _LIFECYCLE_INFO[record.lifecycle]},
    }
    if integrity == "Verified":
        status["integrity"].update(
            {"deviceIdentity": {"status": "Verified"}, "tpm": {"status": "Verified"}, "lastVerified": changed}
        )
    if not never:
        active = record.summary in _ONLINE_LIKE
        status["systemd"] = [
            {
                "unit": unit,
                "description": unit.removesuffix(".service"),
                "enableState": "enabled",
                "loadState": "loaded",
                "activeState": "active" if active else "inactive",
                "subState": "running" if active else "dead",
            }
            for unit in spec.get("systemd", {}).get("matchPatterns", _SYSTEMD_UNITS)
        ]
    if record.os_mode:
        status["capabilities"] = {"osMode": record.os_mode}
    annotations = {"device-controller/renderedVersion": rendered_version}
    metadata: dict[str, Any] = {
        "name": record.name,
        "labels": dict(record.labels),
        "creationTimestamp": rfc3339(record.created),
        "generation": generation,
        "resourceVersion": str(10_000 + record.index * 13 + generation),
        "annotations": annotations,
    }
    if record.owner and 0 <= record.fleet < len(ctx.fleets):
        metadata["owner"] = record.owner
        template = f"{ctx.fleets[record.fleet].name}-{generation}"
        annotations["fleet-controller/renderedTemplateVersion"] = template
        annotations["fleet-controller/templateVersion"] = template
    return {"apiVersion": API_VERSION, "kind": "Device", "metadata": metadata, "spec": spec, "status": status}


# ---------------------------------------------------------------------------- the rest of the kinds

_CERT = (
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBxzCCAW2gAwIBAgIIFxk3b2ZTh2kwCgYIKoZIzj0EAwIwDTELMAkGA1UEAxMCY2EwHhcNMjUw\n"
    "-----END CERTIFICATE-----\n"
)
SERVICE_CA_PEM = _CERT  # what /enrollmentconfig gives agents as the service's CA
_CSR = (
    "-----BEGIN CERTIFICATE REQUEST-----\n"
    "MIIBBjCBrQIBADBLMUkwRwYDVQQDE0AxM2Q2MzJkODYzNzNjYWFlZGE2NGRhNDA1\n"
    "-----END CERTIFICATE REQUEST-----\n"
)


def enrollment_record(doc: dict[str, Any]) -> DocRecord:
    status = doc.get("status") or {}
    approval = status.get("approval")
    return DocRecord(
        doc,
        {
            "status.approval.approved": approval.get("approved") if approval else None,
            "status.certificate": status.get("certificate"),
        },
    )


def repository_record(doc: dict[str, Any]) -> DocRecord:
    spec = doc.get("spec") or {}
    return DocRecord(
        doc,
        {k: spec.get(k.split(".")[1]) for k in ("spec.type", "spec.url", "spec.registry", "spec.accessMode")},
    )


def resourcesync_record(doc: dict[str, Any]) -> DocRecord:
    spec = doc.get("spec") or {}
    return DocRecord(doc, {"spec.repository": spec.get("repository"), "spec.type": spec.get("type")})


def fleet_record(doc: dict[str, Any]) -> DocRecord:
    template = ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}
    return DocRecord(doc, {"spec.template.spec.os.image": (template.get("os") or {}).get("image")})


def event_record(doc: dict[str, Any]) -> DocRecord:
    involved = doc.get("involvedObject") or {}
    return DocRecord(
        doc,
        {
            "reason": doc.get("reason"),
            "actor": doc.get("actor"),
            "type": doc.get("type"),
            "involvedObject.name": involved.get("name"),
            "involvedObject.kind": involved.get("kind"),
        },
    )


def _enrollment_request(
    name: str, created: int, labels: dict[str, str], state: str, rng: random.Random
) -> DocRecord:
    when = rfc3339(created + rng.randrange(60, 3600) * _SECOND)
    status: dict[str, Any] = {"conditions": []}
    if state == "approved":
        status["approval"] = {"approved": True, "labels": labels, "approvedBy": "admin", "approvedAt": when}
        status["certificate"] = _CERT
        status["conditions"] = [_condition("Approved", "True", "ManuallyApproved", "Approved by admin", when)]
    elif state == "denied":
        status["approval"] = {"approved": False, "approvedBy": "admin", "approvedAt": when}
        status["conditions"] = [_condition("Denied", "True", "ManuallyDenied", "Denied by admin", when)]
    doc = {
        "apiVersion": API_VERSION,
        "kind": "EnrollmentRequest",
        "metadata": {"name": name, "creationTimestamp": rfc3339(created), "resourceVersion": "1"},
        "spec": {"csr": _CSR, "labels": labels, "osMode": "image"},
        "status": status,
    }
    return enrollment_record(doc)


def _repositories(anchor: int) -> list[DocRecord]:
    created = rfc3339(anchor - 300 * _DAY)
    checked = rfc3339(anchor - 2 * _DAY)

    def repo(name: str, spec: dict[str, Any], accessible: bool = True) -> DocRecord:
        condition = _condition(
            "Accessible",
            "True" if accessible else "False",
            "Accessible" if accessible else "Inaccessible",
            "" if accessible else "failed to connect: authentication required",
            checked,
        )
        return repository_record(
            {
                "apiVersion": API_VERSION,
                "kind": "Repository",
                "metadata": {"name": name, "creationTimestamp": created, "resourceVersion": "3"},
                "spec": spec,
                "status": {"conditions": [condition]},
            }
        )

    return [
        repo("flightctl-demos", {"type": "git", "url": "https://github.com/flightctl/flightctl-demos"}),
        repo("flightctl", {"type": "git", "url": "https://github.com/flightctl/flightctl"}),
        repo(
            "edge-config",
            {
                "type": "git",
                "url": "ssh://git@git.acme.example:22/edge/edge-config.git",
                "sshConfig": {"sshPrivateKey": "*****", "skipServerVerification": True},
            },
        ),
        repo(
            "artifacts-http",
            {
                "type": "http",
                "url": "https://artifacts.acme.example/flightctl",
                "httpConfig": {"username": "fleet-reader", "password": "*****"},
                "validationSuffix": "/healthz",
            },
            accessible=False,
        ),
        repo("quay-io", {"type": "oci", "registry": "quay.io", "scheme": "https", "accessMode": "Read"}),
        repo(
            "acme-registry",
            {
                "type": "oci",
                "registry": "registry.acme.example",
                "scheme": "https",
                "accessMode": "ReadWrite",
                "ociAuth": {"authType": "docker", "username": "robot$fleet", "password": "*****"},
            },
        ),
    ]


def _resourcesyncs(anchor: int) -> list[DocRecord]:
    created = rfc3339(anchor - 200 * _DAY)
    synced = rfc3339(anchor - 3600 * _SECOND)
    out = []
    for name, repository, path, ok in (
        ("edge-fleets", "edge-config", "/fleets", True),
        ("demo-fleets", "flightctl-demos", "/demos/basic-nginx-demo/fleet.yaml", True),
        ("http-fleets", "artifacts-http", "/fleets.yaml", False),
    ):
        conditions = [
            _condition(
                "Accessible",
                "True" if ok else "False",
                "accessible" if ok else "failed to clone repository",
                "" if ok else "repository artifacts-http is not accessible",
                synced,
            )
        ]
        status: dict[str, Any] = {"conditions": conditions, "observedGeneration": 1}
        if ok:
            conditions += [
                _condition("ResourceParsed", "True", "Success", "", synced),
                _condition("Synced", "True", "Success", "", synced),
            ]
            status["observedCommit"] = hashlib.sha256(name.encode()).hexdigest()[:40]
        out.append(
            resourcesync_record(
                {
                    "apiVersion": API_VERSION,
                    "kind": "ResourceSync",
                    "metadata": {
                        "name": name,
                        "creationTimestamp": created,
                        "generation": 1,
                        "resourceVersion": "9",
                    },
                    "spec": {"repository": repository, "targetRevision": "main", "path": path},
                    "status": status,
                }
            )
        )
    return out


def _template_versions(profile: FleetProfile, fleet: dict[str, Any]) -> list[DocRecord]:
    """Every template version of a fleet, one per generation; the newest renders the current template."""
    spec = KINDS["templateversions"]
    metadata = fleet["metadata"]
    latest = int(metadata["generation"])
    template = fleet["spec"]["template"]["spec"]
    first = parse_rfc3339(metadata["creationTimestamp"]) or 0
    last = parse_rfc3339(fleet["status"]["conditions"][0]["lastTransitionTime"]) or first
    out = []
    for generation in range(1, latest + 1):
        when = first + (last - first) * (generation - 1) // max(latest - 1, 1)
        age = latest - generation
        repository = profile.image.rsplit(":", 1)[0]
        image = (profile.image, profile.previous_image)[age] if age < 2 else f"{repository}:9.5.{generation}"
        status = {**template, "os": {"image": image}, "updatedAt": rfc3339(when)}
        status["conditions"] = [_condition("Valid", "True", "Valid", "", rfc3339(when))]
        doc = {
            "apiVersion": API_VERSION,
            "kind": "TemplateVersion",
            "metadata": {
                "name": f"{profile.name}-{generation}",
                "owner": f"Fleet/{profile.name}",
                "creationTimestamp": rfc3339(when),
                "resourceVersion": "1",
            },
            "spec": {"fleet": profile.name},
            "status": status,
        }
        out.append(spec.record(doc))
    return out


_SIGNERS = ("flightctl.io/enrollment", "flightctl.io/device-enrollment", "flightctl.io/device-svc-client")


def _certificate_signing_requests(seed: int, anchor: int, count: int) -> list[DocRecord]:
    """Client and device certificate requests: pending, approved (with a certificate), denied, failed."""
    spec = KINDS["certificatesigningrequests"]
    states = ("pending", "approved", "approved", "pending", "denied", "approved", "failed", "approved")
    out = []
    for i in range(count):
        state = states[i % len(states)]
        signer = _SIGNERS[i % len(_SIGNERS)]
        client = signer == "flightctl.io/enrollment"
        name = (
            "client-enrollment-" + hashlib.sha256(f"{seed}/csr/{i}".encode()).hexdigest()[:8]
            if client
            else device_name(seed, 2_000_000 + i)
        )
        created = anchor - (i * 7 + 3) * 3600 * _SECOND
        when = rfc3339(created + 90 * _SECOND)
        status: dict[str, Any] = {"conditions": []}
        if state == "approved":
            status["conditions"] = [_condition("Approved", "True", "Approved", "Approved by admin", when)]
            status["certificate"] = base64.b64encode(_CERT.encode()).decode()
        elif state == "denied":
            status["conditions"] = [_condition("Denied", "True", "Denied", "Denied by admin", when)]
        elif state == "failed":
            status["conditions"] = [
                _condition(
                    "Failed", "True", "SigningFailed", "the CSR's subject does not match its name", when
                )
            ]
        doc = {
            "apiVersion": API_VERSION,
            "kind": "CertificateSigningRequest",
            "metadata": {
                "name": name,
                "creationTimestamp": rfc3339(created),
                "resourceVersion": "1",
                "labels": {"purpose": "client" if client else "device"},
            },
            "spec": {
                "request": base64.b64encode(_CSR.encode()).decode(),
                "signerName": signer,
                "usages": ["clientAuth", "CA:false"],
                "expirationSeconds": 604800 if client else 31536000,
                "username": "admin" if client else "flightctl-agent",
            },
            "status": status,
        }
        out.append(spec.record(doc))
    return out


_EVENT_FOR_STATE = {
    "Degraded": ("DeviceCPUWarning", "Warning", "Device CPU usage is above 80% for more than 10m."),
    "Error": ("DeviceApplicationError", "Warning", "Device applications are in error."),
    "Unknown": ("DeviceDisconnected", "Warning", "Device is disconnected (last seen more than 5m0s ago)."),
    "Rebooting": ("DeviceIsRebooting", "Normal", "Device is rebooting."),
    "ConflictPaused": (
        "DeviceConflictPaused",
        "Warning",
        "Device reconciliation is paused due to a conflict.",
    ),
    "PoweredOff": ("DeviceDisconnected", "Warning", "Device is disconnected (last seen more than 5m0s ago)."),
    "AwaitingReconnect": ("DeviceDisconnected", "Warning", "Device has not reconnected since restore."),
}


def _event(
    rng: random.Random, when: int, kind: str, name: str, reason: str, etype: str, message: str, actor: str
) -> DocRecord:
    doc: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "Event",
        "metadata": {"name": _uuid(rng), "creationTimestamp": rfc3339(when)},
        "involvedObject": {"kind": kind, "name": name},
        "reason": reason,
        "message": message,
        "type": etype,
        "source": {"component": "flightctl-api" if actor.startswith("user:") else "flightctl-worker"},
        "actor": actor,
    }
    if reason == "ResourceUpdated":
        doc["details"] = {"detailType": "ResourceUpdated", "updatedFields": ["spec"]}
    return event_record(doc)


@dataclass
class GeneratedData:
    seed: int
    anchor: int
    fleets: list[FleetProfile]
    devices: list[DeviceRecord]
    fleet_records: list[DocRecord]
    events: list[DocRecord]
    enrollment_requests: list[DocRecord]
    repositories: list[DocRecord]
    resourcesyncs: list[DocRecord]
    template_versions: list[DocRecord]
    certificate_signing_requests: list[DocRecord]
    full_devices: bool = False  # render devices at full size (see _FULL_APP)


MAX_DEVICE_EVENTS = 6000
MAX_APPROVED_ENROLLMENTS = 500


def generate(
    seed: int,
    devices: int,
    anchor: int,
    *,
    prefix: str | None = None,
    fleets: int | None = None,
    full_devices: bool = False,
) -> GeneratedData:
    """One organization's data (nothing at all for 0 devices). ``prefix`` names devices
    ``<prefix>-01``... instead of hashes and leaves out repositories and resource syncs;
    ``full_devices`` renders devices as large as real ones (about 4 KB each)."""
    fleet_count = fleets if fleets is not None else max(min(devices, 4), min(240, devices // 25))
    profiles = _fleet_profiles(fleet_count) if devices else []
    if prefix:
        profiles = [
            FleetProfile(f"{prefix}-fleet", p.workload, p.region, p.image, p.previous_image, None, None)
            for p in profiles[:1]
        ]
    records = []
    for index in range(devices):
        record = _device_record(seed, index, profiles, anchor)
        if prefix:
            record.name = f"{prefix}-{index + 1:02d}"
            record.labels["alias"] = record.alias = f"{prefix}-bench-{index + 1:02d}"
        records.append(record)
    fleet_records = [fleet_record(_fleet_doc(p, i, anchor)) for i, p in enumerate(profiles)]
    rng = random.Random(f"{seed}/events/{prefix}")
    events: list[DocRecord] = []
    step = max(1, devices // (MAX_DEVICE_EVENTS // 3)) if devices else 1
    for record in records[::step]:
        events.append(
            _event(
                rng,
                record.created + 30 * _SECOND,
                "Device",
                record.name,
                "ResourceCreated",
                "Normal",
                "Device was created successfully.",
                "service:flightctl-enrollment",
            )
        )
        when = anchor - rng.randrange(60, 7 * 86_400) * _SECOND - rng.randrange(0, _SECOND)
        reason = _EVENT_FOR_STATE.get(record.summary, ("DeviceConnected", "Normal", "Device reconnected."))
        events.append(_event(rng, when, "Device", record.name, *reason, "service:flightctl-worker"))
        if record.updated == "Updating":
            events.append(
                _event(
                    rng,
                    when + 5 * _SECOND,
                    "Device",
                    record.name,
                    "DeviceContentUpdating",
                    "Normal",
                    "Device is updating to the latest device spec.",
                    "service:flightctl-worker",
                )
            )
        if record.lifecycle == "Decommissioned":
            events.append(
                _event(
                    rng,
                    when + 9 * _SECOND,
                    "Device",
                    record.name,
                    "DeviceDecommissioned",
                    "Normal",
                    "Device decommissioned successfully.",
                    "user:admin",
                )
            )
    for i, profile in enumerate(profiles):
        when = anchor - (i % 9 + 1) * _DAY
        events.append(
            _event(
                rng,
                when,
                "Fleet",
                profile.name,
                "ResourceUpdated",
                "Normal",
                "Fleet was updated successfully (spec).",
                "user:admin",
            )
        )
        if profile.rollout_batch is not None:
            events.append(
                _event(
                    rng,
                    when + 60 * _SECOND,
                    "Fleet",
                    profile.name,
                    "FleetRolloutStarted",
                    "Normal",
                    f"Fleet {profile.name} started a batched rollout.",
                    "service:flightctl-worker",
                )
            )
    repositories = [] if prefix or not devices else _repositories(anchor)
    resourcesyncs = [] if prefix or not devices else _resourcesyncs(anchor)
    for repo in repositories:
        ok = repo.doc["status"]["conditions"][0]["status"] == "True"
        events.append(
            _event(
                rng,
                anchor - 2 * _DAY,
                "Repository",
                repo.name,
                "RepositoryAccessible" if ok else "RepositoryInaccessible",
                "Normal" if ok else "Warning",
                "Repository is accessible." if ok else "Repository is inaccessible.",
                "service:flightctl-worker",
            )
        )
    enrollment: list[DocRecord] = []
    newest = sorted(records, key=lambda r: r.created, reverse=True)[:MAX_APPROVED_ENROLLMENTS]
    for record in newest:
        if record.lifecycle != "Unknown":
            enrollment.append(
                _enrollment_request(
                    record.name,
                    record.created - 120 * _SECOND,
                    {"region": record.labels["region"]},
                    "approved",
                    rng,
                )
            )
    if not prefix and devices:
        for i in range(min(12, max(2, devices // 10))):
            name = device_name(seed, 1_000_000 + i)
            state = "denied" if i == 0 else "pending"
            request = _enrollment_request(
                name, anchor - (i + 1) * 3600 * _SECOND, {"region": _REGIONS[i % len(_REGIONS)]}, state, rng
            )
            enrollment.append(request)
            events.append(
                _event(
                    rng,
                    request.created + 1,
                    "EnrollmentRequest",
                    name,
                    "ResourceCreated",
                    "Normal",
                    "EnrollmentRequest was created successfully.",
                    "service:flightctl-enrollment",
                )
            )
    return GeneratedData(
        seed=seed,
        anchor=anchor,
        fleets=profiles,
        devices=records,
        fleet_records=fleet_records,
        events=events,
        enrollment_requests=enrollment,
        repositories=repositories,
        resourcesyncs=resourcesyncs,
        full_devices=full_devices,
        template_versions=[
            version
            for profile, fleet in zip(profiles, fleet_records, strict=True)
            for version in _template_versions(profile, fleet.doc)
        ],
        certificate_signing_requests=(
            []
            if prefix or not devices
            else _certificate_signing_requests(seed, anchor, min(24, max(8, devices // 10)))
        ),
    )
