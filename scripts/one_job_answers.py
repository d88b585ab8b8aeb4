"""The entry-level US data analyst of issue 22, through HTTP, the page and the CSV.

Prints the estimate each path gives for the same job, the CSV written with
different columns (as the issue tried it), and a country nobody knows; then
how many of 200 real jobs the CSV scores otherwise than HTTP. Run
on a model bundle; ``--fit`` first fits the final model (point and ranges) on
all shipped data into that folder, as ``salarymodel train`` does (about a
minute; no CV, no registry):

    python scripts/one_job_answers.py /tmp/bundle --fit
    python scripts/one_job_answers.py /tmp/bundle

The HTTP and page rows run the service's own steps in this process
(``EstimateRequest`` validation, ``canonical_job``, the model's estimate).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from salarymodel.config.settings import load_settings, load_sources, resolve_path
from salarymodel.core.model import SalaryModel
from salarymodel.core.prediction import predict_frame

TITLE = {"job_title": "Data Analyst", "experience_level": "EN"}
# The body app.js sends for the form with only the title and "entry" changed.
PAGE = {
    **TITLE,
    "company_size": "M",
    "employment_type": "FT",
    "view": "aijobs",
    "currency": "USD",
    "period": "year",
    "remote_ratio": 0,
    "country": "United States",
}
CSV_BASE = {**TITLE, "country": "US", "company_size": "M", "remote_ratio": "0"}
CSV_CASES = {
    "CSV: no employment_type column": CSV_BASE,
    "CSV: employment_type FT": {**CSV_BASE, "employment_type": "FT"},
    "CSV: employment_type FT, year 2026": {**CSV_BASE, "employment_type": "FT", "year": "2026"},
    "CSV: FT, 2026, empty skills cell": {
        **CSV_BASE,
        "employment_type": "FT",
        "year": "2026",
        "skills": "",
    },
    "CSV: no employment_type, empty skills cell": {**CSV_BASE, "skills": ""},
    "CSV: country 'Atlantis'": {**TITLE, "country": "Atlantis"},
}


def http_estimate(model: SalaryModel, body: dict) -> tuple[str, str]:
    """(estimate, warnings) of what /predict (or /explain) answers for a body."""
    from salarymodel.serving.schemas import EstimateRequest
    from salarymodel.serving.scoring import canonical_job

    view = model.metadata.get("default_source") or load_settings().serving.default_source
    request = EstimateRequest.model_construct(**dict(EstimateRequest.model_validate(body)))
    estimate = model.estimate_job(canonical_job(request, str(view)))
    return f"${estimate.estimate_usd:,.0f}", "; ".join(estimate.warnings)


def csv_estimate(model: SalaryModel, columns: dict) -> tuple[str, str]:
    """(estimate or the row's error, warnings) of `salarymodel predict` for a one-row CSV."""
    frame = pd.DataFrame([columns], dtype=str).replace("", np.nan)  # an empty cell as read
    row = predict_frame(frame, model, load_settings(), load_sources()).iloc[0]
    if row["error"]:
        return f"error: {row['error']}", ""
    return f"${row['estimate_usd']:,.0f}", row["warnings"]


FORM_FIELDS = ("experience_level", "company_size", "country", "remote_ratio", "employment_type")


def sampled_jobs(n: int) -> list[dict]:
    """``n`` real jobs, half survey records, half postings, as a person states them
    (the page's fields; None where the record says nothing), as the three-path test
    (tests/service/test_one_answer.py) samples them."""
    from salarymodel.data.geography import country_name
    from salarymodel.data.reading import read_csv
    from salarymodel.data.sources import adapt
    from salarymodel.data.validation import validate_records

    settings, sources = load_settings(), load_sources()
    jobs = []
    for name in ("aijobs", "postings"):
        config = sources.sources[name]
        rows = read_csv(resolve_path(str(config.file))).sample(n // 2, random_state=31)
        adapted = adapt(rows.reset_index(drop=True), name, config, settings)
        kept = validate_records(adapted.records, settings, require_salary=False).kept
        for i, record in enumerate(kept.to_dict("records")):
            job = {"job_title": record["job_title"], "view": name}
            for field in FORM_FIELDS:
                value = record[field]
                job[field] = None if value is None or value != value else value
            if job["remote_ratio"] is not None:
                job["remote_ratio"] = int(job["remote_ratio"])
            if job["country"] is not None and i % 2:
                job["country"] = country_name(job["country"])
            skills = record["skills"]
            job["skills"] = skills if isinstance(skills, list) and skills else None
            jobs.append(job)
    return jobs


def compare_paths(model: SalaryModel, n: int) -> str:
    """How many of ``n`` real jobs the CSV scores otherwise than HTTP /predict."""
    jobs = sampled_jobs(n)
    rows = [
        {
            "job_title": j["job_title"],
            "source": j["view"],
            "skills": ";".join(j["skills"] or []),
            **{f: "" if j[f] is None else str(j[f]) for f in FORM_FIELDS},
        }
        for j in jobs
    ]
    frame = pd.DataFrame(rows, dtype=str).replace("", np.nan)
    csv = predict_frame(frame, model, load_settings(), load_sources())
    errors, gaps = 0, []
    for i, job in enumerate(jobs):
        if csv.loc[i, "error"]:
            errors += 1
            continue
        body = {k: v for k, v in job.items() if v is not None}
        http = float(http_estimate(model, body)[0].strip("$").replace(",", ""))
        if abs(csv.loc[i, "estimate_usd"] - http) > 0.5:
            gaps.append(abs(csv.loc[i, "estimate_usd"] / http - 1))
    line = f"{len(jobs)} real jobs: {errors} CSV error rows, {len(gaps)} CSV estimates differ"
    if gaps:
        line += f" from HTTP's (|CSV / HTTP - 1| median {np.median(gaps):.1%}, max {max(gaps):.1%})"
    return line


def main() -> None:
    """Print one line per path and case."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--fit", action="store_true", help="fit on all shipped data first")
    parser.add_argument("--jobs", type=int, default=200, help="real jobs to compare paths on")
    args = parser.parse_args()
    if args.fit:
        from salarymodel.data.dataset import load_training_data
        from salarymodel.training.job import fit_final_model

        settings = load_settings()
        data = load_training_data(settings, load_sources())
        fit_final_model(data, settings).save(args.bundle)
    model = SalaryModel.load(args.bundle)
    rows = [("page (/explain body)", *http_estimate(model, PAGE)),
            ("HTTP /predict: title and EN only", *http_estimate(model, TITLE)),
            ("HTTP /predict: country 'Atlantis'",
             *http_estimate(model, {**TITLE, "country": "Atlantis"}))]  # fmt: skip
    rows += [(name, *csv_estimate(model, columns)) for name, columns in CSV_CASES.items()]
    for name, estimate, warnings in rows:
        print(f"{name:45} {estimate:>12}  {warnings[:70]}")
    print(compare_paths(model, args.jobs))


if __name__ == "__main__":
    main()
