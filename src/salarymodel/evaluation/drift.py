"""Drift between the reference training data and a new file.

Three views, each against the reference records of the same sources as the
new file (a survey update is compared with the survey, not with postings):

- **Population stability index (PSI)** per model feature, on the champion's
  own encoding (``FeatureBuilder.transform``): categories are bins as the
  model sees them (rare countries and titles pooled as "other"), numbers are
  binned at the reference's deciles, missing is a bin of its own. The usual
  reading: below 0.1 stable, 0.1 to 0.25 moderate, above 0.25 a major shift.
- **Categories never seen before**: job titles, countries and skills of the
  new file that no reference record has, and the rows that fall outside the
  champion's vocabulary (the model treats them as "other" or ignores them).
- **Salary shift**: quantiles, median shift in USD and %, the two-sample
  Kolmogorov-Smirnov statistic and the salary PSI, per source and overall.
- **Novelty** (``novelty``): the share of new records whose title is unknown
  (its core title never in the reference and no role family recognised in
  it), and of those listing skills whose skills are all unknown. Real later
  files score a few percent; a file of junk titles scores near 100%
  (``retraining`` quarantines a file above ``retraining.max_unseen_*``).

Records are counted after repeats are collapsed (a record pasted five times
counts once). ``evaluation.drift_output.write_drift_report`` writes the report as JSON
and as a self-contained HTML page (``salarymodel/report/templates/drift.html``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from salarymodel.core.features import FeatureBuilder
from salarymodel.core.row_spec import AT, BASE_COLUMNS, CATEGORICAL_COLUMNS
from salarymodel.vocabulary import COMPANY_SIZE_ORDER, EMPLOYMENT_TYPES, EXPERIENCE_ORDER

PSI_MODERATE = 0.1

PSI_MAJOR = 0.25

N_QUANTILE_BINS = 10

EPSILON = 1e-4  # share given to an empty bin, so PSI stays finite

N_EXAMPLES = 10

MISSING = "(missing)"

# Ordinal features whose codes read better as their names.
_ORDINAL_NAMES = {
    "experience_level": {v: k for k, v in EXPERIENCE_ORDER.items()},
    "company_size": {v: k for k, v in COMPANY_SIZE_ORDER.items()},
    "employer_abroad": {0: "no", 1: "yes"},
}

_CONTINUOUS = {"n_skills"}


def psi(reference: np.ndarray, new: np.ndarray) -> float:
    """Population stability index of two count (or share) vectors over the same bins."""
    ref = np.maximum(reference / max(reference.sum(), 1), EPSILON)
    cur = np.maximum(new / max(new.sum(), 1), EPSILON)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def psi_level(value: float) -> str:
    return "major" if value > PSI_MAJOR else "moderate" if value > PSI_MODERATE else "stable"


@dataclass
class FeatureDrift:
    """PSI of one feature and the bins whose share moved most."""

    feature: str
    psi: float
    level: str
    bins: list[dict[str, object]]  # label, reference share, new share


@dataclass
class DriftReport:
    """Drift of a new file against the reference training data."""

    sources: list[str]
    reference_rows: int
    new_rows: int
    features: list[FeatureDrift]
    unseen: dict[str, dict[str, Any]]  # JSON-like: kind -> counts and examples
    salary: dict[str, dict[str, Any]]  # JSON-like: source -> salary_shift()
    notes: list[str] = field(default_factory=list)
    novelty: dict[str, float] = field(default_factory=dict)  # see ``novelty``

    def headline(self) -> dict[str, object]:
        """The few numbers a person reads first."""
        top = [
            {"feature": f.feature, "psi": round(f.psi, 3), "level": f.level}
            for f in self.features[:3]
        ]
        overall = self.salary.get("all", {})
        return {
            "reference_rows": self.reference_rows,
            "new_rows": self.new_rows,
            "top_psi": top,
            "features_major_shift": [f.feature for f in self.features if f.level == "major"],
            "unseen_titles": self.unseen["titles"]["never_in_reference"],
            "unseen_countries": self.unseen["countries"]["never_in_reference"],
            "unseen_skills": self.unseen["skills"]["never_in_reference"],
            "salary_median_reference": overall.get("reference", {}).get("median"),
            "salary_median_new": overall.get("new", {}).get("median"),
            "salary_median_shift_pct": overall.get("median_shift_pct"),
            "salary_ks": overall.get("ks_statistic"),
            "salary_psi": overall.get("psi"),
            **self.novelty,
        }

    def to_dict(self) -> dict[str, object]:
        return {
            "headline": self.headline(),
            "sources": self.sources,
            "reference_rows": self.reference_rows,
            "new_rows": self.new_rows,
            "features": [asdict(f) for f in self.features],
            "unseen": self.unseen,
            "salary": self.salary,
            "notes": self.notes,
            "novelty": self.novelty,
            "thresholds": {"psi_moderate": PSI_MODERATE, "psi_major": PSI_MAJOR},
        }


# ----- features ------------------------------------------------------------------------
def _labels(builder: FeatureBuilder, column: str) -> dict[object, str]:
    names = {
        "role_family": builder.role_families,
        "title": builder.titles,
        "country": builder.countries,
        "region": builder.regions,
        "employment_type": EMPLOYMENT_TYPES,
        "source": builder.sources,
    }.get(column)
    if names is not None:
        return {float(i): str(n) for i, n in enumerate(names)}
    return {float(k): str(v) for k, v in _ORDINAL_NAMES.get(column, {}).items()}


def _binned(
    reference: np.ndarray, new: np.ndarray, continuous: bool
) -> tuple[list[object], np.ndarray, np.ndarray]:
    """(labels, reference counts, new counts); missing values get their own bin."""
    ref_known, new_known = reference[~np.isnan(reference)], new[~np.isnan(new)]
    labels: list[object]
    if continuous and len(np.unique(ref_known)) > N_QUANTILE_BINS:
        edges = np.unique(np.quantile(ref_known, np.linspace(0, 1, N_QUANTILE_BINS + 1)[1:-1]))
        ref_bins, new_bins = np.searchsorted(edges, ref_known), np.searchsorted(edges, new_known)
        bounds = [-np.inf, *edges, np.inf]
        labels = [f"{bounds[i]:g} .. {bounds[i + 1]:g}" for i in range(len(edges) + 1)]
        ref_counts = np.bincount(ref_bins, minlength=len(labels))
        new_counts = np.bincount(new_bins, minlength=len(labels))
    else:
        values = sorted(set(ref_known.tolist()) | set(new_known.tolist()))
        labels = list(values)
        ref_counts = np.array([np.sum(ref_known == v) for v in values])
        new_counts = np.array([np.sum(new_known == v) for v in values])
    labels = [*labels, MISSING]
    ref_counts = np.append(ref_counts, np.isnan(reference).sum())
    new_counts = np.append(new_counts, np.isnan(new).sum())
    return labels, ref_counts, new_counts


def _feature_drift(
    name: str, labels: list, ref_counts: np.ndarray, new_counts: np.ndarray
) -> FeatureDrift:
    ref_share = ref_counts / max(ref_counts.sum(), 1)
    new_share = new_counts / max(new_counts.sum(), 1)
    order = np.argsort(-np.abs(new_share - ref_share))
    bins = [
        {"bin": str(labels[i]), "reference": float(ref_share[i]), "new": float(new_share[i])}
        for i in order[:N_EXAMPLES]
        if ref_counts[i] or new_counts[i]
    ]
    value = psi(ref_counts, new_counts)
    return FeatureDrift(name, value, psi_level(value), bins)


def feature_drift(
    reference: pd.DataFrame, new: pd.DataFrame, builder: FeatureBuilder
) -> list[FeatureDrift]:
    """PSI per model feature (base columns and the skill mix), largest first."""
    ref_matrix, new_matrix = builder.transform(reference), builder.transform(new)
    out = []
    for column in BASE_COLUMNS:
        j = AT[column]
        labels, ref_counts, new_counts = _binned(
            ref_matrix[:, j], new_matrix[:, j], column in _CONTINUOUS
        )
        names = _labels(builder, column)
        if column in CATEGORICAL_COLUMNS or names:
            labels = [names.get(v, v) if v != MISSING else v for v in labels]
        else:
            labels = [f"{v:g}" if isinstance(v, float) else v for v in labels]
        out.append(_feature_drift(column, labels, ref_counts, new_counts))
    if builder.skills:
        # Which skills are asked for, among the listed ones in the vocabulary.
        ref_skills = np.nansum(ref_matrix[:, builder.skill_columns], axis=0)
        new_skills = np.nansum(new_matrix[:, builder.skill_columns], axis=0)
        if ref_skills.sum() and new_skills.sum():
            out.append(_feature_drift("skills (mix)", builder.skills, ref_skills, new_skills))
    return sorted(out, key=lambda f: -f.psi)


# ----- unseen categories ------------------------------------------------------------------
def _unseen(reference: pd.Series, new: pd.Series) -> dict[str, object]:
    known = set(reference.dropna())
    counts = Counter(v for v in new.dropna() if v not in known)
    return {
        "never_in_reference": len(counts),
        "rows": int(sum(counts.values())),
        "examples": [{"value": str(v), "rows": n} for v, n in counts.most_common(N_EXAMPLES)],
    }


def _skill_series(records: pd.DataFrame) -> pd.Series:
    listed = [s for skills in records["skills"] if isinstance(skills, list) for s in skills]
    return pd.Series(listed, dtype=object)


def unseen_categories(
    reference: pd.DataFrame, new: pd.DataFrame, builder: FeatureBuilder
) -> dict[str, dict[str, object]]:
    """Titles, countries and skills of the new file never seen in the reference data,
    and the share of new rows the champion's vocabulary does not cover."""
    titles = _unseen(
        reference["job_title"].astype(object).str.strip().str.lower(),
        new["job_title"].astype(object).str.strip().str.lower(),
    )
    countries = _unseen(reference["country"].astype(object), new["country"].astype(object))
    skills = _unseen(_skill_series(reference), _skill_series(new))
    matrix = builder.transform(new) if len(new) else np.empty((0, len(builder.columns)))
    other_title = float(builder.titles.index("other"))
    other_country = float(builder.countries.index("other"))
    family_other = (
        float(builder.role_families.index("other")) if "other" in builder.role_families else None
    )
    n = max(len(new), 1)
    titles["outside_vocabulary_share"] = float(np.mean(matrix[:, AT["title"]] == other_title))
    if family_other is not None:
        titles["role_family_other_share"] = float(
            np.mean(matrix[:, AT["role_family"]] == family_other)
        )
    countries["outside_vocabulary_share"] = float(
        np.sum(matrix[:, AT["country"]] == other_country) / n
    )
    vocabulary = set(builder.skills)
    mentions = _skill_series(new)
    skills["outside_vocabulary_share"] = (
        float((~mentions.isin(vocabulary)).mean()) if len(mentions) else 0.0
    )
    return {"titles": titles, "countries": countries, "skills": skills}


def novelty(
    reference: pd.DataFrame, new: pd.DataFrame, builder: FeatureBuilder
) -> dict[str, float]:
    """How much of the new file the reference data has never seen, per record.

    ``unseen_title_share``: records whose normalised (core) title no reference
    record has AND in which no role family is recognised. A new wording of a
    known role ("Applied AI Scientist") is normal in a later file and is not
    counted; text that names no role at all (a spreadsheet formula) is.
    ``unseen_skills_share``: among new records listing skills, those none of
    whose skills any reference record lists.
    """
    from salarymodel.data.titles import OTHER_FAMILY, title_rules

    rules = title_rules(builder.features)
    known = {rules.core_title(t) for t in reference["job_title"].astype(object).unique()}
    titles = new["job_title"].astype(object)
    unseen = [rules.core_title(t) not in known and rules.role_family(t) == OTHER_FAMILY
              for t in titles]  # fmt: skip
    listed = [s for s in new["skills"] if isinstance(s, list) and s]
    seen_skills = set(_skill_series(reference))
    strange = [not any(skill in seen_skills for skill in skills) for skills in listed]
    return {
        "unseen_title_share": float(np.mean(unseen)) if unseen else 0.0,
        "unseen_skills_share": float(np.mean(strange)) if strange else 0.0,
        "records_with_skills": float(len(listed)),
    }


# ----- salary --------------------------------------------------------------------------
def _summary(salary: np.ndarray) -> dict[str, float]:
    q = np.quantile(salary, [0.1, 0.25, 0.5, 0.75, 0.9]) if len(salary) else [np.nan] * 5
    return {
        "n": len(salary),
        "mean": float(np.mean(salary)) if len(salary) else float("nan"),
        **dict(zip(("p10", "p25", "median", "p75", "p90"), map(float, q), strict=True)),
    }


def salary_shift(reference: np.ndarray, new: np.ndarray) -> dict[str, object]:
    """Quantiles of both, the median shift (USD, %), KS statistic and the salary PSI."""
    ref, cur = _summary(reference), _summary(new)
    out: dict[str, object] = {"reference": ref, "new": cur}
    if len(reference) and len(new):
        out["median_shift_usd"] = cur["median"] - ref["median"]
        out["median_shift_pct"] = 100 * (cur["median"] / ref["median"] - 1)
        test = ks_2samp(reference, new)
        out["ks_statistic"] = float(test.statistic)
        out["ks_pvalue"] = float(test.pvalue)
        _, ref_counts, new_counts = _binned(np.log(reference), np.log(new), True)
        out["psi"] = psi(ref_counts, new_counts)
    return out


def salary_drift(reference: pd.DataFrame, new: pd.DataFrame) -> dict[str, dict[str, object]]:
    """Salary shift per source of the new file and overall."""
    out = {}
    for source in sorted(new["source"].dropna().unique()):
        out[str(source)] = salary_shift(
            reference.loc[reference["source"] == source, "salary_usd"].to_numpy(float),
            new.loc[new["source"] == source, "salary_usd"].to_numpy(float),
        )
    out["all"] = salary_shift(
        reference["salary_usd"].to_numpy(float), new["salary_usd"].to_numpy(float)
    )
    return out


def drift_report(
    reference: pd.DataFrame, new: pd.DataFrame, builder: FeatureBuilder
) -> DriftReport:
    """Drift of ``new`` canonical records against ``reference`` ones (same sources only)."""
    sources = sorted(str(s) for s in new["source"].dropna().unique())
    same = reference[reference["source"].isin(sources)]
    notes = []
    if len(same) < len(reference):
        notes.append(
            f"reference restricted to the new file's sources ({', '.join(sources)}): "
            f"{len(same):,} of {len(reference):,} records"
        )
    if same.empty or new.empty:
        notes.append("no reference records of these sources: drift not measured")
        empty = {"never_in_reference": 0, "rows": 0, "examples": []}
        return DriftReport(sources, len(same), len(new), [],
                           {k: dict(empty) for k in ("titles", "countries", "skills")},
                           {}, notes)  # fmt: skip
    return DriftReport(
        sources=sources,
        reference_rows=len(same),
        new_rows=len(new),
        features=feature_drift(same, new, builder),
        unseen=unseen_categories(same, new, builder),
        salary=salary_drift(same, new),
        notes=notes,
        novelty=novelty(same, new, builder),
    )
