"""Profiling rules and the repeat policy on real data; folds never split a group."""

from __future__ import annotations

import numpy as np

from salarymodel.data.dataset import load_training_data
from salarymodel.data.profiling import apply_repeat_policy, profile_source
from salarymodel.data.sources import adapt
from salarymodel.evaluation.cv import assign_folds


def test_survey_repeats_collapse_and_are_counted(aijobs_raw, sources, settings) -> None:
    raw = aijobs_raw.head(5000)
    adapted = adapt(raw, "aijobs", sources.sources["aijobs"], settings)
    collapsed = apply_repeat_policy(adapted.records, settings)
    expected_repeats = int(raw.duplicated().sum())
    assert len(collapsed) == len(raw) - expected_repeats
    assert collapsed["n_repeats"].sum() == len(raw)
    findings = {
        f.rule: f.count for f in profile_source(adapted, sources.sources["aijobs"], settings)
    }
    assert findings["exact repeat of another record (same repeat key)"] == expected_repeats


def test_posting_contradictions_are_counted(postings_raw, sources, settings) -> None:
    raw = postings_raw.head(4000)
    adapted = adapt(raw, "postings", sources.sources["postings"], settings)
    findings = {
        f.rule: f.count for f in profile_source(adapted, sources.sources["postings"], settings)
    }
    sudan_anywhere = int(
        ((raw["job_country"] == "Sudan") & raw["job_location"].isin(["Anywhere"])).sum()
        + ((raw["job_country"] == "Sudan") & raw["job_location"].isna()).sum()
    )
    assert findings["country field 'Sudan' with no place named"] == sudan_anywhere
    assert findings["country field contradicts the location (e.g. 'Sudan' for 'Austin, TX')"] > 0


def test_no_group_or_repeat_straddles_folds(project, settings, sources) -> None:
    data = load_training_data(settings, sources, sample=4000, seed=3)
    records = data.records
    folds = assign_folds(records, settings.evaluation.n_folds, settings.evaluation.seed)
    assert set(np.unique(folds)) == set(range(settings.evaluation.n_folds))
    per_group = records.assign(fold=folds).groupby("group_id")["fold"].nunique()
    assert (per_group == 1).all()
    per_repeat = records.assign(fold=folds).groupby("repeat_id")["fold"].nunique()
    assert (per_repeat == 1).all()
    # collapsed: a repeat key appears once
    assert not records["repeat_id"].duplicated().any()
