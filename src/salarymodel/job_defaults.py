"""What a job a person describes is taken to be where it says nothing: one definition.

HTTP ``/predict``, ``/explain`` and ``/predict_batch`` (``serving.scoring.canonical_job``),
the web page (it sends what the form shows, filled from ``GET /model``'s
``defaults``, which :func:`defaults_card` writes) and ``salarymodel predict``
(``prediction.predict_frame``) all pass a job through :func:`complete_job`, so
one job gets one answer whichever way it comes in.

The values are configuration (``job_defaults`` in ``configs/salarymodel.yaml``);
the rules here say how they apply:

- a field is *not stated* when it is absent, None, NaN, blank text or an
  empty skill list;
- ``experience_level``, ``company_size``, ``country``, ``remote_ratio`` and
  ``employment_type`` not stated take the configured value;
- ``company_country`` not stated is the job's country (as given or defaulted);
- ``year`` not stated is this year, within ``validation.year_min``/``year_max``
  (trees split on thresholds, so a later year acts as the training data's latest);
- ``skills`` not stated (or empty) stay missing: the model reads "no skills
  named", not "needs none";
- the view (canonical field ``source``) not stated is the served model's
  default view (:func:`default_view`).

A country the geography resolver does not know is kept as given: the feature
builder treats it as missing and warns, the same on every path.

Standard library and configuration only: a service worker imports this.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from salarymodel.config import Settings, ValidationConfig

# The canonical fields a job a person describes may state, in the model's
# terms (the view is the canonical ``source``).
JOB_FIELDS = (
    "job_title",
    "job_category",
    "experience_level",
    "company_size",
    "country",
    "company_country",
    "remote_ratio",
    "employment_type",
    "skills",
    "year",
    "source",
)
# Fields whose default is a configured value (``job_defaults`` in the YAML).
CONFIGURED = ("experience_level", "company_size", "country", "remote_ratio", "employment_type")


@dataclass(frozen=True)
class JobDefaults:
    """Every default of a job, resolved for one day and one served model."""

    experience_level: str
    company_size: str
    country: str
    remote_ratio: int
    employment_type: str
    year: int
    view: str | None


def default_year(limits: ValidationConfig, today: date | None = None) -> int:
    """This year, within the configured year bounds."""
    year = (today or date.today()).year
    return max(limits.year_min, min(year, limits.year_max))


def default_view(metadata: Mapping[str, Any], settings: Settings) -> str | None:
    """The view an estimate gives when none is asked for: the model's, else the configured one."""
    view = metadata.get("default_source") or settings.serving.default_source
    return str(view) if view else None


def job_defaults(settings: Settings, view: str | None, today: date | None = None) -> JobDefaults:
    """The defaults for jobs scored today with a model whose default view is ``view``."""
    configured = settings.job_defaults
    return JobDefaults(
        experience_level=configured.experience_level,
        company_size=configured.company_size,
        country=configured.country,
        remote_ratio=configured.remote_ratio,
        employment_type=configured.employment_type,
        year=default_year(settings.validation, today),
        view=view,
    )


def not_stated(value: object) -> bool:
    """True for what says nothing: None, NaN, pandas' NA, blank text, an empty list."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | tuple):
        return len(value) == 0
    # pandas' NA (from a frame) is missing but neither None nor a float.
    return type(value).__name__ in ("NAType", "NaTType")


def complete_job(stated: Mapping[str, object], defaults: JobDefaults) -> dict[str, object]:
    """The canonical job the model reads: what was stated, the defaults for the rest.

    ``stated`` maps canonical field names (see ``JOB_FIELDS``) to what the
    person gave; other keys are ignored. The result has every field.
    """
    job: dict[str, object] = {}
    for name in JOB_FIELDS:
        value = stated.get(name)
        job[name] = None if not_stated(value) else value
    for name in CONFIGURED:
        if job[name] is None:
            job[name] = getattr(defaults, name)
    if job["company_country"] is None:
        job["company_country"] = job["country"]
    if job["year"] is None:
        job["year"] = defaults.year
    if job["source"] is None:
        job["source"] = defaults.view
    return job


def defaults_card(defaults: JobDefaults) -> dict[str, object]:
    """The defaults as ``GET /model`` states them (the page fills its form from these)."""
    return {
        "experience_level": defaults.experience_level,
        "company_size": defaults.company_size,
        "country": defaults.country,
        "company_country": "same as country",
        "remote_ratio": defaults.remote_ratio,
        "employment_type": defaults.employment_type,
        "skills": None,
        "year": defaults.year,
        "view": defaults.view,
    }
