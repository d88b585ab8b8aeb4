"""Fuzzing: Schemathesis against the served process's OpenAPI schema.

Every documented operation gets generated requests, valid and invalid; the
service must never answer 5xx, and each answer must match the schema it
documents (status, content type, body). Bounded and derandomized here; the
longer run sets ``SALARYMODEL_FUZZ_EXAMPLES`` (see below).
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from test_service import champion_root, served_url

pytestmark = pytest.mark.slow
# The longer run: SALARYMODEL_FUZZ_EXAMPLES=500 .venv/bin/pytest tests/test_fuzz.py
EXAMPLES_PER_OPERATION = int(os.environ.get("SALARYMODEL_FUZZ_EXAMPLES", "25"))
# No 5xx, and every answer's body and content type match what the schema
# documents for its status. Known gaps, not hidden (issue 8 stays open for
# them): BentoML's generated schema documents only 200 per route while the
# service answers 413 and 422 (status_code_conformance), does not mark the
# request body as required (so "no body" is schema-valid, and our 422 fails
# positive_data_acceptance), and documents /metrics, which is switched off.
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.content_type_conformance,
]


@pytest.fixture(scope="module")
def api(tmp_path_factory, request):
    url = served_url(champion_root(tmp_path_factory), request)
    schema = schemathesis.openapi.from_url(f"{url}/docs.json")
    schema.config.base_url = url
    return schema


def _fuzz(operation, examples: int) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case) -> None:
        response = case.call(timeout=60)
        case.validate_response(response, checks=CHECKS)

    check()


def test_no_server_errors_and_answers_match_the_schema(api) -> None:
    operations = [result.ok() for result in api.get_all_operations()]
    labels = {op.label for op in operations}
    assert {"POST /predict", "POST /explain", "POST /predict_batch"} <= labels, labels
    for operation in operations:
        _fuzz(operation, EXAMPLES_PER_OPERATION)
