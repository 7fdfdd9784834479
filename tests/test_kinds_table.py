"""KINDS against Flight Control's OpenAPI spec: every row is a real list path with the parameters it
claims, and every listable resource of the spec is a row or is answered by a named tool."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from operations import OPERATIONS_BY_NAME
from resource_queries import KINDS
from tests.reference import reference_file

SPEC = reference_file("flightctl", "openapi-v1beta1.yaml")
#: Listable GET paths of the spec that are no KINDS row, and the tool that answers them instead.
ELSEWHERE = {
    "/labels": "list_device_labels",
    "/organizations": "list_organizations",
    "/auth/permissions": "get_my_permissions",
    "/authproviders": None,  # identity-provider configuration: not an operator's fleet question
}


@pytest.fixture(scope="module")
def paths() -> dict[str, Any]:
    if not SPEC.exists():
        pytest.skip(f"the OpenAPI spec is not here ({SPEC}); it is reference material, not in the repo")
    spec: dict[str, Any] = yaml.safe_load(SPEC.read_text())["paths"]
    return spec


def _query_names(operation: dict[str, Any]) -> set[str]:
    return {p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"}


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_each_row_matches_its_list_and_get_paths(paths: dict[str, Any], kind: Any) -> None:
    listing = paths[kind.path]["get"]
    query = _query_names(listing)
    assert {"limit", "continue", "fieldSelector"} <= query
    assert ("labelSelector" in query) == kind.label_selector
    assert ("order" in query) == kind.order
    assert paths[kind.path]["x-resource"] == kind.resource
    single = paths.get(f"{kind.path}/{{name}}", {}).get("get")
    assert bool(single) == bool(kind.get_method), "get_method exactly where the spec has GET /{name}"
    path_params = {p["name"] for p in listing.get("parameters", []) if p.get("in") == "path"}
    assert path_params == ({kind.parent_arg} if kind.parent_arg else set())
    returned = listing["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert returned.endswith(f"/{kind.kind}List")


def test_every_listable_resource_of_the_spec_is_reachable(paths: dict[str, Any]) -> None:
    listable = {
        path
        for path, item in paths.items()
        if "get" in item
        and str(
            item["get"]["responses"]
            .get("200", {})
            .get("content", {})
            .get("application/json", {})
            .get("schema", {})
            .get("$ref", "")
        ).endswith("List")
        and not path.startswith("/ws/")
    }
    covered = {k.path for k in KINDS} | set(ELSEWHERE)
    assert listable <= covered, (
        f"a listable resource of the spec has no KINDS row: {sorted(listable - covered)}"
    )
    for tool in filter(None, ELSEWHERE.values()):
        assert tool in OPERATIONS_BY_NAME


def test_the_simulator_serves_every_kind_at_its_path() -> None:
    """A new row fails here until the simulator has its row (and data: test_queries pages through it)."""
    from simulator.kinds import KINDS as SIM_KINDS

    served = {spec.kind: spec for spec in SIM_KINDS.values()}
    for kind in KINDS:
        spec = served[kind.kind]
        assert spec.list_path == kind.path
        assert spec.resource == kind.resource
        assert spec.get == bool(kind.get_method)
        assert spec.labels_selectable == kind.label_selector
        assert spec.order_param == kind.order
        assert set(spec.fields) >= set(kind.field_paths), kind.name
