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


def _doc_fields(*paths: str) -> dict[str, FieldSpec]:
    """The common metadata fields plus the spec/status ``paths`` (JSONB strings) read from the record."""
    return {**_DOC_COMMON, **{p: FieldSpec("jsonb", _value(p)) for p in paths}}


def _spec(kind: str, plural: str, fields: dict[str, FieldSpec], **options: Any) -> KindSpec:
    return KindSpec(kind, f"{kind}List", plural, fields, **options)


# One row per kind the simulator serves; app.py builds the list/get routes and RBAC of every row that
# has no handler of its own, and state.py loads each row's generated records.
KINDS: dict[str, KindSpec] = {
    spec.plural: spec
    for spec in (
        _spec("Device", "devices", _DEVICE_FIELDS),
        _spec("Fleet", "fleets", _doc_fields("spec.template.spec.os.image")),
        _spec(
            "EnrollmentRequest",
            "enrollmentrequests",
            {
                **_DOC_COMMON,
                "status.approval.approved": FieldSpec("bool", _value("status.approval.approved")),
                "status.certificate": FieldSpec("jsonb", _value("status.certificate")),
            },
        ),
        _spec(
            "Repository",
            "repositories",
            _doc_fields("spec.type", "spec.url", "spec.registry", "spec.accessMode"),
        ),
        _spec("ResourceSync", "resourcesyncs", _doc_fields("spec.repository", "spec.type")),
        _spec(
            "Event",
            "events",
            {  # model.Event embeds Resource: metadata.owner is selectable (and always empty)
                **_DOC_COMMON,
                **{
                    k: FieldSpec("string", _value(k))
                    for k in ("reason", "actor", "type", "involvedObject.name", "involvedObject.kind")
                },
            },
            by_time=True,
            labels_selectable=False,
            order_param=True,
            get=False,
        ),
        _spec("CertificateSigningRequest", "certificatesigningrequests", _doc_fields("status.certificate")),
        _spec(
            "TemplateVersion",
            "templateversions",
            # metadata.owner selects by the fleet's bare name (the fleet_name column), while the JSON
            # says Fleet/<name>.
            {**_DOC_COMMON, "metadata.owner": FieldSpec("string", lambda r: r.doc["spec"]["fleet"])},
            by_time=True,
            parent="fleet",
            route="/fleets/{fleet}/templateversions",
            rbac="fleets/templateversions",
        ),
    )
}
