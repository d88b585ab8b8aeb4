"""Fuzzing: Schemathesis against the served process's OpenAPI schema.

Every documented operation gets Schemathesis' coverage phase (boundary values,
missing and wrong-typed fields, undocumented methods and content types) and
its fuzzing phase, with valid and invalid data; every answer goes through all
of Schemathesis' checks: no 5xx; status, content type, headers and body as
documented; valid data accepted, invalid data rejected; undocumented methods
answered 405 (here /explain, whose request schema is /predict's, gets the coverage
phase's valid data only, and the pay cases are cut to three currencies: see the test;
every pay case is sent at its bounds by another test). Bounded and derandomized here;
the longer runs: benchmarks/fuzz.py (the whole document), ``SALARYMODEL_FUZZ_EXAMPLES``.

The schema is BentoML's, corrected by ``salarymodel.serving.service.truthful_openapi``;
a fast test below checks what it documents against the guard's own answers.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from collections import Counter
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest
import schemathesis
from helpers.served import champion_root, served_url

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from fuzz import requests_sent, schemathesis_command  # the longer run shares the command

# The longer run: benchmarks/fuzz.py (the served champion, 500 examples per operation),
# or SALARYMODEL_FUZZ_EXAMPLES=500 .venv/bin/pytest tests/service/test_fuzz.py
EXAMPLES_PER_OPERATION = int(os.environ.get("SALARYMODEL_FUZZ_EXAMPLES", "25"))
API_ROUTES = ("/predict", "/explain", "/predict_batch")
FUZZ_CONFIG = Path(__file__).resolve().parents[2] / "benchmarks" / "schemathesis.toml"
# The currencies whose pay cases Schemathesis fuzzes: USD, the default (its cases name
# no field), EUR and JPY (a rate per year; large amounts). Every currency's cases are
# sent by test_every_documented_pay_case_is_served_at_its_bounds.
FUZZED_CURRENCIES = ("USD", "EUR", "JPY")
EXPLAIN_COVERAGE = """
# tests/service/test_fuzz.py only (benchmarks/fuzz.py runs it all): see the test.
[[operations]]
include-name = "POST /explain"
phases.coverage.generation.mode = "positive"
"""


@pytest.mark.slow
def test_no_server_errors_and_answers_match_the_schema(
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Schemathesis' own runner (its CLI), which runs every phase: its pytest
    # way to do so against a fixture's server (`schemathesis.pytest.from_fixture`)
    # fails under pytest 9 (it reads `Function._nodeid`, which pytest 9 removed).
    url = served_url(champion_root(tmp_path_factory), request)
    spec = httpx.get(f"{url}/docs.json", timeout=30).json()
    # /explain reads the very request schema /predict does (one object, asserted here),
    # through the same request guard: the coverage phase's invalid bodies for it are
    # /predict's again, about 10,400 of them, a third of the run. /explain keeps every
    # phase's valid data and the fuzzing phase's invalid data; should it get a schema
    # of its own, this assertion fails and the shortcut must go.
    bodies = {p: spec["paths"][p]["post"]["requestBody"] for p in ("/predict", "/explain")}
    assert bodies["/predict"] == bodies["/explain"], bodies
    config = tmp_path / "schemathesis.toml"
    config.write_text(FUZZ_CONFIG.read_text() + EXPLAIN_COVERAGE)
    # The served document with its pay bounds cut to a few currencies (see
    # with_pay_cases_of): the coverage phase sends about 14 bodies for each of the
    # anyOf's ~700 cases, nearly all refused for the job title they lack, at
    # nine tenths of the run. Every case is sent with its pay by the test below.
    fuzzed = tmp_path / "docs.json"
    fuzzed.write_text(json.dumps(with_pay_cases_of(spec, FUZZED_CURRENCIES)))
    har = tmp_path / "requests.har"
    command = schemathesis_command(url, EXAMPLES_PER_OPERATION, har)
    command[command.index(str(FUZZ_CONFIG))] = str(config)
    command[command.index(f"{url}/docs.json")] = str(fuzzed)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - started
    assert done.returncode == 0, done.stdout[-20_000:] + done.stderr[-3_000:]
    sent = requests_sent(har, url)
    posted = Counter()
    for (method, path, _), count in sent.items():
        posted[path] += count if method == "POST" else 0
    assert all(posted[path] > EXAMPLES_PER_OPERATION for path in API_ROUTES), posted
    assert not [key for key in sent if key[2] >= 500], sent
    # Both phases ran on every API route: valid data answered 200, invalid 422.
    for path in API_ROUTES:
        statuses = {status for (method, p, status) in sent if method == "POST" and p == path}
        assert {200, 422} <= statuses, (path, statuses)
    assert sent["POST", "/predict", 422] > 50 * sent["POST", "/explain", 422] > 0, sent
    summary = next(line for line in done.stdout.splitlines() if " generated" in line)
    with capsys.disabled():  # the figures of a run, shown even when it passes
        print(
            f"\nSchemathesis {version('schemathesis')}, {EXAMPLES_PER_OPERATION} examples "
            f"per operation: {summary.strip()}; {sum(sent.values())} requests in {seconds:.0f} s"
        )
        print("POSTs:", ", ".join(f"{path} {n}" for path, n in posted.most_common() if n))


def _request_schema(spec: dict) -> dict:
    """The request body schema /predict and /explain share (a component of ``spec``)."""
    body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    return spec["components"]["schemas"][body["schema"]["$ref"].rsplit("/", 1)[1]]


def with_pay_cases_of(spec: dict, currencies: tuple[str, ...]) -> dict:
    """``spec`` with the request's currencies, and its pay cases (``anyOf``: one per
    currency, period and year span), cut to ``currencies``: the document stays true
    for what it still allows, so valid data is still accepted and invalid refused."""
    cut = copy.deepcopy(spec)
    schema = _request_schema(cut)
    listed = schema["properties"]["currency"]["enum"]
    assert set(currencies) <= set(listed), listed
    schema["properties"]["currency"]["enum"] = [c for c in listed if c in currencies]
    cases = schema["anyOf"]
    schema["anyOf"] = [c for c in cases if c["properties"]["currency"]["enum"][0] in currencies]
    assert 0 < len(schema["anyOf"]) < len(cases) / 5, len(schema["anyOf"])
    return cut


@pytest.mark.slow
def test_every_documented_pay_case_is_served_at_its_bounds(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> None:
    """Each pay case of the served document (currency, period, year span): a pay at
    its documented minimum and maximum is answered 200 as documented, one just
    outside is refused with a 422 naming ``current_salary``."""
    from jsonschema import Draft4Validator  # OpenAPI 3.0 schemas are draft 4's dialect

    url = served_url(champion_root(tmp_path_factory), request)
    spec = httpx.get(f"{url}/docs.json", timeout=30).json()
    schema = _request_schema(spec)
    answer = spec["paths"]["/predict"]["post"]["responses"]["200"]["content"]
    answers = Draft4Validator({**answer["application/json"]["schema"],
                               "components": spec["components"]})  # fmt: skip
    cases = schema["anyOf"]
    currencies = schema["properties"]["currency"]["enum"]
    assert len(currencies) > 20 and {c["properties"]["currency"]["enum"][0] for c in cases} == set(
        currencies
    )
    with httpx.Client(base_url=url, timeout=30) as client:
        for case in cases:
            terms = case["properties"]
            pay = terms["current_salary"]["anyOf"][0]
            job = {
                "job_title": "Data Scientist",
                "currency": terms["currency"]["enum"][0],
                "period": terms["period"]["enum"][0],
                "year": terms["year"]["minimum"],
            }
            low, high = pay["minimum"], pay["maximum"]
            for salary, status in ((low, 200), (high, 200), (low * 0.99, 422), (high * 1.01, 422)):
                said = client.post("/predict", json={**job, "current_salary": salary})
                assert said.status_code == status, (job, salary, said.text)
                if status == 200:
                    answers.validate(said.json())
                else:
                    fields = [d["field"] for d in said.json()["detail"]]
                    assert any("current_salary" in f for f in fields), (job, salary, said.text)


# Spellings a person or a client library might send: each is accepted exactly
# when the served document's request schema says it is valid.
ODD_SPELLINGS = [
    {"experience_level": "SE"}, {"experience_level": "se"}, {"experience_level": " SE"},
    {"company_size": "m"}, {"employment_type": "ft"}, {"remote_ratio": "50"},
    {"currency": "EUR"}, {"currency": "eur"}, {"currency": "EUR "}, {"currency": "Eur"},
    {"currency": "EUR\n"}, {"period": "month"}, {"period": "Month"}, {"period": "YEAR"},
    {"view": "aijobs"}, {"view": "AIJOBS"}, {"view": "Postings"}, {"year": "2024"},
    {"job_title": "\u200b"}, {"job_title": "\u200b\u200c\u2060"}, {"job_title": "42"},
    {"job_title": "  Data Scientist  "}, {"job_title": "Инженер данных"},
    {"job_title": "\u200bData Engineer"}, {"country": "\x1c"}, {"country": " DE "},
    {"skills": [" python "]}, {"skills": ["\u3000"]},
]  # fmt: skip


@pytest.mark.slow
def test_odd_spellings_are_accepted_exactly_when_the_schema_says_so(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> None:
    from jsonschema import Draft4Validator  # OpenAPI 3.0 schemas are draft 4's dialect

    url = served_url(champion_root(tmp_path_factory), request)
    spec = httpx.get(f"{url}/docs.json", timeout=30).json()
    base = {"job_title": "Data Scientist", "country": "DE"}
    for path in ("/predict", "/predict_batch"):
        body_schema = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        validator = Draft4Validator({**body_schema["schema"], "components": spec["components"]})
        for change in ODD_SPELLINGS:
            job = {**base, **change}
            if path == "/predict_batch":
                job.pop("currency", None), job.pop("period", None)  # not batch fields
                body: dict = {"jobs": [job]}
            else:
                body = job
            valid = validator.is_valid(body)
            answer = httpx.post(f"{url}{path}", json=body, timeout=30)
            assert answer.status_code == (200 if valid else 422), (path, change, answer.text)
            if not valid:
                (name,) = change  # the 422 names the field the schema refuses
                assert any(name in d["field"] for d in answer.json()["detail"]), answer.text
    # Both outcomes were exercised, the zero-width title among the refused.
    predict = Draft4Validator(
        {**spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
         ["schema"], "components": spec["components"]}
    )  # fmt: skip
    verdicts = {json.dumps(c): predict.is_valid({**base, **c}) for c in ODD_SPELLINGS}
    assert verdicts[json.dumps({"job_title": "\u200b"})] is False
    assert verdicts[json.dumps({"currency": "eur"})] is False
    assert 5 < sum(verdicts.values()) < len(verdicts) - 5


def test_the_schema_documents_what_the_service_answers() -> None:
    """No /metrics, bodies required, and 413, 415 and 422 documented with the bodies sent.

    Fast (no model): ``RequestGuard`` in front of a stand-in for BentoML that,
    like BentoML, answers a pydantic error with 400 and the errors in ``detail``.
    """
    from pydantic import ValidationError
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from salarymodel.serving.service import (
        MAX_BODY_BYTES,
        METRICS_ENABLED,
        JobRequest,
        RequestGuard,
        SalaryService,
        openapi_document,
        truthful_openapi,
    )

    async def like_bentoml(request: Request) -> JSONResponse:
        try:
            JobRequest.model_validate_json(await request.body() or b"{}")
        except ValidationError as error:
            detail = error.errors(include_context=False, include_input=False)
            return JSONResponse({"error": str(error), "detail": detail}, status_code=400)
        return JSONResponse({})

    routes = [Route(path, like_bentoml, methods=["POST"]) for path in MAX_BODY_BYTES]
    client = TestClient(RequestGuard(Starlette(routes=routes), openapi_document))
    spec = client.get("/docs.json").json()
    assert set(MAX_BODY_BYTES) == set(API_ROUTES)
    assert ("/metrics" in spec["paths"]) is METRICS_ENABLED
    generated = SalaryService.openapi_spec.asdict()
    assert "/metrics" in generated["paths"]
    assert "/metrics" not in truthful_openapi(generated, metrics=False)["paths"]
    assert "/metrics" in truthful_openapi(generated, metrics=True)["paths"]
    reload = spec["paths"]["/admin/reload"]["post"]["responses"]
    assert set(reload) == {"200", "403", "409", "500"}
    errors = "#/components/schemas/ValidationErrors"
    loaded = schemathesis.openapi.from_dict(spec)
    as_json = {"content-type": "application/json"}
    for path, limit in MAX_BODY_BYTES.items():
        operation = spec["paths"][path]["post"]
        assert operation["requestBody"]["required"] is True
        assert set(operation["responses"]) == {"200", "413", "415", "422", "500"}
        assert operation["responses"]["422"]["content"]["application/json"]["schema"] == {
            "$ref": errors
        }
        answers = [
            client.post(path, json={"remote_ratio": 7, "contry": "DE"}),
            client.post(path),
            client.post(path, content=b"x" * (limit + 1), headers=as_json),
            client.post(path, content=b"job_title=x", headers={"content-type": "text/plain"}),
        ]
        assert [a.status_code for a in answers] == [422, 422, 413, 415]
        for answer in answers:
            # Raises if the body does not match the schema documented for its status.
            loaded[path]["POST"].validate_response(answer)
    # The optional `allowed` list was in a validated body too.
    assert any("allowed" in problem for problem in answers[0].json()["detail"])
