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
  default view (:func:`default_view`; :func:`in_view` and :func:`view_of`
  for a job scored without the other defaults, ``SalaryModel.estimate_job``).

A country the geography resolver does not know is kept as given: the feature
builder treats it as missing and warns, the same on every path.

Standard library and configuration only: a service worker imports this.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from salarymodel.config.data import ValidationConfig
from salarymodel.config.settings import Settings

# The canonical fields a job a person describes may state, in the model's
# terms (the view is the canonical ``source``). ``complete_job`` keeps only
# these: a new input (a place below the country, say) is added here.
JOB_FIELDS = (
    "job_title",
    "job_category",
    "experience_level",
    "company_size",
    "country",
    "company_country",
    "location",
    "remote_ratio",
    "employment_type",
    "skills",
    "year",
    "source",
)


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

    def job(self) -> dict[str, object]:
        """A job that states nothing: every field at its default (a new dict each call)."""
        return self._template.copy()

    @functools.cached_property
    def _template(self) -> dict[str, object]:
        # Built once per defaults (a request costs a dict copy, not a build).
        return {
            **dict.fromkeys(JOB_FIELDS),
            "experience_level": self.experience_level,
            "company_size": self.company_size,
            "country": self.country,
            "remote_ratio": self.remote_ratio,
            "employment_type": self.employment_type,
            "year": self.year,
            "source": self.view,
        }


def default_year(limits: ValidationConfig, today: date | None = None) -> int:
    """This year, within the configured year bounds."""
    year = (today or date.today()).year
    return max(limits.year_min, min(year, limits.year_max))


def model_view(metadata: Mapping[str, Any]) -> str | None:
    """The default view a model was trained with (its metadata's), if it names one."""
    view = metadata.get("default_source")
    return str(view) if view else None


def default_view(metadata: Mapping[str, Any], settings: Settings) -> str | None:
    """The view an estimate gives when none is asked for: the model's, else the configured one."""
    view = model_view(metadata) or settings.serving.default_source
    return str(view) if view else None


def view_of(job: Mapping[str, object], default: str | None) -> str | None:
    """The view a job is estimated in: its own ``source`` when it states one, else ``default``."""
    source = job.get("source")
    return default if not_stated(source) else str(source)


def in_view(job: Mapping[str, object], default: str | None) -> Mapping[str, object]:
    """``job`` with ``default`` as its ``source`` when it states none (else ``job`` itself)."""
    if default is None or not not_stated(job.get("source")):
        return job
    return {**job, "source": default}


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
    kind = type(value)
    # The common types first, by identity: a request's fields take this path.
    if kind is str:
        return not value.strip()  # type: ignore[attr-defined]
    if kind is int or kind is bool:
        return False
    if kind is list:
        return not value
    if value is None:
        return True
    if isinstance(value, float):  # numpy's floats too
        return math.isnan(value)
    if isinstance(value, list | tuple):
        return len(value) == 0
    # pandas' NA (from a frame) is missing but neither None nor a float.
    return kind.__name__ in ("NAType", "NaTType")


def complete_job(stated: Mapping[str, object], defaults: JobDefaults) -> dict[str, object]:
    """The canonical job the model reads: what was stated, the defaults for the rest.

    ``stated`` maps canonical field names (see ``JOB_FIELDS``) to what the
    person gave; other keys are ignored. The result has every field.
    """
    job = defaults.job()
    for name, value in stated.items():
        if name in job and not not_stated(value):
            job[name] = value
    if job["company_country"] is None:
        job["company_country"] = job["country"]
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
