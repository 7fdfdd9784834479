"""The kinds the simulator serves and their selectable fields (``internal/store/model/selectors.go``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from simulator.resources import KindSpec
from simulator.selectors import FieldSpec

__all__ = ["KINDS", "LABEL_FIELDS"]


def _doc_meta(key: str) -> Any:
    return lambda r: r.doc["metadata"].get(key)


def _value(key: str) -> Any:
    return lambda r: r.values.get(key)


_DOC_COMMON = {
    "metadata.name": FieldSpec("string", lambda r: r.name),
    "metadata.owner": FieldSpec("string", _doc_meta("owner")),
    "metadata.creationTimestamp": FieldSpec("timestamp", lambda r: r.created),
}

_DEVICE_FIELDS = {
    "metadata.name": FieldSpec("string", lambda r: r.name),
    "metadata.owner": FieldSpec("string", lambda r: r.owner),
    "metadata.creationTimestamp": FieldSpec("timestamp", lambda r: r.created),
    "metadata.alias": FieldSpec("string", lambda r: r.alias),
    "metadata.nameOrAlias": FieldSpec(
        "string", lambda r: r.name, any_of=(lambda r: r.name, lambda r: r.alias)
    ),
    "status.summary.status": FieldSpec("jsonb", lambda r: r.summary),
    "status.applicationsSummary.status": FieldSpec("jsonb", lambda r: r.apps),
    "status.updated.status": FieldSpec("jsonb", lambda r: r.updated),
    "status.lifecycle.status": FieldSpec("jsonb", lambda r: r.lifecycle),
    "status.capabilities.osMode": FieldSpec("jsonb", lambda r: r.os_mode),
}


# /labels rows are (device record, key, value) tuples.
def _on_device(getter: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda row: getter(row[0])


LABEL_FIELDS = {
    "metadata.labels.key": FieldSpec("string", lambda row: row[1]),
    "metadata.labels.value": FieldSpec("string", lambda row: row[2]),
    "metadata.labels.keyOrValue": FieldSpec(
        "string", lambda row: row[1], any_of=(lambda row: row[1], lambda row: row[2])
    ),
    **{
        key: FieldSpec(spec.type, _on_device(spec.getter), tuple(_on_device(g) for g in spec.any_of))
        for key, spec in _DEVICE_FIELDS.items()
    },
}

KINDS: dict[str, KindSpec] = {
    "devices": KindSpec("Device", "DeviceList", "devices", _DEVICE_FIELDS),
    "fleets": KindSpec(
        "Fleet",
        "FleetList",
        "fleets",
        {
            **_DOC_COMMON,
            "spec.template.spec.os.image": FieldSpec("jsonb", _value("spec.template.spec.os.image")),
        },
    ),
    "enrollmentrequests": KindSpec(
        "EnrollmentRequest",
        "EnrollmentRequestList",
        "enrollmentrequests",
        {
            **_DOC_COMMON,
            "status.approval.approved": FieldSpec("bool", _value("status.approval.approved")),
            "status.certificate": FieldSpec("jsonb", _value("status.certificate")),
        },
    ),
    "repositories": KindSpec(
        "Repository",
        "RepositoryList",
        "repositories",
        {
            **_DOC_COMMON,
            **{
                k: FieldSpec("jsonb", _value(k))
                for k in ("spec.type", "spec.url", "spec.registry", "spec.accessMode")
            },
        },
    ),
    "resourcesyncs": KindSpec(
        "ResourceSync",
        "ResourceSyncList",
        "resourcesyncs",
        {**_DOC_COMMON, **{k: FieldSpec("jsonb", _value(k)) for k in ("spec.repository", "spec.type")}},
    ),
    "events": KindSpec(
        "Event",
        "EventList",
        "events",
        {
            "metadata.name": FieldSpec("string", lambda r: r.name),
            "metadata.creationTimestamp": FieldSpec("timestamp", lambda r: r.created),
            **{
                k: FieldSpec("string", _value(k))
                for k in ("reason", "actor", "type", "involvedObject.name", "involvedObject.kind")
            },
        },
        by_time=True,
        labels_selectable=False,
    ),
    "certificatesigningrequests": KindSpec(
        "CertificateSigningRequest",
        "CertificateSigningRequestList",
        "certificatesigningrequests",
        {**_DOC_COMMON, "status.certificate": FieldSpec("jsonb", _value("status.certificate"))},
    ),
}
