"""Profile sources before trusting them: contradictions, repeats, reposts.

Each finding is a named rule with a count and the action the code takes, so
the training log and the closing report say exactly what was done to the data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

from salarymodel.config.settings import Settings
from salarymodel.config.sources import SourceConfig
from salarymodel.data.derivations import location_country
from salarymodel.data.geography import to_iso2
from salarymodel.data.sources import AdaptedSource
from salarymodel.data.titles import title_rules


@dataclass(frozen=True)
class Finding:
    """One profiling rule applied to one source."""

    source: str
    rule: str
    count: int
    action: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _repeats(records: pd.DataFrame) -> int:
    return int(records["repeat_id"].duplicated().sum())


def _country_field_vs_location(adapted: AdaptedSource, config: SourceConfig) -> list[Finding]:
    mapping = config.fields.get("country")
    if mapping is None or mapping.rule != "posting_country":
        return []
    country_col, location_col = mapping.input_columns
    raw = adapted.raw
    field_code = raw[country_col].map(lambda v: to_iso2(v) if isinstance(v, str) else None)
    place_code = raw[location_col].map(location_country)
    disagree = field_code.notna() & place_code.notna() & (field_code != place_code)
    unplaced_sd = (field_code == "SD") & place_code.isna()
    return [
        Finding(
            adapted.name,
            "country field contradicts the location (e.g. 'Sudan' for 'Austin, TX')",
            int(disagree.sum()),
            "the location wins (it is the more specific field)",
        ),
        Finding(
            adapted.name,
            "country field 'Sudan' with no place named",
            int(unplaced_sd.sum()),
            "country left missing (the field is a known mislabel of US postings)",
        ),
    ]


def _title_vs_level(records: pd.DataFrame, name: str, settings: Settings) -> list[Finding]:
    rules = title_rules(settings.features)
    seniority = records["job_title"].map(rules.seniority)
    level = records["experience_level"]
    senior_title_entry = (seniority >= 3) & (level == "EN")
    junior_title_senior = (seniority <= 1) & level.isin(["SE", "EX"])
    findings = [
        Finding(
            name,
            "title says senior/lead/staff but experience level is EN",
            int(senior_title_entry.sum()),
            "keep the stated level; title seniority is a separate feature",
        ),
        Finding(
            name,
            "title says intern/junior but experience level is SE/EX",
            int(junior_title_senior.sum()),
            "keep the stated level; title seniority is a separate feature",
        ),
    ]
    category = records["job_category"]
    if category.notna().any():
        cat_seniority = category.map(rules.seniority)
        free_senior = (seniority >= 3) & cat_seniority.isna()
        free_junior = (seniority <= 1) & (cat_seniority >= 3)
        findings += [
            Finding(
                name,
                "free-text title says senior+ but the short title does not",
                int(free_senior.sum()),
                "experience from the free-text title (it is the more specific)",
            ),
            Finding(
                name,
                "free-text title says intern/junior but the short title says senior",
                int(free_junior.sum()),
                "experience from the free-text title (it is the more specific)",
            ),
        ]
    return findings


def profile_source(
    adapted: AdaptedSource, config: SourceConfig, settings: Settings
) -> list[Finding]:
    """All profiling findings for one adapted source."""
    records, name = adapted.records, adapted.name
    findings = [
        Finding(
            name,
            "exact repeat of another record (same repeat key)",
            _repeats(records),
            f"repeats policy '{settings.repeats.policy}'; copies never straddle CV folds",
        ),
        Finding(
            name,
            "employee country differs from employer country",
            int(
                (
                    records["country"].notna()
                    & records["company_country"].notna()
                    & (records["country"] != records["company_country"])
                ).sum()
            ),
            "kept both; feature 'employer_abroad'",
        ),
        Finding(
            name,
            "country missing after mapping",
            int(records["country"].isna().sum()),
            "kept; country is missing for the model",
        ),
    ]
    findings += _country_field_vs_location(adapted, config)
    findings += _title_vs_level(records, name, settings)
    return [f for f in findings if f.count > 0 or "repeat" in f.rule]


def apply_repeat_policy(records: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Collapse exact repeats to one record with ``n_repeats`` (or keep them all).

    Under either policy the copies share one ``group_id``, so they can never sit
    on both sides of a cross-validation split.
    """
    counts = records.groupby("repeat_id", sort=False)["repeat_id"].transform("size")
    out = records.assign(n_repeats=counts.astype(int))
    # A repeat's group is the group of its first copy (reposts with the same
    # key might otherwise carry different group ids).
    out["group_id"] = out.groupby("repeat_id", sort=False)["group_id"].transform("first")
    if settings.repeats.policy == "collapse":
        out = out.drop_duplicates("repeat_id", keep="first")
    return out.reset_index(drop=True)


def merge_repeats(frames: list[pd.DataFrame], settings: Settings) -> pd.DataFrame:
    """Concatenate de-repeated frames (files) and apply the repeat policy across them.

    A record in two files (a survey row re-delivered in a weekly update) is one
    record: collapsed to its first copy with the copies' ``n_repeats`` summed,
    or kept with every copy in the first copy's group.
    """
    records = pd.concat(frames, ignore_index=True)
    if len(frames) == 1 or records.empty:
        return records
    by_id = records.groupby("repeat_id", sort=False)
    records["group_id"] = by_id["group_id"].transform("first")
    if settings.repeats.policy == "collapse":
        records["n_repeats"] = by_id["n_repeats"].transform("sum").astype(int)
        records = records.drop_duplicates("repeat_id", keep="first")
    else:
        records["n_repeats"] = by_id["repeat_id"].transform("size").astype(int)
    return records.reset_index(drop=True)
