"""schemathesis against the OpenAPI document the server serves: generated requests, valid and invalid,
find no server error, no undocumented status and no answer that breaks the documented schema.

Bounded to keep CI fast: a few examples per operation and mode. (schemathesis' lazy pytest fixture
loader does not work with pytest 9, so the operations are walked here, each one a hypothesis run.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.core.result import Err, Ok
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.http_harness import ServedApp, Simulated, bearer, serve_in_thread, settings_from, simulated

EXAMPLES = 4
# Selectors and cursors have grammars JSON Schema cannot state: Flight Control rightly answers 400 to a
# schema-valid but meaningless selector, so "every schema-valid request succeeds" does not hold here.
# Every other check stays: no 5xx, only documented statuses and content types, answers match schemas,
# and schema-invalid requests are rejected.
EXCLUDED_CHECKS = [positive_data_acceptance]


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulated]:
    with simulated(tmp_path_factory.mktemp("schemathesis"), devices=10) as running:
        yield running


@pytest.fixture(scope="module")
def served(sim: Simulated) -> Iterator[ServedApp]:
    with serve_in_thread(settings_from(sim.environ(MCP_RATE_LIMIT="100000"))) as app:
        yield app


def check_operation(operation: Any, mode: GenerationMode, headers: dict[str, str]) -> None:
    """Up to EXAMPLES generated requests for one operation, each validated by schemathesis' checks."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        case.call_and_validate(headers=headers, timeout=30, excluded_checks=EXCLUDED_CHECKS)

    run()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_served_api_conforms_to_its_openapi(served: ServedApp, sim: Simulated, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(served.url + "/openapi.json")
    headers = bearer(sim.token("admin"))
    operations = [_ok(result) for result in schema.get_all_operations()]
    assert len(operations) >= 10, "the served document lists every REST operation"
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not _has_parameters(operation):
            continue  # nothing in the request can be made invalid
        check_operation(operation, mode, headers)


def _ok(result: Ok[Any] | Err[Any]) -> Any:
    assert isinstance(result, Ok), f"the served document has an invalid operation: {result}"
    return result.ok()


def _has_parameters(operation: Any) -> bool:
    return bool(operation.definition.raw.get("parameters"))
