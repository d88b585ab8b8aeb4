"""SHAP explanations: what each factor is worth, in percent and dollars.

SHAP values come from LightGBM's own TreeSHAP (``predict`` with
``pred_contrib``): the same algorithm and numbers as shap's TreeExplainer on
the booster (a test checks them against shap to 1e-6 on real rows), without
importing shap (about 5 s and 150 MB) in a service worker. The booster
predicts log salary, so SHAP values are log contributions; people read them
as premiums:

- percent: exp(phi) - 1, a multiplicative premium over the base value (the
  model's average log estimate);
- dollars, for one estimate: each concept's share of (estimate - base) in
  proportion to its phi, so the dollars add up exactly to the estimate;
- dollars, for global premiums: exp(mean phi) - 1 applied to the median
  training salary.

With country levels (``salarymodel.core.country_levels``) the trees start from
each row's source-and-country level, which TreeSHAP does not see. It is
split so the contributions still add up to the estimate: the pooled world
level joins the base value, the source's world level minus the pooled one
joins "pay view", and the country's level minus its source's world level
joins "country" (so the country's dollars include how far its pay level
sits from the world's).

Columns are grouped by human concept before anything is summarised: the
three title columns are "job title", country / region / employer abroad are
"country", each skill is its own concept. Values of one concept are summed
per record (never absolute values summed across columns).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from salarymodel.core.features import EncodedJob, FeatureBuilder
from salarymodel.core.model import SalaryModel
from salarymodel.core.row_spec import AT, SKILL_PREFIX, WORD_PREFIX
from salarymodel.data import geography

if TYPE_CHECKING:
    import pandas as pd

# Matrix column -> the input a person gives (one concept per input).
BASE_CONCEPTS = {
    "role_family": "job title",
    "title": "job title",
    "title_seniority": "job title",
    "experience_level": "experience level",
    "company_size": "company size",
    "country": "country",
    "region": "country",
    "employer_abroad": "country",
    "remote_ratio": "remote ratio",
    "employment_type": "employment type",
    "year": "year",
    "source": "pay view",
    "n_skills": "number of skills",
    # When in the year (features.time_within_year): part of the job's date.
    "quarter_time": "year",
    # Place below the country (features.location): one input, the location.
    "state": "location",
    "area_wage_ratio": "location",
}
SKILL_CONCEPT = "skill: "


def concept_of(column: str) -> str:
    """The human concept a matrix column belongs to."""
    if column.startswith(SKILL_PREFIX):
        return SKILL_CONCEPT + column.removeprefix(SKILL_PREFIX)
    if column.startswith(WORD_PREFIX):
        return "job title"  # a title's words are part of the title a person gave
    return BASE_CONCEPTS[column]


def concept_index(columns: list[str]) -> tuple[list[str], np.ndarray]:
    """(concept names in first-seen order, column -> concept position)."""
    names: list[str] = []
    position = np.empty(len(columns), int)
    for i, column in enumerate(columns):
        concept = concept_of(column)
        if concept not in names:
            names.append(concept)
        position[i] = names.index(concept)
    return names, position


def distinct_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct rows of ``matrix``, each row's position among them); same bytes, same row."""
    if len(matrix) < 2:
        return matrix, np.arange(len(matrix))
    rows = np.ascontiguousarray(matrix)
    keys = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return rows[first], inverse.ravel()


def group_shap(values: np.ndarray, position: np.ndarray, n_concepts: int) -> np.ndarray:
    """Sum SHAP values of the columns of each concept (rows x concepts)."""
    grouped = np.zeros((values.shape[0], n_concepts))
    np.add.at(grouped.T, position, values.T)
    return grouped


@dataclass(frozen=True)
class Contribution:
    """One concept's part in one estimate."""

    concept: str
    value: str
    percent: float
    dollars: float


@dataclass(frozen=True)
class JobExplanation:
    """Base value, estimate and the contributions that lead from one to the other."""

    base_usd: float
    estimate_usd: float
    contributions: list[Contribution]

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def dollar_shares(phi: np.ndarray, base_log: float) -> np.ndarray:
    """Split (estimate - base) in USD across concepts in proportion to their log contribution."""
    total = float(phi.sum())
    base = math.exp(base_log)
    if abs(total) < 1e-12:
        return base * phi  # the first-order limit of the proportional split
    return (math.exp(base_log + total) - base) * phi / total


class Explainer:
    """TreeSHAP values of a model's booster (LightGBM's own), with concept grouping."""

    def __init__(self, model: SalaryModel, num_threads: int = 0) -> None:
        # One LightGBM thread count per process (see SalaryModel.predict_log).
        self.num_threads = num_threads
        self.model = model
        self.concepts, self.position = concept_index(model.builder.columns)
        # The bias column is the same for every row: the expected value of
        # the trees over the training data (shap's ``expected_value``).
        blank = np.full((1, len(model.builder.columns)), np.nan)
        self.base_log = float(self._contributions(blank)[0, -1])

    @classmethod
    def from_model(cls, model: SalaryModel, num_threads: int = 0) -> Explainer:
        """Build the explainer from a loaded model's booster (one prediction: about 1 ms).

        ``num_threads``: as for ``SalaryModel.predict_log`` (one value per process).
        """
        return cls(model, num_threads)

    def _contributions(self, matrix: np.ndarray) -> np.ndarray:
        # Identical rows have identical SHAP values, so each distinct row is
        # explained once: the 5,000-record sample of the shipped data has 2,631.
        distinct, inverse = distinct_rows(matrix)
        values = np.array(
            self.model.booster.predict(distinct, num_threads=self.num_threads, pred_contrib=True)
        )
        levels = self.model.levels
        if levels is not None and levels.as_offset:
            country, source, constant = levels.parts(self.model.builder, distinct)
            values[:, AT["country"]] += country
            values[:, AT["source"]] += source
            values[:, -1] += constant
        return values[inverse]

    # ----- raw values ---------------------------------------------------------
    def shap_values(self, matrix: np.ndarray) -> np.ndarray:
        """Column-level SHAP values (log salary) for a feature matrix (rows x columns)."""
        return self._contributions(matrix)[:, :-1]

    def grouped(self, matrix: np.ndarray) -> np.ndarray:
        """Concept-level SHAP values (rows x concepts)."""
        return group_shap(self.shap_values(matrix), self.position, len(self.concepts))

    # ----- one estimate ---------------------------------------------------------
    def explain_job(self, job: Mapping[str, object]) -> JobExplanation:
        """The estimate for one job and each concept's contribution in % and dollars."""
        if job.get("source") in (None, "") and self.model.metadata.get("default_source"):
            job = {**job, "source": self.model.metadata["default_source"]}
        encoded = self.model.builder.encode_job(job)
        phi = self.grouped(encoded.row.reshape(1, -1))[0]
        dollars = dollar_shares(phi, self.base_log)
        values = job_values(self.model.builder, job, encoded)
        contributions = [
            Contribution(
                concept=concept,
                value=values.get(concept, ""),
                percent=float(math.expm1(p) * 100),
                dollars=float(d),
            )
            for concept, p, d in zip(self.concepts, phi, dollars, strict=True)
            # A skill the person listed is their own input: shown at $0 when the
            # trees never use it, rather than left out as if it were not read.
            if p != 0.0 or values.get(concept) == "listed"
        ]
        contributions.sort(key=lambda c: abs(c.dollars), reverse=True)
        return JobExplanation(
            base_usd=math.exp(self.base_log),
            estimate_usd=math.exp(self.base_log + float(phi.sum())),
            contributions=contributions,
        )


def job_values(builder: FeatureBuilder, job: Mapping[str, object], encoded: EncodedJob) -> dict:
    """The value a person gave for each concept, as text (the country as resolved)."""
    row = encoded.row
    family = builder.role_families[int(row[AT["role_family"]])]
    # A skill the job does not list still moves the estimate (its absence is
    # information), so every skill row says which case it is.
    flags = {
        SKILL_CONCEPT + name: "not stated" if np.isnan(flag) else "listed" if flag else "not listed"
        for name, flag in zip(builder.skills, row[builder.skill_columns], strict=True)
    }
    return {
        **flags,
        "job title": f"{job.get('job_title')} ({family})",
        "experience level": _text(job.get("experience_level")),
        "company size": _text(job.get("company_size")),
        "country": _text(encoded.country),
        "remote ratio": _text(job.get("remote_ratio")),
        "employment type": _text(job.get("employment_type")),
        "year": _text(job.get("year")),
        "pay view": _text(job.get("source")),
        "number of skills": _text(float(row[AT["n_skills"]])).replace("missing", "unknown"),
        "location": _place_text(encoded),
    }


def _place_text(encoded: EncodedJob) -> str:
    """The US state and metro a job's location resolved to ("TX, Austin-..."), or missing."""
    found = geography.metro(encoded.metro) if encoded.metro else None
    parts = [encoded.state, found.name if found else None]
    return ", ".join(p for p in parts if p) or "missing"


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "missing"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# ----- global premiums ----------------------------------------------------------
CATEGORY_CONCEPTS = {
    "experience level": "experience_level",
    "company size": "company_size",
    "remote ratio": "remote_ratio",
    "employment type": "employment_type",
    "country": "country",
    "pay view": "source",
}


def record_values(records: pd.DataFrame, builder: FeatureBuilder, matrix: np.ndarray) -> dict:
    """Per record, the value of each categorical concept (as text)."""
    values = {
        concept: records[column].map(_text).to_numpy()
        for concept, column in CATEGORY_CONCEPTS.items()
    }
    families = np.array(builder.role_families, dtype=object)
    values["job title"] = families[matrix[:, AT["role_family"]].astype(int)]
    return values


def premiums_table(
    records: pd.DataFrame,
    builder: FeatureBuilder,
    matrix: np.ndarray,
    grouped: np.ndarray,
    concepts: list[str],
) -> pd.DataFrame:
    """Mean premium (%) and dollars at the median salary per concept value, with counts.

    Categorical concepts: every value. Skills: postings that list the skill
    ("present"); the survey has no skills and is left out of skill rows.
    """
    import pandas as pd

    median_salary = float(records["salary_usd"].median())
    values = record_values(records, builder, matrix)
    rows = []
    for concept, per_record in values.items():
        phi = grouped[:, concepts.index(concept)]
        frame = pd.DataFrame({"value": per_record, "phi": phi})
        for value, group in frame.groupby("value", sort=False):
            rows.append(_premium_row(concept, str(value), group["phi"], median_salary))
    skill_start = builder.skill_columns.start
    for j, column in enumerate(builder.columns[builder.skill_columns], start=skill_start):
        present = matrix[:, j] == 1.0
        if present.any():
            concept = concept_of(column)
            phi = pd.Series(grouped[present, concepts.index(concept)])
            rows.append(_premium_row(concept, "present", phi, median_salary))
    table = pd.DataFrame(rows)
    return table.sort_values(["concept", "count"], ascending=[True, False], ignore_index=True)


def _premium_row(concept: str, value: str, phi: pd.Series, median_salary: float) -> dict:
    ratio = math.exp(float(phi.mean()))
    return {
        "concept": concept,
        "value": value,
        "mean_premium_pct": (ratio - 1) * 100,
        "dollars_at_median": median_salary * (ratio - 1),
        "count": len(phi),
    }


def mean_abs_by_concept(grouped: np.ndarray, concepts: list[str]) -> pd.Series:
    """Mean |grouped SHAP| per concept (log units), largest first."""
    import pandas as pd

    return pd.Series(np.abs(grouped).mean(axis=0), index=concepts).sort_values(ascending=False)
