"""One job, one answer: `salarymodel predict` (CSV), HTTP and the web page agree.

200 real jobs from the shipped files go through the CSV path (``read_scoring_file``,
``write_scored``), HTTP ``/predict`` and ``/predict_batch`` (the service's handlers' steps, in
this process, on the bundle read as a worker reads it) and the page (the body
app.js's ``jobRequest`` builds from the form's values, run in Node, posted to
``/explain``). The answers must be the same: estimate, range, support,
warnings. Then each default on its own: a missing column, an empty cell and
the default value stated give HTTP's answer, and an unknown country is an
estimate with a warning in the CSV as over HTTP.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from salarymodel.core.model import SalaryModel
from salarymodel.core.prediction import (
    FrameRequest,
    person_jobs,
    predict_frame,
    read_scoring_file,
    write_scored,
)
from salarymodel.data.dataset import load_training_data
from salarymodel.data.geography import country_name
from salarymodel.data.reading import SourceFormatError
from salarymodel.data.sources import adapt
from salarymodel.data.validation import validate_records
from salarymodel.training.job import fit_final_model

pytestmark = pytest.mark.slow

APP_JS = Path(__file__).resolve().parents[2] / "src" / "salarymodel" / "serving" / "web" / "app.js"
# The fields a person describes a job with on the page (year and employer country
# are not on the form: the service fills them).
FORM_FIELDS = ("experience_level", "company_size", "country", "remote_ratio", "employment_type")
N_JOBS = 200


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, settings, sources) -> Path:
    """A small real model (point + ranges) fit on 2,000 shipped records, saved as a bundle."""
    data = load_training_data(settings, sources, sample=2000, seed=23)
    return fit_final_model(data, settings).save(tmp_path_factory.mktemp("one") / "bundle")


@pytest.fixture(scope="module")
def model(bundle: Path) -> SalaryModel:
    """The bundle as `salarymodel predict` reads it (lightgbm.Booster)."""
    return SalaryModel.load(bundle)


@pytest.fixture(scope="module")
def serving(bundle: Path):
    """The bundle as a service worker reads it (LightGBM's C library), with its explainer."""
    from salarymodel.serving.loading import read_serving_bundle, ready_to_serve

    return ready_to_serve(read_serving_bundle(bundle), {"model_version": "1"}, "test")


@pytest.fixture(scope="module")
def jobs(aijobs_raw, postings_raw, settings, sources) -> list[dict[str, Any]]:
    """200 real jobs (100 survey records, 100 postings) as a person would state them:
    the fields the page has, None where the record says nothing, the view its source."""
    picked = []
    for name, raw in (("aijobs", aijobs_raw), ("postings", postings_raw)):
        rows = raw.sample(N_JOBS // 2, random_state=31).reset_index(drop=True)
        adapted = adapt(rows, name, sources.sources[name], settings)
        kept = validate_records(adapted.records, settings, require_salary=False).kept
        for i, record in enumerate(kept.to_dict("records")):
            job: dict[str, Any] = {"job_title": record["job_title"], "view": name}
            for field in FORM_FIELDS:
                value = record[field]
                job[field] = None if value is None or value != value else value
            if job["remote_ratio"] is not None:
                job["remote_ratio"] = int(job["remote_ratio"])
            if job["country"] is not None and i % 2:
                job["country"] = country_name(job["country"])  # as the page's list names it
            skills = record["skills"]
            job["skills"] = skills if isinstance(skills, list) and skills else None
            picked.append(job)
    assert len(picked) == N_JOBS
    return picked


# ----- the three paths -----------------------------------------------------------------------
def via_csv(jobs: list[dict], model, settings, sources, folder: Path) -> pd.DataFrame:
    """`salarymodel predict` on a canonical CSV: an empty cell where the job says nothing."""
    rows = [
        {
            "job_title": job["job_title"],
            **{f: "" if job[f] is None else job[f] for f in FORM_FIELDS},
            "skills": ";".join(job["skills"] or []),
            "source": job["view"],
        }
        for job in jobs
    ]
    pd.DataFrame(rows).to_csv(folder / "jobs.csv", index=False)
    raw, lines = read_scoring_file(folder / "jobs.csv")  # as `salarymodel predict` does
    return write_scored(raw, lines, folder / "out.csv", model, settings, sources)


def http_body(job: dict) -> dict:
    """The JSON a client sends: only what the job states."""
    body = {k: v for k, v in job.items() if v is not None and k != "view"}
    body["view"] = job["view"]
    return body


def via_http(serving, body: dict, explain: bool = False) -> dict:
    """What the service's /predict (or /explain) handler does with a body, step by step."""
    from salarymodel.serving.pay_terms import request_terms
    from salarymodel.serving.scoring import canonical_job, explain_one, predict_one
    from salarymodel.serving.service import EstimateRequest

    # BentoML validates the body against the input spec and hands over its fields.
    request = EstimateRequest.model_construct(**dict(EstimateRequest.model_validate(body)))
    terms = request_terms(serving, request)
    answer = (explain_one if explain else predict_one)(
        serving, canonical_job(request, serving.default_view), terms
    )
    return answer.model_dump()


def via_batch(serving, bodies: list[dict]) -> list[dict]:
    """What /predict_batch does with its jobs."""
    from salarymodel.serving.scoring import canonical_job, estimate_many
    from salarymodel.serving.service import JobRequest

    requests = [JobRequest.model_validate(b) for b in bodies]
    answers = estimate_many(serving, [canonical_job(r, serving.default_view) for r in requests])
    return [a.model_dump() for a in answers]


def page_bodies(forms: list[dict]) -> list[dict]:
    """The bodies app.js's ``jobRequest`` builds from the forms' values (run in Node)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("no Node.js on this machine: the page's request building cannot be run")
    script = (
        "const vm = require('vm'), fs = require('fs'); const page = {}; vm.createContext(page);"
        f"vm.runInContext(fs.readFileSync({json.dumps(str(APP_JS))}, 'utf8'), page);"
        "const forms = JSON.parse(fs.readFileSync(0, 'utf8'));"
        "process.stdout.write(JSON.stringify(forms.map((f) => page.jobRequest(f))));"
    )
    done = subprocess.run(
        [node, "-e", script], input=json.dumps(forms), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def page_form(job: dict, card: dict) -> dict:
    """The form's values for a job, as text: the selects and the country start at
    GET /model's defaults (what app.js's loadModel fills in), the rest as typed."""
    defaults = card["defaults"]
    chosen = {f: defaults[f] if job[f] is None else job[f] for f in FORM_FIELDS}
    if job["country"] is None:
        chosen["country"] = next(
            c["name"] for c in card["vocabulary"]["countries"] if c["code"] == defaults["country"]
        )
    return {
        "job_title": job["job_title"],
        **{f: str(v) for f, v in chosen.items()},
        "view": job["view"],
        "skills": job["skills"] or [],
        "currency": defaults["currency"],
        "period": defaults["period"],
        "current_salary": "",
    }


def _same_rows(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a, b, equal_nan=True))


# ----- the same 200 jobs everywhere -----------------------------------------------------------
def test_two_hundred_real_jobs_get_one_answer_on_every_path(
    jobs, model, serving, settings, sources, tmp_path
) -> None:
    from salarymodel.serving.model_card import model_card
    from salarymodel.serving.scoring import canonical_job
    from salarymodel.serving.service import JobRequest

    # The sample leans on the defaults: postings have no company size, some no seniority.
    assert sum(job["company_size"] is None for job in jobs) >= 50
    assert sum(job["experience_level"] is None for job in jobs) >= 5
    csv = via_csv(jobs, model, settings, sources, tmp_path)
    bodies = [http_body(job) for job in jobs]
    http = [via_http(serving, body) for body in bodies]
    batch = via_batch(serving, bodies)
    card = model_card(serving)
    page = page_bodies([page_form(job, card) for job in jobs])
    shown = [via_http(serving, body, explain=True) for body in page]

    assert len(csv) == N_JOBS and (csv["error"] == "").all(), csv["error"].unique()
    for i in range(N_JOBS):
        for field in ("estimate_usd", "low_usd", "high_usd"):
            # The CSV gives cents, HTTP whole dollars: the same number, rounded.
            assert abs(csv.loc[i, field] - http[i][field]) <= 0.5, (i, field, jobs[i])
            assert batch[i][field] == http[i][field] == shown[i][field], (i, field, jobs[i])
        for field in ("support", "thin_support", "view", "coverage"):
            assert csv.loc[i, field] == http[i][field] == batch[i][field] == shown[i][field]
        assert csv.loc[i, "warnings"] == "; ".join(http[i]["warnings"])
        assert http[i]["warnings"] == batch[i]["warnings"] == shown[i]["warnings"]
    # Exactly the same numbers: the CSV's jobs encode to HTTP's rows, bit for bit.
    csv_file = pd.read_csv(tmp_path / "jobs.csv", dtype=str)
    _, _, csv_jobs = person_jobs(FrameRequest(csv_file, model, settings, sources))
    http_jobs = [canonical_job(JobRequest.model_validate(b), serving.default_view) for b in bodies]
    page_jobs = [canonical_job(JobRequest.model_validate(
        {k: v for k, v in b.items() if k not in ("currency", "period")}), serving.default_view)
        for b in page]  # fmt: skip
    builder = model.builder
    assert _same_rows(builder.encode_many(csv_jobs)[0], builder.encode_many(http_jobs)[0])
    assert _same_rows(builder.encode_many(page_jobs)[0], builder.encode_many(http_jobs)[0])


# ----- each default on its own ----------------------------------------------------------------
ANALYST = {"job_title": "Data Analyst", "experience_level": "EN", "country": "US"}


def _csv_answer(columns: dict[str, str], model, settings, sources) -> pd.Series:
    frame = pd.DataFrame([columns], dtype=str).replace("", np.nan)
    out = predict_frame(frame, model, settings, sources)
    assert out.loc[0, "error"] == "", out.loc[0, "error"]
    return out.loc[0]


def _agree(csv_row: pd.Series, http: dict) -> None:
    for field in ("estimate_usd", "low_usd", "high_usd"):
        assert abs(csv_row[field] - http[field]) <= 0.5, (field, csv_row[field], http[field])
    assert csv_row["warnings"] == "; ".join(http["warnings"])


@pytest.mark.parametrize(
    ("field", "stated"),
    [
        ("employment_type", "FT"),
        ("company_country", "US"),
        ("company_size", "M"),
        ("remote_ratio", "0"),
        ("skills", None),  # a skill list has no "default value" to state
        ("experience_level", "SE"),
        ("country", "US"),
    ],
)
def test_a_missing_column_an_empty_cell_and_the_default_give_https_answer(
    field, stated, model, serving, settings, sources
) -> None:
    base = {k: v for k, v in ANALYST.items() if k != field}
    bare = via_http(serving, {**base, "view": "aijobs"})
    variants = [base, {**base, field: ""}]
    if stated is not None:
        variants.append({**base, field: stated})
    for columns in variants:
        _agree(_csv_answer({**columns, "source": "aijobs"}, model, settings, sources), bare)


def test_the_default_year_is_this_year_on_every_path(model, serving, settings, sources) -> None:
    from salarymodel.core.job_defaults import default_year

    this_year = default_year(settings.validation)
    bare = via_http(serving, ANALYST)
    assert bare == via_http(serving, {**ANALYST, "year": this_year})
    for year in (None, "", str(this_year)):
        columns = ANALYST if year is None else {**ANALYST, "year": year}
        _agree(_csv_answer(columns, model, settings, sources), bare)
    # A year stated is used: 2021 is scored as 2021 on both paths.
    _agree(_csv_answer({**ANALYST, "year": "2021"}, model, settings, sources),
           via_http(serving, {**ANALYST, "year": 2021}))  # fmt: skip


def test_an_empty_skill_list_says_nothing_on_every_path(model, serving, settings, sources) -> None:
    bare = via_http(serving, ANALYST)
    assert via_http(serving, {**ANALYST, "skills": []}) == bare
    _agree(_csv_answer({**ANALYST, "skills": ""}, model, settings, sources), bare)
    # Stated skills still count, the same on both paths.
    _agree(_csv_answer({**ANALYST, "skills": "python;SQL"}, model, settings, sources),
           via_http(serving, {**ANALYST, "skills": ["python", "sql"]}))  # fmt: skip


def test_an_unknown_country_is_an_estimate_with_a_warning_in_the_csv_too(
    model, serving, settings, sources, aijobs_raw
) -> None:
    http = via_http(serving, {**ANALYST, "country": "Atlantis"})
    assert "country 'Atlantis' not recognised; treated as missing" in http["warnings"]
    _agree(_csv_answer({**ANALYST, "country": "Atlantis"}, model, settings, sources), http)
    # A survey-format file alike: the row is scored, with the warning, next to a row
    # the guard still refuses (an experience level that is no code).
    rows = aijobs_raw.sample(3, random_state=8).reset_index(drop=True)
    rows.loc[0, "employee_residence"] = "Atlantis"
    rows.loc[1, "company_location"] = "Atlantis"
    rows.loc[2, "experience_level"] = "WIZARD"
    out = predict_frame(rows, model, settings, sources)
    assert out.loc[0, "error"] == "" and out.loc[0, "estimate_usd"] > 0
    assert "country 'Atlantis' not recognised" in out.loc[0, "warnings"]
    assert out.loc[1, "error"] == "" and out.loc[1, "estimate_usd"] > 0
    # The employer's country alike (it was treated as missing without a word).
    assert "company_country 'Atlantis' not recognised" in out.loc[1, "warnings"]
    company = via_http(serving, {**ANALYST, "company_country": "Narnia"})
    assert "company_country 'Narnia' not recognised; treated as missing" in company["warnings"]
    # Said once: a country not recognised is the company's default, not a second warning.
    assert not any("company_country" in w for w in http["warnings"])
    assert out.loc[2, "error"].startswith("line 4: experience_level = 'WIZARD'")
    assert math.isnan(out.loc[2, "estimate_usd"])
    # Training still refuses it: an unknown country in training data is quarantined.
    adapted = adapt(rows, "aijobs", sources.sources["aijobs"], settings)
    quarantined = validate_records(adapted.records, settings).quarantined
    assert "unknown country 'Atlantis'" in quarantined["reason"].iloc[0]


@pytest.mark.parametrize(
    ("source", "pay_columns"),
    [("aijobs", ["salary", "salary_currency", "salary_in_usd"]), ("postings", ["salary_year_avg"])],
)
def test_a_source_file_without_its_pay_column_is_scored_as_with_it(
    source, pay_columns, model, settings, sources, aijobs_raw, postings_raw
) -> None:
    # The pay is what a scoring file asks for: a survey or postings file without it
    # was once refused ("needs ['salary_in_usd']") even with --source.
    raw = {"aijobs": aijobs_raw, "postings": postings_raw}[source]
    rows = raw.sample(40, random_state=12).reset_index(drop=True)
    without = rows.drop(columns=pay_columns)
    with_pay = predict_frame(rows, model, settings, sources)
    for given in (None, source):  # detected from the columns, and named
        out = predict_frame(without, model, settings, sources, source=given)
        assert (out["error"] == "").all(), out["error"].unique()
        columns = ["estimate_usd", "low_usd", "high_usd", "support", "warnings"]
        pd.testing.assert_frame_equal(out[columns], with_pay[columns])
    # Training still needs the pay: the same file is refused as training data.
    with pytest.raises(SourceFormatError, match=f"missing columns \\[{pay_columns[-1]!r}\\]"):
        adapt(without, source, sources.sources[source], settings)


def test_a_scored_file_scored_again_keeps_both_answers(
    model, settings, sources, aijobs_raw, tmp_path
) -> None:
    # Its own columns (estimate_usd, error ...) once clashed with the output's:
    # `predict` failed on "error" ("unexpected TypeError") and wrote others twice.
    rows = aijobs_raw.sample(30, random_state=21).reset_index(drop=True)
    rows.to_csv(tmp_path / "jobs.csv", index=False)
    first = write_scored(*read_scoring_file(tmp_path / "jobs.csv"), tmp_path / "once.csv",
                         model, settings, sources)  # fmt: skip
    again = write_scored(*read_scoring_file(tmp_path / "once.csv"), tmp_path / "twice.csv",
                         model, settings, sources)  # fmt: skip
    assert again.columns.is_unique and (again["error"] == "").all()
    written = pd.read_csv(tmp_path / "twice.csv", dtype=str, keep_default_na=False)
    assert list(written.columns) == list(again.columns)
    for column in ("estimate_usd", "warnings", "error"):
        assert f"input_{column}" in written.columns
    assert written["input_estimate_usd"].astype(float).tolist() == first["estimate_usd"].tolist()
    assert again["estimate_usd"].tolist() == first["estimate_usd"].tolist()


def test_the_page_sends_only_what_the_form_holds() -> None:
    blank = {"job_title": " Data Analyst ", "experience_level": "EN", "company_size": "",
             "employment_type": "", "view": "", "currency": "", "period": "",
             "remote_ratio": "", "country": "  ", "skills": [], "current_salary": ""}  # fmt: skip
    assert page_bodies([blank]) == [{"job_title": "Data Analyst", "experience_level": "EN"}]
